/**
 * The lockout guard (guard.ts) through the service: a change that would cut SSH, the API, the
 * caller's own connection or ipv6 neighbour discovery is refused before the kernel sees it,
 * with the path and the rule or policy that cuts it; the same change in the safe order passes.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import type { GuardConfig } from '../../src/service/guard.js';
import type { Operation } from '../../src/service/operations.js';

const SSH: GuardConfig = { sshPorts: [22], sshSources: [], apiPorts: [], adminSources: [] };

async function service(guard: GuardConfig = SSH, families: ('ipv4' | 'ipv6')[] = ['ipv4']) {
  const executor = new FakeExecutor();
  const s = new FirewallService({ executor, pollIntervalMs: 0, guard, families });
  await s.start();
  return { s, executor };
}

const input = (family: 'ipv4' | 'ipv6' = 'ipv4') => ({ family, table: 'filter' as const, chain: 'INPUT' });
const append = (spec: string, family: 'ipv4' | 'ipv6' = 'ipv4'): Operation => ({
  op: 'append',
  ...input(family),
  rule: { spec },
});
const policy = (p: 'DROP' | 'ACCEPT', family: 'ipv4' | 'ipv6' = 'ipv4'): Operation => ({
  op: 'setPolicy',
  ...input(family),
  policy: p,
});

async function inputChain(s: FirewallService, family: 'ipv4' | 'ipv6') {
  return (await s.getChain(family, 'filter', 'INPUT')).chain;
}

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DomainError);
  return e as DomainError;
}

describe('the lockout guard', () => {
  it('refuses a DROP policy before SSH is allowed, names the path and the policy, and changes nothing', async () => {
    const { s, executor } = await service();
    const restores = executor.restores.length;
    const e = await refusal(s.apply([policy('DROP')]));
    expect(e.code).toBe('failed_precondition');
    expect(e.details).toMatchObject({ reason: 'lockout' });
    expect(e.message).toMatch(
      /ssh tcp\/22 NEW from anywhere \(ipv4\) would be DROP, cut by the DROP policy of filter INPUT/,
    );
    expect(executor.restores.length).toBe(restores);
    expect((await inputChain(s, 'ipv4')).policy).toBe('ACCEPT');
  });

  it('passes the same hardening in the safe order, as one transaction or as separate changes', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT'), policy('DROP')]);
    expect((await inputChain(s, 'ipv4')).policy).toBe('DROP');
    const { s: s2 } = await service();
    await s2.apply([append('-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT')]);
    await s2.apply([append('-p tcp -m tcp --dport 22 -j ACCEPT')]);
    await s2.apply([policy('DROP')]);
    expect((await inputChain(s2, 'ipv4')).policy).toBe('DROP');
  });

  it('refuses a DROP rule that catches SSH, and a flush or a delete that removes its accept', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT'), policy('DROP')]);
    const e1 = await refusal(
      s.apply([
        {
          op: 'insert',
          ...input(),
          position: 1,
          rule: { spec: '-p tcp -m multiport --dports 21:23 -j DROP' },
        },
      ]),
    );
    expect(e1.message).toMatch(/cut by filter INPUT rule 1 \(-p tcp -m multiport --dports 21:23 -j DROP\)/);
    // Dropping everyone but one network cuts SSH from anywhere.
    await refusal(
      s.apply([{ op: 'insert', ...input(), position: 1, rule: { spec: '! -s 192.0.2.0/24 -j DROP' } }]),
    );
    await refusal(s.apply([{ op: 'flushChain', ...input() }]));
    await refusal(
      s.apply([
        { op: 'delete', ...input(), target: { rule: { spec: '-p tcp -m tcp --dport 22 -j ACCEPT' } } },
      ]),
    );
    expect((await inputChain(s, 'ipv4')).rules).toHaveLength(1);
  });

  it('does not count a ban of addresses or networks as a lockout of SSH from anywhere', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT'), policy('DROP')]);
    for (const spec of [
      '-s 203.0.113.5/32 -j DROP',
      '-s 198.51.100.0/24 -j REJECT',
      '-s 203.0.113.0/24 -j DROP',
    ])
      await s.apply([{ op: 'insert', ...input(), position: 1, rule: { spec } }]);
    expect((await inputChain(s, 'ipv4')).rules).toHaveLength(4);
  });

  it('traces "anywhere" from an address no ban names, also when every other candidate is banned as a host', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT'), policy('DROP')]);
    // The guard's candidates for a source "from anywhere" (guard.ts ANYWHERE) but the last, banned.
    const hosts = [
      '203.0.113.77',
      '192.0.2.77',
      '198.51.100.77',
      '100.64.77.77',
      '172.31.77.77',
      '10.77.77.77',
    ];
    for (const host of hosts)
      await s.apply([{ op: 'insert', ...input(), position: 1, rule: { spec: `-s ${host}/32 -j DROP` } }]);
    // Traced from 8.8.77.77, which no ban names, SSH is open before this change and cut after it.
    const cut = s.apply([
      { op: 'insert', ...input(), position: 1, rule: { spec: '-p tcp --dport 22 -j DROP' } },
    ]);
    await expect(cut).rejects.toThrow(
      /ssh tcp\/22 NEW from anywhere \(ipv4\) would be DROP, cut by filter INPUT rule 1 \(-p tcp -m tcp --dport 22 -j DROP\)/,
    );
    expect((await inputChain(s, 'ipv4')).rules).toHaveLength(7);
  });

  it('lets rules that cannot touch SSH through without tracing, and allowLockout through with its risk', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT'), policy('DROP')]);
    await s.apply([append('-p udp --dport 53 -j DROP'), append('-p tcp --dport 80 -j REJECT')]);
    await s.apply([{ op: 'flushChain', ...input() }], { allowLockout: true });
    expect((await inputChain(s, 'ipv4')).rules).toHaveLength(0);
  });

  it('refuses only the job that cuts the path when it is batched with others', async () => {
    const { s, executor } = await service();
    const before = executor.restores.length;
    const results = await Promise.allSettled([
      s.apply([append('-p tcp --dport 80 -j ACCEPT')]),
      s.apply([policy('DROP')]),
      s.apply([append('-p tcp --dport 443 -j ACCEPT')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(executor.restores.length - before).toBe(1);
    expect((await inputChain(s, 'ipv4')).rules).toHaveLength(2);
  });

  it('passes the SSH brute-force article: a fresh connection has no hits in the recent list it adds', async () => {
    const { s } = await service();
    await s.apply([
      { op: 'createChain', family: 'ipv4', table: 'filter', chain: 'LOG_AND_DROP' },
      {
        op: 'append',
        family: 'ipv4',
        table: 'filter',
        chain: 'LOG_AND_DROP',
        rule: { spec: '-j LOG --log-prefix "iptables deny: " --log-level 7' },
      },
      { op: 'append', family: 'ipv4', table: 'filter', chain: 'LOG_AND_DROP', rule: { spec: '-j DROP' } },
    ]);
    await s.apply([
      append('-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource'),
    ]);
    await s.apply([
      append(
        '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
      ),
    ]);
    await s.apply([append('-p tcp -m tcp --dport 22 -j ACCEPT')]);
    expect((await inputChain(s, 'ipv4')).rules).toHaveLength(3);
  });

  it('protects only the configured SSH sources when they are given', async () => {
    const { s } = await service({
      sshPorts: [22],
      sshSources: ['192.0.2.10'],
      apiPorts: [],
      adminSources: [],
    });
    await s.apply([append('-s 192.0.2.10/32 -p tcp --dport 22 -j ACCEPT')]);
    await s.apply([policy('DROP')]);
    await refusal(
      s.apply([{ op: 'insert', ...input(), position: 1, rule: { spec: '-s 192.0.2.0/24 -j DROP' } }]),
    );
  });

  it('protects the caller of a change: its own address to the port it reached us on', async () => {
    const { s } = await service({ sshPorts: [], sshSources: [], apiPorts: [], adminSources: [] });
    const caller = { address: '198.51.100.7', port: 8080 };
    const e = await refusal(s.apply([policy('DROP')], { caller }));
    expect(e.message).toMatch(/caller tcp\/8080 NEW from 198\.51\.100\.7/);
    await s.apply([append('-s 198.51.100.7 -p tcp --dport 8080 -j ACCEPT'), policy('DROP')], { caller });
    await refusal(
      s.apply([{ op: 'insert', ...input(), position: 1, rule: { spec: '-s 198.51.100.7 -j REJECT' } }], {
        caller,
      }),
    );
  });

  it('protects the API ports from the admin sources', async () => {
    const { s } = await service({
      sshPorts: [],
      sshSources: [],
      apiPorts: [8080, 50051],
      adminSources: ['192.0.2.1'],
    });
    await s.apply([append('-s 192.0.2.1 -p tcp --dport 8080 -j ACCEPT')]);
    const e = await refusal(s.apply([policy('DROP')]));
    expect(e.message).toMatch(/api tcp\/50051/);
  });

  it('refuses an ipv6 DROP policy that would drop neighbour discovery, and passes it with ICMPv6 ND allowed', async () => {
    const { s } = await service(SSH, ['ipv4', 'ipv6']);
    await s.apply([append('-p tcp --dport 22 -j ACCEPT', 'ipv6')]);
    const e = await refusal(s.apply([policy('DROP', 'ipv6')]));
    expect(e.message).toMatch(/ipv6 neighbour (solicitation|advertisement) would be DROP/);
    await s.apply([
      append('-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT', 'ipv6'),
      append('-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-advertisement -j ACCEPT', 'ipv6'),
      policy('DROP', 'ipv6'),
    ]);
    expect((await inputChain(s, 'ipv6')).policy).toBe('DROP');
  });

  it('reports lockouts in a dry run instead of refusing it', async () => {
    const { s } = await service();
    const r = await s.apply([policy('DROP')], { dryRun: true });
    expect(r.lockouts).toEqual([
      expect.objectContaining({ path: 'ssh tcp/22 NEW from anywhere (ipv4)', after: 'DROP' }),
      expect.objectContaining({ path: 'ssh tcp/22 ESTABLISHED from anywhere (ipv4)' }),
    ]);
  });

  it('is off when no guard is configured', async () => {
    const s = new FirewallService({ executor: new FakeExecutor(), pollIntervalMs: 0 });
    await s.start();
    await s.apply([policy('DROP')]);
    expect((await inputChain(s, 'ipv4')).policy).toBe('DROP');
  });
});

describe('trace and lint through the service', () => {
  it('traces a packet through the current ruleset and through a proposed one', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT')]);
    const packet = {
      family: 'ipv4',
      hook: 'INPUT',
      protocol: 'tcp',
      source: '198.51.100.7',
      destinationPort: 80,
    };
    const now = await s.trace(packet);
    expect(now).toMatchObject({ proposed: false, definite: true, verdict: 'ACCEPT' });
    const proposed = await s.trace(packet, [policy('DROP')]);
    expect(proposed).toMatchObject({ proposed: true, definite: true, verdict: 'DROP' });
    expect((await inputChain(s, 'ipv4')).policy).toBe('ACCEPT');
  });

  it('refuses a bad packet with the field that is wrong', async () => {
    const { s } = await service();
    const e = await refusal(s.trace({ family: 'ipv4', hook: 'NOPE' }));
    expect(e.code).toBe('invalid_argument');
  });

  it('lints the ruleset and a dry run reports only the findings a change adds', async () => {
    const { s } = await service();
    await s.apply([append('-p tcp --dport 22 -j ACCEPT'), append('-p tcp --dport 22 -j ACCEPT')]);
    const findings = s.lint();
    expect(findings.length).toBeGreaterThan(0);
    const r = await s.apply([append('-p tcp --dport 22 -j ACCEPT')], { dryRun: true });
    expect(
      r.findings?.every((f) => !findings.some((g) => g.code === f.code && g.rules.length === f.rules.length)),
    ).toBe(true);
    const dry = await s.apply([append('-p udp --dport 53 -j ACCEPT')], { dryRun: true });
    expect(dry.findings).toEqual([]);
  });
});
