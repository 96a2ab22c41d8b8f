/**
 * What the simulator knows about a packet. Two shapes: `PacketInput` is the
 * JSON a client sends (validated by normalize-packet.ts), `Packet` is the
 * canonical, validated form the simulator reads.
 *
 * Why every field but family and hook is optional: a field that is absent is
 * *unknown*, not zero. A match that needs an unknown field answers "maybe"
 * and the trace explores both outcomes, so a vague question gets an honest,
 * vague answer instead of a confident wrong one. The few documented defaults
 * are facts about real packets: a packet is not a fragment unless it says
 * so, carries mark 0, and a NEW connection has connmark 0, no NAT, no
 * conntrack status bits and the ORIGINAL direction.
 */
import type { Family } from '../domain/family.js';

/** Netfilter hooks, in the order a forwarded packet meets them. */
export const HOOKS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;
export type Hook = (typeof HOOKS)[number];

/** Base conntrack states (`-m state`, `--ctstate` without SNAT/DNAT). */
export const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED'] as const;
export type CtState = (typeof CT_STATES)[number];

/** Conntrack status bits `--ctstatus` tests. */
export const CT_STATUS_FLAGS = ['EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED'] as const;
export type CtStatusFlag = (typeof CT_STATUS_FLAGS)[number];

/** NAT applied to the connection (the SNAT/DNAT pseudo-states of `--ctstate`). */
export const NAT_FLAGS = ['SNAT', 'DNAT'] as const;
export type NatFlag = (typeof NAT_FLAGS)[number];

export const CT_DIRECTIONS = ['ORIGINAL', 'REPLY'] as const;
export type CtDirection = (typeof CT_DIRECTIONS)[number];

export const PKT_TYPES = ['unicast', 'broadcast', 'multicast'] as const;
export type PktType = (typeof PKT_TYPES)[number];

export const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'] as const;
export type TcpFlagName = (typeof TCP_FLAG_NAMES)[number];

/** Route types in kernel numbering (RTN_*): the index is the type's number. */
export const ADDRESS_TYPES = [
  'UNSPEC',
  'UNICAST',
  'LOCAL',
  'BROADCAST',
  'ANYCAST',
  'MULTICAST',
  'BLACKHOLE',
  'UNREACHABLE',
  'PROHIBIT',
  'THROW',
  'NAT',
  'XRESOLVE',
] as const;
export type AddressTypeName = (typeof ADDRESS_TYPES)[number];

/** One address of a `recent` list and when it was seen, in seconds before the packet. */
export interface RecentEntryInput {
  /** As the kernel stores it: masked with the rule's `--mask`, as /proc/net/xt_recent/NAME shows it. */
  readonly address: string;
  /** Ages of the recorded hits in seconds (0 = now); the kernel keeps the last 20 by default. */
  readonly hits: readonly number[];
}

/** The JSON shape `normalizePacket` accepts. Absent fields are unknown (see the file comment). */
export interface PacketInput {
  readonly family: Family;
  readonly hook: Hook;
  readonly inInterface?: string;
  readonly outInterface?: string;
  readonly source?: string;
  readonly destination?: string;
  /** Protocol name (`tcp`, `ipv6-icmp`) or number. */
  readonly protocol?: string | number;
  readonly sourcePort?: number;
  readonly destinationPort?: number;
  /** ICMP or ICMPv6 type, as a number or a name iptables knows (`echo-request`). */
  readonly icmpType?: number | string;
  readonly icmpCode?: number;
  /** TCP flags that are set, e.g. `["SYN"]`. */
  readonly tcpFlags?: readonly string[];
  /** TCP option kinds present in the header. */
  readonly tcpOptions?: readonly number[];
  /** A second or later fragment (offset > 0). Default false. */
  readonly fragment?: boolean;
  /** Layer-3 length in bytes, header included. */
  readonly length?: number;
  /** IPv4 time to live. */
  readonly ttl?: number;
  /** IPv6 hop limit. */
  readonly hopLimit?: number;
  readonly ctState?: CtState;
  readonly ctStatus?: readonly CtStatusFlag[];
  readonly ctNat?: readonly NatFlag[];
  readonly ctDirection?: CtDirection;
  /** Packet mark (number or `0x..` text). Default 0. */
  readonly mark?: number | string;
  /** Connection mark. Default 0 for a NEW connection. */
  readonly connmark?: number | string;
  readonly pktType?: PktType;
  readonly sourceMac?: string;
  /** Route types of the source address (for `addrtype`); ipv4 addresses have exactly one. */
  readonly sourceAddressType?: readonly AddressTypeName[];
  readonly destinationAddressType?: readonly AddressTypeName[];
  /** The host's own addresses: decides `addrtype LOCAL` when the types above are not given. */
  readonly localAddresses?: readonly string[];
  /** Bridged packet (for `physdev`); implied when physdevIn or physdevOut is given. */
  readonly bridged?: boolean;
  readonly physdevIn?: string;
  readonly physdevOut?: string;
  /** Whether the packet has a local socket (OUTPUT, POSTROUTING); implied by uid/gid. */
  readonly socketExists?: boolean;
  readonly uid?: number;
  readonly gid?: number;
  readonly supplementaryGids?: readonly number[];
  /** Contents of ipsets (addresses or CIDRs of the packet's family), by set name. */
  readonly ipsets?: Readonly<Record<string, readonly string[]>>;
  /** State of `recent` lists, by list name. A list not named here is unknown. */
  readonly recent?: Readonly<Record<string, readonly RecentEntryInput[]>>;
}

/** A validated packet: canonical values, numbers for protocol and types. */
export interface Packet {
  readonly family: Family;
  readonly hook: Hook;
  /** `''` means "no such device" (e.g. the out interface in INPUT). */
  readonly inInterface?: string;
  readonly outInterface?: string;
  /** Canonical address text. */
  readonly source?: string;
  readonly destination?: string;
  readonly protocol?: number;
  readonly sourcePort?: number;
  readonly destinationPort?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly tcpFlags?: readonly TcpFlagName[];
  readonly tcpOptions?: readonly number[];
  readonly fragment: boolean;
  readonly length?: number;
  /** TTL (ipv4) or hop limit (ipv6). */
  readonly ttl?: number;
  readonly ctState?: CtState;
  readonly ctStatus?: readonly CtStatusFlag[];
  readonly ctNat?: readonly NatFlag[];
  readonly ctDirection?: CtDirection;
  readonly mark?: number;
  readonly connmark?: number;
  readonly pktType?: PktType;
  readonly sourceMac?: string;
  readonly sourceAddressType?: readonly AddressTypeName[];
  readonly destinationAddressType?: readonly AddressTypeName[];
  readonly localAddresses?: readonly string[];
  readonly bridged?: boolean;
  readonly physdevIn?: string;
  readonly physdevOut?: string;
  readonly socketExists?: boolean;
  readonly uid?: number;
  readonly gid?: number;
  readonly supplementaryGids?: readonly number[];
  /** Canonical CIDRs per set name. */
  readonly ipsets?: ReadonlyMap<string, readonly string[]>;
  readonly recent?: ReadonlyMap<string, readonly RecentEntryInput[]>;
}
