/**
 * Addresses as 32-bit words (one for ipv4, four for ipv6) so that a CIDR test
 * in the hot loop is a few integer operations, not string work. Parsing
 * reuses the domain's strict address parser; the results are only ever built
 * from canonical, already validated text.
 */
import { parseAddress } from '../domain/address.js';
import type { Family } from '../domain/family.js';

export type Words = readonly number[];

export interface Cidr {
  readonly net: Words;
  readonly mask: Words;
  readonly prefix: number;
}

export const wordCount = (family: Family): number => (family === 'ipv4' ? 1 : 4);

export function bytesToWords(bytes: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) {
    out.push(
      (((bytes[i] ?? 0) << 24) |
        ((bytes[i + 1] ?? 0) << 16) |
        ((bytes[i + 2] ?? 0) << 8) |
        (bytes[i + 3] ?? 0)) >>>
        0,
    );
  }
  return out;
}

/** Words of an address, or undefined when the text is not an address of `family`. */
export function addressWords(family: Family, text: string): Words | undefined {
  const bytes = parseAddress(family, text);
  return bytes ? bytesToWords(bytes) : undefined;
}

export function prefixMask(family: Family, prefix: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < wordCount(family); i++) {
    const bits = Math.max(0, Math.min(32, prefix - i * 32));
    out.push(bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);
  }
  return out;
}

/** `a/len` or a bare address (a host). Undefined when not valid for `family`. */
export function parseCidr(family: Family, text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const words = addressWords(family, slash === -1 ? text : text.slice(0, slash));
  if (!words) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = slash === -1 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  const mask = prefixMask(family, prefix);
  return { net: words.map((w, i) => (w & (mask[i] ?? 0)) >>> 0), mask, prefix };
}

export function inCidr(c: Cidr, a: Words): boolean {
  for (let i = 0; i < a.length; i++)
    if ((((a[i] ?? 0) ^ (c.net[i] ?? 0)) & (c.mask[i] ?? 0)) !== 0) return false;
  return true;
}

export function compareWords(a: Words, b: Words): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function sameWords(a: Words, b: Words): boolean {
  return compareWords(a, b) === 0 && a.length === b.length;
}

/** Address as an unsigned integer, for interval arithmetic in the linter. */
export function wordsToBigInt(a: Words): bigint {
  let v = 0n;
  for (const w of a) v = (v << 32n) | BigInt(w >>> 0);
  return v;
}

export function cidrRange(family: Family, c: Cidr): readonly [bigint, bigint] {
  const bits = BigInt(family === 'ipv4' ? 32 : 128);
  const lo = wordsToBigInt(c.net);
  const size = 1n << (bits - BigInt(c.prefix));
  return [lo, lo + size - 1n];
}

export const maxAddress = (family: Family): bigint => (1n << BigInt(family === 'ipv4' ? 32 : 128)) - 1n;
