/**
 * The service's own bookkeeping commits (journal markers of multi-part and commit-confirmed
 * changes, expiry records) are claimed on the change feed: none of them is mistaken for another
 * process's change, which would re-read the whole kernel (seconds at 50,000 rules) after every
 * such change. Observed through the executor's save count: a re-read is a save.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { NftChangeFeed } from '../../../src/exec/nft-monitor.js';
import type { Operation } from '../../../src/service/operations.js';
import { describeKernel } from '../../helpers/kernel.js';
import { settled, useKernelService } from '../../helpers/kernel-service.js';

const dir = mkdtempSync(join(tmpdir(), 'pcl-own-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeKernel('own commits are not external changes', () => {
  const k = useKernelService({ prefix: 'pown', stateDir: dir });

  it('journaled changes (both families, confirmWithin, ttlSeconds) cause no re-read of the kernel', async (ctx) => {
    if (!k().adapters.feed) ctx.skip(); // without nft every change is checked by polling anyway
    const at = (family: 'ipv4' | 'ipv6', spec: string, extra: object = {}): Operation => ({
      op: 'append',
      family,
      table: 'filter',
      chain: 'INPUT',
      rule: { spec },
      ...extra,
    });
    // Let the start-up re-read (which learns handles) finish first.
    await k().service.apply([at('ipv4', '-s 192.0.2.1/32 -j ACCEPT')]);
    await settled(k());
    const saves = k().calls.save;
    const external: string[] = [];
    const off = k().service.subscribe((e) => {
      if (e.origin === 'external') external.push(JSON.stringify(e.changes[0]));
    });
    await k().service.apply([
      at('ipv4', '-s 192.0.2.2/32 -j DROP'),
      at('ipv6', '-s 2001:db8::2/128 -j DROP'),
    ]);
    await k().service.apply([at('ipv4', '-s 192.0.2.3/32 -j DROP', { ttlSeconds: 3600 })]);
    const c = await k().service.apply([at('ipv4', '-s 192.0.2.4/32 -j DROP')], { confirmWithin: 600 });
    await k().service.confirm(c.confirmation?.id as string);
    // Give the feed time to report every commit (a re-read would be queued by then), then check
    // through the queue that nothing was re-read.
    await new Promise((r) => setTimeout(r, 1500));
    await k().service.apply([at('ipv4', '-s 192.0.2.5/32 -j DROP')]);
    off();
    expect(external).toEqual([]);
    expect(k().calls.save - saves).toBe(0);
    await settled(k());
  });
});

describeKernel('own commits the monitor reports late', () => {
  const k = useKernelService({ prefix: 'plate', feedTimeoutMs: 100 });

  it('are not external changes when they come after the wait for them gave up, and teach their handles', async (ctx) => {
    const feed = k().adapters.feed as NftChangeFeed | undefined;
    if (!feed) ctx.skip();
    const external: string[] = [];
    const off = k().service.subscribe((e) => {
      if (e.origin === 'external') external.push(JSON.stringify(e.changes[0]));
    });
    await settled(k());
    const saves = k().calls.save;
    const monitor = feed!.pid!;
    process.kill(monitor, 'SIGSTOP'); // the monitor of this test's service: it falls behind
    let id: string;
    try {
      const r = await k().service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec: '-s 192.0.2.9/32 -j DROP' },
        },
      ]);
      id = r.results[0]?.rule?.id as string;
      await new Promise((r) => setTimeout(r, 400)); // the service's wait (100 ms) gives up
    } finally {
      process.kill(monitor, 'SIGCONT');
    }
    await feed!.barrier(); // the late commit has been delivered
    const restores = k().calls.restore;
    await k().service.apply([
      { op: 'delete', family: 'ipv4', table: 'filter', chain: 'INPUT', target: { id } },
    ]);
    off();
    expect(external).toEqual([]);
    expect(k().calls.save - saves).toBe(0); // no re-read
    // By the handle the late commit told: no restore (a delete by spec is one).
    expect(k().calls.restore - restores).toBe(0);
    expect(await k().kernelRules('ipv4', 'INPUT')).toEqual([]);
  });
});
