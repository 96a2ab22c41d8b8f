/**
 * Which packets a rule matches, summarised over the dimensions we can reason
 * about exactly: addresses, interfaces, protocol, ports, ICMP type/code, TCP
 * flags, conntrack state, fragments. `covers(i, j)` answers "does every packet
 * that rule j matches also match rule i?" and is conservative: it says yes
 * only when sure.
 *
 * The asymmetry that makes that sound: a condition of j we cannot model only
 * narrows j, so it is ignored on j's side; a condition of i we cannot model
 * might exclude some of j's packets, so such an i (`exact: false`) never
 * covers anything.
 */
import type { Family, TableName } from '../../domain/family.js';
import type { Match, Rule } from '../../domain/model.js';
import { isRawMatch } from '../../domain/model.js';
import { canonicalProtocol } from '../../domain/protocol.js';
import { type IfacePattern, ifacePattern } from '../checks-fields.js';
import { addressWords, cidrRange, maxAddress, parseCidr, wordsToBigInt } from '../ip.js';
import { CT_STATES, TCP_FLAG_NAMES } from '../packet.js';
import { and, complement, type IntervalSet, normalize, span, subset } from './intervals.js';

export interface IfaceCond {
  readonly pattern: IfacePattern;
  readonly neg: boolean;
}

export interface Summary {
  /** Every condition is modelled exactly: only such a rule can cover others. */
  readonly exact: boolean;
  /** The conditions contradict each other: the rule matches nothing. */
  readonly empty: boolean;
  readonly src?: IntervalSet;
  readonly dst?: IntervalSet;
  readonly inIf: readonly IfaceCond[];
  readonly outIf: readonly IfaceCond[];
  readonly proto?: { readonly num: number; readonly neg: boolean };
  readonly sport?: IntervalSet;
  readonly dport?: IntervalSet;
  /** ICMP type * 256 + code. */
  readonly icmp?: IntervalSet;
  /** Which of the 64 TCP flag combinations match (bit v set = flags v match). */
  readonly flags?: bigint;
  /** Base conntrack states (bit i = CT_STATES[i]). */
  readonly states?: number;
  readonly frag: 'any' | 'only' | 'none';
}

const ALL_STATES = 0b11111;
const PORT_MAX = 65535n;
const ALL_FLAGS = (1n << 64n) - 1n;

function portSet(text: string, neg: boolean): IntervalSet {
  const [a, b] = text.split(':');
  const s = span(Number(a), Number(b ?? a));
  return neg ? complement(s, PORT_MAX) : s;
}

function flagSet(mask: readonly string[], comp: readonly string[], neg: boolean): bigint {
  const bits = (names: readonly string[]) =>
    names.reduce((b, n) => b | (1 << TCP_FLAG_NAMES.indexOf(n as (typeof TCP_FLAG_NAMES)[number])), 0);
  const m = bits(mask);
  const c = bits(comp);
  let set = 0n;
  for (let v = 0; v < 64; v++) if (((v & m) === c) !== neg) set |= 1n << BigInt(v);
  return set;
}

function icmpSet(value: string, neg: boolean): IntervalSet {
  let s: IntervalSet;
  if (value === 'any') s = span(0, 65535);
  else {
    const [t, c] = value.split('/').map(Number) as [number, number | undefined];
    s = c === undefined ? span(t * 256, t * 256 + 255) : span(t * 256 + c, t * 256 + c);
  }
  return neg ? complement(s, 65535n) : s;
}

function stateMask(words: readonly string[]): number {
  return words.reduce((b, w) => {
    const i = CT_STATES.indexOf(w as (typeof CT_STATES)[number]);
    return i >= 0 ? b | (1 << i) : b;
  }, 0);
}

interface Draft {
  exact: boolean;
  src?: IntervalSet;
  dst?: IntervalSet;
  inIf: IfaceCond[];
  outIf: IfaceCond[];
  proto?: { num: number; neg: boolean };
  sport?: IntervalSet;
  dport?: IntervalSet;
  icmp?: IntervalSet;
  flags?: bigint;
  states?: number;
  frag: 'any' | 'only' | 'none';
  contradiction: boolean;
}

function l4(d: Draft): void {
  if (d.frag === 'only') d.contradiction = true;
  d.frag = 'none';
}

