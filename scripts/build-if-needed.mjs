/**
 * `npm start` runs this first (prestart): builds dist/ when it is missing or older than any
 * file it is compiled from, so that `npm ci && npm start` works on a fresh clone and after a
 * pull, and costs a few milliseconds otherwise.
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from './build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

let built = 0;
try {
  built = statSync(join(root, 'dist', '.build-stamp')).mtimeMs;
} catch {
  built = 0;
}
const sources = Math.max(
  newest(join(root, 'src')),
  ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map(
    (f) => statSync(join(root, f)).mtimeMs,
  ),
);
if (built < sources) {
  process.stderr.write(
    built === 0 ? 'portcullis: building dist/ (first start)\n' : 'portcullis: rebuilding dist/\n',
  );
  process.exit(build());
}
