/**
 * Rules files survive kill -9 at any moment (see test/helpers/persist-kill.ts): after every
 * kill the ipv4 file is the old or the new complete ruleset, accepted by
 * `iptables-restore --test`. 20 kills here (bench/persist-kill-bench.ts runs hundreds), on the
 * real kernel in a throwaway namespace, with the files in a temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { runKillLoop } from '../helpers/persist-kill.js';

describeKernel('rules files under kill -9', () => {
  const ns = useNetns('pkill');
  const dir = mkdtempSync(join(tmpdir(), 'pcl-kill-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('20 kills during a stream of saving changes: always the old or the new complete ruleset', async () => {
    const r = await runKillLoop({ netns: ns().name, dir, kills: 20, entry: 'tsx' });
    console.log(
      `[kill -9] ${r.kills} kills in ${(r.ms / 1000).toFixed(0)} s, ${r.duringWrite} during a write; ${r.appendsAcknowledged} appends acknowledged; file ${r.savedRules} rules, kernel ${r.kernelRules}`,
    );
    expect(r.bad).toEqual([]);
    expect(r.savedRules).toBeGreaterThan(0);
  }, 600_000);
});
