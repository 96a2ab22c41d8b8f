/**
 * `npm run build`: compiles src/ to dist/ with tsc (tsconfig.build.json), from scratch so that
 * no file of a deleted source survives, and leaves dist/.build-stamp for build-if-needed.mjs.
 * Plain JavaScript so that it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

export function build() {
  let tsc;
  try {
    tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write(
      'portcullis: cannot build dist/: the TypeScript compiler is not installed (run npm ci, with the dev dependencies).\n',
    );
    return 1;
  }
  rmSync(dist, { recursive: true, force: true });
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    rmSync(dist, { recursive: true, force: true });
    process.stderr.write('portcullis: the build failed (see the errors above); dist/ was not written.\n');
    return r.status ?? 1;
  }
  writeFileSync(join(dist, '.build-stamp'), `${new Date().toISOString()}\n`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exit(build());
