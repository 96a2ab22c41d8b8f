/**
 * The `iptables -L` form of each match: what the match extension's `print` function of
 * iptables 1.8.9 writes (libxt_tcp.c `tcp_print`, libxt_recent.c `recent_print`, ...),
 * reproduced from the options iptables-save printed. Each printer returns its text with the
 * leading space iptables writes. test/cli/format-kernel.test.ts checks every printer here
 * against the real `iptables -L` / `ip6tables -L` output, numeric and with names.
 *
 * A match without a printer here (an extension Portcullis does not type, or one not yet
 * reproduced) prints as ` NAME --option value ...`, its save form: readable, and visibly
 * not iptables' own wording.
 */
import { writeValue } from '../../iptables/tokenize.js';
import {
  hex,
  icmpName,
  icmpNumbers,
  type PrintContext,
  port,
  portRange,
  valueMask,
} from './print-context.js';
import { arg, type Extension, type Opt, opt } from './rule-text.js';

type Printer = (m: Extension, ctx: PrintContext) => string;

const bang = (o: Opt | undefined, text = '!') => (o?.negated ? text : '');

/** libxt_tcp/udp `print_ports`: ` spt:22`, ` dpts:!1024:65535`. */
function ports(name: string, o: Opt | undefined, ctx: PrintContext, protocol: string): string {
  if (o === undefined) return '';
  const { min, max } = portRange(o.args[0] ?? '');
  const inv = bang(o);
  if (min === max) return ` ${name}:${inv}${port(ctx, min, protocol)}`;
  return ` ${name}s:${inv}${port(ctx, min, protocol)}:${port(ctx, max, protocol)}`;
}

const TCP_FLAGS: ReadonlyArray<readonly [string, number]> = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
  ['ALL', 0x3f],
  ['NONE', 0],
];

function tcpFlagBits(text: string): number {
  let bits = 0;
  for (const name of text.split(',')) bits |= TCP_FLAGS.find(([n]) => n === name.toUpperCase())?.[1] ?? 0;
  return bits;
}

/** libxt_tcp `print_tcpf`. */
function tcpFlagNames(bits: number): string {
  const names: string[] = [];
  let rest = bits;
  for (const [name, bit] of TCP_FLAGS.slice(0, 6)) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  return names.length === 0 ? 'NONE' : names.join(',');
}

const hex2 = (n: number) => `0x${n.toString(16).toUpperCase().padStart(2, '0')}`;

function tcp(m: Extension, ctx: PrintContext): string {
  let out = ' tcp';
  out += ports('spt', opt(m, '--sport', '--source-port'), ctx, 'tcp');
  out += ports('dpt', opt(m, '--dport', '--destination-port'), ctx, 'tcp');
  const option = opt(m, '--tcp-option');
  if (option) out += ` option=${bang(option)}${option.args[0] ?? ''}`;
  const syn = opt(m, '--syn');
  const flags = opt(m, '--tcp-flags');
  const mask = flags ? tcpFlagBits(flags.args[0] ?? '') : syn ? 0x17 : 0;
  const comp = flags ? tcpFlagBits(flags.args[1] ?? '') : syn ? 0x02 : 0;
  const inverted = (flags ?? syn)?.negated === true;
  if (mask || inverted) {
    out += ` flags:${inverted ? '!' : ''}`;
    out += ctx.numeric ? `${hex2(mask)}/${hex2(comp)}` : `${tcpFlagNames(mask)}/${tcpFlagNames(comp)}`;
  }
  return out;
}

function udp(m: Extension, ctx: PrintContext): string {
  return (
    ' udp' +
    ports('spt', opt(m, '--sport', '--source-port'), ctx, 'udp') +
    ports('dpt', opt(m, '--dport', '--destination-port'), ctx, 'udp')
  );
}

