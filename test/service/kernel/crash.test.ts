/**
 * kill -9 during random transactions (test/helpers/crash.ts): after every restart each
 * acknowledged transaction is whole in the kernel, each refused one absent, each one the kill cut
 * off whole or absent, and the model equals `iptables-save`. A few kills here;
 * bench/crash-bench.ts runs hundreds (PORTCULLIS_CRASH_SEED / PORTCULLIS_CRASH_KILLS explore more).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCrashLoop } from '../../helpers/crash.js';
import { describeKernel, useNetns } from '../../helpers/kernel.js';

const SEED = Number(process.env.PORTCULLIS_CRASH_SEED ?? 20261129) >>> 0;
const KILLS = Number(process.env.PORTCULLIS_CRASH_KILLS ?? 8);

describeKernel('crash: kill -9 during random transactions', () => {
  const ns = useNetns('pcrash');
  const dir = mkdtempSync(join(tmpdir(), 'pcl-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`${KILLS} kills (seed ${SEED}): acknowledged whole, refused absent, cut off whole or absent, model = kernel`, async () => {
    const r = await runCrashLoop({ netns: ns().name, dir, kills: KILLS, seed: SEED, entry: 'tsx' });
    console.log(
      `[crash] seed ${SEED}: ${r.kills} kills in ${(r.ms / 1000).toFixed(0)} s; ${r.requests} transactions ` +
        `(${r.acknowledged} acknowledged, ${r.refused} refused, ${r.cutOff} cut off); ` +
        `${r.halfAppliedAtKill} kills left one half applied in the kernel`,
    );
    expect(r.bad).toEqual([]);
    expect(r.acknowledged).toBeGreaterThan(0);
  }, 900_000);
});
