/**
 * The simulator's working state for one branch of a trace: the packet as
 * numbers (-1 = unknown) plus everything rules may change on the way (mark,
 * connmark, conntrack state in the raw table, NAT rewrites of addresses, `recent` lists,
 * ipsets a SET target touched). Matches read it; only the walker and target
 * effects write it, and a fork clones it, so branches never share writes.
 *
 * Three-valued answers are small integers (NO, YES, MAYBE) because they are
 * computed for every rule of a 50,000-rule chain.
 */
import type { Family } from '../domain/family.js';
import { addressWords, type Cidr, parseCidr, type Words } from './ip.js';
import {
  ADDRESS_TYPES,
  CT_STATES,
  CT_STATUS_FLAGS,
  type Hook,
  NAT_FLAGS,
  type Packet,
  TCP_FLAG_NAMES,
} from './packet.js';

export const NO = 0;
export const YES = 1;
export const MAYBE = 2;
export type Tri = 0 | 1 | 2;

export const triNot = (t: Tri): Tri => (t === MAYBE ? MAYBE : t === YES ? NO : YES);
export const triAnd = (a: Tri, b: Tri): Tri =>
  a === NO || b === NO ? NO : a === MAYBE || b === MAYBE ? MAYBE : YES;
export const triOr = (a: Tri, b: Tri): Tri =>
  a === YES || b === YES ? YES : a === MAYBE || b === MAYBE ? MAYBE : NO;
export const triXor = (a: Tri, invert: boolean): Tri => (invert ? triNot(a) : a);
export const triOf = (b: boolean): Tri => (b ? YES : NO);

/** Index of each state in CT_STATES. */
export const CT = { INVALID: 0, NEW: 1, RELATED: 2, ESTABLISHED: 3, UNTRACKED: 4 } as const;
/** Kernel's default `ip_pkt_list_tot`: hits a recent entry remembers. */
export const RECENT_RING = 20;

/** A `recent` entry: `known` hits surely present (ages as negative seconds), and up to `maxExtra` more unknown ones. */
export interface RecentEntry {
  readonly known: readonly number[];
  readonly maxExtra: number;
}
export interface RecentList {
  /** The packet described this list: addresses not in `entries` are absent. */
  readonly described: boolean;
  readonly ring: number;
  readonly entries: Map<string, RecentEntry>;
}

function bitsOf<W extends string>(words: readonly W[] | undefined, order: readonly W[]): number {
  if (words === undefined) return -1;
  let bits = 0;
  for (const w of words) bits |= 1 << order.indexOf(w);
  return bits;
}

export class SimState {
  family!: Family;
  hook!: Hook;
  inIf: string | undefined;
  outIf: string | undefined;
  src: Words | undefined;
  dst: Words | undefined;
  proto = -1;
  sport = -1;
  dport = -1;
  icmpType = -1;
  icmpCode = -1;
  /** FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32, or -1. */
  tcpFlags = -1;
  tcpOptions: readonly number[] | undefined;
  fragment = false;
  length = -1;
  ttl = -1;
  /** Index in CT_STATES, or -1. */
  ctState = -1;
  /** Bits in CT_STATUS_FLAGS order, or -1. */
  ctStatus = -1;
  /** SNAT=1 DNAT=2, or -1. */
  ctNat = -1;
  /** 0 ORIGINAL, 1 REPLY, -1 unknown. */
  ctDir = -1;
  mark = 0;
  /** Bits of `mark` that are known. */
  markKnown = 0xffffffff;
  connmark = 0;
  connmarkKnown = 0;
  /** 0 unicast, 1 broadcast, 2 multicast, -1 unknown. */
  pktType = -1;
  mac: string | undefined;
  /** Bitmask of route types (1 << RTN_*), or -1. */
  srcTypes = -1;
  dstTypes = -1;
  local: readonly Words[] | undefined;
  /** -1 unknown, 0 not bridged, 1 bridged. */
  bridged = -1;
  physIn: string | undefined;
  physOut: string | undefined;
  /** -1 unknown, 0 no socket, 1 socket. */
  socket = -1;
  uid = -1;
  gid = -1;
  groups: readonly number[] | undefined;
  ipsets = new Map<string, readonly Cidr[]>();
  recent = new Map<string, RecentList>();
  /** In the raw table, before conntrack: no connection is attached yet. */
  rawPhase = false;
  /** NOTRACK ran in the raw table: the packet will be UNTRACKED. */
  notracked = false;

