/**
 * A model the service replaced is garbage: nothing long-lived (a timer, a closure, a cache)
 * may keep an earlier read of the kernel alive. At 500k rules the start-up read (its
 * KernelEntries and the 70 MB iptables-save text they slice) stayed in memory for the life of
 * the process, held by the context of an interval made in the same function (issue 15: half of
 * the daemon's 990,018 KernelEntries after a re-read). Checked with WeakRefs and a forced
 * collection, with the daemon's options: a change feed, the other backend watched, the first
 * saves handed in.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import type { ChangeFeed, Generation } from '../../src/exec/executor.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import type { FamilyState } from '../../src/service/state.js';
import { seed } from '../helpers/service.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A feed that keeps its listeners, as the nft monitor's does. */
const listeners: unknown[] = [];
const feed: ChangeFeed = {
  start: async () => {},
  takeOwn: async () => [] as readonly Generation[],
  onExternal: (listener) => {
    listeners.push(listener);
    return () => {};
  },
  claim: () => {},
  release: () => {},
  close: async () => {},
};

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setTimeout(r, 20));
    gc();
  }
  return ref.deref() === undefined;
}

/** A service as the daemon makes it; only the service holds the first saves it was handed. */
function daemonLike(fake: FakeExecutor): { service: FirewallService; savesRef: WeakRef<object> } {
  const saves = new Map([['ipv4' as const, fake.save('ipv4')]]);
  const service = new FirewallService({
    executor: fake,
    feed,
    families: ['ipv4'],
    pollIntervalMs: 60_000,
    otherBackend: { backend: 'legacy', executor: new FakeExecutor() },
    firstSaves: saves,
  });
  return { service, savesRef: new WeakRef(saves) };
}

it('the first read of the kernel and its saves are collected once a re-read replaced them', async () => {
  const fake = new FakeExecutor();
  await fake.restore('ipv4', seed('ipv4'));
  const { service, savesRef } = daemonLike(fake);
  await service.start();
  try {
    const model = (service as unknown as { model: { state: Map<string, FamilyState> } }).model;
    const first = new WeakRef(model.state.get('ipv4') as FamilyState);
    await service.reload();
    expect(model.state.get('ipv4')).not.toBe(first.deref());
    expect(await collected(first)).toBe(true);
    expect(await collected(savesRef)).toBe(true);
  } finally {
    await service.close();
  }
});

it('views kept for chain reads go when a re-read replaces the model', async () => {
  const fake = new FakeExecutor();
  await fake.restore('ipv4', seed('ipv4'));
  const service = new FirewallService({ executor: fake, families: ['ipv4'], pollIntervalMs: 0 });
  await service.start();
  try {
    const read = async () => (await service.getChain('ipv4', 'filter', 'INPUT')).chain;
    const view = new WeakRef(await read());
    expect(await read()).toBe(view.deref());
    await service.reload();
    expect(await collected(view)).toBe(true);
  } finally {
    await service.close();
  }
});
