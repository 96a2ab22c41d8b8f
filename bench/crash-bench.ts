/**
 * kill -9 benchmark of the change journal (the loop in test/helpers/crash.ts, with the compiled
 * daemon): `--kills N` (default 100) kills during random transactions over both families and four
 * tables, in a throwaway namespace; prints the transactions sent, how many kills left one half
 * applied in the kernel (recovery's work) and every broken promise (none expected).
 * Run as root after `npm run build`: `node --import tsx bench/crash-bench.ts [--kills 100] [--seed N]`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCrashLoop } from '../test/helpers/crash.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  const v = i === -1 ? fallback : Number(args[i + 1]);
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
};
const KILLS = Math.min(2000, opt('--kills', 100));
const SEED = opt('--seed', 20261129) >>> 0;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (it creates a network namespace)');
  const ns = `pcrashb-${process.pid}-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'pcl-crash-bench-'));
  spawnSync('ip', ['netns', 'add', ns]);
  try {
    const r = await runCrashLoop({
      netns: ns,
      dir,
      kills: KILLS,
      seed: SEED,
      entry: 'dist',
      log: (l) => {
        const m = /kill (\d+)\//.exec(l);
        if (m && Number(m[1]) % 10 === 0) console.log(l);
      },
    });
    console.log(
      `seed ${SEED}: ${r.kills} kills in ${(r.ms / 1000).toFixed(0)} s; ${r.requests} transactions ` +
        `(${r.acknowledged} acknowledged, ${r.refused} refused, ${r.cutOff} cut off); ` +
        `${r.halfAppliedAtKill} kills left a transaction half applied in the kernel; broken promises: ${r.bad.length}`,
    );
    for (const b of r.bad) console.log(`  ${b}`);
    if (r.bad.length > 0) process.exitCode = 1;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