/** libipt_icmp / libip6t_icmp6 `print_icmptype`, after the ` icmp` / ` ipv6-icmp` word. */
function icmpLike(prefix: string, flag: string): Printer {
  return (m, ctx) => {
    const o = opt(m, flag);
    const t = o ? icmpNumbers(ctx.family, o.args[0] ?? '') : undefined;
    if (!t) return ` ${prefix}`;
    if (!ctx.numeric) {
      const name = icmpName(ctx.family, t.type, t.codeMin, t.codeMax);
      if (name !== undefined) return ` ${prefix} ${bang(o)}${name}`;
    }
    let out = ` ${prefix}${o?.negated ? ' !' : ''}type ${t.type}`;
    if (t.codeMin === t.codeMax) out += ` code ${t.codeMin}`;
    else if (t.codeMin !== 0 || t.codeMax !== 255) out += ` codes ${t.codeMin}-${t.codeMax}`;
    return out;
  };
}

function multiport(m: Extension, ctx: PrintContext): string {
  const o = opt(m, '--dports', '--destination-ports', '--sports', '--source-ports', '--ports');
  if (!o) return ' multiport';
  const kind =
    o.flag.includes('dport') || o.flag.includes('destination')
      ? 'dports'
      : o.flag.includes('sport') || o.flag.includes('source')
        ? 'sports'
        : 'ports';
  const proto = ['tcp', 'udp', 'udplite', 'sctp', 'dccp'].includes(ctx.protocol ?? '')
    ? ctx.protocol
    : undefined;
  const list = (o.args[0] ?? '')
    .split(',')
    .map((p) =>
      p
        .split(':')
        .map((x) => port(ctx, x, proto))
        .join(':'),
    )
    .join(',');
  return ` multiport ${kind} ${o.negated ? ' !' : ''}${list}`;
}

const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const CT_STATUS = ['EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED'];

/** Names of a comma list in the order `order` gives them (how the kernel's bits print). */
function ordered(text: string, order: readonly string[]): string {
  const given = text.split(',').map((s) => s.toUpperCase());
  const known = order.filter((s) => given.includes(s));
  const rest = given.filter((s) => !order.includes(s));
  return [...known, ...rest].join(',');
}

function state(m: Extension): string {
  const o = opt(m, '--state');
  return `${o?.negated ? ' !' : ''} state ${ordered(o?.args[0] ?? '', CT_STATES)}`;
}

/** libxt_conntrack `conntrack_dump_addr`: `192.0.2.1` for a host, else with the prefix. */
function ctAddress(text: string): string {
  return text.replace(/\/(32|128)$/, '');
}

function conntrack(m: Extension): string {
  let out = '';
  const item = (flag: string, label: string, value: (o: Opt) => string) => {
    const o = opt(m, flag);
    if (o) out += `${o.negated ? ' !' : ''} ${label} ${value(o)}`;
  };
  item('--ctstate', 'ctstate', (o) => ordered(o.args[0] ?? '', CT_STATES));
  item('--ctproto', 'ctproto', (o) => o.args[0] ?? '');
  for (const f of ['ctorigsrc', 'ctorigdst', 'ctreplsrc', 'ctrepldst'])
    item(`--${f}`, f, (o) => ctAddress(o.args[0] ?? ''));
  for (const f of ['ctorigsrcport', 'ctorigdstport', 'ctreplsrcport', 'ctrepldstport'])
    item(`--${f}`, f, (o) => o.args[0] ?? '');
  item('--ctstatus', 'ctstatus', (o) => ordered(o.args[0] ?? '', ['NONE', ...CT_STATUS]));
  item('--ctexpire', 'ctexpire', (o) => o.args[0] ?? '');
  const dir = opt(m, '--ctdir');
  if (dir) out += ` ctdir ${dir.args[0] ?? ''}`;
  return out;
}

