/**
 * Layer-4 protocol names and numbers for `-p`. iptables-save prints a
 * protocol by its /etc/protocols name (`-p 6` reads back as `-p tcp`), and
 * leaves out `-p all`; this module yields that canonical text.
 *
 * The table is the system's (Debian netbase), not a fact of one iptables
 * release, so the domain owns it; the iptables-specific catalogue is
 * src/iptables/catalogue.ts.
 */
import { preview } from './address.js';
import { invalid } from './errors.js';

/** Protocol numbers and names as Debian netbase /etc/protocols lists them. */
const PROTOCOLS: ReadonlyArray<readonly [string, number]> = [
  ['ip', 0],
  ['hopopt', 0],
  ['icmp', 1],
  ['igmp', 2],
  ['ggp', 3],
  ['ipencap', 4],
  ['st', 5],
  ['tcp', 6],
  ['egp', 8],
  ['igp', 9],
  ['pup', 12],
  ['udp', 17],
  ['hmp', 20],
  ['xns-idp', 22],
  ['rdp', 27],
  ['iso-tp4', 29],
  ['dccp', 33],
  ['xtp', 36],
  ['ddp', 37],
  ['idpr-cmtp', 38],
  ['ipv6', 41],
  ['ipv6-route', 43],
  ['ipv6-frag', 44],
  ['idrp', 45],
  ['rsvp', 46],
  ['gre', 47],
  ['esp', 50],
  ['ah', 51],
  ['skip', 57],
  ['ipv6-icmp', 58],
  ['ipv6-nonxt', 59],
  ['ipv6-opts', 60],
  ['rspf', 73],
  ['vmtp', 81],
  ['eigrp', 88],
  ['ospf', 89],
  ['ax.25', 93],
  ['ipip', 94],
  ['etherip', 97],
  ['encap', 98],
  ['pim', 103],
  ['ipcomp', 108],
  ['vrrp', 112],
  ['l2tp', 115],
  ['isis', 124],
  ['sctp', 132],
  ['fc', 133],
  ['mobility-header', 135],
  ['udplite', 136],
  ['mpls-in-ip', 137],
  ['manet', 138],
  ['hip', 139],
  ['shim6', 140],
  ['wesp', 141],
  ['rohc', 142],
  ['ethernet', 143],
  ['mptcp', 262],
];

const BY_NAME = new Map<string, number>(PROTOCOLS.map(([n, v]) => [n.toLowerCase(), v]));
for (const [alias, n] of [
  ['all', 0],
  ['icmpv6', 58],
  ['mh', 135],
] as const) {
  BY_NAME.set(alias, n);
}
const BY_NUMBER = new Map<number, string>();
for (const [n, v] of PROTOCOLS) if (!BY_NUMBER.has(v)) BY_NUMBER.set(v, n);

export interface Protocol {
  /** What iptables-save prints (`tcp`, `ipv6-icmp`, `200`); `all` for protocol 0. */
  readonly text: string;
  readonly number: number | undefined;
}

/** Canonical protocol for a name or number; names not in the table are refused. */
export function canonicalProtocol(input: unknown, field: string): Protocol {
  let num: number | undefined;
  if (typeof input === 'number' || (typeof input === 'string' && /^\d{1,3}$/.test(input))) {
    num = Number(input);
    if (!Number.isInteger(num) || num < 0 || num > 255)
      throw invalid(field, `${field} must be a protocol name or a number from 0 to 255`);
  } else if (typeof input === 'string') {
    num = BY_NAME.get(input.toLowerCase());
    if (num === undefined) {
      throw invalid(
        field,
        `${field} "${preview(input)}" is not a known protocol name (use a number from 0 to 255)`,
      );
    }
  } else {
    throw invalid(field, `${field} must be a protocol name or number`);
  }
  if (num === 0) return { text: 'all', number: 0 };
  return { text: BY_NUMBER.get(num) ?? String(num), number: num };
}
