/**
 * The model never lies, on the kernel: what issue 8 found, reproduced with
 * iptables-restore (nf_tables) in a test namespace. Without the change feed
 * (polling off), so that rules another process adds are unknown to the model,
 * as they are in the moment before a change feed reports them.
 */
import { describe, expect, it } from 'vitest';
import { describeKernel } from '../../helpers/kernel.js';
import { expectModelMatchesKernel, useKernelService } from '../../helpers/kernel-service.js';

describeKernel('the model never lies (kernel)', () => {
  const k = useKernelService({ prefix: 'pnl', useNft: false, pollIntervalMs: 0 });

  describe.each(['ipv4', 'ipv6'] as const)('%s', (family) => {
    it('a policy set and counters zeroed in one transaction: the kernel has the policy', async () => {
      await k().service.apply([{ op: 'reset', family }]);
      await k().service.apply([
        { op: 'setPolicy', family, table: 'filter', chain: 'FORWARD', policy: 'DROP' },
        { op: 'zeroCounters', family, table: 'filter', chain: 'FORWARD' },
        { op: 'setPolicy', family, table: 'filter', chain: 'OUTPUT', policy: 'DROP' },
        { op: 'zeroCounters', family, table: 'filter' },
      ]);
      const saved = await k().save(family, { table: 'filter' });
      expect(saved).toContain(':FORWARD DROP');
      expect(saved).toContain(':OUTPUT DROP');
      await expectModelMatchesKernel(k(), [family]);
      await k().service.apply([{ op: 'reset', family }]);
    });

    it('create and rename of the same chain in one transaction works', async () => {
      await k().service.apply([{ op: 'reset', family }]);
      await k().service.apply([
        { op: 'createChain', family, table: 'filter', chain: 'NEWC' },
        { op: 'append', family, table: 'filter', chain: 'NEWC', rule: { spec: '-j ACCEPT' } },
        { op: 'renameChain', family, table: 'filter', chain: 'NEWC', newName: 'REN' },
        { op: 'append', family, table: 'filter', chain: 'INPUT', rule: { spec: '-j REN' } },
      ]);
      expect(await k().kernelRules(family, 'INPUT')).toEqual(['-j REN']);
      expect(await k().kernelRules(family, 'REN')).toEqual(['-j ACCEPT']);
      await expectModelMatchesKernel(k(), [family]);
      await k().service.apply([{ op: 'reset', family }]);
    });

    it('a failed filter+nat transaction undoes only its own change: rules others added stay', async () => {
      await k().service.apply([{ op: 'reset', family }]);
      await k().service.apply([{ op: 'createChain', family, table: 'nat', chain: 'GONE' }]);
      // Another process adds 50 rules and deletes the chain the second part will jump to.
      const external = Array.from(
        { length: 50 },
        (_, i) => `-A INPUT -p udp -m udp --dport ${1000 + i} -j ACCEPT`,
      );
      await k().externalRestore(family, `*filter\n${external.join('\n')}\nCOMMIT\n*nat\n-X GONE\nCOMMIT\n`);
      await expect(
        k().service.apply([
          {
            op: 'append',
            family,
            table: 'filter',
            chain: 'INPUT',
            rule: { spec: '-p tcp --dport 80 -j ACCEPT' },
          },
          { op: 'append', family, table: 'nat', chain: 'PREROUTING', rule: { spec: '-j GONE' } },
        ]),
      ).rejects.toMatchObject({ code: 'not_found' });
      const rules = await k().kernelRules(family, 'INPUT');
      expect(rules).toHaveLength(50);
      expect(rules.every((r) => r.startsWith('-p udp'))).toBe(true);
      await k().service.reload();
      await expectModelMatchesKernel(k(), [family]);
      await k().service.apply([{ op: 'reset', family }]);
    });
  });

  it('a failed ipv4+ipv6 transaction undoes only its own change: rules others added stay', async () => {
    await k().service.apply([{ op: 'reset' }]);
    await k().service.apply([{ op: 'createChain', family: 'ipv6', table: 'filter', chain: 'GONE6' }]);
    const external = Array.from(
      { length: 40 },
      (_, i) => `-A INPUT -p udp -m udp --dport ${2000 + i} -j ACCEPT`,
    );
    await k().externalRestore('ipv4', `*filter\n${external.join('\n')}\nCOMMIT\n`);
    await k().externalRestore('ipv6', '*filter\n-X GONE6\nCOMMIT\n');
    await expect(
      k().service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec: '-p tcp --dport 80 -j ACCEPT' },
        },
        { op: 'append', family: 'ipv6', table: 'filter', chain: 'INPUT', rule: { spec: '-j GONE6' } },
      ]),
    ).rejects.toMatchObject({ code: 'not_found' });
    const rules = await k().kernelRules('ipv4', 'INPUT');
    expect(rules).toHaveLength(40);
    expect(rules.every((r) => r.startsWith('-p udp'))).toBe(true);
    await k().service.reload();
    await expectModelMatchesKernel(k());
    await k().service.apply([{ op: 'reset' }]);
  });
});
