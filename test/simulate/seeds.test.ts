/**
 * The seed scenarios, on the rulesets exactly as the kernel printed them
 * (test/fixtures/seeds): SSH brute-force protection with `recent`, and the
 * hardening ruleset with its ipv6 neighbour-discovery trap.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { lint, trace } from '../../src/simulate/index.js';
import { only, rs, steps, verdict } from './helpers.js';

const seed = (name: string, family: Family) =>
  rs(readFileSync(join(import.meta.dirname, '../fixtures/seeds', `${name}.${family}.save`), 'utf8'), family);

const addr = {
  ipv4: { client: '198.51.100.7', server: '192.0.2.1' },
  ipv6: { client: '2001:db8:1::7', server: '2001:db8::1' },
} as const;

const syn = (family: Family, port = 22, extra: Record<string, unknown> = {}) => ({
  family,
  hook: 'INPUT',
  inInterface: 'eth0',
  source: addr[family].client,
  destination: addr[family].server,
  protocol: 'tcp',
  sourcePort: 40000,
  destinationPort: port,
  tcpFlags: ['SYN'],
  ctState: 'NEW',
  ...extra,
});

describe.each(['ipv4', 'ipv6'] as const)('SSH brute-force protection (%s)', (family) => {
  const ruleset = seed('ssh-bruteforce', family);
  /** The attempt with `previous` earlier SYNs within the minute. */
  const attempt = (previous: number[]) =>
    trace(
      ruleset,
      syn(family, 22, { recent: { DEFAULT: [{ address: addr[family].client, hits: previous }] } }),
    );

  it('accepts the first three connections of a minute and logs and drops the fourth', () => {
    expect(verdict(attempt([]))).toBe('ACCEPT');
    expect(verdict(attempt([20]))).toBe('ACCEPT');
    expect(verdict(attempt([40, 20]))).toBe('ACCEPT');
    const fourth = attempt([45, 30, 15]);
    expect(verdict(fourth)).toBe('DROP');
    expect(steps(only(fourth).path)).toEqual([
      'INPUT#1:yes',
      'INPUT#2:yes',
      'LOG_AND_DROP#1:yes',
      'LOG_AND_DROP#2:yes',
    ]);
    expect(only(fourth).decidedBy).toMatchObject({ chain: 'LOG_AND_DROP', position: 2, ruleText: '-j DROP' });
  });

  it('forgets attempts older than 60 seconds', () => {
    expect(verdict(attempt([100, 90, 61]))).toBe('ACCEPT');
    expect(verdict(attempt([100, 59, 30]))).toBe('ACCEPT');
    expect(verdict(attempt([100, 59, 30, 10]))).toBe('DROP');
  });

  it('counts per source address', () => {
    const other = family === 'ipv4' ? '198.51.100.99' : '2001:db8:1::99';
    const r = trace(ruleset, syn(family, 22, { recent: { DEFAULT: [{ address: other, hits: [3, 2, 1] }] } }));
    expect(verdict(r)).toBe('ACCEPT');
  });

  it('without the list state, both answers are possible and the --update rule is named', () => {
    const r = trace(ruleset, syn(family));
    expect(r.definite).toBe(false);
    expect(r.possibleVerdicts).toEqual(['ACCEPT', 'DROP']);
    expect(r.uncertain.map((u) => [u.chain, u.position])).toEqual([['INPUT', 2]]);
    expect(r.uncertain[0]?.reasons[0]).toMatch(/recent list "DEFAULT" is not given/);
  });

  it('leaves established traffic and other ports alone', () => {
    expect(verdict(trace(ruleset, syn(family, 22, { ctState: 'ESTABLISHED', tcpFlags: ['ACK'] })))).toBe(
      'ACCEPT',
    );
    const web = trace(ruleset, syn(family, 80));
    expect(verdict(web)).toBe('ACCEPT');
    expect(steps(only(web).path)).toEqual(['INPUT#1:no', 'INPUT#2:no', 'INPUT#3:no', 'policy:INPUT:ACCEPT']);
  });

  it('lint finds nothing to complain about', () => {
    expect(lint(ruleset)).toEqual([]);
  });
});

describe.each(['ipv4', 'ipv6'] as const)('hardening (%s)', (family) => {
  const ruleset = seed('hardening', family);

  it('accepts new SSH connections and replies, drops the rest by policy', () => {
    expect(verdict(trace(ruleset, syn(family)))).toBe('ACCEPT');
    const web = trace(ruleset, syn(family, 80));
    expect(verdict(web)).toBe('DROP');
    expect(only(web).decidedBy).toMatchObject({ kind: 'policy', policy: 'DROP' });
    const reply = trace(ruleset, {
      ...syn(family, 51000),
      sourcePort: 443,
      ctState: 'ESTABLISHED',
      tcpFlags: ['SYN', 'ACK'],
    });
    expect(verdict(reply)).toBe('ACCEPT');
    expect(only(reply).decidedBy).toMatchObject({ position: 2 });
  });

  it('drops a ping', () => {
    const ping = {
      family,
      hook: 'INPUT',
      source: addr[family].client,
      destination: addr[family].server,
      protocol: family === 'ipv4' ? 'icmp' : 'ipv6-icmp',
      icmpType: 'echo-request',
      ctState: 'NEW',
    };
    expect(verdict(trace(ruleset, ping))).toBe('DROP');
  });
});

describe('hardening ipv6 without neighbour discovery', () => {
  const ruleset = seed('hardening', 'ipv6');
  const solicitation = {
    family: 'ipv6',
    hook: 'INPUT',
    inInterface: 'eth0',
    source: 'fe80::1',
    destination: 'ff02::1:ff00:1',
    protocol: 'ipv6-icmp',
    icmpType: 'neighbour-solicitation',
    hopLimit: 255,
    ctState: 'UNTRACKED',
  };

  it('drops neighbour solicitations by the DROP policy', () => {
    const r = trace(ruleset, solicitation);
    expect(verdict(r)).toBe('DROP');
    expect(steps(only(r).path)).toEqual(['INPUT#1:no', 'INPUT#2:no', 'policy:INPUT:DROP']);
  });

  it('lint reports it as an error', () => {
    const findings = lint(ruleset);
    expect(findings.map((f) => [f.code, f.severity])).toEqual([['ipv6-nd-blocked', 'error']]);
    expect(findings[0]?.message).toMatch(/neighbour solicitation/);
  });

  it('an accept for ICMPv6 fixes both', () => {
    const fixed = rs(
      readFileSync(join(import.meta.dirname, '../fixtures/seeds/hardening.ipv6.save'), 'utf8').replace(
        '-A INPUT -p tcp',
        '-A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -p tcp',
      ),
      'ipv6',
    );
    expect(verdict(trace(fixed, solicitation))).toBe('ACCEPT');
    expect(lint(fixed)).toEqual([]);
  });
});
