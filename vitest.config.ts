import { defineConfig } from 'vitest/config';

// PORTCULLIS_TEST_REPORT=path makes vitest also write a JSON report there;
// .ci/run reads it to print the plain "N passed, N failed" line.
const report = process.env.PORTCULLIS_TEST_REPORT;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Kernel tests create and delete their own network namespaces; give slow
    // kernel work room to finish.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: report ? ['default', ['json', { outputFile: report }]] : ['default'],
  },
});
