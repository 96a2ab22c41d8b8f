/**
 * Typed targets (`-j NAME ...`). Each table lists its options in the order
 * iptables-save prints them; see define.ts. A jump or goto to a user chain is
 * `{ jump: CHAIN }` / `{ goto: CHAIN }` (see model.ts); a target not listed
 * here is kept as a validated token list (RawTarget).
 */
import { invalid } from '../errors.js';
import type { Family } from '../family.js';
import { MAX_LOG_PREFIX, MAX_NFLOG_PREFIX } from '../validate.js';
import { defineExtension, type ExtensionValues } from './define.js';
import { flag, text, uint, type ValueKind } from './kinds.js';

const verdict = <const N extends string>(name: N, summary: string) =>
  defineExtension({ name, summary, options: {} });

export const ACCEPT = verdict('ACCEPT', 'let the packet through');
export const DROP = verdict('DROP', 'discard the packet silently');
export const RETURN = verdict('RETURN', 'return to the calling chain');
export const QUEUE = verdict('QUEUE', 'pass the packet to user space (queue 0)');

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
const REJECT_ALIASES: Readonly<Record<string, string>> = {
  'net-unreach': 'icmp-net-unreachable',
  'host-unreach': 'icmp-host-unreachable',
  'port-unreach': 'icmp-port-unreachable',
  'proto-unreach': 'icmp-proto-unreachable',
  'net-prohib': 'icmp-net-prohibited',
  'host-prohib': 'icmp-host-prohibited',
  'admin-prohib': 'icmp-admin-prohibited',
  'tcp-rst': 'tcp-reset',
  'no-route': 'icmp6-no-route',
  'adm-prohibited': 'icmp6-adm-prohibited',
  'addr-unreach': 'icmp6-addr-unreachable',
  'policy-fail': 'icmp6-policy-fail',
  'reject-route': 'icmp6-reject-route',
};
type RejectWith = (typeof REJECT_V4)[number] | (typeof REJECT_V6)[number];
const rejectWith: ValueKind<RejectWith> = {
  arity: 1,
  normalize(input, ctx) {
    const allowed: readonly string[] = ctx.family === 'ipv4' ? REJECT_V4 : REJECT_V6;
    const t = typeof input === 'string' ? input : '';
    const v6alias = ctx.family === 'ipv6' && t === 'port-unreach' ? 'icmp6-port-unreachable' : undefined;
    const word = allowed.includes(t) ? t : (v6alias ?? REJECT_ALIASES[t]);
    if (word === undefined || !allowed.includes(word)) {
      throw invalid(ctx.field, `${ctx.field} must be one of ${allowed.join(', ')} for ${ctx.family}`);
    }
    return word as RejectWith;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [v],
};
export const REJECT = defineExtension({
  name: 'REJECT',
  summary: 'discard the packet and answer with an ICMP error or TCP reset',
  options: {
    rejectWith: {
      flags: ['--reject-with'],
      kind: rejectWith,
      fill: (family: Family) => (family === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'),
    },
  },
});

const LOG_LEVELS: Readonly<Record<string, number>> = {
  emerg: 0,
  panic: 0,
  alert: 1,
  crit: 2,
  err: 3,
  error: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};
const logLevel: ValueKind<number> = {
  arity: 1,
  normalize(input, ctx) {
    if (typeof input === 'string' && LOG_LEVELS[input.toLowerCase()] !== undefined)
      return LOG_LEVELS[input.toLowerCase()] ?? 4;
    return uint(0, 7).normalize(input, ctx);
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [String(v)],
};
export const LOG = defineExtension({
  name: 'LOG',
  summary: 'log the packet to the kernel log (root network namespace only) and continue',
  options: {
    prefix: { flags: ['--log-prefix'], kind: text(MAX_LOG_PREFIX) },
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
    prefix: { flags: ['--nflog-prefix'], kind: text(MAX_NFLOG_PREFIX) },
    group: { flags: ['--nflog-group'], kind: uint(0, 65535), omitWhen: 0 },
    size: { flags: ['--nflog-size'], kind: uint(0, 0xffffffff) },
    range: { flags: ['--nflog-range'], kind: uint(0, 0xffffffff) },
    threshold: { flags: ['--nflog-threshold'], kind: uint(1, 65535), omitWhen: 1 },
  },
});

export const NOTRACK = verdict('NOTRACK', 'do not track this connection (raw table)');
export const TRACE = verdict('TRACE', 'trace the packet through the rules (raw table)');

export const TARGETS = [ACCEPT, DROP, RETURN, QUEUE, REJECT, LOG, NFLOG, NOTRACK, TRACE] as const;

type T<N extends string, S extends { options: object }> = { readonly target: N } & ExtensionValues<
  // biome-ignore lint/suspicious/noExplicitAny: option tables are checked where they are defined
  S['options'] & Record<string, any>
>;
export type AcceptTarget = T<'ACCEPT', typeof ACCEPT>;
export type DropTarget = T<'DROP', typeof DROP>;
export type ReturnTarget = T<'RETURN', typeof RETURN>;
export type QueueTarget = T<'QUEUE', typeof QUEUE>;
export type RejectTarget = T<'REJECT', typeof REJECT>;
export type LogTarget = T<'LOG', typeof LOG>;
export type NflogTarget = T<'NFLOG', typeof NFLOG>;
export type NotrackTarget = T<'NOTRACK', typeof NOTRACK>;
export type TraceTarget = T<'TRACE', typeof TRACE>;

export type TypedTarget =
  | AcceptTarget
  | DropTarget
  | ReturnTarget
  | QueueTarget
  | RejectTarget
  | LogTarget
  | NflogTarget
  | NotrackTarget
  | TraceTarget;
