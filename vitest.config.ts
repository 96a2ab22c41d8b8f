import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Kernel tests create and delete their own network namespaces; keep files
    // in separate workers but give slow kernel work room to finish.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
