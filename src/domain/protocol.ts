/**
 * Layer-4 protocol names and numbers for `-p`. iptables-save prints a
 * protocol by its /etc/protocols name (`-p 6` reads back as `-p tcp`), and
 * leaves out `-p all`; this module yields that canonical text.
 */
import { PROTOCOLS } from '../iptables/protocols.js';
import { preview } from './address.js';
import { invalid } from './errors.js';

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