function recent(m: Extension): string {
  const action = opt(m, '--set', '--rcheck', '--update', '--remove');
  let out = `${action?.negated ? ' !' : ''} recent:`;
  out +=
    { '--set': ' SET', '--rcheck': ' CHECK', '--update': ' UPDATE', '--remove': ' REMOVE' }[
      action?.flag ?? ''
    ] ?? '';
  const seconds = arg(m, '--seconds');
  if (seconds !== undefined && seconds !== '0') out += ` seconds: ${seconds}`;
  if (opt(m, '--reap')) out += ' reap';
  const hits = arg(m, '--hitcount');
  if (hits !== undefined && hits !== '0') out += ` hit_count: ${hits}`;
  if (opt(m, '--rttl')) out += ' TTL-Match';
  out += ` name: ${arg(m, '--name') ?? 'DEFAULT'}`;
  out += opt(m, '--rdest') ? ' side: dest' : ' side: source';
  const mask = arg(m, '--mask');
  if (mask !== undefined) out += ` mask: ${mask}`;
  return out;
}

function limit(m: Extension): string {
  return ` limit: avg ${arg(m, '--limit') ?? '3/hour'} burst ${arg(m, '--limit-burst') ?? '5'}`;
}

function hashlimit(m: Extension): string {
  const above = opt(m, '--hashlimit-above');
  const rate = above?.args[0] ?? arg(m, '--hashlimit-upto', '--hashlimit') ?? '';
  let out = `${above ? ' limit: above' : ' limit: up to'} ${rate} burst ${arg(m, '--hashlimit-burst') ?? '5'}`;
  const mode = arg(m, '--hashlimit-mode');
  if (mode !== undefined) out += ` mode ${mode.split(',').join('-')}`;
  for (const [flag, label] of [
    ['--hashlimit-htable-size', 'htable-size'],
    ['--hashlimit-htable-max', 'htable-max'],
    ['--hashlimit-htable-gcinterval', 'htable-gcinterval'],
    ['--hashlimit-htable-expire', 'htable-expire'],
    ['--hashlimit-srcmask', 'srcmask'],
    ['--hashlimit-dstmask', 'dstmask'],
  ] as const) {
    const v = arg(m, flag);
    if (v !== undefined) out += ` ${label} ${v}`;
  }
  if (opt(m, '--hashlimit-rate-match')) out += ' rate-match';
  const interval = arg(m, '--hashlimit-rate-interval');
  if (interval !== undefined && interval !== '1') out += ` rate-interval ${interval}`;
  return out;
}

function markLike(label: string, gap: string): Printer {
  return (m) => {
    const o = opt(m, '--mark');
    const { value, mask } = valueMask(o?.args[0] ?? '0');
    const shown =
      mask === undefined || mask === 0xffffffff
        ? hex(String(value))
        : `${hex(String(value))}/${hex(String(mask))}`;
    return ` ${label}${o?.negated ? ' !' : gap} ${shown}`;
  };
}

function iprange(m: Extension): string {
  let out = '';
  const src = opt(m, '--src-range');
  if (src) out += ` source IP range ${bang(src, '! ')}${src.args[0] ?? ''}`;
  const dst = opt(m, '--dst-range');
  if (dst) out += ` destination IP range ${bang(dst, '! ')}${dst.args[0] ?? ''}`;
  return out;
}

const ADDRTYPES = [
  'UNSPEC',
  'UNICAST',
  'LOCAL',
  'BROADCAST',
  'ANYCAST',
  'MULTICAST',
  'BLACKHOLE',
  'UNREACHABLE',
  'PROHIBIT',
  'THROW',
  'NAT',
  'XRESOLVE',
];

function addrtype(m: Extension): string {
  let out = ' ADDRTYPE match';
  const src = opt(m, '--src-type');
  if (src) out += ` src-type ${bang(src)}${ordered(src.args[0] ?? '', ADDRTYPES)}`;
  const dst = opt(m, '--dst-type');
  if (dst) out += ` dst-type ${bang(dst)}${ordered(dst.args[0] ?? '', ADDRTYPES)}`;
  if (opt(m, '--limit-iface-in')) out += ' limit-in';
  if (opt(m, '--limit-iface-out')) out += ' limit-out';
  return out;
}

