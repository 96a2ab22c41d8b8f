/**
 * Typed targets (`-j NAME ...`). Each table lists its options in the order
 * iptables-save prints them; see define.ts. A jump or goto to a user chain is
 * `{ jump: CHAIN }` / `{ goto: CHAIN }` (see model.ts); a target not listed
 * here is kept as a validated token list (RawTarget).
 *
 * Every canonical form below was read back from the kernel (iptables 1.8.9,
 * nf_tables backend) and is proven by test/iptables/roundtrip-targets.test.ts.
 * Surprises worth knowing:
 * - LOG prints levels as numbers and leaves out level 4 (warning).
 * - NFLOG leaves out group 0 and threshold 0; `--nflog-range` is accepted by
 *   iptables but never stored or printed, so we refuse it (use size).
 * - MARK and CONNMARK print every `--set-mark/--and-mark/--or-mark/--xor-mark`
 *   as `--set-xmark value/mask`; CONNMARK save/restore always print both masks.
 * - DSCP prints `--set-dscp 0x%02x`, also for `--set-dscp-class`.
 * - NAT ranges drop a range that is one address or one port (`a-a` -> `a`);
 *   IPv6 addresses are bracketed only when ports follow.
 * - CT prints notrack, helper, ctevents, expevents, zone, timeout in that order
 *   and leaves out zone 0; `-j NOTRACK` stays `NOTRACK` (not `CT --notrack`).
 */
import { formatAddress, parseAddress, preview } from '../address.js';
import { invalid } from '../errors.js';
import type { Family } from '../family.js';
import { checkText, checkUint, MAX_LOG_PREFIX, MAX_NFLOG_PREFIX } from '../validate.js';
import { defineExtension, type ExtensionValues } from './define.js';
import {
  flag,
  type KindContext,
  kind,
  lookup,
  name,
  U32_MAX,
  uint,
  type ValueKind,
  wordSet,
} from './kinds.js';

/** Refuses a draft holding more than one of `keys`. */
function atMostOne(draft: Record<string, unknown>, keys: readonly string[], field: string, what: string) {
  const set = keys.filter((k) => draft[k] !== undefined);
  if (set.length > 1) throw invalid(`${field}.${set[1]}`, `${what}: ${set.join(' and ')} cannot be combined`);
}

/** Requires exactly one of `keys`. */
function exactlyOne(draft: Record<string, unknown>, keys: readonly string[], field: string, what: string) {
  atMostOne(draft, keys, field, what);
  if (!keys.some((k) => draft[k] !== undefined))
    throw invalid(field, `${what} needs one of ${keys.join(', ')}`);
}

// ---------------------------------------------------------------- verdicts

const verdict = <const N extends string>(name: N, summary: string) =>
  defineExtension({ name, summary, options: {} });

export const ACCEPT = verdict('ACCEPT', 'let the packet through');
export const DROP = verdict('DROP', 'discard the packet silently');
export const RETURN = verdict('RETURN', 'return to the calling chain');
/**
 * Needs the kernel's nft `queue` expression (CONFIG_NFT_QUEUE) on the
 * nf_tables backend; without it the kernel answers "No such file or directory".
 */
export const QUEUE = verdict('QUEUE', 'pass the packet to user space (queue 0)');

// ------------------------------------------------------------------ REJECT

