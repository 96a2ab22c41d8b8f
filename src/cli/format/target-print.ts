/**
 * The `iptables -L` form of a rule's target: the name in the `target` column, and what the
 * target extension's `print` function of iptables 1.8.9 writes after the matches
 * (libxt_LOG.c `log_print`, libxt_MARK.c `mark_tg_print`, ...). Verdicts, jumps and gotos
 * print nothing (a goto prints `[goto] ` before the matches; list.ts does that).
 * Checked against the kernel by test/cli/format-kernel.test.ts.
 */
import { writeValue } from '../../iptables/tokenize.js';
import { saveForm } from './match-print.js';
import { hex, type PrintContext, valueMask } from './print-context.js';
import { arg, type Extension, opt } from './rule-text.js';

type Printer = (t: Extension, ctx: PrintContext) => string;

/** Target names the kernel knows under another name (the `target` column shows the kernel's). */
const COLUMN_NAME: Readonly<Record<string, string>> = { NOTRACK: 'CT' };

/** What the `target` column shows for a rule's target. */
export function targetColumn(target: Extension | undefined): string {
  if (target === undefined) return '';
  return COLUMN_NAME[target.name] ?? target.name;
}

const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];
const LOG_FLAGS: ReadonlyArray<readonly [string, string, number]> = [
  ['--log-tcp-sequence', 'tcp-sequence', 0x01],
  ['--log-tcp-options', 'tcp-options', 0x02],
  ['--log-ip-options', 'ip-options', 0x04],
  ['--log-uid', 'uid', 0x08],
  ['--log-macdecode', 'macdecode', 0x20],
];

function log(t: Extension, ctx: PrintContext): string {
  const level = arg(t, '--log-level') ?? '4';
  const levelNumber = /^\d+$/.test(level) ? Number(level) : LOG_LEVELS.indexOf(level);
  const flags = LOG_FLAGS.filter(([flag]) => opt(t, flag) !== undefined);
  let out = ' LOG';
  if (ctx.numeric) {
    out += ` flags ${flags.reduce((n, [, , bit]) => n | bit, 0)} level ${levelNumber}`;
  } else {
    out += ` level ${LOG_LEVELS[levelNumber] ?? level}`;
    for (const [, name] of flags) out += ` ${name}`;
  }
  const prefix = arg(t, '--log-prefix');
  if (prefix !== undefined) out += ` prefix "${prefix}"`;
  return out;
}

function reject(t: Extension): string {
  return ` reject-with ${arg(t, '--reject-with') ?? 'icmp-port-unreachable'}`;
}

/** libxt_NAT: ` to:RANGE random persistent`. */
function nat(t: Extension): string {
  let out = '';
  for (const o of t.options)
    if (o.flag === '--to-source' || o.flag === '--to-destination') out += ` to:${o.args[0] ?? ''}`;
  if (opt(t, '--random')) out += ' random';
  if (opt(t, '--random-fully')) out += ' random-fully';
  if (opt(t, '--persistent')) out += ' persistent';
  return out;
}

function masquerade(t: Extension): string {
  let out = '';
  const ports = arg(t, '--to-ports');
  if (ports !== undefined) out += ` masq ports: ${ports}`;
  if (opt(t, '--random')) out += ' random';
  if (opt(t, '--random-fully')) out += ' random-fully';
  return out;
}

function redirect(t: Extension): string {
  let out = '';
  const ports = arg(t, '--to-ports');
  if (ports !== undefined) out += ` redir ports ${ports}`;
  if (opt(t, '--random')) out += ' random';
  return out;
}

/** libxt_MARK `mark_tg_print` / libxt_CONNMARK's set mode: and/or/xor/set/xset. */
function xmark(label: string, value: number, mask: number): string {
  if (value === 0) return ` ${label} and ${hex(String(~mask >>> 0))}`;
  if (value === mask) return ` ${label} or ${hex(String(value))}`;
  if (mask === 0) return ` ${label} xor ${hex(String(value))}`;
  if (mask === 0xffffffff) return ` ${label} set ${hex(String(value))}`;
  return ` ${label} xset ${hex(String(value))}/${hex(String(mask))}`;
}

