/**
 * IP address and CIDR parsing with the canonical text `iptables-save` prints:
 * the network address (host bits cleared) and an explicit prefix length
 * (`/32`, `/128` for hosts), IPv6 in the RFC 5952 form glibc's inet_ntop gives.
 * Host names are refused: a firewall rule must not depend on DNS.
 */

import { invalid } from './errors.js';
import type { Family } from './family.js';

const IPV4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses dotted-quad IPv4 into four octets, or undefined. Leading zeros are refused (they read as octal elsewhere). */
export function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (!IPV4_PART.test(part)) return undefined;
    octets.push(Number(part));
  }
  return octets;
}

/** Parses IPv6 text into sixteen bytes, or undefined. Zone ids (`%eth0`) are refused. */
export function parseIPv6(text: string): number[] | undefined {
  if (text.length === 0 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tailV4 = v4;
    const prefix = text.slice(0, lastColon + 1);
    head = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const groupsWanted = tailV4.length ? 6 : 8;
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (halves.length === 2) {
    const left = parseGroups(halves[0] ?? '');
    const right = parseGroups(halves[1] ?? '');
    if (!left || !right) return undefined;
    const missing = groupsWanted - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (!all || all.length !== groupsWanted) return undefined;
    groups = all;
  }
  const bytes: number[] = [];
  for (const g of groups) bytes.push(g >> 8, g & 0xff);
  bytes.push(...tailV4);
  return bytes.length === 16 ? bytes : undefined;
}

export function formatIPv4(bytes: readonly number[]): string {
  return bytes.join('.');
}

/** RFC 5952 text as glibc inet_ntop writes it (IPv4-mapped and -compatible tails in dotted form). */
export function formatIPv6(bytes: readonly number[]): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  const v4Tail =
    bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))
      ? `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
      : undefined;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && v4Tail !== undefined) {
      out += v4Tail;
      break;
    }
    out += (words[i] ?? 0).toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

export function parseAddress(family: Family, text: string): number[] | undefined {
  return family === 'ipv4' ? parseIPv4(text) : parseIPv6(text);
}

export function formatAddress(family: Family, bytes: readonly number[]): string {
  return family === 'ipv4' ? formatIPv4(bytes) : formatIPv6(bytes);
}

const familyLabel = (family: Family) => (family === 'ipv4' ? 'IPv4' : 'IPv6');

/** Canonical single address for `family`, or a DomainError naming `field`. */
export function canonicalAddress(family: Family, text: string, field: string): string {
  const bytes = parseAddress(family, text);
  if (!bytes) throw invalid(field, `${field}: "${preview(text)}" is not an ${familyLabel(family)} address`);
  return formatAddress(family, bytes);
}

function maskToPrefix(family: Family, mask: string): number | undefined {
  if (/^\d{1,3}$/.test(mask)) {
    const n = Number(mask);
    return n <= (family === 'ipv4' ? 32 : 128) ? n : undefined;
  }
  const bytes = parseAddress(family, mask);
  if (!bytes) return undefined;
  let prefix = 0;
  let seenZero = false;
  for (const b of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const set = (b >> bit) & 1;
      if (set && seenZero) return undefined; // non-contiguous
      if (set) prefix++;
      else seenZero = true;
    }
  }
  return prefix;
}

/**
 * Canonical CIDR for `family`: `192.0.2.7/24` becomes `192.0.2.0/24`, a bare
 * host gets `/32` or `/128`, a dotted mask becomes a prefix length.
 */
export function canonicalCidr(family: Family, text: string, field: string): string {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const bytes = parseAddress(family, addrText);
  if (!bytes) {
    throw invalid(
      field,
      `${field}: "${preview(text)}" is not an ${familyLabel(family)} address or CIDR (host names are not accepted)`,
    );
  }
  const bits = family === 'ipv4' ? 32 : 128;
  const prefix = slash === -1 ? bits : maskToPrefix(family, text.slice(slash + 1));
  if (prefix === undefined) {
    throw invalid(field, `${field}: prefix length in "${preview(text)}" must be 0 to ${bits}`);
  }
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return `${formatAddress(family, masked)}/${prefix}`;
}

/** Shortens hostile input before it is quoted back in an error message. */
export function preview(text: string, max = 64): string {
  const printable = text.replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return printable.length > max ? `${printable.slice(0, max)}...` : printable;
}
