/**
 * The hashlimit match (`-m hashlimit`): a rate limit per hash bucket. Its own
 * module because its canonical form is arithmetic: iptables-save prints rates
 * and bursts as the kernel stores them (packet rates in millionths of a second,
 * byte rates as a cost), so a typed value is turned into the kernel's number and
 * printed back the way libxt_hashlimit prints it, and the defaults iptables
 * leaves out depend on the unit the rate was typed in.
 */
import { invalid } from '../errors.js';
import { checkName, checkUint } from '../validate.js';
import { defineExtension } from './define.js';
import { flag, kind, U32_MAX, uint, type ValueKind, wordSet } from './kinds.js';
import { canonicalRate, rateUnitSecondsOf } from './rates.js';

function rateUnitSeconds(rateText: string): number {
  const unit = rateText.split('/')[1];
  return unit === undefined ? 1 : (rateUnitSecondsOf(unit) ?? 1);
}

/** hashlimit keeps packet rates in millionths of a second (XT_HASHLIMIT_SCALE_v2). */
const HASHLIMIT_SCALE = 1_000_000;
const BYTES_RATE = /^(\d{1,10})(k|m)?b\/s$/;
const BYTES_SIZE = /^(\d{1,10})(k|m)?b$/;
const BYTE_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['m', 1024 * 1024],
  ['k', 1024],
];
const byteFactor = (unit: string | undefined): number =>
  unit === 'm' ? 1024 * 1024 : unit === 'k' ? 1024 : 1;
/** The kernel's byte-mode cost: UINT32_MAX / (bytes / 16 + 1) (xt_hashlimit). */
const bytesToCost = (bytes: number): number => Math.floor(U32_MAX / (Math.floor(bytes / 16) + 1));
const costToBytes = (cost: number): number => (Math.floor(U32_MAX / cost) - 1) * 16;

/**
 * A hashlimit rate as given: packets (`10/min`, canonicalised with the
 * rest of the match in `finish`, because the default htable-expire depends
 * on the unit that was typed) or bytes (`100kb/s`).
 */
const hashlimitRate: ValueKind<string> = kind(
  (input, ctx) => {
    const t = typeof input === 'number' ? String(input) : input;
    if (typeof t === 'string') {
      const m = BYTES_RATE.exec(t);
      if (m) {
        const bytes = Number(m[1]) * byteFactor(m[2]);
        if (bytes < 1 || bytes > U32_MAX)
          throw invalid(ctx.field, `${ctx.field} "${t}" must be from 1b/s to 4095mb/s`);
        return t;
      }
    }
    canonicalRate(t, ctx.field, HASHLIMIT_SCALE);
    return t as string;
  },
  (v) => v,
);

/** Packets (a count) for a packet rate, or bytes (`3kb`, `1mb`, `992b`) for a byte rate. */
const hashlimitBurst: ValueKind<number | string> = kind((input, ctx) => {
  if (typeof input === 'number' || (typeof input === 'string' && /^\d{1,16}$/.test(input))) {
    return checkUint(input, ctx.field, 1, 1_000_000);
  }
  const m = typeof input === 'string' ? BYTES_SIZE.exec(input) : null;
  if (!m || Number(m[1]) * byteFactor(m[2]) > U32_MAX || Number(m[1]) === 0) {
    throw invalid(
      ctx.field,
      `${ctx.field} must be a packet count from 1 to 1000000, or a byte size like 3kb or 1mb for a byte rate`,
    );
  }
  return input as string;
});

const HASHLIMIT_MODES = ['srcip', 'srcport', 'dstip', 'dstport'] as const;
export type HashlimitMode = (typeof HASHLIMIT_MODES)[number];
const hashlimitMode: ValueKind<readonly HashlimitMode[]> = wordSet(HASHLIMIT_MODES, {}, true);

/** The kernel caps htable-size and htable-max at 1048576 (HASHLIMIT_MAX_SIZE) and prints the cap. */
const HASHLIMIT_MAX_SIZE = 1_048_576;
const htableSize: ValueKind<number> = kind((input, ctx) =>
  Math.min(checkUint(input, ctx.field, 0, U32_MAX), HASHLIMIT_MAX_SIZE),
);

/** A prefix length: 0-32 for ipv4, 0-128 for ipv6. */
const prefixLength: ValueKind<number> = kind((input, ctx) =>
  checkUint(input, ctx.field, 0, ctx.family === 'ipv4' ? 32 : 128),
);

/** A hashlimit table name: it names a /proc file, so `.` and `..` are refused. */
const hashlimitName: ValueKind<string> = kind(
  (input, ctx) => {
    const n = checkName(input, ctx.field, 254);
    if (n === '.' || n === '..') throw invalid(ctx.field, `${ctx.field} must not be "." or ".."`);
    return n;
  },
  (v) => v,
);

