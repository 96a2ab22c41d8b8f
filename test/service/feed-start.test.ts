/**
 * While the change feed is starting (nft monitor reads the whole ruleset first, and starts
 * over at every commit), nothing reports external changes: the service polls meanwhile (at
 * the poll interval, or ten times what the start-up read took if that is longer), and stops
 * polling once the feed is live. Changes wait for the starting feed (every commit makes nft
 * monitor start its read over), at most a bounded time. On the fake executor with a feed whose
 * start is gated.
 */
import { describe, expect, it } from 'vitest';
import type { ChangeFeed, Generation } from '../../src/exec/executor.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { filter, seed } from '../helpers/service.js';

/** A feed that goes live when `open()` is called, and reports nothing. */
function gatedFeed(): { feed: ChangeFeed; open: () => void } {
  let open: () => void = () => {};
  const started = new Promise<void>((r) => {
    open = r;
  });
  const feed: ChangeFeed = {
    start: () => started,
    takeOwn: async () => [] as readonly Generation[],
    onExternal: () => () => {},
    claim: () => {},
    release: () => {},
    close: async () => {},
  };
  return { feed, open };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('while the change feed starts', () => {
  it('external changes are polled, and polling stops once the feed is live', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', seed('ipv4'));
    const { feed, open } = gatedFeed();
    const service = new FirewallService({
      executor: fake,
      feed,
      families: ['ipv4'],
      pollIntervalMs: 40,
      queue: { detectReentry: true },
    });
    await service.start();
    try {
      expect(service.status().watch).toBe('poll');
      // Another process adds a rule; no feed reports it.
      await fake.restore('ipv4', filter('-A INPUT -s 198.51.100.7/32 -j DROP'), { noflush: true });
      await until(() => service.getRulesetText('ipv4').text.includes('198.51.100.7/32'));
      open();
      await until(() => service.status().watch === 'nft-monitor');
      const saves = fake.calls.save;
      await new Promise((r) => setTimeout(r, 200));
      // The start re-read may still read once; no poll every 40 ms any more.
      expect(fake.calls.save - saves).toBeLessThanOrEqual(1);
    } finally {
      await service.close();
    }
  });

  it('changes wait until the feed is live (reads from the model do not)', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', seed('ipv4'));
    const { feed, open } = gatedFeed();
    const service = new FirewallService({ executor: fake, feed, families: ['ipv4'], pollIntervalMs: 0 });
    await service.start();
    try {
      const restores = fake.calls.restore;
      let done = false;
      const applied = service
        .apply([
          {
            op: 'append',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            rule: { spec: '-s 198.51.100.9/32 -j DROP' },
          },
        ])
        .then((r) => {
          done = true;
          return r;
        });
      await new Promise((r) => setTimeout(r, 300));
      expect(done).toBe(false);
      expect(fake.calls.restore).toBe(restores);
      expect((await service.getChain('ipv4', 'filter', 'INPUT')).chain.rules.length).toBe(3);
      open();
      const r = await applied;
      expect(r.results[0]?.rule?.text).toBe('-s 198.51.100.9/32 -j DROP');
      expect(fake.calls.restore).toBeGreaterThan(restores);
    } finally {
      await service.close();
    }
  });

  it('a feed that never goes live holds changes for a bounded time only', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', seed('ipv4'));
    const { feed } = gatedFeed();
    const service = new FirewallService({ executor: fake, feed, families: ['ipv4'], pollIntervalMs: 0 });
    await service.start();
    try {
      const t0 = Date.now();
      await service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec: '-s 198.51.100.10/32 -j DROP' },
        },
      ]);
      // At least 5 s (the start-up read here is a few ms), with a wide margin above.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(4900);
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      await service.close();
    }
  }, 40_000);
});
