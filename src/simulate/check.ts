/**
 * One compiled test of a rule (a rule-level field such as `-s`, or one typed
 * match) against a simulation state. Rules are compiled once into lists of
 * checks so a trace only runs small closures over numbers.
 *
 * `test` is pure. `why` explains a MAYBE (it is called only then, so its
 * string work stays off the hot path). `refine` narrows unknown fields in a
 * branch that assumes the rule matched (`-p tcp` makes an unknown protocol
 * tcp). `effect` is the side effect of a stateful match (`recent --set`),
 * applied in the kernel's order as the match is reached.
 */
import { MAYBE, NO, type SimState, type Tri, YES } from './state.js';

export interface Check {
  test(s: SimState): Tri;
  why(s: SimState): string;
  refine?(s: SimState): void;
  /**
   * Applies the match's side effect. `reached`: whether evaluation got to this match
   * (YES or MAYBE); `matched`: true when the branch assumes the whole rule matched.
   */
  effect?(s: SimState, reached: Tri, matched: boolean): void;
}

/** A check that always answers MAYBE, with a fixed reason. */
export function unknownCheck(reason: string): Check {
  return { test: () => MAYBE, why: () => reason };
}

export const alwaysCheck: Check = { test: () => YES, why: () => '' };
export const neverCheck = (reason: string): Check => ({ test: () => NO, why: () => reason });

/** `lo <= v <= hi`, flipped by `invert`; MAYBE when v is unknown (-1). */
export function inRange(v: number, lo: number, hi: number, invert: boolean): Tri {
  if (v < 0) return MAYBE;
  return (v >= lo && v <= hi) !== invert ? YES : NO;
}

/** `lo:hi` / `lo` (ports, lengths) -> [lo, hi]. */
export function parseSpan(text: string, sep = ':'): [number, number] {
  const [a, b] = text.split(sep);
  const lo = Number(a);
  return [lo, b === undefined ? lo : Number(b)];
}

/** Whether option `key` of a typed match is negated. */
export const inverted = (m: { readonly invert?: readonly string[] }, key: string): boolean =>
  m.invert?.includes(key) ?? false;