function markOptions(t: Extension, label: string): string | undefined {
  const xm = arg(t, '--set-xmark');
  if (xm !== undefined) {
    const { value, mask } = valueMask(xm);
    return xmark(label, value, mask ?? 0xffffffff);
  }
  const sm = arg(t, '--set-mark');
  if (sm !== undefined) {
    const { value, mask } = valueMask(sm);
    return xmark(label, value, mask ?? 0xffffffff);
  }
  for (const [flag, word] of [
    ['--and-mark', 'and'],
    ['--or-mark', 'or'],
    ['--xor-mark', 'xor'],
  ] as const) {
    const v = arg(t, flag);
    if (v !== undefined) return ` ${label} ${word} ${hex(v)}`;
  }
  return undefined;
}

function mark(t: Extension): string {
  return markOptions(t, 'MARK') ?? saveForm(t);
}

function connmark(t: Extension): string {
  const set = markOptions(t, 'CONNMARK');
  if (set !== undefined) return set;
  const save = opt(t, '--save-mark');
  const mode = save ? 'save' : opt(t, '--restore-mark') ? 'restore' : undefined;
  if (mode === undefined) return saveForm(t);
  const nf = valueMask(arg(t, '--nfmask') ?? '0xffffffff').value;
  const ct = valueMask(arg(t, '--ctmask') ?? '0xffffffff').value;
  if (nf === 0xffffffff && ct === 0xffffffff) return ` CONNMARK ${mode}`;
  if (nf === ct) return ` CONNMARK ${mode} mask ${hex(String(nf))}`;
  return save
    ? ` CONNMARK save nfmask ${hex(String(nf))} ctmask ~${hex(String(ct))}`
    : ` CONNMARK restore ctmask ${hex(String(ct))} nfmask ~${hex(String(nf))}`;
}

function tcpmss(t: Extension): string {
  const mss = arg(t, '--set-mss');
  return mss === undefined ? ' TCPMSS clamp to PMTU' : ` TCPMSS set ${mss}`;
}

function dscp(t: Extension): string {
  const v = arg(t, '--set-dscp');
  if (v === undefined) return saveForm(t);
  const n = valueMask(v).value;
  return ` DSCP set 0x${n.toString(16).padStart(2, '0')}`;
}

function ct(t: Extension): string {
  if (opt(t, '--notrack')) return ' CT notrack';
  let out = ' CT';
  const helper = arg(t, '--helper');
  if (helper !== undefined) out += ` helper ${helper}`;
  const zone = arg(t, '--zone');
  if (zone !== undefined) out += ` zone ${zone}`;
  return out;
}

function nflog(t: Extension): string {
  let out = '';
  for (const o of t.options) out += ` ${o.flag.slice(2)} ${writeValue(o.args[0] ?? '')}`;
  return out;
}

function nfqueue(t: Extension): string {
  const num = arg(t, '--queue-num');
  const balance = arg(t, '--queue-balance');
  let out = balance !== undefined ? ` NFQUEUE balance ${balance}` : ` NFQUEUE num ${num ?? '0'}`;
  if (opt(t, '--queue-bypass')) out += ' bypass';
  if (opt(t, '--queue-cpu-fanout')) out += ' cpu-fanout';
  return out;
}

const NOTHING: Printer = () => '';

const PRINTERS: Readonly<Record<string, Printer>> = {
  ACCEPT: NOTHING,
  DROP: NOTHING,
  RETURN: NOTHING,
  QUEUE: NOTHING,
  TRACE: NOTHING,
  LOG: log,
  REJECT: reject,
  SNAT: nat,
  DNAT: nat,
  MASQUERADE: masquerade,
  REDIRECT: redirect,
  MARK: mark,
  CONNMARK: connmark,
  TCPMSS: tcpmss,
  DSCP: dscp,
  CT: ct,
  NOTRACK: () => ' NOTRACK',
  NFLOG: nflog,
  NFQUEUE: nfqueue,
};

/** What iptables -L prints for the target after the matches (nothing for a verdict or jump). */
export function printTarget(t: Extension & { goto: boolean }, ctx: PrintContext): string {
  if (t.goto) return '';
  const printer = Object.hasOwn(PRINTERS, t.name) ? PRINTERS[t.name] : undefined;
  if (printer) return printer(t, ctx);
  // A jump to a user chain has no options; an untyped target prints its save form.
  return t.options.length === 0 ? '' : saveForm(t);
}
