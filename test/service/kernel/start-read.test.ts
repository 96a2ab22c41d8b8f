/**
 * The start-up read that learns rule handles (seconds at 50,000 rules) runs outside the queue:
 * a change made right after start does not wait for it. The read is adopted only when no write
 * of the service began meanwhile; otherwise it is made again, so the model never takes handles
 * from a read that a commit could have overtaken.
 *
 * The handle lister is held by a gate the test opens: a change that completes while the gate is
 * closed proves it did not wait for the read (no timing involved).
 */
import { afterEach, expect, it } from 'vitest';
import type { Family, TableName } from '../../../src/domain/family.js';
import type { RuleHandles } from '../../../src/exec/executor.js';
import { openKernel } from '../../../src/exec/kernel.js';
import { FirewallService } from '../../../src/service/firewall-service.js';
import { createNetns, describeKernel, type Netns } from '../../helpers/kernel.js';
import { waitFor } from '../../helpers/kernel-service.js';

interface Gated {
  readonly handles: RuleHandles;
  open(): void;
  lists: number;
  deletes: number;
}

function gated(inner: RuleHandles): Gated {
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  const g: Gated = {
    open,
    lists: 0,
    deletes: 0,
    handles: {
      list: async (family: Family, table: TableName) => {
        g.lists++;
        await gate;
        return inner.list(family, table);
      },
      delete: (family, refs, options) => {
        g.deletes++;
        return inner.delete(family, refs, options);
      },
    },
  };
  return g;
}

const startRead = (s: FirewallService) => (s as unknown as { sync: { startRead?: string } }).sync.startRead;

describeKernel('start-up handle read outside the queue', () => {
  let ns: Netns | undefined;
  let service: FirewallService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
    await ns?.destroy();
    ns = undefined;
  });

  async function start(): Promise<{ service: FirewallService; g: Gated; saves: () => number } | undefined> {
    ns = await createNetns('pstart');
    const rules = Array.from({ length: 50 }, (_, i) => `-A INPUT -s 192.0.2.${i + 1}/32 -j DROP`);
    const r = await ns.exec(['iptables-restore'], `*filter\n${rules.join('\n')}\nCOMMIT\n`);
    if (r.code !== 0) throw new Error(r.stderr);
    const adapters = await openKernel({ netns: ns.name });
    if (!adapters.feed || !adapters.handles) return undefined;
    const g = gated(adapters.handles);
    let saves = 0;
    const executor = adapters.executor;
    const counted = new Proxy(executor, {
      get(target, prop) {
        if (prop === 'save')
          return (...a: Parameters<typeof executor.save>) => {
            saves++;
            return target.save(...a);
          };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
    service = new FirewallService({
      executor: counted,
      feed: adapters.feed,
      handles: g.handles,
      families: ['ipv4'],
    });
    await service.start();
    return { service, g, saves: () => saves };
  }

  const at = { family: 'ipv4' as const, table: 'filter' as const, chain: 'INPUT' };

  it('a change right after start completes while the handle read is still held', async (ctx) => {
    const s = await start();
    if (!s) return ctx.skip();
    await waitFor('the start-up read to list handles', () => (s.g.lists > 0 ? true : undefined), 15_000);
    // The lister is held: a change that had to wait for the read could not complete now.
    const r = await s.service.apply([{ op: 'append', ...at, rule: { spec: '-s 198.51.100.1/32 -j DROP' } }]);
    expect(r.results[0]?.rule?.position).toBe(51);
    expect(startRead(s.service)).toBeUndefined();
    const listsBefore = s.g.lists;
    s.g.open();
    // A write of ours happened during the read: it is not adopted, and read again outside the
    // queue (nothing writes now), then adopted.
    await waitFor('the start-up read to settle', () => startRead(s.service), 15_000);
    expect(startRead(s.service)).toBe('outside-queue');
    expect(s.g.lists).toBeGreaterThan(listsBefore);
    // Handles are known: a delete by id goes by handle, and removes exactly that rule.
    const id = (await s.service.getChain('ipv4', 'filter', 'INPUT')).chain.rules[9]?.id as string;
    await s.service.apply([{ op: 'delete', ...at, target: { id } }]);
    expect(s.g.deletes).toBe(1);
    const texts = (await s.service.getChain('ipv4', 'filter', 'INPUT')).chain.rules.map((x) => x.text);
    expect(texts).toHaveLength(50);
    expect(texts).not.toContain('-s 192.0.2.10/32 -j DROP');
  });

  it('without writes meanwhile the read is adopted: no second read inside the queue', async (ctx) => {
    const s = await start();
    if (!s) return ctx.skip();
    const savesAtReady = s.saves();
    s.g.open();
    await waitFor('the start-up read to settle', () => startRead(s.service), 15_000);
    expect(startRead(s.service)).toBe('outside-queue');
    // One save for the read outside the queue, none inside it.
    expect(s.saves() - savesAtReady).toBe(1);
    const id = (await s.service.getChain('ipv4', 'filter', 'INPUT')).chain.rules[0]?.id as string;
    await s.service.apply([{ op: 'delete', ...at, target: { id } }]);
    expect(s.g.deletes).toBe(1);
    expect((await s.service.getChain('ipv4', 'filter', 'INPUT')).chain.rules).toHaveLength(49);
  });
});
