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

  it('an untyped rule is stored as the kernel writes it: its id survives a re-read, ensure finds it', async () => {
    await k().service.apply([{ op: 'reset' }]);
    const spec = '-m string --algo bm --string abc -j DROP';
    const added = await k().service.apply([
      { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec } },
    ]);
    const rule = added.results[0]?.rule;
    expect(rule?.text).toBe('-m string --string "abc" --algo bm -j DROP');
    expect(await k().kernelRules('ipv4', 'INPUT')).toEqual([rule?.text]);
    await k().service.reload();
    expect(k().service.findRule('ipv4', 'filter', rule?.id as string)?.rule.text).toBe(rule?.text);
    const again = await k().service.apply([
      { op: 'ensure', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec } },
    ]);
    expect(again.results[0]).toMatchObject({ existed: true, rule: { id: rule?.id } });
    // Defaults the kernel fills in, an untyped target, and a jump kept as given.
    await k().service.apply([{ op: 'createChain', family: 'ipv4', table: 'mangle', chain: 'CLS' }]);
    const more = await k().service.apply([
      {
        op: 'append',
        family: 'ipv4',
        table: 'mangle',
        chain: 'POSTROUTING',
        rule: { spec: '-p tcp -m connlimit --connlimit-above 5 -j CLS' },
      },
      {
        op: 'append',
        family: 'ipv4',
        table: 'mangle',
        chain: 'CLS',
        rule: { spec: '-j CLASSIFY --set-class 1:10' },
      },
    ]);
    expect(more.results.map((r) => r.rule?.text)).toEqual([
      '-p tcp -m connlimit --connlimit-above 5 --connlimit-mask 32 --connlimit-saddr -j CLS',
      '-j CLASSIFY --set-class 0001:0010',
    ]);
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const table of ['filter', 'mangle'] as const)
        expect(await k().save(family, { table })).not.toContain('PCL-');
    }
    await expectModelMatchesKernel(k());
    await k().service.apply([{ op: 'reset' }]);
  });

  it('an untyped rule the kernel refuses is refused before anything changes; the rest of the batch goes on', async () => {
    await k().service.apply([{ op: 'reset' }]);
    const [bad, good] = await Promise.allSettled([
      k().service.apply([
        { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: '-p udp -j ACCEPT' } },
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec: '-m string --string abc' },
        },
      ]),
      k().service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'OUTPUT',
          rule: { spec: '-p tcp -j ACCEPT' },
        },
      ]),
    ]);
    expect(bad.status === 'rejected' && bad.reason).toMatchObject({
      code: 'invalid_argument',
      field: 'operations[1].rule',
    });
    expect((bad as PromiseRejectedResult).reason.message).toMatch(/kernel refuses this rule: .*--algo/);
    expect(good.status).toBe('fulfilled');
    expect(await k().kernelRules('ipv4', 'INPUT')).toEqual([]);
    expect(await k().kernelRules('ipv4', 'OUTPUT')).toEqual(['-p tcp -j ACCEPT']);
    // A target hidden among an untyped match's words is refused.
    await expect(
      k().service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { matches: [{ module: 'string', raw: ['--string', 'x', '--algo', 'bm', '-j', 'DROP'] }] },
        },
      ]),
    ).rejects.toMatchObject({ code: 'invalid_argument', field: 'rule.matches[0].raw[4]' });
    await k().service.apply([{ op: 'reset' }]);
  });

  it('a missing ipset is named, with the field of the set match', async () => {
    const e = await k()
      .service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec: '-p tcp -m set --match-set NOSET src -j DROP' },
        },
      ])
      .catch((x: unknown) => x);
    expect(e).toMatchObject({
      code: 'not_found',
      field: 'rule.matches[0].matchSet',
      details: { set: 'NOSET' },
    });
    expect((e as Error).message).toMatch(/^ipset NOSET does not exist/);
  });

  it('a jump to a chain deleted while queued is pinned on that rule, not on COMMIT', async () => {
    await k().service.apply([{ op: 'reset' }]);
    await k().service.apply([{ op: 'createChain', family: 'ipv4', table: 'filter', chain: 'GONE' }]);
    await k().externalRestore('ipv4', '*filter\n-X GONE\nCOMMIT\n');
    const restores = k().calls.restores.length;
    const [good, bad] = await Promise.allSettled([
      k().service.apply([
        { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: '-p udp -j ACCEPT' } },
      ]),
      k().service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'OUTPUT',
          rule: { spec: '-p tcp -j ACCEPT' },
        },
        { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: '-j GONE' } },
      ]),
    ]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status === 'rejected' && bad.reason).toMatchObject({
      code: 'not_found',
      field: 'operations[1].rule.target',
      details: { chain: 'GONE' },
    });
    expect((bad as PromiseRejectedResult).reason.message).toMatch(/^jump target chain GONE does not exist/);
    // Pinned at once: one failing restore and one for the rest, no job-by-job isolation.
    expect(k().calls.restores.length - restores).toBeLessThanOrEqual(3);
    expect(await k().kernelRules('ipv4', 'INPUT')).toEqual(['-p udp -j ACCEPT']);
    await k().service.apply([{ op: 'reset' }]);
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
