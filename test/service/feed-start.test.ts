/**
 * While the change feed is starting (nft monitor reads the whole ruleset first, and starts
 * over at every commit), nothing reports external changes: the service polls meanwhile (at
 * the poll interval, or ten times what the start-up read took if that is longer), and stops
 * polling once the feed is live. On the fake executor with a feed whose start is gated.
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
});
