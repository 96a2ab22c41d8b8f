/**
 * What an extension's `-L` print function needs besides its own options: numeric or names,
 * the family, the rule's protocol (port names are per protocol), and the name tables.
 * Shared by the match and target printers, with the small number formatters iptables' print
 * functions use (`0x%x`, port ranges, the ICMP type names).
 */
import { ICMP_TYPES, ICMP6_TYPES } from '../../domain/extensions/icmp.js';
import type { Family } from '../../domain/family.js';
import type { Names } from './names.js';

export interface PrintContext {
  readonly numeric: boolean;
  readonly family: Family;
  /** The rule's `-p` as written by iptables-save (`tcp`), if any. */
  readonly protocol: string | undefined;
  readonly names: Names;
}

/** A number as C's `%x` prints it after `0x` (`0x5`, `0xffffffff`); undefined when not a number. */
export function hex(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const n = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text.slice(2), 16) : Number(text);
  if (!Number.isFinite(n)) return undefined;
  return `0x${(n >>> 0).toString(16)}`;
}

/** `value[/mask]` as numbers (mask undefined when absent). */
export function valueMask(text: string): { value: number; mask: number | undefined } {
  const [v, m] = text.split('/');
  const num = (s: string) => (/^0x/i.test(s) ? Number.parseInt(s.slice(2), 16) : Number(s)) >>> 0;
  return { value: num(v ?? '0'), mask: m === undefined ? undefined : num(m) };
}

/** A port, by service name unless numeric (xtables' port_to_service). */
export function port(ctx: PrintContext, text: string, protocol = ctx.protocol): string {
  if (ctx.numeric || protocol === undefined || !/^\d+$/.test(text)) return text;
  return ctx.names.service(Number(text), protocol) ?? text;
}

/** `min[:max]` of a port option. */
export function portRange(text: string): { min: string; max: string } {
  const [a, b] = text.split(':');
  if (b === undefined) return { min: a ?? '0', max: a ?? '0' };
  return { min: a === '' ? '0' : (a ?? '0'), max: b === '' ? '65535' : b };
}

interface IcmpEntry {
  readonly name: string;
  readonly type: number;
  readonly codeMin: number;
  readonly codeMax: number;
}

function icmpTable(names: Readonly<Record<string, string>>, withAny: boolean): IcmpEntry[] {
  const out: IcmpEntry[] = withAny ? [{ name: 'any', type: 255, codeMin: 0, codeMax: 255 }] : [];
  for (const [name, value] of Object.entries(names)) {
    const [t, c] = value.split('/');
    out.push({
      name,
      type: Number(t),
      codeMin: c === undefined ? 0 : Number(c),
      codeMax: c === undefined ? 255 : Number(c),
    });
  }
  return out;
}

const ICMP = icmpTable(ICMP_TYPES, true);
const ICMP6 = icmpTable(ICMP6_TYPES, false);

/** An `--icmp-type` / `--icmpv6-type` value as numbers (`any`, `8`, `3/4`, or a name). */
export function icmpNumbers(
  family: Family,
  text: string,
): { type: number; codeMin: number; codeMax: number } | undefined {
  const table = family === 'ipv6' ? ICMP6 : ICMP;
  const named = table.find((e) => e.name === text);
  if (named) return named;
  const m = /^(\d+)(?:\/(\d+))?$/.exec(text);
  if (!m) return undefined;
  const code = m[2] === undefined ? undefined : Number(m[2]);
  return { type: Number(m[1]), codeMin: code ?? 0, codeMax: code ?? 255 };
}

/** The first name iptables lists for exactly this type and code range, if any. */
export function icmpName(family: Family, type: number, codeMin: number, codeMax: number): string | undefined {
  const table = family === 'ipv6' ? ICMP6 : ICMP;
  return table.find((e) => e.type === type && e.codeMin === codeMin && e.codeMax === codeMax)?.name;
}