const REJECT_V4 = [
  'icmp-net-unreachable',
  'icmp-host-unreachable',
  'icmp-port-unreachable',
  'icmp-proto-unreachable',
  'icmp-net-prohibited',
  'icmp-host-prohibited',
  'icmp-admin-prohibited',
  'tcp-reset',
] as const;
const REJECT_V6 = [
  'icmp6-no-route',
  'icmp6-adm-prohibited',
  'icmp6-addr-unreachable',
  'icmp6-port-unreachable',
  'icmp6-policy-fail',
  'icmp6-reject-route',
  'tcp-reset',
] as const;
/** The short spellings iptables accepts, per family (ip6tables has no `tcp-rst`). */
const REJECT_ALIASES: Readonly<Record<Family, Readonly<Record<string, RejectWith>>>> = {
  ipv4: {
    'net-unreach': 'icmp-net-unreachable',
    'host-unreach': 'icmp-host-unreachable',
    'port-unreach': 'icmp-port-unreachable',
    'proto-unreach': 'icmp-proto-unreachable',
    'net-prohib': 'icmp-net-prohibited',
    'host-prohib': 'icmp-host-prohibited',
    'admin-prohib': 'icmp-admin-prohibited',
    'tcp-rst': 'tcp-reset',
  },
  ipv6: {
    'no-route': 'icmp6-no-route',
    'adm-prohibited': 'icmp6-adm-prohibited',
    'addr-unreach': 'icmp6-addr-unreachable',
    'port-unreach': 'icmp6-port-unreachable',
    'policy-fail': 'icmp6-policy-fail',
    'reject-route': 'icmp6-reject-route',
  },
};
export type RejectWith = (typeof REJECT_V4)[number] | (typeof REJECT_V6)[number];
const rejectWith: ValueKind<RejectWith> = kind((input, ctx) => {
  const allowed: readonly RejectWith[] = ctx.family === 'ipv4' ? REJECT_V4 : REJECT_V6;
  const t = typeof input === 'string' ? input : '';
  const word = allowed.find((w) => w === t) ?? lookup(REJECT_ALIASES[ctx.family], t);
  if (word === undefined) {
    throw invalid(
      ctx.field,
      `${ctx.field} "${preview(String(input))}" must be one of ${allowed.join(', ')} for ${ctx.family}`,
    );
  }
  return word;
});
export const REJECT = defineExtension({
  name: 'REJECT',
  summary: 'discard the packet and answer with an ICMP error or TCP reset (tcp-reset needs -p tcp)',
  options: {
    rejectWith: {
      flags: ['--reject-with'],
      kind: rejectWith,
      fill: (family: Family): RejectWith =>
        family === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable',
    },
  },
});

// ------------------------------------------------------------- LOG, NFLOG

/** A log prefix: printable ASCII, 1 to `max` characters (iptables refuses an empty one). */
const prefix = (max: number): ValueKind<string> =>
  kind(
    (input, ctx) => {
      const t = checkText(input, ctx.field, max);
      if (t.length === 0) throw invalid(ctx.field, `${ctx.field} must not be empty`);
      return t;
    },
    String,
    true,
  );

/** The names libxt_LOG knows (case-sensitive, as iptables reads them). */
const LOG_LEVELS: Readonly<Record<string, number>> = {
  emerg: 0,
  panic: 0,
  alert: 1,
  crit: 2,
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};
const logLevel: ValueKind<number> = kind((input, ctx) => {
  const named = typeof input === 'string' ? lookup(LOG_LEVELS, input) : undefined;
  if (named !== undefined) return named;
  if (typeof input === 'number' || (typeof input === 'string' && /^\d+$/.test(input)))
    return checkUint(input, ctx.field, 0, 7);
  throw invalid(
    ctx.field,
    `${ctx.field} "${preview(String(input))}" must be 0 to 7 or one of ${Object.keys(LOG_LEVELS).join(', ')}`,
  );
});
export const LOG = defineExtension({
  name: 'LOG',
  summary: 'log the packet to the kernel log (root network namespace only) and continue',
  options: {
    prefix: { flags: ['--log-prefix'], kind: prefix(MAX_LOG_PREFIX) },
    level: { flags: ['--log-level'], kind: logLevel, omitWhen: 4 },
    tcpSequence: { flags: ['--log-tcp-sequence'], kind: flag },
    tcpOptions: { flags: ['--log-tcp-options'], kind: flag },
    ipOptions: { flags: ['--log-ip-options'], kind: flag },
    uid: { flags: ['--log-uid'], kind: flag },
    macDecode: { flags: ['--log-macdecode'], kind: flag },
  },
});

