import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import type { ChangeEvent } from '../../src/service/events.js';
import { expectError, host, kernel, kernelRules, seedInput, startSeeded } from '../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describe.each(FAMILIES)('FirewallService revisions (%s)', (family) => {
  const input = { family, table: 'filter', chain: 'INPUT' } as const;
  const drop = (n: number) => ({ spec: `-s ${host(family, n).addr} -j DROP` });

  it('every change advances the revision by one; reads return it', async () => {
    const { service } = await startSeeded();
    expect(service.revision).toBe(1);
    const revisions: number[] = [];
    for (let n = 1; n <= 3; n++)
      revisions.push((await service.apply([{ op: 'append', ...input, rule: drop(n) }])).revision);
    revisions.push((await service.apply([{ op: 'flushChain', ...input }])).revision);
    expect(revisions).toEqual([2, 3, 4, 5]);
    expect(service.revision).toBe(5);
    expect(service.getRuleset(family).revision).toBe(5);
    expect(service.getTable(family, 'filter').revision).toBe(5);
    expect(service.listChains(family, 'filter').revision).toBe(5);
    expect((await service.getChain(family, 'filter', 'INPUT')).revision).toBe(5);
    expect(service.status().revision).toBe(5);
  });

  it('a failed change does not advance the revision', async () => {
    const { service } = await startSeeded();
    await expectError(service.apply([{ op: 'append', ...input, chain: 'NOPE', rule: drop(1) }]), 'not_found');
    await expectError(
      service.apply([{ op: 'append', ...input, rule: { spec: '-j MASQUERADE' } }]),
      'invalid_argument',
    );
    expect(service.revision).toBe(1);
  });

  it('a change with the current expectedRevision applies', async () => {
    const { service } = await startSeeded();
    const r = await service.apply([{ op: 'append', ...input, rule: drop(1) }], { expectedRevision: 1 });
    expect(r.revision).toBe(2);
  });

  it('a stale expectedRevision fails with failed_precondition and changes nothing', async () => {
    const { fake, service } = await startSeeded();
    await service.apply([{ op: 'append', ...input, rule: drop(1) }]);
    const before = await kernel(fake, family);
    const restores = fake.calls.restore;
    const e = await expectError(
      service.apply([{ op: 'flushChain', ...input }], { expectedRevision: 1 }),
      'failed_precondition',
      'expectedRevision',
    );
    expect(e.details).toEqual({ currentRevision: 2, expectedRevision: 1 });
    expect(await kernel(fake, family)).toBe(before);
    expect(fake.calls.restore).toBe(restores);
    expect(service.revision).toBe(2);
  });

  it.each([-1, 1.5, '2', Number.NaN])(
    'refuses expectedRevision %s (invalid_argument)',
    async (expectedRevision) => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'flushChain', ...input }], { expectedRevision: expectedRevision as number }),
        'invalid_argument',
        'expectedRevision',
      );
    },
  );

  it('in one batch, of two jobs expecting the same revision the first wins and the second fails', async () => {
    const { fake, service } = await startSeeded();
    const [a, b] = await Promise.allSettled([
      service.apply([{ op: 'append', ...input, rule: drop(1) }], { expectedRevision: 1 }),
      service.apply([{ op: 'append', ...input, rule: drop(2) }], { expectedRevision: 1 }),
    ]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { revision: 2 } });
    expect(b.status).toBe('rejected');
    expect((b as PromiseRejectedResult).reason).toMatchObject({
      code: 'failed_precondition',
      details: { currentRevision: 2, expectedRevision: 1 },
    });
    expect(fake.calls.restore).toBe(1);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([
      ...seedInput(family),
      `-s ${host(family, 1).canonical} -j DROP`,
    ]);
  });

  it('in one batch, a job may expect the revision the job before it produces', async () => {
    const { service } = await startSeeded();
    const results = await Promise.all([
      service.apply([{ op: 'append', ...input, rule: drop(1) }], { expectedRevision: 1 }),
      service.apply([{ op: 'append', ...input, rule: drop(2) }], { expectedRevision: 2 }),
    ]);
    expect(results.map((r) => r.revision)).toEqual([2, 3]);
  });

  it('an ensure that finds its rule does not advance the revision a later job expects', async () => {
    const { service } = await startSeeded();
    const [first, second] = await Promise.all([
      service.apply([{ op: 'ensure', ...input, rule: { spec: '-i lo -j ACCEPT' } }]),
      service.apply([{ op: 'append', ...input, rule: drop(1) }], { expectedRevision: 1 }),
    ]);
    expect(first.revision).toBe(1);
    expect(second.revision).toBe(2);
  });
});

