#!/usr/bin/env node
// The portcullis command (src/cli). Runs the compiled CLI, dist/cli/main.js (`npm run build`),
// when it is current: built after the last change to src/ (the rule scripts/build-if-needed.mjs
// applies to the daemon), or when there are no sources. Otherwise it runs the TypeScript
// source through tsx (a dev dependency), so `npx portcullis` works from a fresh checkout after
// `npm ci` and never runs stale code while you edit.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const path = (rel) => fileURLToPath(new URL(rel, root));

function newest(dir) {
  const st = statSync(dir);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const name of readdirSync(dir)) max = Math.max(max, newest(`${dir}/${name}`));
  return max;
}

function compiledIsCurrent() {
  if (!existsSync(path('dist/cli/main.js'))) return false;
  if (!existsSync(path('src/cli'))) return true;
  const stamp = path('dist/.build-stamp');
  return existsSync(stamp) && statSync(stamp).mtimeMs >= newest(path('src'));
}

let cli;
if (compiledIsCurrent()) {
  cli = await import(new URL('dist/cli/main.js', root).href);
} else if (existsSync(path('src/cli/main.ts'))) {
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    process.stderr.write(
      'portcullis: dist/ is missing or older than src/ and tsx is not installed: run npm run build\n',
    );
    process.exit(1);
  }
  cli = await import(new URL('src/cli/main.ts', root).href);
} else {
  process.stderr.write('portcullis: dist/cli/main.js is missing: run npm run build\n');
  process.exit(1);
}
await cli.runProcess();