  clone(): SimState {
    const s = Object.assign(Object.create(SimState.prototype) as SimState, this);
    s.ipsets = new Map(this.ipsets);
    s.recent = new Map();
    for (const [k, l] of this.recent) s.recent.set(k, { ...l, entries: new Map(l.entries) });
    return s;
  }

  /** Whether conntrack has an entry for the packet: YES/NO/MAYBE. */
  hasCt(): Tri {
    if (this.ctState < 0) return MAYBE;
    return this.ctState === CT.INVALID || this.ctState === CT.UNTRACKED ? NO : YES;
  }

  static from(p: Packet): SimState {
    const s = new SimState();
    s.family = p.family;
    s.hook = p.hook;
    const noIn = p.hook === 'OUTPUT' || p.hook === 'POSTROUTING';
    const noOut = p.hook === 'PREROUTING' || p.hook === 'INPUT';
    s.inIf = noIn ? '' : p.inInterface;
    s.outIf = noOut ? '' : p.outInterface;
    s.src = p.source === undefined ? undefined : addressWords(p.family, p.source);
    s.dst = p.destination === undefined ? undefined : addressWords(p.family, p.destination);
    s.proto = p.protocol ?? -1;
    s.sport = p.sourcePort ?? -1;
    s.dport = p.destinationPort ?? -1;
    s.icmpType = p.icmpType ?? -1;
    s.icmpCode = p.icmpCode ?? -1;
    s.tcpFlags = bitsOf(p.tcpFlags, TCP_FLAG_NAMES);
    s.tcpOptions = p.tcpOptions;
    s.fragment = p.fragment;
    s.length = p.length ?? -1;
    s.ttl = p.ttl ?? -1;
    s.ctState = p.ctState === undefined ? -1 : CT_STATES.indexOf(p.ctState);
    const isNew = p.ctState === 'NEW';
    s.ctStatus = bitsOf(p.ctStatus ?? (isNew ? [] : undefined), CT_STATUS_FLAGS);
    s.ctNat = bitsOf(p.ctNat ?? (isNew ? [] : undefined), NAT_FLAGS);
    const dir = p.ctDirection ?? (isNew ? 'ORIGINAL' : undefined);
    s.ctDir = dir === undefined ? -1 : dir === 'ORIGINAL' ? 0 : 1;
    s.mark = (p.mark ?? 0) >>> 0;
    s.markKnown = 0xffffffff;
    if (p.connmark !== undefined || isNew) {
      s.connmark = (p.connmark ?? 0) >>> 0;
      s.connmarkKnown = 0xffffffff;
    }
    s.pktType = p.pktType === undefined ? -1 : ['unicast', 'broadcast', 'multicast'].indexOf(p.pktType);
    s.mac = p.sourceMac;
    s.srcTypes = bitsOf(p.sourceAddressType, ADDRESS_TYPES);
    s.dstTypes = bitsOf(p.destinationAddressType, ADDRESS_TYPES);
    s.local = p.localAddresses?.map((a) => addressWords(p.family, a) as Words);
    const bridged = p.bridged ?? (p.physdevIn !== undefined || p.physdevOut !== undefined ? true : undefined);
    s.bridged = bridged === undefined ? -1 : bridged ? 1 : 0;
    s.physIn = p.physdevIn;
    s.physOut = p.physdevOut;
    const hasOwner = p.uid !== undefined || p.gid !== undefined;
    s.socket = p.socketExists === undefined ? (hasOwner ? 1 : -1) : p.socketExists ? 1 : 0;
    s.uid = p.uid ?? -1;
    s.gid = p.gid ?? -1;
    s.groups = p.supplementaryGids;
    for (const [name, cidrs] of p.ipsets ?? []) {
      s.ipsets.set(
        name,
        cidrs.map((c) => parseCidr(p.family, c) as Cidr),
      );
    }
    for (const [name, entries] of p.recent ?? []) {
      const ring = Math.max(RECENT_RING, ...entries.map((e) => e.hits.length));
      const map = new Map<string, RecentEntry>();
      for (const e of entries) {
        const words = addressWords(p.family, e.address) as Words;
        const key = words.join('.');
        const prior = map.get(key)?.known ?? [];
        const known = [...prior, ...e.hits.map((h) => -h)].sort((a, b) => a - b).slice(-ring);
        map.set(key, { known, maxExtra: 0 });
      }
      s.recent.set(name, { described: true, ring, entries: map });
    }
    return s;
  }
}
