/**
 * The columns of `iptables -L` that are not an extension's: counters as xtables_print_num
 * writes them (K/M/G/T with iptables' rounding, including its 64-bit wrap-around), the
 * protocol (number with -n, name without), interfaces, and addresses as
 * print_ipv4_addresses / print_ipv6_addresses write them. C's printf widths become padEnd /
 * padStart; a value wider than its column pushes the rest right, as in C.
 */
import { canonicalProtocol } from '../../domain/protocol.js';
import type { Field } from './rule-text.js';

const U64 = (1n << 64n) - 1n;

/** xtables_print_num for a table column: `%5llu ` or `%4lluK `..., or `%8llu ` with -x. */
export function counterColumn(value: string, exact: boolean): string {
  const n = BigInt(/^\d+$/.test(value) ? value : '0');
  if (exact) return `${n.toString().padStart(8)} `;
  const [text, unit] = scaled(n);
  return unit === '' ? `${text.padStart(5)} ` : `${text.padStart(4)}${unit} `;
}

/** xtables_print_num without a table (policy line): `%llu ` or `%lluK `. */
export function counterWords(value: string, exact: boolean): string {
  const n = BigInt(/^\d+$/.test(value) ? value : '0');
  if (exact) return `${n} `;
  const [text, unit] = scaled(n);
  return `${text}${unit} `;
}

function scaled(value: bigint): [string, string] {
  if (value <= 99999n) return [value.toString(), ''];
  let n = value;
  for (const unit of ['K', 'M', 'G']) {
    n = ((n + 500n) & U64) / 1000n;
    if (n <= 9999n) return [n.toString(), unit];
  }
  n = ((n + 500n) & U64) / 1000n;
  return [n.toString(), 'T'];
}

/** The protocol column: `!` or space, then `%-4s ` of the number (-n) or the name. */
export function protocolColumn(protocol: Field | undefined, numeric: boolean): string {
  const inv = protocol?.negated ? '!' : ' ';
  if (protocol === undefined) return `${inv}${(numeric ? '0' : 'all').padEnd(4)} `;
  if (!numeric) return `${inv}${protocol.value.padEnd(4)} `;
  let number: string;
  try {
    number = String(canonicalProtocol(protocol.value, 'protocol').number ?? protocol.value);
  } catch {
    number = protocol.value;
  }
  return `${inv}${number.padEnd(4)} `;
}

/** print_ifaces: ` %-6s ` in, `%-6s ` out; `*` (numeric) or `any` when absent. */
export function interfaceColumns(
  inIf: Field | undefined,
  outIf: Field | undefined,
  numeric: boolean,
): string {
  const any = numeric ? '*' : 'any';
  const one = (f: Field | undefined) => `${f?.negated ? '!' : ''}${f?.value ?? any}`;
  return ` ${one(inIf).padEnd(6)} ${one(outIf).padEnd(6)} `;
}

function ipv4MaskText(mask: string): string {
  // `/n` stays; a dotted mask that is a prefix becomes `/n`, as xtables_ipmask_to_numeric does.
  if (/^\d+$/.test(mask)) return mask === '32' ? '' : `/${mask}`;
  const parts = mask.split('.').map(Number);
  const bits = parts.reduce((acc, p) => (acc << 8) | (p & 0xff), 0) >>> 0;
  const inv = ~bits >>> 0;
  if ((inv & (inv + 1)) === 0) {
    const n = 32 - Math.log2(inv + 1);
    return n === 32 ? '' : `/${n}`;
  }
  return `/${mask}`;
}

/** An address with its mask as -L prints it, or undefined for 0/0 ("anywhere"). */
function addressText(value: string, ipv6: boolean): string | undefined {
  const slash = value.indexOf('/');
  const addr = slash === -1 ? value : value.slice(0, slash);
  const mask = slash === -1 ? undefined : value.slice(slash + 1);
  if (mask === '0') return undefined;
  if (mask === undefined) return addr;
  if (ipv6) return mask === '128' ? addr : `${addr}/${mask}`;
  return `${addr}${ipv4MaskText(mask)}`;
}

/** print_ipv4/6_addresses: `!` or space, `%-19s `, for source then destination. */
export function addressColumns(
  source: Field | undefined,
  destination: Field | undefined,
  ipv6: boolean,
  numeric: boolean,
): string {
  const any = numeric ? (ipv6 ? '::/0' : '0.0.0.0/0') : 'anywhere';
  const one = (f: Field | undefined) => {
    const text = f === undefined ? undefined : addressText(f.value, ipv6);
    return `${f?.negated ? '!' : ' '}${(text ?? any).padEnd(19)} `;
  };
  return one(source) + one(destination);
}
