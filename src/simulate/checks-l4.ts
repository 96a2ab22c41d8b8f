/**
 * Transport-header matches: tcp, udp, icmp, icmp6, multiport. As in the
 * kernel (and the nf_tables payload expressions iptables-nft uses), a second
 * or later fragment has no transport header, so these matches never match
 * it, negated or not.
 */
import type {
  Icmp6Match,
  IcmpMatch,
  MultiportMatch,
  TcpMatch,
  UdpMatch,
} from '../domain/extensions/matches.js';
import { type Check, inRange, inverted, parseSpan } from './check.js';
import { TCP_FLAG_NAMES } from './packet.js';
import { MAYBE, NO, type SimState, type Tri, triXor, YES } from './state.js';

/** One port option (`--sport 1000:2000`, maybe negated). */
function portCheck(key: 'sport' | 'dport', span: string, invert: boolean, module: string): Check {
  const [lo, hi] = parseSpan(span);
  const label = key === 'sport' ? 'source port' : 'destination port';
  return {
    test(s) {
      if (s.fragment) return NO;
      return inRange(s[key], lo, hi, invert);
    },
    why: () => `${label} is not known (${module} ${invert ? '! ' : ''}--${key} ${span})`,
    refine(s) {
      if (!invert && lo === hi && s[key] < 0) s[key] = lo;
    },
  };
}

function flagBits(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) bits |= 1 << TCP_FLAG_NAMES.indexOf(n as (typeof TCP_FLAG_NAMES)[number]);
  return bits;
}

export function tcpChecks(m: TcpMatch): Check[] {
  const out: Check[] = [];
  if (m.sport !== undefined) out.push(portCheck('sport', m.sport, inverted(m, 'sport'), 'tcp'));
  if (m.dport !== undefined) out.push(portCheck('dport', m.dport, inverted(m, 'dport'), 'tcp'));
  if (m.tcpFlags !== undefined) {
    const mask = flagBits(m.tcpFlags.mask);
    const comp = flagBits(m.tcpFlags.comp);
    const inv = inverted(m, 'tcpFlags');
    out.push({
      test(s) {
        if (s.fragment) return NO;
        if (s.tcpFlags < 0) return MAYBE;
        return ((s.tcpFlags & mask) === comp) !== inv ? YES : NO;
      },
      why: () => `TCP flags are not known (tcp ${inv ? '! ' : ''}--tcp-flags)`,
      refine(s) {
        if (!inv && s.tcpFlags < 0 && mask === 0x3f) s.tcpFlags = comp;
      },
    });
  }
  if (m.tcpOption !== undefined) {
    const kind = m.tcpOption;
    const inv = inverted(m, 'tcpOption');
    out.push({
      test(s) {
        if (s.fragment) return NO;
        if (s.tcpOptions === undefined) return MAYBE;
        return s.tcpOptions.includes(kind) !== inv ? YES : NO;
      },
      why: () => `TCP options are not known (tcp ${inv ? '! ' : ''}--tcp-option ${kind})`,
    });
  }
  if (out.length === 0) out.push({ test: (s) => (s.fragment ? NO : YES), why: () => '' });
  return out;
}

export function udpChecks(m: UdpMatch): Check[] {
  const out: Check[] = [];
  if (m.sport !== undefined) out.push(portCheck('sport', m.sport, inverted(m, 'sport'), 'udp'));
  if (m.dport !== undefined) out.push(portCheck('dport', m.dport, inverted(m, 'dport'), 'udp'));
  if (out.length === 0) out.push({ test: (s) => (s.fragment ? NO : YES), why: () => '' });
  return out;
}

/**
 * `--icmp-type T[/C]`: type T with code C (any code when absent); `any` (ipv4 only)
 * matches every type.
 */
function icmpCheck(value: string, invert: boolean, module: string): Check {
  const any = value === 'any';
  const [typeText, codeText] = value.split('/');
  const type = Number(typeText);
  const lo = codeText === undefined ? 0 : Number(codeText);
  const hi = codeText === undefined ? 255 : lo;
  return {
    test(s): Tri {
      if (s.fragment) return NO;
      if (any) return invert ? NO : YES;
      if (s.icmpType < 0) return MAYBE;
      if (s.icmpType !== type) return invert ? YES : NO;
      return inRange(s.icmpCode, lo, hi, invert);
    },
    why: (s) =>
      `${s.icmpType < 0 ? 'ICMP type' : 'ICMP code'} is not known (${module} ${invert ? '! ' : ''}type ${value})`,
    refine(s) {
      if (invert) return;
      if (s.icmpType < 0) s.icmpType = type;
      if (s.icmpCode < 0 && lo === hi) s.icmpCode = lo;
    },
  };
}

export function icmpChecks(m: IcmpMatch): Check[] {
  return m.icmpType === undefined ? [] : [icmpCheck(m.icmpType, inverted(m, 'icmpType'), 'icmp')];
}

export function icmp6Checks(m: Icmp6Match): Check[] {
  return m.icmpv6Type === undefined ? [] : [icmpCheck(m.icmpv6Type, inverted(m, 'icmpv6Type'), 'icmp6')];
}

function inList(port: number, spans: readonly (readonly [number, number])[]): Tri {
  if (port < 0) return MAYBE;
  for (const [lo, hi] of spans) if (port >= lo && port <= hi) return YES;
  return NO;
}

export function multiportChecks(m: MultiportMatch): Check[] {
  const list = m.sports ?? m.dports ?? m.ports;
  if (list === undefined) return [];
  const key = m.sports ? 'sports' : m.dports ? 'dports' : 'ports';
  const inv = inverted(m, key);
  const spans = list.map((p) => parseSpan(p));
  return [
    {
      test(s) {
        if (s.fragment) return NO;
        let t: Tri;
        if (key === 'sports') t = inList(s.sport, spans);
        else if (key === 'dports') t = inList(s.dport, spans);
        else {
          const a = inList(s.sport, spans);
          const b = inList(s.dport, spans);
          t = a === YES || b === YES ? YES : a === MAYBE || b === MAYBE ? MAYBE : NO;
        }
        return triXor(t, inv);
      },
      why: () => `ports are not known (multiport ${inv ? '! ' : ''}--${key} ${list.join(',')})`,
      refine(s: SimState) {
        if (inv || spans.length !== 1) return;
        const [lo, hi] = spans[0] as [number, number];
        if (lo !== hi) return;
        if (key === 'sports' && s.sport < 0) s.sport = lo;
        if (key === 'dports' && s.dport < 0) s.dport = lo;
      },
    },
  ];
}