describe.each(FAMILIES)('FirewallService events (%s)', (family) => {
  const input = { family, table: 'filter', chain: 'INPUT' } as const;
  const drop = (n: number) => ({ spec: `-s ${host(family, n).addr} -j DROP` });

  it('subscribers get every change in revision order, with origin service and the client', async () => {
    const { service } = await startSeeded();
    const events: ChangeEvent[] = [];
    service.subscribe((e) => events.push(e));
    await Promise.all([
      service.apply([{ op: 'append', ...input, rule: drop(1) }], { origin: 'rest' }),
      service.apply([{ op: 'append', ...input, rule: drop(2) }], { origin: 'grpc' }),
      service.apply([{ op: 'ensure', ...input, rule: { spec: '-i lo -j ACCEPT' } }], { origin: 'rest' }),
    ]);
    await service.apply([{ op: 'createChain', family, table: 'filter', chain: 'NEW' }]);
    expect(events.map((e) => [e.revision, e.origin, e.client])).toEqual([
      [2, 'service', 'rest'],
      [3, 'service', 'grpc'],
      [4, 'service', undefined],
    ]);
    expect(events[0]?.changes).toEqual([
      expect.objectContaining({ type: 'rule.added', family, table: 'filter', chain: 'INPUT', position: 4 }),
    ]);
    expect(events[2]?.changes).toEqual([{ type: 'chain.created', family, table: 'filter', chain: 'NEW' }]);
    for (const e of events) expect(Number.isNaN(Date.parse(e.time))).toBe(false);
  });

  it('an unsubscribed listener gets nothing more; a throwing listener is dropped and does not fail changes', async () => {
    const { service } = await startSeeded();
    const seen: number[] = [];
    const off = service.subscribe((e) => seen.push(e.revision));
    let thrown = 0;
    service.subscribe(() => {
      thrown++;
      throw new Error('bad listener');
    });
    await service.apply([{ op: 'append', ...input, rule: drop(1) }]);
    off();
    const r = await service.apply([{ op: 'append', ...input, rule: drop(2) }]);
    expect(r.revision).toBe(3);
    expect(seen).toEqual([2]);
    expect(thrown).toBe(1);
  });

  it('reload() finds an external change: origin external, revision advances, model follows', async () => {
    const { fake, service } = await startSeeded();
    const events: ChangeEvent[] = [];
    service.subscribe((e) => events.push(e));
    await fake.restore(family, `*filter\n-A INPUT -p udp -j DROP\n-N OTHER\nCOMMIT\n`, { noflush: true });
    const r = await service.reload();
    expect(r).toEqual({ revision: 2, changed: true });
    expect(service.revision).toBe(2);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ revision: 2, origin: 'external', client: 'demand' });
    expect(events[0]?.changes).toEqual(
      expect.arrayContaining([
        { type: 'chain.created', family, table: 'filter', chain: 'OTHER' },
        expect.objectContaining({ type: 'rule.added', chain: 'INPUT', position: 4, text: '-p udp -j DROP' }),
      ]),
    );
    expect((await service.getChain(family, 'filter', 'INPUT')).chain.rules.map((x) => x.text)).toEqual(
      await kernelRules(fake, family, 'INPUT'),
    );
    expect(service.status().lastExternalChange).toEqual(events[0]?.time);
    // Nothing new: no event, same revision.
    expect(await service.reload()).toEqual({ revision: 2, changed: false });
    expect(events).toHaveLength(1);
  });

  it('reports external deletions and policy changes', async () => {
    const { fake, service } = await startSeeded();
    const events: ChangeEvent[] = [];
    service.subscribe((e) => events.push(e));
    await fake.restore(family, '*filter\n-D INPUT 1\n-P FORWARD DROP\nCOMMIT\n', { noflush: true });
    await service.reload();
    expect(events[0]?.changes).toEqual(
      expect.arrayContaining([
        { type: 'rule.deleted', family, table: 'filter', chain: 'INPUT', text: '-i lo -j ACCEPT' },
        { type: 'policy.set', family, table: 'filter', chain: 'FORWARD', policy: 'DROP' },
      ]),
    );
  });

  it('after an external change, a change planned on the new model applies; a stale expected revision fails', async () => {
    const { fake, service } = await startSeeded();
    await fake.restore(family, '*filter\n-I INPUT 1 -p udp -j DROP\nCOMMIT\n', { noflush: true });
    await service.reload();
    await expectError(
      service.apply([{ op: 'delete', ...input, target: { position: 1 } }], { expectedRevision: 1 }),
      'failed_precondition',
    );
    const r = await service.apply([{ op: 'delete', ...input, target: { position: 1 } }], {
      expectedRevision: 2,
    });
    expect(r.results[0]?.deleted?.text).toBe('-p udp -j DROP');
    expect(await kernelRules(fake, family, 'INPUT')).toEqual(seedInput(family));
  });
});