export const NFLOG = defineExtension({
  name: 'NFLOG',
  summary: 'send the packet to a netlink log group (works in any network namespace)',
  options: {
    prefix: { flags: ['--nflog-prefix'], kind: prefix(MAX_NFLOG_PREFIX) },
    group: { flags: ['--nflog-group'], kind: uint(0, 65535), omitWhen: 0 },
    /** Bytes of the packet to copy; printed whenever given, 0 included. */
    size: {
      flags: ['--nflog-size'],
      kind: uint(0, U32_MAX),
      shorthands: {
        '--nflog-range': {
          arity: 1,
          toValue: (_args, ctx) => {
            throw invalid(
              ctx.field,
              `--nflog-range has never worked and iptables drops it; use --nflog-size (size) instead`,
            );
          },
        },
      },
    },
    threshold: { flags: ['--nflog-threshold'], kind: uint(0, 65535), omitWhen: 0 },
  },
});

// --------------------------------------------------------------------- NAT

/** `1000` or `1000-2000` (iptables wants a dash here, not a colon); a one-port range prints as one port. */
interface PortSpan {
  readonly lo: number;
  readonly hi: number;
}
function parsePortSpan(text: string, field: string): PortSpan {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m)
    throw invalid(
      field,
      `${field}: "${preview(text)}" must be a port or a range like 1000-2000 (with a dash)`,
    );
  const lo = checkUint(String(Number(m[1])), field, 0, 65535);
  const hi = m[2] === undefined ? lo : checkUint(String(Number(m[2])), field, 0, 65535);
  if (lo > hi) throw invalid(field, `${field}: port range "${preview(text)}" starts after it ends`);
  return { lo, hi };
}
const spanText = (s: PortSpan) => (s.lo === s.hi ? String(s.lo) : `${s.lo}-${s.hi}`);

/** `--to-ports` of MASQUERADE and REDIRECT (needs -p tcp, udp, sctp or dccp). */
const toPorts: ValueKind<string> = kind((input, ctx) => {
  const t = typeof input === 'number' ? String(input) : input;
  if (typeof t !== 'string')
    throw invalid(ctx.field, `${ctx.field} must be a port or a range like 1000-2000`);
  return spanText(parsePortSpan(t, ctx.field));
});

