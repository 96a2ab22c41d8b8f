/**
 * All-or-nothing on a real kernel: a transaction the kernel refuses part way (its last operation
 * passes planning but the kernel rejects it) leaves the kernel byte-identical and the revision
 * unchanged — within one table (one COMMIT), across two tables (the table committed first is
 * put back by compensation), and across two families. Also: revision preconditions, and group
 * commit (many concurrent changes in few restores, in submission order).
 */
import { describe, expect, it } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import type { Operation } from '../../../src/service/operations.js';
import { describeKernel } from '../../helpers/kernel.js';
import { expectModelMatchesKernel, settled, useKernelService } from '../../helpers/kernel-service.js';
import { expectError, host } from '../../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describeKernel('FirewallService transactions on the kernel', () => {
  const k = useKernelService({ prefix: 'psvctx' });

  async function saves(): Promise<string[]> {
    return Promise.all(FAMILIES.map((f) => k().save(f)));
  }

  async function seed(): Promise<void> {
    await k().service.apply([{ op: 'reset' }]);
    await k().service.apply(
      FAMILIES.flatMap((family): Operation[] => [
        { op: 'append', family, table: 'filter', chain: 'INPUT', rule: { spec: '-i lo -j ACCEPT' } },
        { op: 'createChain', family, table: 'filter', chain: 'WEB' },
        { op: 'append', family, table: 'nat', chain: 'POSTROUTING', rule: { spec: '-o lo -j MASQUERADE' } },
      ]),
    );
  }

  /**
   * Applies `ops`, expects the kernel to refuse them, and proves nothing changed anywhere. With
   * `compensated`, the part committed before the failure had to be undone by a second restore
   * that deletes what it added (only its own change, never a whole table); without, the one
   * failing restore changed nothing by itself.
   */
  async function expectRefusedAtomically(ops: Operation[], compensated: boolean): Promise<void> {
    await seed();
    await settled(k());
    const before = await saves();
    const revision = k().service.revision;
    const restores = k().calls.restores.length;
    const e = await expectError(k().service.apply(ops), 'invalid_argument');
    // The message says what the kernel said, not just iptables-restore's banner line.
    expect(e.message).toMatch(/kernel refused the change: line \d+: RULE_APPEND failed \(Invalid argument\)/);
    const used = k().calls.restores.slice(restores);
    if (compensated) {
      expect(used.slice(1).some((r) => /^-D /m.test(r.text))).toBe(true);
      expect(used.some((r) => /^:/m.test(r.text))).toBe(false);
    } else expect(used).toHaveLength(1);
    expect(await saves()).toEqual(before);
    expect(k().service.revision).toBe(revision);
    await expectModelMatchesKernel(k());
    // A compensating restore is seen as an external commit: the re-read finds nothing new.
    await settled(k());
    expect(await saves()).toEqual(before);
    expect(k().service.revision).toBe(revision);
  }

  describe.each(FAMILIES)('%s', (family) => {
    const filter = { family, table: 'filter' } as const;
    const appends = (chain: string): Operation[] =>
      [1, 2, 3].map((n) => ({
        op: 'append',
        ...filter,
        chain,
        rule: { spec: `-s ${host(family, n).addr} -j DROP` },
      }));

    it('several appends and a policy change, then a target the kernel refuses in that table: nothing lands', async () => {
      await expectRefusedAtomically(
        [
          ...appends('INPUT'),
          ...appends('WEB'),
          { op: 'setPolicy', ...filter, chain: 'INPUT', policy: 'DROP' },
          // MASQUERADE belongs to nat: planning accepts the rule, the kernel refuses it in filter.
          { op: 'append', ...filter, chain: 'INPUT', rule: { spec: '-j MASQUERADE' } },
        ],
        false,
      );
    });

    it('spanning filter and nat, failing in nat: the committed filter part is undone', async () => {
      await expectRefusedAtomically(
        [
          ...appends('INPUT'),
          { op: 'setPolicy', ...filter, chain: 'FORWARD', policy: 'DROP' },
          { op: 'createChain', ...filter, chain: 'NEWONE' },
          { op: 'flushChain', family, table: 'nat', chain: 'POSTROUTING' },
          // MASQUERADE only works in POSTROUTING.
          { op: 'append', family, table: 'nat', chain: 'PREROUTING', rule: { spec: '-j MASQUERADE' } },
        ],
        true,
      );
    });

    it('a stale expectedRevision changes nothing; the current one applies', async () => {
      await seed();
      const before = await saves();
      const revision = k().service.revision;
      const op: Operation = { op: 'append', ...filter, chain: 'INPUT', rule: { spec: '-p udp -j DROP' } };
      await expectError(k().service.apply([op], { expectedRevision: revision - 1 }), 'failed_precondition');
      await expectError(
        k().service.apply([op, op], { expectedRevision: revision + 5 }),
        'failed_precondition',
      );
      expect(await saves()).toEqual(before);
      expect(k().service.revision).toBe(revision);
      const r = await k().service.apply([op], { expectedRevision: revision });
      expect(r.revision).toBe(revision + 1);
      expect((await k().kernelRules(family, 'INPUT')).at(-1)).toBe('-p udp -j DROP');
      await expectModelMatchesKernel(k());
    });
  });

  it('spanning both families, failing in ipv6: the committed ipv4 part is undone', async () => {
    await expectRefusedAtomically(
      [
        { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: '-p tcp -j DROP' } },
        { op: 'setPolicy', family: 'ipv4', table: 'filter', chain: 'OUTPUT', policy: 'DROP' },
        {
          op: 'append',
          family: 'ipv4',
          table: 'nat',
          chain: 'POSTROUTING',
          rule: { spec: '-o eth9 -j MASQUERADE' },
        },
        { op: 'append', family: 'ipv6', table: 'filter', chain: 'INPUT', rule: { spec: '-p tcp -j DROP' } },
        { op: 'append', family: 'ipv6', table: 'filter', chain: 'INPUT', rule: { spec: '-j MASQUERADE' } },
      ],
      true,
    );
  });

  it('group commit: 200 concurrent appends land in few restores, in submission order', async () => {
    await seed();
    const { service, calls } = k();
    const restores = calls.restore;
    const batches = service.status().batches;
    const texts = Array.from({ length: 200 }, (_, i) => `-p tcp -m tcp --dport ${20_000 + i} -j ACCEPT`);
    const results = await Promise.all(
      texts.map((spec) =>
        service.apply([{ op: 'append', family: 'ipv4', table: 'filter', chain: 'WEB', rule: { spec } }]),
      ),
    );
    expect(results.map((r) => r.results[0]?.rule?.text)).toEqual(texts);
    // Every job got its own revision, in submission order.
    const revisions = results.map((r) => r.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    expect(new Set(revisions).size).toBe(200);
    expect(await k().kernelRules('ipv4', 'WEB')).toEqual(texts);
    const usedRestores = calls.restore - restores;
    const usedBatches = service.status().batches - batches;
    console.log(`[group commit] 200 appends: ${usedRestores} restores, ${usedBatches} batches`);
    expect(usedRestores).toBeLessThanOrEqual(5);
    expect(usedBatches).toBeLessThanOrEqual(5);
    await expectModelMatchesKernel(k());
  });
});