function addMatch(d: Draft, m: Match, family: Family, table: TableName): void {
  if (isRawMatch(m)) {
    d.exact = false;
    return;
  }
  const inv = (k: string) => (m as { invert?: readonly string[] }).invert?.includes(k) ?? false;
  switch (m.module) {
    case 'comment':
      return;
    case 'tcp':
    case 'udp':
      l4(d);
      if (m.sport !== undefined) d.sport = and(d.sport, portSet(m.sport, inv('sport')));
      if (m.dport !== undefined) d.dport = and(d.dport, portSet(m.dport, inv('dport')));
      if (m.module === 'tcp' && m.tcpFlags !== undefined)
        d.flags = (d.flags ?? ALL_FLAGS) & flagSet(m.tcpFlags.mask, m.tcpFlags.comp, inv('tcpFlags'));
      if (m.module === 'tcp' && m.tcpOption !== undefined) d.exact = false;
      return;
    case 'multiport': {
      l4(d);
      const key = m.sports ? 'sports' : m.dports ? 'dports' : 'ports';
      const list = m.sports ?? m.dports ?? m.ports ?? [];
      const s = normalize(list.flatMap((p) => portSet(p, false)));
      const set = inv(key) ? complement(s, PORT_MAX) : s;
      if (key === 'sports') d.sport = and(d.sport, set);
      else if (key === 'dports') d.dport = and(d.dport, set);
      else d.exact = false;
      return;
    }
    case 'icmp':
    case 'icmp6': {
      l4(d);
      const v = m.module === 'icmp' ? m.icmpType : m.icmpv6Type;
      if (v !== undefined)
        d.icmp = and(d.icmp, icmpSet(v, inv(m.module === 'icmp' ? 'icmpType' : 'icmpv6Type')));
      return;
    }
    case 'state':
      if (table === 'raw') d.exact = false;
      if (m.state !== undefined) {
        const s = stateMask(m.state);
        d.states = (d.states ?? ALL_STATES) & (inv('state') ? ~s & ALL_STATES : s);
      }
      return;
    case 'conntrack': {
      const keys = Object.keys(m).filter((k) => k !== 'module' && k !== 'invert');
      const nat = m.ctstate?.some((w) => w === 'SNAT' || w === 'DNAT') ?? false;
      if (table === 'raw' || nat || keys.some((k) => k !== 'ctstate')) d.exact = false;
      if (m.ctstate !== undefined && !nat) {
        const s = stateMask(m.ctstate);
        d.states = (d.states ?? ALL_STATES) & (inv('ctstate') ? ~s & ALL_STATES : s);
      }
      return;
    }
    case 'iprange':
      for (const [key, side] of [
        ['srcRange', 'src'],
        ['dstRange', 'dst'],
      ] as const) {
        const r = m[key];
        if (r === undefined) continue;
        const [a, b] = r.split('-');
        const lo = wordsToBigInt(addressWords(family, a ?? '') ?? []);
        const hi = wordsToBigInt(addressWords(family, b ?? '') ?? []);
        const s = span(lo, hi);
        d[side] = and(d[side], inv(key) ? complement(s, maxAddress(family)) : s);
      }
      return;
    default:
      d.exact = false;
  }
}

export function summarize(rule: Rule, family: Family, table: TableName): Summary {
  const inv = (k: 'source' | 'destination' | 'inInterface' | 'outInterface' | 'protocol' | 'fragment') =>
    rule.invert?.includes(k) ?? false;
  const d: Draft = { exact: true, inIf: [], outIf: [], frag: 'any', contradiction: false };
  for (const [key, side] of [
    ['source', 'src'],
    ['destination', 'dst'],
  ] as const) {
    const text = rule[key];
    const c = text === undefined ? undefined : parseCidr(family, text);
    if (!c) continue;
    const [lo, hi] = cidrRange(family, c);
    const s = span(lo, hi);
    d[side] = inv(key) ? complement(s, maxAddress(family)) : s;
  }
  if (rule.inInterface !== undefined)
    d.inIf.push({ pattern: ifacePattern(rule.inInterface), neg: inv('inInterface') });
  if (rule.outInterface !== undefined)
    d.outIf.push({ pattern: ifacePattern(rule.outInterface), neg: inv('outInterface') });
  if (rule.protocol !== undefined) {
    const num = canonicalProtocol(rule.protocol, 'protocol').number;
    if (num === undefined) d.exact = false;
    else d.proto = { num, neg: inv('protocol') };
  }
  if (rule.fragment) d.frag = inv('fragment') ? 'none' : 'only';
  for (const m of rule.matches) addMatch(d, m, family, table);
  const sets = [d.src, d.dst, d.sport, d.dport, d.icmp];
  const empty =
    d.contradiction ||
    sets.some((s) => s !== undefined && s.length === 0) ||
    d.flags === 0n ||
    d.states === 0;
  const { contradiction: _, ...summary } = d;
  return { ...summary, empty };
}

/** Every name `b` matches, `a` matches too. */
function patternCovers(a: IfacePattern, b: IfacePattern): boolean {
  return a.wildcard ? b.prefix.startsWith(a.prefix) : !b.wildcard && a.prefix === b.prefix;
}

function patternsMeet(a: IfacePattern, b: IfacePattern): boolean {
  if (a.wildcard && b.wildcard) return a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
  if (a.wildcard) return b.prefix.startsWith(a.prefix);
  if (b.wildcard) return a.prefix.startsWith(b.prefix);
  return a.prefix === b.prefix;
}

/** Condition d implies condition c. */
function implies(d: IfaceCond, c: IfaceCond): boolean {
  if (!c.neg && !d.neg) return patternCovers(c.pattern, d.pattern);
  if (c.neg && !d.neg) return !patternsMeet(d.pattern, c.pattern);
  if (c.neg && d.neg) return patternCovers(d.pattern, c.pattern);
  return false;
}

function dim(i: IntervalSet | undefined, j: IntervalSet | undefined): boolean {
  return i === undefined || (j !== undefined && subset(j, i));
}

/** Does rule i (summary) match every packet rule j matches? */
export function covers(i: Summary, j: Summary): boolean {
  if (!i.exact || i.empty) return false;
  if (i.proto) {
    const p = j.proto;
    if (!p) return false;
    if (!i.proto.neg && (p.neg || p.num !== i.proto.num)) return false;
    if (i.proto.neg && !(p.neg ? p.num === i.proto.num : p.num !== i.proto.num)) return false;
  }
  if (!dim(i.sport, j.sport) || !dim(i.dport, j.dport) || !dim(i.icmp, j.icmp)) return false;
  if (!dim(i.src, j.src) || !dim(i.dst, j.dst)) return false;
  if (i.frag !== 'any' && j.frag !== i.frag) return false;
  if (i.states !== undefined && ((j.states ?? ALL_STATES) & ~i.states) !== 0) return false;
  if (i.flags !== undefined && ((j.flags ?? ALL_FLAGS) & ~i.flags) !== 0n) return false;
  for (const c of i.inIf) if (!j.inIf.some((x) => implies(x, c))) return false;
  for (const c of i.outIf) if (!j.outIf.some((x) => implies(x, c))) return false;
  return true;
}