function compareBytes(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/** `a` or `a-b`, canonical; a range of one address prints as the address. */
function addressSpan(text: string, family: Family, field: string): string {
  const parts = text.split('-');
  const label = family === 'ipv4' ? 'IPv4' : 'IPv6';
  if (parts.length > 2 || parts.some((p) => p === ''))
    throw invalid(field, `${field}: "${preview(text)}" must be an ${label} address or a range a-b`);
  const bytes = parts.map((p) => {
    const b = parseAddress(family, p);
    if (!b) throw invalid(field, `${field}: "${preview(p)}" is not an ${label} address`);
    return b;
  });
  const [lo, hi] = bytes as [number[], number[] | undefined];
  if (hi === undefined || compareBytes(lo, hi) === 0) return formatAddress(family, lo);
  if (compareBytes(lo, hi) > 0)
    throw invalid(field, `${field}: address range "${preview(text)}" starts after it ends`);
  return `${formatAddress(family, lo)}-${formatAddress(family, hi)}`;
}

/**
 * `--to-source` / `--to-destination`: `addr[-addr][:port[-port]]`, IPv6 as
 * `[addr[-addr]]:port[-port]` when ports follow; either part may be left out
 * (`:80`). With `shift` (DNAT only), a port range may end in `/baseport`.
 * Ports need -p tcp, udp, sctp or dccp; the kernel refuses them otherwise.
 */
function natRange(shift: boolean): ValueKind<string> {
  return kind((input, ctx) => {
    const { family, field } = ctx;
    if (typeof input !== 'string' || input.length === 0 || input.length > 100) {
      throw invalid(
        field,
        `${field} must be text like ${family === 'ipv4' ? '192.0.2.1:80' : '[2001:db8::1]:80'}`,
      );
    }
    let addrText: string;
    let portText: string | undefined;
    if (family === 'ipv4') {
      const colon = input.indexOf(':');
      addrText = colon === -1 ? input : input.slice(0, colon);
      portText = colon === -1 ? undefined : input.slice(colon + 1);
    } else if (input.startsWith('[')) {
      const close = input.indexOf(']');
      const rest = close === -1 ? '' : input.slice(close + 1);
      if (close === -1 || (rest !== '' && !rest.startsWith(':')))
        throw invalid(field, `${field}: "${preview(input)}" must look like [2001:db8::1]:80`);
      addrText = input.slice(1, close);
      portText = rest === '' ? undefined : rest.slice(1);
      if (addrText === '') throw invalid(field, `${field}: "${preview(input)}" has empty brackets`);
    } else if (/^:\d/.test(input)) {
      addrText = '';
      portText = input.slice(1);
    } else {
      addrText = input;
      portText = undefined;
    }
    const addr = addrText === '' ? '' : addressSpan(addrText, family, field);
    if (portText === undefined) {
      if (addr === '') throw invalid(field, `${field} needs an address or a port`);
      return addr;
    }
    const slash = portText.indexOf('/');
    const span = parsePortSpan(slash === -1 ? portText : portText.slice(0, slash), field);
    let ports = spanText(span);
    if (slash !== -1) {
      if (!shift) throw invalid(field, `${field}: a base port (/N) exists only for DNAT`);
      if (span.lo === span.hi)
        throw invalid(field, `${field}: a base port (/N) needs a port range like 1000-2000/3000`);
      ports += `/${checkUint(portText.slice(slash + 1), field, 0, 65535)}`;
    }
    if (family === 'ipv6' && addr !== '') return `[${addr}]:${ports}`;
    return `${addr}:${ports}`;
  });
}

export const MASQUERADE = defineExtension({
  name: 'MASQUERADE',
  summary: 'source NAT to the outgoing interface address (nat POSTROUTING)',
  options: {
    toPorts: { flags: ['--to-ports'], kind: toPorts },
    random: { flags: ['--random'], kind: flag },
    randomFully: { flags: ['--random-fully'], kind: flag },
  },
});

export const SNAT = defineExtension({
  name: 'SNAT',
  summary: 'source NAT to an address range and optional port range (nat POSTROUTING, INPUT)',
  options: {
    toSource: { flags: ['--to-source'], kind: natRange(false) },
    random: { flags: ['--random'], kind: flag },
    randomFully: { flags: ['--random-fully'], kind: flag },
    persistent: { flags: ['--persistent'], kind: flag },
  },
  finish(draft, _family, field) {
    if (draft.toSource === undefined) throw invalid(`${field}.toSource`, 'SNAT needs --to-source (toSource)');
  },
});

export const DNAT = defineExtension({
  name: 'DNAT',
  summary: 'destination NAT to an address range and optional port range (nat PREROUTING, OUTPUT)',
  options: {
    toDestination: { flags: ['--to-destination'], kind: natRange(true) },
    random: { flags: ['--random'], kind: flag },
    persistent: { flags: ['--persistent'], kind: flag },
  },
  finish(draft, _family, field) {
    if (draft.toDestination === undefined)
      throw invalid(`${field}.toDestination`, 'DNAT needs --to-destination (toDestination)');
  },
});

export const REDIRECT = defineExtension({
  name: 'REDIRECT',
  summary: 'redirect to the host itself, optionally to other ports (nat PREROUTING, OUTPUT)',
  options: {
    toPorts: { flags: ['--to-ports'], kind: toPorts },
    random: { flags: ['--random'], kind: flag },
  },
});

// ------------------------------------------------------------ MARK, CONNMARK

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
const u32 = (input: unknown, field: string): number => {
  const t = typeof input === 'number' ? input : typeof input === 'string' ? input : undefined;
  if (t === undefined) throw invalid(field, `${field} must be a 32-bit value like 0x1f`);
  return checkUint(t, field, 0, U32_MAX);
};
/** A 32-bit mask printed in hex (`0xff`). */
const mask32: ValueKind<string> = kind((input, ctx) => hex(u32(input, ctx.field)));

/** `value[/mask]` -> `(value, mask)`; the mask defaults to all ones. */
function valueMask(input: unknown, field: string): [number, number] {
  const t = typeof input === 'number' ? String(input) : input;
  if (typeof t !== 'string') throw invalid(field, `${field} must be a mark like 0x1 or 0x10/0xff`);
  const parts = t.split('/');
  if (parts.length > 2) throw invalid(field, `${field} "${preview(t)}" must be value[/mask]`);
  return [u32(parts[0], field), parts[1] === undefined ? U32_MAX : u32(parts[1], field)];
}

/** `--set-xmark value/mask` as printed: both parts in hex, the mask always present. */
const xmark: ValueKind<string> = kind((input, ctx) => {
  const [v, m] = valueMask(input, ctx.field);
  return `${hex(v)}/${hex(m)}`;
});

/** The shorthands iptables rewrites into `--set-xmark` (MARK and CONNMARK alike). */
const XMARK_SHORTHANDS = {
  '--set-mark': {
    arity: 1,
    toValue: (args: readonly string[], ctx: KindContext) => {
      const [v, m] = valueMask(args[0], ctx.field);
      return `${hex(v)}/${hex(v | m)}`;
    },
  },
  '--and-mark': {
    arity: 1,
    toValue: (args: readonly string[], ctx: KindContext) => `0x0/${hex(~u32(args[0], ctx.field))}`,
  },
  '--or-mark': {
    arity: 1,
    toValue: (args: readonly string[], ctx: KindContext) => {
      const v = hex(u32(args[0], ctx.field));
      return `${v}/${v}`;
    },
  },
  '--xor-mark': {
    arity: 1,
    toValue: (args: readonly string[], ctx: KindContext) => `${hex(u32(args[0], ctx.field))}/0x0`,
  },
} as const;

export const MARK = defineExtension({
  name: 'MARK',
  summary:
    'set the packet mark: zero the mask bits, then XOR with value (--set-mark etc. are read as --set-xmark)',
  options: {
    setXmark: { flags: ['--set-xmark'], kind: xmark, shorthands: XMARK_SHORTHANDS },
  },
  finish(draft, _family, field) {
    if (draft.setXmark === undefined)
      throw invalid(
        `${field}.setXmark`,
        'MARK needs --set-xmark (or --set-mark, --and-mark, --or-mark, --xor-mark)',
      );
  },
});

export const CONNMARK = defineExtension({
  name: 'CONNMARK',
  summary: 'set the connection mark, or copy it from (save) or to (restore) the packet mark',
  options: {
    setXmark: { flags: ['--set-xmark'], kind: xmark, shorthands: XMARK_SHORTHANDS },
    saveMark: { flags: ['--save-mark'], kind: flag },
    restoreMark: { flags: ['--restore-mark'], kind: flag },
    /** With save/restore: printed always, all ones when not given. */
    nfmask: { flags: ['--nfmask'], kind: mask32 },
    ctmask: { flags: ['--ctmask'], kind: mask32 },
    leftShiftMark: { flags: ['--left-shift-mark'], kind: uint(0, 31), omitWhen: 0 },
    rightShiftMark: { flags: ['--right-shift-mark'], kind: uint(0, 31), omitWhen: 0 },
    /** Input only: `--mask M` with save/restore sets nfmask and ctmask to M; never printed. */
    mask: { flags: ['--mask'], kind: mask32 },
  },
  finish(draft, _family, field) {
    exactlyOne(draft, ['setXmark', 'saveMark', 'restoreMark'], field, 'CONNMARK');
    atMostOne(draft, ['leftShiftMark', 'rightShiftMark'], field, 'CONNMARK');
    if (draft.setXmark !== undefined) {
      const extra = ['nfmask', 'ctmask', 'mask'].find((k) => draft[k] !== undefined);
      if (extra !== undefined)
        throw invalid(
          `${field}.${extra}`,
          `CONNMARK: ${extra} goes with saveMark or restoreMark; give the mask in setXmark`,
        );
      return;
    }
    if (draft.mask !== undefined) {
      atMostOne(draft, ['mask', 'nfmask'], field, 'CONNMARK');
      atMostOne(draft, ['mask', 'ctmask'], field, 'CONNMARK');
      draft.nfmask = draft.mask;
      draft.ctmask = draft.mask;
      delete draft.mask;
    }
    draft.nfmask ??= hex(U32_MAX);
    draft.ctmask ??= hex(U32_MAX);
  },
});

// ------------------------------------------------------------ TCPMSS, DSCP

/** Largest MSS: the IP maximum minus the IP and TCP headers. */
const MAX_MSS: Readonly<Record<Family, number>> = { ipv4: 65535 - 20, ipv6: 65535 - 40 };
const mss: ValueKind<number> = kind((input, ctx) => checkUint(input, ctx.field, 0, MAX_MSS[ctx.family]));

export const TCPMSS = defineExtension({
  name: 'TCPMSS',
  summary: 'rewrite the MSS option of TCP SYN packets (use with -p tcp --tcp-flags SYN,RST SYN)',
  options: {
    setMss: { flags: ['--set-mss'], kind: mss },
    clampMssToPmtu: { flags: ['--clamp-mss-to-pmtu'], kind: flag },
  },
  finish(draft, _family, field) {
    exactlyOne(draft, ['setMss', 'clampMssToPmtu'], field, 'TCPMSS');
  },
});

/** DiffServ class names (libxtables dscp_helper), case-insensitive as there. */
const DSCP_CLASSES: Readonly<Record<string, number>> = {
  CS0: 0x00,
  CS1: 0x08,
  CS2: 0x10,
  CS3: 0x18,
  CS4: 0x20,
  CS5: 0x28,
  CS6: 0x30,
  CS7: 0x38,
  BE: 0x00,
  AF11: 0x0a,
  AF12: 0x0c,
  AF13: 0x0e,
  AF21: 0x12,
  AF22: 0x14,
  AF23: 0x16,
  AF31: 0x1a,
  AF32: 0x1c,
  AF33: 0x1e,
  AF41: 0x22,
  AF42: 0x24,
  AF43: 0x26,
  EF: 0x2e,
};
function dscpClass(input: unknown, field: string): number {
  const key = typeof input === 'string' ? input.toUpperCase() : '';
  const v = lookup(DSCP_CLASSES, key);
  if (v === undefined) {
    throw invalid(
      field,
      `${field} "${preview(String(input))}" is not a DSCP class (${Object.keys(DSCP_CLASSES).join(', ')})`,
    );
  }
  return v;
}
/** 0 to 63 (or a class name in typed input), printed as iptables does: `0x0a`. */
const dscp: ValueKind<number> = kind(
  (input, ctx) =>
    typeof input === 'string' && /^[A-Za-z]/.test(input)
      ? dscpClass(input, ctx.field)
      : checkUint(input, ctx.field, 0, 63),
  (v) => `0x${v.toString(16).padStart(2, '0')}`,
);

export const DSCP = defineExtension({
  name: 'DSCP',
  summary: 'set the DSCP field (mangle table); --set-dscp-class is read as its value',
  options: {
    setDscp: {
      flags: ['--set-dscp'],
      kind: dscp,
      shorthands: {
        '--set-dscp-class': { arity: 1, toValue: (args, ctx) => dscpClass(args[0], ctx.field) },
      },
    },
  },
  finish(draft, _family, field) {
    if (draft.setDscp === undefined)
      throw invalid(`${field}.setDscp`, 'DSCP needs --set-dscp or --set-dscp-class (setDscp)');
  },
});

// ----------------------------------------------------------- NOTRACK, CT

export const NOTRACK = verdict('NOTRACK', 'do not track this connection (raw table)');
export const TRACE = verdict('TRACE', 'trace the packet through the rules (raw table)');

const CT_EVENTS = [
  'new',
  'related',
  'destroy',
  'reply',
  'assured',
  'protoinfo',
  'helper',
  'mark',
  'natseqinfo',
  'secmark',
] as const;
export type CtEvent = (typeof CT_EVENTS)[number];

/** A conntrack zone: 0 to 65535, or `mark` (the zone is the packet mark). */
const zone: ValueKind<number | 'mark'> = kind((input, ctx) =>
  input === 'mark' ? 'mark' : checkUint(input, ctx.field, 0, 65535),
);

export const CT = defineExtension({
  name: 'CT',
  summary: 'set conntrack parameters for the connection: notrack, helper, events, zone, timeout (raw table)',
  options: {
    notrack: { flags: ['--notrack'], kind: flag },
    helper: { flags: ['--helper'], kind: name(15) },
    ctevents: { flags: ['--ctevents'], kind: wordSet(CT_EVENTS, {}, true) },
    expevents: { flags: ['--expevents'], kind: wordSet(['new'] as const, {}, true) },
    zone: { flags: ['--zone'], kind: zone, omitWhen: 0 },
    zoneOrig: { flags: ['--zone-orig'], kind: zone, omitWhen: 0 },
    zoneReply: { flags: ['--zone-reply'], kind: zone, omitWhen: 0 },
    /** A cttimeout policy name (created with `nfct add timeout`); the kernel refuses unknown names. */
    timeout: { flags: ['--timeout'], kind: name(31) },
  },
  finish(draft, _family, field) {
    atMostOne(draft, ['zone', 'zoneOrig', 'zoneReply'], field, 'CT');
  },
});

// ---------------------------------------------------------------- registry

export const TARGETS = [
  ACCEPT,
  DROP,
  RETURN,
  QUEUE,
  REJECT,
  LOG,
  NFLOG,
  MASQUERADE,
  SNAT,
  DNAT,
  REDIRECT,
  MARK,
  CONNMARK,
  TCPMSS,
  DSCP,
  NOTRACK,
  TRACE,
  CT,
] as const;

export type AcceptTarget = { readonly target: 'ACCEPT' } & ExtensionValues<typeof ACCEPT.options>;
export type DropTarget = { readonly target: 'DROP' } & ExtensionValues<typeof DROP.options>;
export type ReturnTarget = { readonly target: 'RETURN' } & ExtensionValues<typeof RETURN.options>;
export type QueueTarget = { readonly target: 'QUEUE' } & ExtensionValues<typeof QUEUE.options>;
export type RejectTarget = { readonly target: 'REJECT' } & ExtensionValues<typeof REJECT.options>;
export type LogTarget = { readonly target: 'LOG' } & ExtensionValues<typeof LOG.options>;
export type NflogTarget = { readonly target: 'NFLOG' } & ExtensionValues<typeof NFLOG.options>;
export type MasqueradeTarget = { readonly target: 'MASQUERADE' } & ExtensionValues<typeof MASQUERADE.options>;
export type SnatTarget = { readonly target: 'SNAT' } & ExtensionValues<typeof SNAT.options>;
export type DnatTarget = { readonly target: 'DNAT' } & ExtensionValues<typeof DNAT.options>;
export type RedirectTarget = { readonly target: 'REDIRECT' } & ExtensionValues<typeof REDIRECT.options>;
export type MarkTarget = { readonly target: 'MARK' } & ExtensionValues<typeof MARK.options>;
/** `mask` is input only (folded into nfmask and ctmask), so the canonical value never has it. */
export type ConnmarkTarget = { readonly target: 'CONNMARK' } & Omit<
  ExtensionValues<typeof CONNMARK.options>,
  'mask'
>;
export type TcpmssTarget = { readonly target: 'TCPMSS' } & ExtensionValues<typeof TCPMSS.options>;
export type DscpTarget = { readonly target: 'DSCP' } & ExtensionValues<typeof DSCP.options>;
export type NotrackTarget = { readonly target: 'NOTRACK' } & ExtensionValues<typeof NOTRACK.options>;
export type TraceTarget = { readonly target: 'TRACE' } & ExtensionValues<typeof TRACE.options>;
export type CtTarget = { readonly target: 'CT' } & ExtensionValues<typeof CT.options>;

export type TypedTarget =
  | AcceptTarget
  | DropTarget
  | ReturnTarget
  | QueueTarget
  | RejectTarget
  | LogTarget
  | NflogTarget
  | MasqueradeTarget
  | SnatTarget
  | DnatTarget
  | RedirectTarget
  | MarkTarget
  | ConnmarkTarget
  | TcpmssTarget
  | DscpTarget
  | NotrackTarget
  | TraceTarget
  | CtTarget;
