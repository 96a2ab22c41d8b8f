/**
 * Sets of integers as sorted, disjoint, merged closed intervals, over
 * bigint so one implementation serves 128-bit addresses, ports and ICMP
 * type/code pairs. Enough algebra for coverage: intersect, complement, subset.
 */
export type Span = readonly [bigint, bigint];
export type IntervalSet = readonly Span[];

export function normalize(spans: readonly Span[]): IntervalSet {
  const sorted = spans
    .filter(([lo, hi]) => lo <= hi)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

export function span(lo: bigint | number, hi: bigint | number): IntervalSet {
  return normalize([[BigInt(lo), BigInt(hi)]]);
}

export function complement(a: IntervalSet, max: bigint): IntervalSet {
  const out: [bigint, bigint][] = [];
  let next = 0n;
  for (const [lo, hi] of a) {
    if (lo > next) out.push([next, lo - 1n]);
    next = hi + 1n;
  }
  if (next <= max) out.push([next, max]);
  return out;
}

export function intersect(a: IntervalSet, b: IntervalSet): IntervalSet {
  const out: [bigint, bigint][] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [alo, ahi] = a[i] as Span;
    const [blo, bhi] = b[j] as Span;
    const lo = alo > blo ? alo : blo;
    const hi = ahi < bhi ? ahi : bhi;
    if (lo <= hi) out.push([lo, hi]);
    if (ahi < bhi) i++;
    else j++;
  }
  return out;
}

/** a ⊆ b */
export function subset(a: IntervalSet, b: IntervalSet): boolean {
  if (a.length === 1 && b.length === 1) {
    const x = a[0] as Span;
    const y = b[0] as Span;
    return y[0] <= x[0] && x[1] <= y[1];
  }
  let j = 0;
  for (const [lo, hi] of a) {
    while (j < b.length && (b[j] as Span)[1] < lo) j++;
    const s = b[j];
    if (!s || s[0] > lo || s[1] < hi) return false;
  }
  return true;
}

/** `x` intersected with `y`, where undefined means "everything". */
export function and(x: IntervalSet | undefined, y: IntervalSet): IntervalSet {
  return x === undefined ? y : intersect(x, y);
}
