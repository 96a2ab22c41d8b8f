/**
 * Validation of an untrusted packet description (JSON from REST or gRPC)
 * into a `Packet`. Strict and bounded: unknown fields, wrong types, values out
 * of range, addresses of the other family, fields that make no sense for the
 * hook or protocol (ports on ICMP, an out interface in INPUT) are refused with
 * a DomainError `invalid_argument` naming the field. Lists and maps have hard
 * size limits, and only the known shapes are walked, so hostile nesting fails
 * at its first level.
 */
import { canonicalAddress, canonicalCidr, preview } from '../domain/address.js';
import { invalid } from '../domain/errors.js';
import { MATCH_SPECS } from '../domain/extensions/index.js';
import { isFamily } from '../domain/family.js';
import { canonicalProtocol } from '../domain/protocol.js';
import { checkInterface, checkName, checkUint } from '../domain/validate.js';
import {
  ADDRESS_TYPES,
  CT_DIRECTIONS,
  CT_STATES,
  CT_STATUS_FLAGS,
  HOOKS,
  NAT_FLAGS,
  type Packet,
  PKT_TYPES,
  type RecentEntryInput,
  TCP_FLAG_NAMES,
} from './packet.js';

/** Limits on list and map sizes in a packet description. */
export const PACKET_LIMITS = {
  ipsets: 64,
  ipsetEntries: 65_536,
  recentLists: 64,
  recentEntries: 10_000,
  recentHits: 255,
  localAddresses: 256,
  groups: 256,
  tcpOptions: 40,
} as const;

const KEYS = new Set([
  'family',
  'hook',
  'inInterface',
  'outInterface',
  'source',
  'destination',
  'protocol',
  'sourcePort',
  'destinationPort',
  'icmpType',
  'icmpCode',
  'tcpFlags',
  'tcpOptions',
  'fragment',
  'length',
  'ttl',
  'hopLimit',
  'ctState',
  'ctStatus',
  'ctNat',
  'ctDirection',
  'mark',
  'connmark',
  'pktType',
  'sourceMac',
  'sourceAddressType',
  'destinationAddressType',
  'localAddresses',
  'bridged',
  'physdevIn',
  'physdevOut',
  'socketExists',
  'uid',
  'gid',
  'supplementaryGids',
  'ipsets',
  'recent',
]);

const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);

type Obj = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function oneOf<const W extends string>(value: unknown, words: readonly W[], field: string): W {
  const found = words.find((w) => w === value);
  if (found === undefined) {
    const got = typeof value === 'string' ? `"${preview(value)}"` : typeof value;
    throw invalid(field, `${field} must be one of ${words.join(', ')} (got ${got})`);
  }
  return found;
}

function list(value: unknown, field: string, max: number): readonly unknown[] {
  if (!Array.isArray(value)) throw invalid(field, `${field} must be a list`);
  if (value.length > max) throw invalid(field, `${field} holds at most ${max} items (got ${value.length})`);
  return value;
}

function words<const W extends string>(value: unknown, order: readonly W[], field: string): W[] {
  const items = list(value, field, order.length).map((v, i) => oneOf(v, order, `${field}[${i}]`));
  if (new Set(items).size !== items.length) throw invalid(field, `${field} names a value twice`);
  return order.filter((w) => items.includes(w));
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(field, `${field} must be true or false`);
  return value;
}