function length(m: Extension): string {
  const o = opt(m, '--length');
  const { min, max } = portRange(o?.args[0] ?? '');
  return ` length ${bang(o)}${min === max ? min : `${min}:${max}`}`;
}

function ttlLike(label: string, prefix: string): Printer {
  const ops: Readonly<Record<string, string>> = { eq: '==', ne: '!=', lt: '<', gt: '>' };
  return (m) => {
    const o = m.options.find((x) => x.flag.startsWith(`--${prefix}-`));
    if (!o) return ` ${label} match`;
    let op = o.flag.slice(prefix.length + 3);
    if (o.negated && op === 'eq') op = 'ne';
    return ` ${label} match ${label} ${ops[op] ?? op} ${o.args[0] ?? ''}`;
  };
}

function pkttype(m: Extension): string {
  const o = opt(m, '--pkt-type');
  return ` PKTTYPE ${o?.negated ? '!=' : '='} ${o?.args[0] ?? ''}`;
}

function owner(m: Extension, ctx: PrintContext): string {
  let out = '';
  const item = (flag: string, label: string, name?: (id: number) => string | undefined) => {
    const o = opt(m, flag);
    if (!o) return;
    out += `${o.negated ? ' !' : ''} ${label}`;
    const v = o.args[0];
    if (v === undefined) return;
    const named = !ctx.numeric && name && /^\d+$/.test(v) ? name(Number(v)) : undefined;
    out += ` ${named ?? v}`;
  };
  item('--socket-exists', 'owner socket exists');
  item('--uid-owner', 'owner UID match', (id) => ctx.names.user(id));
  item('--gid-owner', 'owner GID match', (id) => ctx.names.group(id));
  item('--suppl-groups', 'incl. suppl. groups');
  return out;
}

function physdev(m: Extension): string {
  let out = ' PHYSDEV match';
  for (const flag of [
    '--physdev-is-in',
    '--physdev-in',
    '--physdev-is-out',
    '--physdev-out',
    '--physdev-is-bridged',
  ]) {
    const o = opt(m, flag);
    if (o) out += `${o.negated ? ' !' : ''} ${flag}${o.args[0] === undefined ? '' : ` ${o.args[0]}`}`;
  }
  return out;
}

function set(m: Extension): string {
  const o = opt(m, '--match-set');
  return `${o?.negated ? ' !' : ''} match-set ${o?.args[0] ?? ''} ${o?.args[1] ?? ''}`;
}

function comment(m: Extension): string {
  return ` /* ${arg(m, '--comment') ?? ''} */`;
}

function mac(m: Extension): string {
  const o = opt(m, '--mac-source');
  return ` MAC ${bang(o, '! ')}${o?.args[0] ?? ''}`;
}

const PRINTERS: Readonly<Record<string, Printer>> = {
  tcp,
  udp,
  icmp: icmpLike('icmp', '--icmp-type'),
  icmp6: icmpLike('ipv6-icmp', '--icmpv6-type'),
  multiport,
  state,
  conntrack,
  recent,
  limit,
  hashlimit,
  comment,
  mark: markLike('mark match', ''),
  connmark: markLike('connmark match', ' '),
  iprange,
  mac,
  addrtype,
  length,
  ttl: ttlLike('TTL', 'ttl'),
  hl: ttlLike('HL', 'hl'),
  pkttype,
  owner,
  physdev,
  set,
};

/** The save form of an extension, for one without a printer: ` NAME --opt value`. */
export function saveForm(ext: Extension): string {
  let out = ext.name === '' ? '' : ` ${ext.name}`;
  for (const o of ext.options) {
    out += `${o.negated ? ' !' : ''} ${o.flag}`;
    for (const a of o.args) out += ` ${writeValue(a)}`;
  }
  return out;
}

/** What iptables -L prints for one match. */
export function printMatch(m: Extension, ctx: PrintContext): string {
  const printer = Object.hasOwn(PRINTERS, m.name) ? PRINTERS[m.name] : undefined;
  return printer ? printer(m, ctx) : saveForm(m);
}
