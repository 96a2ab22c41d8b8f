/**
 * Checks for the rule-level fields the kernel tests before any match
 * (`ip_packet_match`): `-s`, `-d`, `-i`, `-o`, `-p`, `-f`, each possibly
 * negated with `!`. Interface names follow the kernel: `eth+` matches every
 * name starting with `eth`, `+` matches anything, and a packet without such a
 * device (no out interface in INPUT) has the empty name.
 */
import type { Family } from '../domain/family.js';
import type { Rule } from '../domain/model.js';
import { canonicalProtocol } from '../domain/protocol.js';
import type { Check } from './check.js';
import { type Cidr, inCidr, parseCidr } from './ip.js';
import { MAYBE, NO, type SimState, type Tri, YES } from './state.js';

export interface IfacePattern {
  readonly prefix: string;
  readonly wildcard: boolean;
}

export function ifacePattern(text: string): IfacePattern {
  return text.endsWith('+')
    ? { prefix: text.slice(0, -1), wildcard: true }
    : { prefix: text, wildcard: false };
}

export function ifaceMatches(p: IfacePattern, name: string): boolean {
  return p.wildcard ? name.startsWith(p.prefix) : name === p.prefix;
}

function addressCheck(c: Cidr, invert: boolean, side: 'src' | 'dst', text: string): Check {
  const label = side === 'src' ? 'source' : 'destination';
  const single = c.prefix === c.net.length * 32;
  return {
    test(s) {
      const a = s[side];
      if (a === undefined) return MAYBE;
      return inCidr(c, a) !== invert ? YES : NO;
    },
    why: () => `${label} address is not known (rule tests ${invert ? '! ' : ''}${text})`,
    refine(s) {
      if (single && !invert && s[side] === undefined) s[side] = c.net;
    },
  };
}

function ifaceCheck(text: string, invert: boolean, side: 'inIf' | 'outIf'): Check {
  const p = ifacePattern(text);
  const label = side === 'inIf' ? 'in' : 'out';
  return {
    test(s) {
      const name = s[side];
      if (name === undefined) return MAYBE;
      return ifaceMatches(p, name) !== invert ? YES : NO;
    },
    why: () => `${label} interface is not known (rule tests ${invert ? '! ' : ''}${text})`,
    refine(s) {
      if (!p.wildcard && !invert && s[side] === undefined) s[side] = p.prefix;
    },
  };
}

function protocolCheck(number: number, invert: boolean, text: string): Check {
  return {
    test(s) {
      if (s.proto < 0) return MAYBE;
      return (s.proto === number) !== invert ? YES : NO;
    },
    why: () => `protocol is not known (rule tests -p ${invert ? '! ' : ''}${text})`,
    refine(s) {
      if (!invert && s.proto < 0) s.proto = number;
    },
  };
}

function fragmentCheck(invert: boolean): Check {
  return {
    test: (s: SimState): Tri => (s.fragment !== invert ? YES : NO),
    why: () => '',
  };
}

/** Checks for the rule-level fields, in the kernel's order. */
export function fieldChecks(rule: Rule, family: Family): Check[] {
  const inv = (k: 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol' | 'fragment') =>
    rule.invert?.includes(k) ?? false;
  const out: Check[] = [];
  if (rule.source !== undefined) {
    const c = parseCidr(family, rule.source);
    if (c) out.push(addressCheck(c, inv('source'), 'src', rule.source));
  }
  if (rule.destination !== undefined) {
    const c = parseCidr(family, rule.destination);
    if (c) out.push(addressCheck(c, inv('destination'), 'dst', rule.destination));
  }
  if (rule.inInterface !== undefined) out.push(ifaceCheck(rule.inInterface, inv('inInterface'), 'inIf'));
  if (rule.outInterface !== undefined) out.push(ifaceCheck(rule.outInterface, inv('outInterface'), 'outIf'));
  if (rule.protocol !== undefined) {
    const p = canonicalProtocol(rule.protocol, 'protocol');
    if (p.number !== undefined && p.number !== 0)
      out.push(protocolCheck(p.number, inv('protocol'), rule.protocol));
  }
  if (rule.fragment) out.push(fragmentCheck(inv('fragment')));
  return out;
}

/** Protocol number of a rule's `-p`, or undefined for any / negated. */
export function ruleProtocol(rule: Rule): number | undefined {
  if (rule.protocol === undefined || rule.invert?.includes('protocol')) return undefined;
  return canonicalProtocol(rule.protocol, 'protocol').number;
}