function address(value: unknown, family: 'ipv4' | 'ipv6', field: string): string {
  if (typeof value !== 'string' || value.length > 64)
    throw invalid(field, `${field} must be an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
  return canonicalAddress(family, value, field);
}

/** A concrete interface name: a packet's device has no wildcard. */
function device(value: unknown, field: string): string {
  const name = checkInterface(value, field);
  if (name.endsWith('+'))
    throw invalid(field, `${field} "${preview(name)}" must be an interface name, not a pattern`);
  return name;
}

function u32(value: unknown, field: string): number {
  return checkUint(value, field, 0, 0xffffffff);
}

const MAC = /^[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}$/;

/** An ICMP type (number or name iptables knows) and the code a name implies. */
function icmpType(value: unknown, family: 'ipv4' | 'ipv6', field: string): [number, number | undefined] {
  if (typeof value === 'number') return [checkUint(value, field, 0, 255), undefined];
  if (typeof value !== 'string' || value.length > 64 || value === 'any')
    throw invalid(field, `${field} must be an ICMP type number (0-255) or name like echo-request`);
  const spec = MATCH_SPECS.get(family === 'ipv4' ? 'icmp' : 'icmp6');
  const option = spec?.options[family === 'ipv4' ? 'icmpType' : 'icmpv6Type'];
  const canonical = String(option?.kind.normalize(value, { family, field }));
  const [t, c] = canonical.split('/');
  return [Number(t), c === undefined ? undefined : Number(c)];
}

function ipsets(value: unknown, family: 'ipv4' | 'ipv6'): Map<string, string[]> {
  if (!isObject(value))
    throw invalid('ipsets', 'ipsets must be an object: set name -> list of addresses or CIDRs');
  const names = Object.keys(value);
  if (names.length > PACKET_LIMITS.ipsets)
    throw invalid('ipsets', `ipsets holds at most ${PACKET_LIMITS.ipsets} sets`);
  const out = new Map<string, string[]>();
  let total = 0;
  for (const name of names) {
    checkName(name, `ipsets["${preview(name, 40)}"]`, 31);
    const field = `ipsets.${name}`;
    const entries = list(value[name], field, PACKET_LIMITS.ipsetEntries);
    total += entries.length;
    if (total > PACKET_LIMITS.ipsetEntries)
      throw invalid(field, `ipsets hold at most ${PACKET_LIMITS.ipsetEntries} entries in all`);
    out.set(
      name,
      entries.map((e, i) => {
        const f = `${field}[${i}]`;
        if (typeof e !== 'string' || e.length > 64) throw invalid(f, `${f} must be an address or CIDR`);
        return canonicalCidr(family, e, f);
      }),
    );
  }
  return out;
}

function recentLists(value: unknown, family: 'ipv4' | 'ipv6'): Map<string, RecentEntryInput[]> {
  if (!isObject(value))
    throw invalid('recent', 'recent must be an object: list name -> list of { address, hits }');
  const names = Object.keys(value);
  if (names.length > PACKET_LIMITS.recentLists)
    throw invalid('recent', `recent holds at most ${PACKET_LIMITS.recentLists} lists`);
  const out = new Map<string, RecentEntryInput[]>();
  for (const name of names) {
    checkName(name, `recent["${preview(name, 40)}"]`, 200);
    const field = `recent.${name}`;
    const entries = list(value[name], field, PACKET_LIMITS.recentEntries).map((e, i) => {
      const f = `${field}[${i}]`;
      if (!isObject(e)) throw invalid(f, `${f} must be an object { address, hits }`);
      const extra = Object.keys(e).find((k) => k !== 'address' && k !== 'hits');
      if (extra !== undefined)
        throw invalid(`${f}.${preview(extra, 40)}`, `${f} has no field "${preview(extra, 40)}"`);
      const hits = list(e.hits, `${f}.hits`, PACKET_LIMITS.recentHits).map((h, j) => {
        if (typeof h !== 'number' || !Number.isFinite(h) || h < 0 || h > 1e9)
          throw invalid(`${f}.hits[${j}]`, `${f}.hits[${j}] must be an age in seconds from 0 to 1000000000`);
        return h;
      });
      return { address: address(e.address, family, `${f}.address`), hits };
    });
    out.set(name, entries);
  }
  return out;
}

/**
 * Validates a packet description. Throws DomainError `invalid_argument` naming the
 * first offending field.
 */
export function normalizePacket(input: unknown): Packet {
  if (!isObject(input)) throw invalid('packet', 'packet must be an object');
  const extra = Object.keys(input).find((k) => !KEYS.has(k));
  if (extra !== undefined)
    throw invalid(
      preview(extra, 40),
      `packet has no field "${preview(extra, 40)}" (fields: ${[...KEYS].join(', ')})`,
    );
  const has = (k: string) => Object.hasOwn(input, k) && input[k] !== undefined;
  if (!isFamily(input.family)) throw invalid('family', 'family must be ipv4 or ipv6');
  const family = input.family;
  const hook = oneOf(input.hook, HOOKS, 'hook');
  const out: Record<string, unknown> = { family, hook, fragment: false };

  if (has('inInterface')) {
    if (hook === 'OUTPUT' || hook === 'POSTROUTING')
      throw invalid('inInterface', `inInterface: a packet in ${hook} has no in interface`);
    out.inInterface = device(input.inInterface, 'inInterface');
  }
  if (has('outInterface')) {
    if (hook === 'PREROUTING' || hook === 'INPUT')
      throw invalid('outInterface', `outInterface: a packet in ${hook} has no out interface yet`);
    out.outInterface = device(input.outInterface, 'outInterface');
  }
  if (has('source')) out.source = address(input.source, family, 'source');
  if (has('destination')) out.destination = address(input.destination, family, 'destination');

  let proto: number | undefined;
  if (has('protocol')) {
    const p = input.protocol;
    if (typeof p === 'string' && p.length > 32)
      throw invalid('protocol', 'protocol must be a protocol name or number');
    proto = canonicalProtocol(p, 'protocol').number;
    if (proto === 0 || proto === undefined)
      throw invalid('protocol', 'protocol must name a real protocol, not all/0');
    out.protocol = proto;
  }
  for (const k of ['sourcePort', 'destinationPort'] as const) {
    if (!has(k)) continue;
    if (proto === undefined || !PORT_PROTOCOLS.has(proto))
      throw invalid(k, `${k} needs protocol tcp, udp, udplite, sctp or dccp`);
    out[k] = checkUint(input[k], k, 0, 65535);
  }
  const icmpProto = family === 'ipv4' ? 1 : 58;
  if (has('icmpType')) {
    if (proto !== icmpProto)
      throw invalid('icmpType', `icmpType needs protocol ${family === 'ipv4' ? 'icmp' : 'ipv6-icmp'}`);
    const [t, c] = icmpType(input.icmpType, family, 'icmpType');
    out.icmpType = t;
    if (c !== undefined) out.icmpCode = c;
  }
  if (has('icmpCode')) {
    if (!has('icmpType')) throw invalid('icmpCode', 'icmpCode needs icmpType');
    const c = checkUint(input.icmpCode, 'icmpCode', 0, 255);
    if (out.icmpCode !== undefined && out.icmpCode !== c)
      throw invalid(
        'icmpCode',
        `icmpCode ${c} contradicts the code the icmpType name implies (${String(out.icmpCode)})`,
      );
    out.icmpCode = c;
  }
  if (has('tcpFlags')) {
    if (proto !== 6) throw invalid('tcpFlags', 'tcpFlags needs protocol tcp');
    const upper = list(input.tcpFlags, 'tcpFlags', 6).map((f) =>
      typeof f === 'string' ? f.toUpperCase() : f,
    );
    out.tcpFlags = words(upper, TCP_FLAG_NAMES, 'tcpFlags');
  }
  if (has('tcpOptions')) {
    if (proto !== 6) throw invalid('tcpOptions', 'tcpOptions needs protocol tcp');
    out.tcpOptions = list(input.tcpOptions, 'tcpOptions', PACKET_LIMITS.tcpOptions).map((o, i) =>
      checkUint(o, `tcpOptions[${i}]`, 0, 255),
    );
  }
  if (has('fragment')) out.fragment = bool(input.fragment, 'fragment');
  if (has('length'))
    out.length = checkUint(
      input.length,
      'length',
      family === 'ipv4' ? 20 : 40,
      family === 'ipv4' ? 65535 : 65575,
    );
  if (has('ttl')) {
    if (family !== 'ipv4') throw invalid('ttl', 'ttl is an ipv4 field; use hopLimit for ipv6');
    out.ttl = checkUint(input.ttl, 'ttl', 0, 255);
  }
  if (has('hopLimit')) {
    if (family !== 'ipv6') throw invalid('hopLimit', 'hopLimit is an ipv6 field; use ttl for ipv4');
    out.ttl = checkUint(input.hopLimit, 'hopLimit', 0, 255);
  }
  if (has('ctState')) out.ctState = oneOf(input.ctState, CT_STATES, 'ctState');
  const tracked = out.ctState === undefined || !['INVALID', 'UNTRACKED'].includes(out.ctState as string);
  for (const k of ['ctStatus', 'ctNat', 'ctDirection', 'connmark'] as const) {
    if (has(k) && !tracked)
      throw invalid(k, `${k}: a packet in state ${String(out.ctState)} has no connection`);
  }
  if (has('ctStatus')) out.ctStatus = words(input.ctStatus, CT_STATUS_FLAGS, 'ctStatus');
  if (has('ctNat')) out.ctNat = words(input.ctNat, NAT_FLAGS, 'ctNat');
  if (has('ctDirection')) out.ctDirection = oneOf(input.ctDirection, CT_DIRECTIONS, 'ctDirection');
  if (has('mark')) out.mark = u32(input.mark, 'mark');
  if (has('connmark')) out.connmark = u32(input.connmark, 'connmark');
  if (has('pktType')) out.pktType = oneOf(input.pktType, PKT_TYPES, 'pktType');
  if (has('sourceMac')) {
    const m = input.sourceMac;
    if (typeof m !== 'string' || !MAC.test(m))
      throw invalid(
        'sourceMac',
        `sourceMac "${preview(String(m))}" must be a MAC address like 02:00:5e:10:00:01`,
      );
    out.sourceMac = m
      .split(':')
      .map((o) => o.toLowerCase().padStart(2, '0'))
      .join(':');
  }
  for (const k of ['sourceAddressType', 'destinationAddressType'] as const) {
    if (!has(k)) continue;
    const types = words(input[k], ADDRESS_TYPES, k);
    if (family === 'ipv4' && types.length !== 1)
      throw invalid(k, `${k}: an ipv4 address has exactly one route type`);
    out[k] = types;
  }
  if (has('localAddresses')) {
    out.localAddresses = list(input.localAddresses, 'localAddresses', PACKET_LIMITS.localAddresses).map(
      (a, i) => address(a, family, `localAddresses[${i}]`),
    );
  }
  if (has('bridged')) out.bridged = bool(input.bridged, 'bridged');
  for (const k of ['physdevIn', 'physdevOut'] as const) {
    if (!has(k)) continue;
    if (out.bridged === false) throw invalid(k, `${k}: the packet is not bridged (bridged is false)`);
    out[k] = device(input[k], k);
  }
  const ownerKeys = ['socketExists', 'uid', 'gid', 'supplementaryGids'] as const;
  for (const k of ownerKeys) {
    if (has(k) && hook !== 'OUTPUT' && hook !== 'POSTROUTING')
      throw invalid(k, `${k}: only locally generated packets (OUTPUT, POSTROUTING) have a socket owner`);
  }
  if (has('socketExists')) out.socketExists = bool(input.socketExists, 'socketExists');
  for (const k of ['uid', 'gid'] as const) {
    if (!has(k)) continue;
    if (out.socketExists === false) throw invalid(k, `${k}: socketExists is false, so there is no owner`);
    out[k] = checkUint(input[k], k, 0, 0xfffffffe);
  }
  if (has('supplementaryGids')) {
    if (!has('gid')) throw invalid('supplementaryGids', 'supplementaryGids needs gid');
    out.supplementaryGids = list(input.supplementaryGids, 'supplementaryGids', PACKET_LIMITS.groups).map(
      (g, i) => checkUint(g, `supplementaryGids[${i}]`, 0, 0xfffffffe),
    );
  }
  if (has('ipsets')) out.ipsets = ipsets(input.ipsets, family);
  if (has('recent')) out.recent = recentLists(input.recent, family);
  return Object.freeze(out) as unknown as Packet;
}
