import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RULE_ID_PATTERN, ruleId, ruleIds } from '../../src/domain/rule-id.js';

describe('rule ids', () => {
  it('are the documented definition, so ids stay the same across versions (clients keep them)', () => {
    const defined = (f: string, t: string, c: string, text: string, n: number) =>
      createHash('sha256').update(`${f}\n${t}\n${c}\n${text}\n${n}`).digest('hex').slice(0, 16);
    const cases = [
      ['ipv4', 'filter', 'INPUT', '-p tcp -m tcp --dport 22 -j ACCEPT', 0],
      ['ipv6', 'nat', 'X', '-j DNAT --to-destination [2001:db8::1]:80 -m comment --comment "ü \\" x"', 3],
    ] as const;
    for (const [f, t, c, text, n] of cases) expect(ruleId(f, t, c, text, n)).toBe(defined(f, t, c, text, n));
    expect(ruleId('ipv4', 'filter', 'INPUT', '-p tcp -m tcp --dport 22 -j ACCEPT', 0)).toBe(
      '6a8bce6b9ec28323',
    );
  });

  it('are 16 hex digits and deterministic', () => {
    const a = ruleId('ipv4', 'filter', 'INPUT', '-j ACCEPT', 0);
    expect(a).toMatch(RULE_ID_PATTERN);
    expect(ruleId('ipv4', 'filter', 'INPUT', '-j ACCEPT', 0)).toBe(a);
  });

  it('differ by family, table, chain, text and occurrence', () => {
    const base = ruleId('ipv4', 'filter', 'INPUT', '-j ACCEPT', 0);
    const others = [
      ruleId('ipv6', 'filter', 'INPUT', '-j ACCEPT', 0),
      ruleId('ipv4', 'mangle', 'INPUT', '-j ACCEPT', 0),
      ruleId('ipv4', 'filter', 'OUTPUT', '-j ACCEPT', 0),
      ruleId('ipv4', 'filter', 'INPUT', '-j DROP', 0),
      ruleId('ipv4', 'filter', 'INPUT', '-j ACCEPT', 1),
    ];
    expect(new Set([base, ...others]).size).toBe(6);
  });

  it('give identical rules distinct ids by occurrence, and do not depend on position', () => {
    const ids = ruleIds('ipv4', 'filter', 'INPUT', ['-j ACCEPT', '-j DROP', '-j ACCEPT']);
    expect(new Set(ids).size).toBe(3);
    const shifted = ruleIds('ipv4', 'filter', 'INPUT', [
      '-p tcp -j RETURN',
      '-j ACCEPT',
      '-j DROP',
      '-j ACCEPT',
    ]);
    expect(shifted.slice(1)).toEqual(ids);
  });
});
