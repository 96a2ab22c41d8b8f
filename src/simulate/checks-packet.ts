/**
 * Matches on the IP header and link layer: iprange, length, ttl, hl,
 * pkttype, mac, addrtype, physdev. Each follows its kernel module
 * (xt_iprange, xt_length, ipt_ttl/ip6t_hl, xt_pkttype, xt_mac, xt_addrtype,
 * xt_physdev), including the odd corners: physdev options on a packet that
 * was not bridged match only when negated, and ipv6 addrtype requires every
 * listed property (ipv4 requires one).
 */
import type {
  AddrtypeMatch,
  HlMatch,
  IprangeMatch,
  LengthMatch,
  MacMatch,
  PhysdevMatch,
  PkttypeMatch,
  TtlMatch,
} from '../domain/extensions/matches.js';
import type { Family } from '../domain/family.js';
import { type Check, inRange, inverted, parseSpan } from './check.js';
import { ifaceMatches, ifacePattern } from './checks-fields.js';
import { addressWords, compareWords, type Words } from './ip.js';
import { ADDRESS_TYPES } from './packet.js';
import { MAYBE, NO, type SimState, type Tri, triOf, triXor, YES } from './state.js';

export function iprangeChecks(m: IprangeMatch, family: Family): Check[] {
  const out: Check[] = [];
  for (const [key, side] of [
    ['srcRange', 'src'],
    ['dstRange', 'dst'],
  ] as const) {
    const range = m[key];
    if (range === undefined) continue;
    const [a, b] = range.split('-');
    const lo = addressWords(family, a ?? '') as Words;
    const hi = addressWords(family, b ?? '') as Words;
    const inv = inverted(m, key);
    out.push({
      test(s) {
        const x = s[side];
        if (x === undefined) return MAYBE;
        return triXor(triOf(compareWords(x, lo) >= 0 && compareWords(x, hi) <= 0), inv);
      },
      why: () => `${side === 'src' ? 'source' : 'destination'} address is not known (iprange ${range})`,
    });
  }
  return out;
}

export function lengthChecks(m: LengthMatch): Check[] {
  if (m.length === undefined) return [];
  const [lo, hi] = parseSpan(m.length);
  const inv = inverted(m, 'length');
  return [
    {
      test: (s) => inRange(s.length, lo, hi, inv),
      why: () => `packet length is not known (length ${m.length})`,
    },
  ];
}

function ttlCheck(
  eq: number | undefined,
  gt: number | undefined,
  lt: number | undefined,
  inv: boolean,
  what: string,
): Check {
  return {
    test(s) {
      if (s.ttl < 0) return MAYBE;
      if (eq !== undefined) return triXor(triOf(s.ttl === eq), inv);
      if (gt !== undefined) return triOf(s.ttl > gt);
      return triOf(s.ttl < (lt ?? 0));
    },
    why: () => `${what} is not known`,
  };
}

export function ttlChecks(m: TtlMatch): Check[] {
  return [ttlCheck(m.ttlEq, m.ttlGt, m.ttlLt, inverted(m, 'ttlEq'), 'TTL')];
}

export function hlChecks(m: HlMatch): Check[] {
  return [ttlCheck(m.hlEq, m.hlGt, m.hlLt, inverted(m, 'hlEq'), 'hop limit')];
}

export function pkttypeChecks(m: PkttypeMatch): Check[] {
  if (m.pktType === undefined) return [];
  const want = ['unicast', 'broadcast', 'multicast'].indexOf(m.pktType);
  const inv = inverted(m, 'pktType');
  return [
    {
      test: (s) => (s.pktType < 0 ? MAYBE : triXor(triOf(s.pktType === want), inv)),
      why: () => `link-layer packet type is not known (pkttype ${m.pktType})`,
    },
  ];
}

export function macChecks(m: MacMatch): Check[] {
  if (m.macSource === undefined) return [];
  const want = m.macSource;
  const inv = inverted(m, 'macSource');
  return [
    {
      test: (s) => (s.mac === undefined ? MAYBE : triXor(triOf(s.mac === want), inv)),
      why: () => `source MAC address is not known (mac --mac-source ${want})`,
    },
  ];
}

const T = Object.fromEntries(ADDRESS_TYPES.map((t, i) => [t, 1 << i])) as Record<
  (typeof ADDRESS_TYPES)[number],
  number
>;
const ALL_TYPES = (1 << ADDRESS_TYPES.length) - 1;

function isLocal(s: SimState, a: Words): boolean | undefined {
  if (s.local === undefined) return undefined;
  return s.local.some((l) => compareWords(l, a) === 0 && l.length === a.length);
}

/** Route types an ipv4 address may have (xt_addrtype uses exactly one). */
function possibleTypes4(s: SimState, a: Words, limitIface: boolean): number {
  const w = a[0] ?? 0;
  if (w >>> 24 === 0 || w === 0xffffffff) return T.BROADCAST;
  if (w >>> 28 === 0xe) return T.MULTICAST;
  const local = limitIface ? undefined : isLocal(s, a);
  if (local === true) return T.LOCAL;
  const others = ALL_TYPES & ~T.MULTICAST & ~T.LOCAL;
  return local === false ? others : others | T.LOCAL;
}

