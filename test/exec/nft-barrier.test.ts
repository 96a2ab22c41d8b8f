/**
 * The feed's barrier (NftChangeFeed.barrier): once it resolves, every commit made before the
 * call has been reported. Kernel sync relies on it to verify rule handles with one listing
 * instead of two (service/kernel-sync.ts). Also: the monitor's start waits until it has
 * subscribed before it sends its marker, so a start beside a large ruleset does not keep
 * restarting the monitor's own read of it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Generation } from '../../src/exec/executor.js';
import { NftChangeFeed } from '../../src/exec/nft-monitor.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';

describeKernel('the nft feed barrier', () => {
  const ns = useNetns('pbar');
  let feed: NftChangeFeed | undefined;
  afterAll(async () => {
    await feed?.close();
  });

  it('rejects before the feed is live', async () => {
    const idle = new NftChangeFeed({ netns: ns().name });
    await expect(idle.barrier()).rejects.toThrow(/not running/);
  });

  it('resolves only after every commit made before it was reported, every time', async () => {
    feed = new NftChangeFeed({ netns: ns().name });
    await feed.start();
    const seen: Generation[] = [];
    feed.onExternal((g) => seen.push(g));
    for (let i = 0; i < 20; i++) {
      // Another process commits; the barrier is asked for right after it returns.
      const r = await ns().exec(['iptables', '-A', 'INPUT', '-s', `192.0.2.${i + 1}`, '-j', 'DROP']);
      expect(r.code, r.stderr).toBe(0);
      await feed.barrier();
      expect(seen.length, `after commit ${i + 1}`).toBe(i + 1);
    }
    // The barrier's own marker commits are never reported as external.
    await feed.barrier();
    await feed.barrier();
    expect(seen).toHaveLength(20);
  });

  // Found as a daemon that exited 0 in the middle of its shutdown: a reload's barrier waited
  // only on an unref'd timer after the monitor was gone, and the event loop ran dry.
  it.each(['kill', 'close'])(
    'settles a waiting barrier at once when the monitor ends (%s), without a timer holding the process',
    (mode) => {
      const r = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, '..', 'fixtures', 'feed-stranded-barrier.ts'),
          ns().name,
          mode,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect({ code: r.status, stdout: r.stdout.trim() }, r.stderr).toEqual({
        code: 0,
        stdout: expect.stringMatching(/^rejected: /),
      });
    },
  );

  it('commits one marker per start: none before the monitor has subscribed', async () => {
    // A marker committed while the monitor reads the ruleset makes it start that read over (at
    // 50k rules: live after 1.8 s instead of 1.1 s). Counted by a monitor of our own, once it
    // reports table events.
    const rules = ['*filter', ':INPUT ACCEPT [0:0]'];
    for (let i = 0; i < 2000; i++)
      rules.push(`-A INPUT -s 198.51.100.${i % 256}/32 -p tcp --dport ${i + 1} -j DROP`);
    rules.push('COMMIT', '');
    expect((await ns().exec(['iptables-restore', '--noflush'], rules.join('\n'))).code).toBe(0);
    const counter = spawn('ip', ['netns', 'exec', ns().name, 'nft', 'monitor', 'tables']);
    let out = '';
    counter.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    try {
      for (let i = 0; i < 200 && !out.includes('pcl_counter_ready'); i++) {
        await ns().exec(['nft', 'add table inet pcl_counter_ready; delete table inet pcl_counter_ready']);
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(out).toContain('pcl_counter_ready');
      for (let i = 0; i < 3; i++) {
        const f = new NftChangeFeed({ netns: ns().name });
        try {
          await f.start();
        } finally {
          await f.close();
        }
      }
      // Every marker the feeds committed has reached our monitor once this one is back.
      await ns().exec(['nft', 'add table inet pcl_counter_done; delete table inet pcl_counter_done']);
      for (let i = 0; i < 200 && !out.includes('delete table inet pcl_counter_done'); i++)
        await new Promise((r) => setTimeout(r, 25));
      expect(out.match(/^add table inet portcullis_sync_/gm)).toHaveLength(3);
    } finally {
      counter.kill('SIGTERM'); // the monitor this test started
    }
  });

  it('rejects once the feed is closed', async () => {
    await feed?.close();
    await expect(feed?.barrier()).rejects.toThrow();
  });
});
