/**
 * Every FirewallService operation on a real kernel (both families, nf_tables with the nft
 * feed and handles): after each, the kernel — read by a separate `iptables-save` inside the
 * namespace — holds what the operation promised, and the service's model equals the kernel
 * without being re-read. The unit tests on the fake cover refusals and edge cases in depth;
 * these prove the kernel side.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import { describeKernel } from '../../helpers/kernel.js';
import { expectModelMatchesKernel, useKernelService } from '../../helpers/kernel-service.js';
import { expectError, host } from '../../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describeKernel('FirewallService operations on the kernel', () => {
  const k = useKernelService({ prefix: 'psvcops' });

  describe.each(FAMILIES)('%s', (family) => {
    const at = { family, table: 'filter', chain: 'INPUT' } as const;
    const filter = { family, table: 'filter' } as const;
    const drop = (n: number) => ({ spec: `-s ${host(family, n).addr} -j DROP` });
    const dropText = (n: number) => `-s ${host(family, n).canonical} -j DROP`;
    const rules = (chain = 'INPUT', table: 'filter' | 'nat' = 'filter') =>
      k().kernelRules(family, chain, table);
    const declared = async (table: 'filter' | 'nat' = 'filter') =>
      (await k().save(family, { table })).split('\n').filter((l) => l.startsWith(':'));

    beforeEach(async () => {
      await k().service.apply([{ op: 'reset' }]);
      await expectModelMatchesKernel(k());
    });

    it('append and insert land where they say, in the kernel', async () => {
      const { service } = k();
      const r = await service.apply([
        { op: 'append', ...at, rule: drop(1) },
        { op: 'append', ...at, rule: drop(3) },
        { op: 'insert', ...at, position: 2, rule: drop(2) },
        { op: 'insert', ...at, position: 1, rule: { spec: '-i lo -j ACCEPT' } },
      ]);
      expect(r.results.map((x) => x.rule?.position)).toEqual([2, 4, 3, 1]);
      expect(await rules()).toEqual(['-i lo -j ACCEPT', dropText(1), dropText(2), dropText(3)]);
      await expectModelMatchesKernel(k());
    });

    it('replace by position and by id rewrites exactly that rule', async () => {
      const { service } = k();
      await service.apply([1, 2, 3].map((n) => ({ op: 'append' as const, ...at, rule: drop(n) })));
      await service.apply([{ op: 'replace', ...at, target: { position: 2 }, rule: drop(20) }]);
      expect(await rules()).toEqual([dropText(1), dropText(20), dropText(3)]);
      const id = (await service.getChain(family, 'filter', 'INPUT')).chain.rules[2]?.id as string;
      const r = await service.apply([{ op: 'replace', ...at, target: { id }, rule: drop(30) }]);
      expect(r.results[0]?.rule).toMatchObject({ position: 3, text: dropText(30) });
      expect(await rules()).toEqual([dropText(1), dropText(20), dropText(30)]);
      await expectModelMatchesKernel(k());
    });

    it('delete by id, by position and by rule removes exactly the addressed rule', async () => {
      const { service } = k();
      await service.apply([1, 2, 3, 4, 5].map((n) => ({ op: 'append' as const, ...at, rule: drop(n) })));
      const read = (await service.getChain(family, 'filter', 'INPUT')).chain.rules;
      const byId = await service.apply([{ op: 'delete', ...at, target: { id: read[3]?.id as string } }]);
      expect(byId.results[0]?.deleted?.text).toBe(dropText(4));
      expect(await rules()).toEqual([dropText(1), dropText(2), dropText(3), dropText(5)]);
      await expectModelMatchesKernel(k());
      const byPos = await service.apply([{ op: 'delete', ...at, target: { position: 1 } }]);
      expect(byPos.results[0]?.deleted?.text).toBe(dropText(1));
      expect(await rules()).toEqual([dropText(2), dropText(3), dropText(5)]);
      await expectModelMatchesKernel(k());
      await service.apply([{ op: 'delete', ...at, target: { rule: drop(3) } }]);
      expect(await rules()).toEqual([dropText(2), dropText(5)]);
      await expectModelMatchesKernel(k());
      const before = await k().save(family);
      await expectError(service.apply([{ op: 'delete', ...at, target: { position: 3 } }]), 'not_found');
      await expectError(service.apply([{ op: 'delete', ...at, target: { rule: drop(3) } }]), 'not_found');
      expect(await k().save(family)).toBe(before);
    });

    it('ensure adds a rule once; the second ensure changes nothing in the kernel', async () => {
      const { service } = k();
      const first = await service.apply([{ op: 'ensure', ...at, rule: drop(7) }]);
      expect(first.results[0]?.existed).toBe(false);
      const before = await k().save(family);
      const second = await service.apply([
        { op: 'ensure', ...at, rule: { spec: `-s ${host(family, 7).addr} -j DROP` } },
      ]);
      expect(second.results[0]?.existed).toBe(true);
      expect(second.revision).toBe(first.revision);
      expect(await k().save(family)).toBe(before);
      await service.apply([{ op: 'ensure', ...at, position: 1, rule: drop(6) }]);
      expect(await rules()).toEqual([dropText(6), dropText(7)]);
      await expectModelMatchesKernel(k());
    });

    it('createChain, deleteChain (refused while used, then forced), flushChain', async () => {
      const { service } = k();
      await service.apply([
        { op: 'createChain', ...filter, chain: 'LOG_AND_DROP' },
        { op: 'append', ...filter, chain: 'LOG_AND_DROP', rule: { spec: '-j DROP' } },
        { op: 'append', ...at, rule: { spec: '-p tcp -m tcp --dport 22 -j LOG_AND_DROP' } },
        { op: 'append', ...at, rule: drop(1) },
      ]);
      expect(await declared()).toContain(':LOG_AND_DROP - [0:0]');
      await expectModelMatchesKernel(k());
      const before = await k().save(family);
      // Still has a rule, still referenced: refused, the kernel unchanged.
      await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'LOG_AND_DROP' }]),
        'failed_precondition',
      );
      await service.apply([{ op: 'flushChain', ...filter, chain: 'LOG_AND_DROP' }]);
      expect(await rules('LOG_AND_DROP')).toEqual([]);
      await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'LOG_AND_DROP' }]),
        'failed_precondition',
      );
      await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'INPUT' }]),
        'invalid_argument',
      );
      expect((await k().save(family)).replace(/-A LOG_AND_DROP -j DROP\n/, '')).toBe(
        before.replace(/-A LOG_AND_DROP -j DROP\n/, ''),
      );
      await service.apply([{ op: 'append', ...filter, chain: 'LOG_AND_DROP', rule: { spec: '-j DROP' } }]);
      await service.apply([{ op: 'deleteChain', ...filter, chain: 'LOG_AND_DROP', force: true }]);
      expect(await declared()).not.toContain(':LOG_AND_DROP - [0:0]');
      expect(await rules()).toEqual([dropText(1)]);
      await expectModelMatchesKernel(k());
      await service.apply([{ op: 'flushChain', ...at }]);
      expect(await rules()).toEqual([]);
      await expectModelMatchesKernel(k());
    });

    it('renameChain renames in the kernel and the jumps follow', async () => {
      const { service } = k();
      await service.apply([
        { op: 'createChain', ...filter, chain: 'WEB' },
        { op: 'append', ...filter, chain: 'WEB', rule: { spec: '-p tcp -m tcp --dport 443 -j ACCEPT' } },
        { op: 'append', ...at, rule: { spec: '-p tcp -j WEB' } },
      ]);
      await service.apply([{ op: 'renameChain', ...filter, chain: 'WEB', newName: 'HTTPS' }]);
      expect(await declared()).toContain(':HTTPS - [0:0]');
      expect(await declared()).not.toContain(':WEB - [0:0]');
      expect(await rules()).toEqual(['-p tcp -j HTTPS']);
      expect(await rules('HTTPS')).toEqual(['-p tcp -m tcp --dport 443 -j ACCEPT']);
      const renamed = (await service.getChain(family, 'filter', 'INPUT')).chain.rules[0];
      expect(renamed?.text).toBe('-p tcp -j HTTPS');
      await expectModelMatchesKernel(k());
      // The renamed rules are still deletable by their (new) id.
      await service.apply([{ op: 'delete', ...at, target: { id: renamed?.id as string } }]);
      expect(await rules()).toEqual([]);
      await expectModelMatchesKernel(k());
    });

    it('setPolicy sets the policy of a built-in chain', async () => {
      const { service } = k();
      await service.apply([{ op: 'setPolicy', ...filter, chain: 'FORWARD', policy: 'DROP' }]);
      expect(await declared()).toContain(':FORWARD DROP [0:0]');
      await expectModelMatchesKernel(k());
      await service.apply([{ op: 'setPolicy', ...filter, chain: 'FORWARD', policy: 'ACCEPT' }]);
      expect(await declared()).toContain(':FORWARD ACCEPT [0:0]');
      await expectModelMatchesKernel(k());
    });

    it('zeroCounters resets packet and byte counters in the kernel', async () => {
      const { service } = k();
      const udp = { spec: '-i lo -p udp -m udp --dport 9 -j ACCEPT' };
      await service.apply([
        { op: 'append', ...at, rule: drop(1) },
        { op: 'append', ...at, rule: udp },
      ]);
      // Real loopback traffic inside the namespace: 3 datagrams hit the second rule.
      await k().sendUdp(family, 3);
      const counted = await service.getChain(family, 'filter', 'INPUT', { counters: true });
      expect(counted.chain.rules.map((r) => r.counters?.packets)).toEqual([0n, 3n]);
      expect(counted.chain.rules[1]?.counters?.bytes).toBeGreaterThan(0n);
      await service.apply([{ op: 'zeroCounters', ...filter, chain: 'INPUT' }]);
      const zeroed = await service.getChain(family, 'filter', 'INPUT', { counters: true });
      expect(zeroed.chain.rules.map((r) => r.counters)).toEqual([
        { packets: 0n, bytes: 0n },
        { packets: 0n, bytes: 0n },
      ]);
      // The whole table, policies included (the INPUT and OUTPUT policies counted the traffic too).
      await k().sendUdp(family, 2);
      expect(await k().save(family, { table: 'filter', counters: true })).toMatch(/\[[1-9]\d*:\d+\]/);
      await service.apply([{ op: 'zeroCounters', ...filter }]);
      expect(await k().save(family, { table: 'filter', counters: true })).not.toMatch(/\[[1-9]\d*:\d+\]/);
      await expectModelMatchesKernel(k());
    });

    it('replaceChain makes the chain hold exactly the given rules (small edit and rebuild)', async () => {
      const { service } = k();
      await service.apply([1, 2, 3, 4].map((n) => ({ op: 'append' as const, ...at, rule: drop(n) })));
      await service.apply([{ op: 'replaceChain', ...at, rules: [drop(1), drop(9), drop(4)] }]);
      expect(await rules()).toEqual([dropText(1), dropText(9), dropText(4)]);
      await expectModelMatchesKernel(k());
      // More deletes than the rebuild threshold: flush and re-append, same result.
      const many = Array.from({ length: 30 }, (_, i) => drop(100 + i));
      await service.apply([{ op: 'replaceChain', ...at, rules: many }]);
      await service.apply([{ op: 'replaceChain', ...at, rules: [drop(200), drop(100)] }]);
      expect(await rules()).toEqual([dropText(200), dropText(100)]);
      await expectModelMatchesKernel(k());
      // A chain that does not exist yet is created.
      await service.apply([{ op: 'replaceChain', ...filter, chain: 'NEWCHAIN', rules: [drop(5)] }]);
      expect(await rules('NEWCHAIN')).toEqual([dropText(5)]);
      await expectModelMatchesKernel(k());
    });

    it('replaceTable makes the table exactly as given (chains, policies, rules)', async () => {
      const { service } = k();
      await service.apply([
        { op: 'createChain', ...filter, chain: 'OLD' },
        { op: 'append', ...filter, chain: 'OLD', rule: drop(1) },
        { op: 'append', ...at, rule: { spec: '-j OLD' } },
      ]);
      await service.apply([
        {
          op: 'replaceTable',
          ...filter,
          chains: [
            {
              name: 'INPUT',
              policy: 'DROP',
              rules: [{ spec: '-i lo -j ACCEPT' }, { spec: '-p tcp -j SSH' }],
            },
            { name: 'SSH', rules: [{ spec: '-p tcp -m tcp --dport 22 -j ACCEPT' }] },
          ],
        },
      ]);
      expect(await declared()).toEqual([
        ':INPUT DROP [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':SSH - [0:0]',
      ]);
      expect(await rules()).toEqual(['-i lo -j ACCEPT', '-p tcp -j SSH']);
      expect(await rules('SSH')).toEqual(['-p tcp -m tcp --dport 22 -j ACCEPT']);
      await expectModelMatchesKernel(k());
      await service.apply([
        {
          op: 'replaceTable',
          family,
          table: 'nat',
          chains: [{ name: 'POSTROUTING', rules: [{ spec: '-o lo -j MASQUERADE' }] }],
        },
      ]);
      expect(await rules('POSTROUTING', 'nat')).toEqual(['-o lo -j MASQUERADE']);
      await expectModelMatchesKernel(k());
    });

    it('reset empties every table the service knows and restores ACCEPT policies', async () => {
      const { service } = k();
      await service.apply([
        { op: 'createChain', ...filter, chain: 'USER' },
        { op: 'append', ...filter, chain: 'USER', rule: drop(1) },
        { op: 'append', ...at, rule: { spec: '-j USER' } },
        { op: 'setPolicy', ...filter, chain: 'OUTPUT', policy: 'DROP' },
        { op: 'append', family, table: 'nat', chain: 'POSTROUTING', rule: { spec: '-o lo -j MASQUERADE' } },
      ]);
      await service.apply([{ op: 'reset', family }]);
      const saved = await k().save(family);
      expect(saved).not.toMatch(/^-A /m);
      expect(saved).not.toMatch(/^:\S+ (DROP|-) /m);
      expect(await declared()).toEqual([
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
      ]);
      await expectModelMatchesKernel(k());
    });
  });
});