/** Whether the possible types meet `mask`: YES when all do, NO when none. */
function meet(possible: number, mask: number): Tri {
  if ((possible & mask) === 0) return NO;
  return (possible & ~mask) === 0 ? YES : MAYBE;
}

function typeMatch4(
  s: SimState,
  a: Words | undefined,
  given: number,
  mask: number,
  limitIface: boolean,
): Tri {
  if (given >= 0) return meet(given, mask);
  if (a === undefined) return MAYBE;
  return meet(possibleTypes4(s, a, limitIface), mask);
}

const ROUTE_BITS = T.LOCAL | T.ANYCAST | T.UNREACHABLE;

/** ipv6 (match_type6): every static property listed must hold; route types must meet the mask. */
function typeMatch6(
  s: SimState,
  a: Words | undefined,
  given: number,
  mask: number,
  limitIface: boolean,
): Tri {
  let multicast: boolean;
  let unicast: boolean;
  let unspec: boolean;
  let route: Tri;
  if (given >= 0) {
    multicast = (given & T.MULTICAST) !== 0;
    unicast = (given & T.UNICAST) !== 0;
    unspec = (given & T.UNSPEC) !== 0;
    route = triOf((given & mask & ROUTE_BITS) !== 0);
  } else {
    if (a === undefined) return MAYBE;
    const w0 = a[0] ?? 0;
    unspec = a.every((w) => w === 0);
    multicast = w0 >>> 24 === 0xff;
    const mapped = w0 === 0 && a[1] === 0 && a[2] === 0xffff;
    unicast = !multicast && !unspec && !mapped;
    const local = limitIface ? undefined : isLocal(s, a);
    const routeMask = mask & ROUTE_BITS;
    if (local === true && (routeMask & T.LOCAL) !== 0) route = YES;
    else if (local === false && routeMask === T.LOCAL) route = NO;
    else route = MAYBE;
  }
  if ((mask & T.MULTICAST) !== 0 && !multicast) return NO;
  if ((mask & T.UNICAST) !== 0 && !unicast) return NO;
  if ((mask & T.UNSPEC) !== 0 && !unspec) return NO;
  if ((mask & ROUTE_BITS) !== 0) return route;
  return YES;
}

export function addrtypeChecks(m: AddrtypeMatch, family: Family): Check[] {
  const limit = m.limitIfaceIn === true || m.limitIfaceOut === true;
  const typeMatch = family === 'ipv4' ? typeMatch4 : typeMatch6;
  const out: Check[] = [];
  for (const [key, side, givenKey] of [
    ['srcType', 'src', 'srcTypes'],
    ['dstType', 'dst', 'dstTypes'],
  ] as const) {
    const types = m[key];
    if (types === undefined) continue;
    const mask = types.reduce((b, t) => b | T[t], 0);
    const inv = inverted(m, key);
    out.push({
      test: (s) => triXor(typeMatch(s, s[side], s[givenKey], mask, limit), inv),
      why: () =>
        `route type of the ${side === 'src' ? 'source' : 'destination'} address is not known (addrtype ${types.join(',')}; give ${side === 'src' ? 'sourceAddressType' : 'destinationAddressType'} or localAddresses)`,
    });
  }
  return out;
}

/** xt_physdev: see physdev_mt in the kernel. */
export function physdevChecks(m: PhysdevMatch): Check[] {
  const inv = (k: string) => inverted(m, k);
  const inPat = m.physdevIn === undefined ? undefined : ifacePattern(m.physdevIn);
  const outPat = m.physdevOut === undefined ? undefined : ifacePattern(m.physdevOut);
  const notBridged = (): Tri => {
    for (const k of ['physdevIsBridged', 'physdevIsIn', 'physdevIsOut', 'physdevIn', 'physdevOut'] as const)
      if (m[k] !== undefined && !inv(k)) return NO;
    return YES;
  };
  const bridged = (s: SimState): Tri => {
    const hasIn = s.physIn !== undefined;
    const hasOut = s.physOut !== undefined;
    if (m.physdevIsBridged && hasOut === inv('physdevIsBridged')) return NO;
    if (m.physdevIsIn && hasIn === inv('physdevIsIn')) return NO;
    if (m.physdevIsOut && hasOut === inv('physdevIsOut')) return NO;
    if (inPat && s.physIn !== undefined && ifaceMatches(inPat, s.physIn) === inv('physdevIn')) return NO;
    if (!outPat) return YES;
    if (s.physOut === undefined) return NO;
    return triOf(ifaceMatches(outPat, s.physOut) !== inv('physdevOut'));
  };
  return [
    {
      test: (s) => (s.bridged < 0 ? MAYBE : s.bridged ? bridged(s) : notBridged()),
      why: () =>
        'whether the packet was bridged is not known (physdev; give bridged, physdevIn or physdevOut)',
    },
  ];
}
