import { describe, expect, it } from 'vitest';
import { RULE_ID_PATTERN, ruleId, ruleIds } from '../../src/domain/rule-id.js';

describe('rule ids', () => {
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
