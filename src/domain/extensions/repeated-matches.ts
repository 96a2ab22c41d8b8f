/**
 * Read-back normalisation of a rule's matches: repeated tcp and udp matches are
 * merged as the nf_tables backend merges them, so that a rule we accept is the
 * rule iptables-save prints back. Used by buildRule (src/domain/rule.ts) for
 * typed input, operator specs and kernel output alike.
 */
import { invalid } from '../errors.js';
import type { Match } from '../model.js';
import { tcp, udp } from './matches.js';

/**
 * Options of tcp and udp matches that iptables-nft turns into native
 * nf_tables expressions. A tcp match with `--tcp-option`, and a match with no
 * option at all, is kept as an xtables match instead (see isNative).
 */
const NATIVE_OPTIONS: ReadonlyMap<
  string,
  { readonly spec: typeof tcp | typeof udp; readonly keys: readonly string[] }
> = new Map([
  ['tcp', { spec: tcp, keys: ['sport', 'dport', 'tcpFlags'] }],
  ['udp', { spec: udp, keys: ['sport', 'dport'] }],
]);

function isNative(m: Match, module: string, keys: readonly string[]): m is Match & Record<string, unknown> {
  if ('raw' in m || m.module !== module) return false;
  const v = m as unknown as Record<string, unknown>;
  return v.tcpOption === undefined && keys.some((k) => v[k] !== undefined);
}

/**
 * Repeated tcp and udp matches, as the nf_tables backend keeps them: iptables-nft
 * stores the ports and flags of a tcp/udp match as native expressions and, reading
 * the rule back, gathers every such expression into ONE match at the place of the
 * first (`-p tcp --dport 22 -m tcp --sport 1` reads back as `-p tcp -m tcp --sport 1
 * --dport 22`). A match it keeps as an xtables match stays as it is: one without
 * options (`-m tcp`) and a tcp match with `--tcp-option`. Other modules (icmp,
 * comment, state, conntrack, ...) are never merged.
 *
 * The same option in two of them is kept only when the values are equal: the
 * kernel tests both (dport 22 AND dport 23 matches nothing) but prints only the
 * last, so different values are refused, or, with `lenient` (kernel output, which
 * is never lost), left unmerged.
 */
export function mergeRepeatedMatches(
  matches: readonly Match[],
  field: string,
  lenient = false,
): readonly Match[] {
  // Fast path (every rule read from the kernel comes through here): nothing to merge
  // unless a module with native options appears twice.
  let repeated = false;
  for (let i = 0; i < matches.length && !repeated; i++) {
    const name = (matches[i] as Match).module;
    if (!NATIVE_OPTIONS.has(name)) continue;
    for (let j = i + 1; j < matches.length; j++) if ((matches[j] as Match).module === name) repeated = true;
  }
  if (!repeated) return matches;
  let out = matches;
  for (const [module, { spec, keys }] of NATIVE_OPTIONS) {
    const at = out.flatMap((m, i) => (isNative(m, module, keys) ? [i] : []));
    if (at.length < 2) continue;
    const merged: Record<string, unknown> = {};
    const inverted = new Set<string>();
    let conflict: { at: number; key: string } | undefined;
    for (const i of at) {
      const m = out[i] as unknown as Record<string, unknown>;
      const invert = (m.invert as readonly string[] | undefined) ?? [];
      for (const k of keys) {
        if (m[k] === undefined) continue;
        if (merged[k] === undefined) {
          merged[k] = m[k];
          if (invert.includes(k)) inverted.add(k);
        } else if (
          JSON.stringify(merged[k]) !== JSON.stringify(m[k]) ||
          inverted.has(k) !== invert.includes(k)
        ) {
          conflict ??= { at: i, key: k };
        }
      }
    }
    if (conflict !== undefined) {
      if (lenient) continue;
      const where = `${field}.matches[${conflict.at}].${conflict.key}`;
      throw invalid(
        where,
        `${where}: another ${module} match of this rule sets ${conflict.key} differently; nf_tables would test both but print back only the last, so give it once`,
      );
    }
    const value: Record<string, unknown> = { module };
    for (const k of Object.keys(spec.options)) if (merged[k] !== undefined) value[k] = merged[k];
    const invert = Object.keys(spec.options).filter((k) => inverted.has(k));
    if (invert.length) value.invert = Object.freeze(invert);
    const first = at[0] as number;
    const one = Object.freeze(value) as unknown as Match;
    out = out.flatMap((m, i) => (i === first ? [one] : at.includes(i) ? [] : [m]));
  }
  return out;
}
