/**
 * Rates as the `limit` and `hashlimit` extensions store and print them. The
 * kernel keeps a period (scaled seconds per packet), so `60/min` is printed
 * back as `1/sec`; we compute the same canonical text iptables prints.
 */
import { preview } from '../address.js';
import { invalid } from '../errors.js';

const UNITS: Readonly<Record<string, number>> = {
  s: 1,
  sec: 1,
  second: 1,
  m: 60,
  min: 60,
  minute: 60,
  h: 3600,
  hour: 3600,
  d: 86400,
  day: 86400,
};
/** Seconds in a rate unit (`min` -> 60), or undefined for a word that is not a unit. */
export function rateUnitSecondsOf(unit: string): number | undefined {
  return Object.hasOwn(UNITS, unit) ? UNITS[unit] : undefined;
}

const PRINT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['day', 86400],
  ['hour', 3600],
  ['min', 60],
  ['sec', 1],
];

/** Canonical `N/unit` for a rate with the given scale (limit: 10000, hashlimit: 1000000). */
export function canonicalRate(input: unknown, field: string, scale: number): string {
  const text = typeof input === 'number' ? String(input) : input;
  const m = typeof text === 'string' ? /^(\d{1,10})(?:\/([a-z]{1,6}))?$/.exec(text) : null;
  const unitName = m?.[2] ?? 'sec';
  const unit = m && Object.hasOwn(UNITS, unitName) ? UNITS[unitName] : undefined;
  if (!m || unit === undefined) {
    throw invalid(
      field,
      `${field} "${preview(String(text))}" must be a rate like 5/sec, 5/min, 5/hour or 5/day`,
    );
  }
  const n = Number(m[1]);
  const period = Math.floor((scale * unit) / n);
  if (n === 0 || period === 0) throw invalid(field, `${field} "${text}" is zero or too fast`);
  let i = 1;
  for (; i < PRINT_UNITS.length; i++) {
    const mult = scale * (PRINT_UNITS[i]?.[1] ?? 1);
    if (period > mult || Math.floor(mult / period) < mult % period) break;
  }
  const [name, secs] = PRINT_UNITS[i - 1] ?? ['sec', 1];
  return `${Math.floor((scale * secs) / period)}/${name}`;
}
