/**
 * kill -9 benchmark of the rules files (the loop in test/helpers/persist-kill.ts, with the
 * compiled daemon): `--kills N` (default 200) kills during a stream of saving changes, in a
 * throwaway namespace, the files in a temporary directory; prints how many kills landed during
 * a write and whether any file was ever not the old or the new complete ruleset.
 * Run as root after `npm run build`: `node --import tsx bench/persist-kill-bench.ts [--kills 200]`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKillLoop } from '../test/helpers/persist-kill.js';

const args = process.argv.slice(2);
const i = args.indexOf('--kills');
const KILLS = Math.max(1, Math.min(2000, Number(i === -1 ? 200 : args[i + 1]) || 200));

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (it creates a network namespace)');
  const ns = `pkillb-${process.pid}-${randomBytes(3).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'pcl-kill-bench-'));
  spawnSync('ip', ['netns', 'add', ns]);
  try {
    const r = await runKillLoop({
      netns: ns,
      dir,
      kills: KILLS,
      entry: 'dist',
      log: (l) => {
        if (/kill (\d+)\//.exec(l) && Number(/kill (\d+)\//.exec(l)?.[1]) % 25 === 0) console.log(l);
      },
    });
    console.log(
      `${r.kills} kills in ${(r.ms / 1000).toFixed(0)} s; ${r.duringWrite} landed during a write; ${r.appendsAcknowledged} appends acknowledged; ` +
        `file ${r.savedRules} rules, kernel ${r.kernelRules}; bad files: ${r.bad.length}`,
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