/** Canonical printed byte rate, as libxt_hashlimit's print_bytes writes it. */
function printBytes(cost: number): string {
  const r = costToBytes(cost);
  for (const [unit, thresh] of BYTE_UNITS) {
    if (r >= thresh && bytesToCost(r - (r % thresh)) === cost) return `${Math.floor(r / thresh)}${unit}b/s`;
  }
  return `${r}b/s`;
}
function printBurstBytes(bytes: number): string {
  for (const [unit, thresh] of BYTE_UNITS)
    if (bytes >= thresh) return `${Math.floor(bytes / thresh)}${unit}b`;
  return `${bytes}b`;
}

export const hashlimit = defineExtension({
  name: 'hashlimit',
  summary: 'rate limit per hash bucket (source/destination address and port)',
  options: {
    upto: { flags: ['--hashlimit-upto', '--hashlimit'], kind: hashlimitRate },
    above: { flags: ['--hashlimit-above'], kind: hashlimitRate },
    burst: { flags: ['--hashlimit-burst'], kind: hashlimitBurst },
    mode: { flags: ['--hashlimit-mode'], kind: hashlimitMode },
    name: { flags: ['--hashlimit-name'], kind: hashlimitName },
    htableSize: { flags: ['--hashlimit-htable-size'], kind: htableSize, omitWhen: 0 },
    htableMax: { flags: ['--hashlimit-htable-max'], kind: htableSize, omitWhen: 0 },
    htableGcinterval: { flags: ['--hashlimit-htable-gcinterval'], kind: uint(1, U32_MAX), omitWhen: 1000 },
    htableExpire: { flags: ['--hashlimit-htable-expire'], kind: uint(1, U32_MAX) },
    srcmask: { flags: ['--hashlimit-srcmask'], kind: prefixLength },
    dstmask: { flags: ['--hashlimit-dstmask'], kind: prefixLength },
    /** Match while the rate is below/above the limit, measured over rateInterval seconds. */
    rateMatch: { flags: ['--hashlimit-rate-match'], kind: flag },
    rateInterval: { flags: ['--hashlimit-rate-interval'], kind: uint(1, U32_MAX) },
  },
  finish(draft, family, field) {
    if (draft.upto !== undefined && draft.above !== undefined)
      throw invalid(`${field}.above`, 'hashlimit takes either upto or above, not both');
    const key = draft.upto !== undefined ? 'upto' : 'above';
    const given = draft[key];
    if (typeof given !== 'string')
      throw invalid(`${field}.upto`, 'hashlimit needs a rate: upto (--hashlimit-upto) or above');
    if (draft.name === undefined)
      throw invalid(`${field}.name`, 'hashlimit needs a table name (--hashlimit-name)');
    const bytes = BYTES_RATE.exec(given);
    let quantum: number;
    if (bytes) {
      const cost = bytesToCost(Number(bytes[1]) * byteFactor(bytes[2]));
      draft[key] = printBytes(cost);
      const unit = costToBytes(cost);
      if (draft.burst !== undefined) {
        const b = draft.burst;
        const m = typeof b === 'string' ? BYTES_SIZE.exec(b) : null;
        const burstBytes = m ? Number(m[1]) * byteFactor(m[2]) : Number(b);
        if (burstBytes < unit)
          throw invalid(`${field}.burst`, `${field}.burst cannot be smaller than ${unit}b at this rate`);
        draft.burst = printBurstBytes(unit * Math.ceil(burstBytes / unit));
      }
      quantum = draft.burst === undefined ? 15_000 : 60_000;
      if (draft.rateMatch) draft.rateInterval ??= 1;
    } else {
      const unitSeconds = rateUnitSeconds(given);
      // With rate-match the kernel keeps the per-second rate and the unit as the interval.
      const rateText = draft.rateMatch ? `${given.split('/')[0]}/sec` : given;
      draft[key] = canonicalRate(rateText, `${field}.${key}`, HASHLIMIT_SCALE);
      if (draft.rateMatch) draft.rateInterval ??= unitSeconds;
      if (typeof draft.burst === 'string')
        throw invalid(`${field}.burst`, `${field}.burst in bytes needs a byte rate such as 100kb/s`);
      draft.burst ??= 5;
      // iptables defaults htable-expire to the unit the rate was typed in, and prints it
      // whenever that differs from the unit of the printed rate (60/min -> 1/sec).
      draft.htableExpire ??= unitSeconds * 1000;
      quantum = rateUnitSeconds(draft[key] as string) * 1000;
    }
    if (draft.htableExpire === quantum) delete draft.htableExpire;
    // The interval is printed only with rate-match, and only when it is not 1.
    if (!draft.rateMatch || draft.rateInterval === 1) delete draft.rateInterval;
    const full = family === 'ipv4' ? 32 : 128;
    if (draft.srcmask === full) delete draft.srcmask;
    if (draft.dstmask === full) delete draft.dstmask;
  },
});
