/**
 * Typed matches (`-m NAME ...`). Each table lists its options in the order
 * iptables-save prints them; see define.ts for what the fields mean. A match
 * that is not listed here is kept as a validated token list (RawMatch).
 */
import { invalid } from '../errors.js';
import type { Family } from '../family.js';
import { canonicalProtocol } from '../protocol.js';
import { checkUint, MAX_COMMENT } from '../validate.js';
import { choice, defineExtension, type ExtensionValues, type OptionSpec } from './define.js';
import {
  address,
  addressRange,
  cidr,
  flag,
  markMask,
  name,
  oneOf,
  pair,
  portList,
  portRange,
  rate,
  text,
  uint,
  type ValueKind,
  wordSet,
} from './kinds.js';

const FULL_RANGE = '0:65535';
const port = (flags: string[]): OptionSpec<string> => ({
  flags,
  kind: portRange,
  negatable: true,
  omitWhen: FULL_RANGE,
});

const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'] as const;
export type TcpFlag = (typeof TCP_FLAGS)[number];
const tcpFlagSet: ValueKind<readonly TcpFlag[]> = {
  arity: 1,
  normalize(input, ctx) {
    const items = typeof input === 'string' ? input.split(',') : input;
    if (!Array.isArray(items))
      throw invalid(
        ctx.field,
        `${ctx.field} must be a list of TCP flags (${TCP_FLAGS.join(', ')}, ALL, NONE)`,
      );
    const set = new Set<TcpFlag>();
    for (const item of items) {
      const word = typeof item === 'string' ? item.toUpperCase() : '';
      if (word === 'ALL') for (const f of TCP_FLAGS) set.add(f);
      else if (word === 'NONE') continue;
      else {
        const f = TCP_FLAGS.find((x) => x === word);
        if (!f)
          throw invalid(
            ctx.field,
            `${ctx.field}: "${String(item)}" is not a TCP flag (${TCP_FLAGS.join(', ')}, ALL, NONE)`,
          );
        set.add(f);
      }
    }
    return TCP_FLAGS.filter((f) => set.has(f));
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [v.length ? v.join(',') : 'NONE'],
};

export const tcp = defineExtension({
  name: 'tcp',
  summary: 'TCP ports, flags and options (needs protocol tcp)',
  protocol: 'tcp',
  options: {
    sport: port(['--sport', '--source-port']),
    dport: port(['--dport', '--destination-port']),
    tcpOption: { flags: ['--tcp-option'], kind: uint(0, 255), negatable: true },
    tcpFlags: {
      flags: ['--tcp-flags'],
      kind: pair('mask', tcpFlagSet, 'comp', tcpFlagSet),
      negatable: true,
      shorthands: {
        '--syn': { arity: 0, toValue: () => ({ mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] }) },
      },
    },
  },
});

export const udp = defineExtension({
  name: 'udp',
  summary: 'UDP ports (needs protocol udp)',
  protocol: 'udp',
  options: {
    sport: port(['--sport', '--source-port']),
    dport: port(['--dport', '--destination-port']),
  },
});

/** ICMP and ICMPv6 type names iptables accepts, mapped to the numbers iptables-save prints. */
const ICMP_TYPES: Readonly<Record<string, string>> = {
  'echo-reply': '0',
  pong: '0',
  'destination-unreachable': '3',
  'network-unreachable': '3/0',
  'host-unreachable': '3/1',
  'protocol-unreachable': '3/2',
  'port-unreachable': '3/3',
  'fragmentation-needed': '3/4',
  'source-route-failed': '3/5',
  'network-unknown': '3/6',
  'host-unknown': '3/7',
  'network-prohibited': '3/9',
  'host-prohibited': '3/10',
  'TOS-network-unreachable': '3/11',
  'TOS-host-unreachable': '3/12',
  'communication-prohibited': '3/13',
  'host-precedence-violation': '3/14',
  'precedence-cutoff': '3/15',
  'source-quench': '4',
  redirect: '5',
  'network-redirect': '5/0',
  'host-redirect': '5/1',
  'TOS-network-redirect': '5/2',
  'TOS-host-redirect': '5/3',
  'echo-request': '8',
  ping: '8',
  'router-advertisement': '9',
  'router-solicitation': '10',
  'time-exceeded': '11',
  'ttl-exceeded': '11',
  'ttl-zero-during-transit': '11/0',
  'ttl-zero-during-reassembly': '11/1',
  'parameter-problem': '12',
  'ip-header-bad': '12/0',
  'required-option-missing': '12/1',
  'timestamp-request': '13',
  'timestamp-reply': '14',
  'address-mask-request': '17',
  'address-mask-reply': '18',
};
const ICMP6_TYPES: Readonly<Record<string, string>> = {
  'destination-unreachable': '1',
  'no-route': '1/0',
  'communication-prohibited': '1/1',
  'beyond-scope': '1/2',
  'address-unreachable': '1/3',
  'port-unreachable': '1/4',
  'failed-policy': '1/5',
  'reject-route': '1/6',
  'packet-too-big': '2',
  'time-exceeded': '3',
  'ttl-exceeded': '3',
  'ttl-zero-during-transit': '3/0',
  'ttl-zero-during-reassembly': '3/1',
  'parameter-problem': '4',
  'bad-header': '4/0',
  'unknown-header-type': '4/1',
  'unknown-option': '4/2',
  'echo-request': '128',
  ping: '128',
  'echo-reply': '129',
  pong: '129',
  'router-solicitation': '133',
  'router-advertisement': '134',
  'neighbour-solicitation': '135',
  'neighbor-solicitation': '135',
  'neighbour-advertisement': '136',
  'neighbor-advertisement': '136',
  redirect: '137',
};
const icmpType = (names: Readonly<Record<string, string>>, anyWord: boolean): ValueKind<string> => ({
  arity: 1,
  normalize(input, ctx) {
    const t = typeof input === 'number' ? String(input) : input;
    if (typeof t !== 'string')
      throw invalid(ctx.field, `${ctx.field} must be an ICMP type name or number like 8 or 3/1`);
    if (anyWord && t === 'any') return 'any';
    const named = names[t] ?? Object.entries(names).find(([k]) => k.toLowerCase() === t.toLowerCase())?.[1];
    if (named) return named;
    const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(t);
    if (!m)
      throw invalid(
        ctx.field,
        `${ctx.field} "${t.slice(0, 40)}" is not an ICMP type name or number like 8 or 3/1`,
      );
    const type = checkUint(m[1], ctx.field, 0, 255);
    return m[2] === undefined ? String(type) : `${type}/${checkUint(m[2], ctx.field, 0, 255)}`;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [v],
});

export const icmp = defineExtension({
  name: 'icmp',
  summary: 'ICMP type and code (IPv4; needs protocol icmp)',
  protocol: 'icmp',
  families: ['ipv4'],
  options: { icmpType: { flags: ['--icmp-type'], kind: icmpType(ICMP_TYPES, true), negatable: true } },
});

export const icmp6 = defineExtension({
  name: 'icmp6',
  summary: 'ICMPv6 type and code (IPv6; needs protocol ipv6-icmp)',
  protocol: 'ipv6-icmp',
  families: ['ipv6'],
  options: { icmpv6Type: { flags: ['--icmpv6-type'], kind: icmpType(ICMP6_TYPES, false), negatable: true } },
});

export const multiport = defineExtension({
  name: 'multiport',
  summary: 'up to 15 ports or ranges (needs protocol tcp, udp, udplite, sctp or dccp)',
  options: {
    sports: { flags: ['--sports', '--source-ports'], kind: portList, negatable: true },
    dports: { flags: ['--dports', '--destination-ports'], kind: portList, negatable: true },
    ports: { flags: ['--ports'], kind: portList, negatable: true },
  },
});

const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'] as const;
export const state = defineExtension({
  name: 'state',
  summary: 'connection tracking state (legacy form of conntrack --ctstate)',
  options: {
    state: {
      flags: ['--state'],
      kind: wordSet(['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED']),
      negatable: true,
    },
  },
});

const protocolNumber: ValueKind<number> = {
  arity: 1,
  normalize(input, ctx) {
    const p = canonicalProtocol(input, ctx.field);
    if (p.number === undefined)
      throw invalid(ctx.field, `${ctx.field}: protocol "${String(input)}" has no known number`);
    return p.number;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [String(v)],
};
const uintRange = (max: number): ValueKind<string> => ({
  arity: 1,
  normalize(input, ctx) {
    const t = String(input);
    const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(t);
    if (!m) throw invalid(ctx.field, `${ctx.field} must be a number or range like 10:20`);
    const lo = checkUint(m[1], ctx.field, 0, max);
    const hi = m[2] === undefined ? lo : checkUint(m[2], ctx.field, 0, max);
    if (lo > hi) throw invalid(ctx.field, `${ctx.field} range "${t}" starts after it ends`);
    return lo === hi ? String(lo) : `${lo}:${hi}`;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [v],
});

export const conntrack = defineExtension({
  name: 'conntrack',
  summary: 'connection tracking state, addresses, ports, status, expiry and direction',
  options: {
    ctstate: { flags: ['--ctstate'], kind: wordSet(CT_STATES), negatable: true },
    ctproto: { flags: ['--ctproto'], kind: protocolNumber, negatable: true },
    ctorigsrc: { flags: ['--ctorigsrc'], kind: cidr, negatable: true },
    ctorigdst: { flags: ['--ctorigdst'], kind: cidr, negatable: true },
    ctreplsrc: { flags: ['--ctreplsrc'], kind: cidr, negatable: true },
    ctrepldst: { flags: ['--ctrepldst'], kind: cidr, negatable: true },
    ctorigsrcport: { flags: ['--ctorigsrcport'], kind: portRange, negatable: true },
    ctorigdstport: { flags: ['--ctorigdstport'], kind: portRange, negatable: true },
    ctreplsrcport: { flags: ['--ctreplsrcport'], kind: portRange, negatable: true },
    ctrepldstport: { flags: ['--ctrepldstport'], kind: portRange, negatable: true },
    ctstatus: {
      flags: ['--ctstatus'],
      kind: wordSet(['NONE', 'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED']),
      negatable: true,
    },
    ctexpire: { flags: ['--ctexpire'], kind: uintRange(0xffffffff), negatable: true },
    ctdir: { flags: ['--ctdir'], kind: oneOf(['ORIGINAL', 'REPLY']) },
  },
});

const allOnes = (family: Family) =>
  family === 'ipv4' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
export const recent = defineExtension({
  name: 'recent',
  summary: 'lists of recently seen addresses (set, rcheck, update, remove) with time and hit count limits',
  options: {
    action: choice(
      { '--set': 'set', '--rcheck': 'rcheck', '--update': 'update', '--remove': 'remove' },
      { negatable: true },
    ),
    seconds: { flags: ['--seconds'], kind: uint(0, 0xffffffff), omitWhen: 0 },
    reap: { flags: ['--reap'], kind: flag },
    hitcount: { flags: ['--hitcount'], kind: uint(0, 0xffffffff), omitWhen: 0 },
    rttl: { flags: ['--rttl'], kind: flag },
    name: { flags: ['--name'], kind: name(200), fill: () => 'DEFAULT' },
    mask: { flags: ['--mask'], kind: address, fill: allOnes },
    side: choice({ '--rsource': 'rsource', '--rdest': 'rdest' }, { fill: () => 'rsource' }),
  },
  finish(draft, _family, field) {
    if (draft.action === undefined)
      throw invalid(field, `recent needs one of --set, --rcheck, --update or --remove (action)`);
  },
});

export const limit = defineExtension({
  name: 'limit',
  summary: 'average rate limit with a burst',
  options: {
    limit: { flags: ['--limit'], kind: rate(10000), fill: () => '3/hour' },
    limitBurst: { flags: ['--limit-burst'], kind: uint(1, 10000), omitWhen: 5 },
  },
});

export const comment = defineExtension({
  name: 'comment',
  summary: 'a comment kept with the rule',
  options: { comment: { flags: ['--comment'], kind: text(MAX_COMMENT) } },
  finish(draft, _f, field) {
    if (draft.comment === undefined) throw invalid(`${field}.comment`, 'comment needs --comment TEXT');
  },
});

export const mark = defineExtension({
  name: 'mark',
  summary: 'the packet mark (value[/mask])',
  options: { mark: { flags: ['--mark'], kind: markMask, negatable: true } },
});

export const connmark = defineExtension({
  name: 'connmark',
  summary: 'the connection mark (value[/mask])',
  options: { mark: { flags: ['--mark'], kind: markMask, negatable: true } },
});

export const iprange = defineExtension({
  name: 'iprange',
  summary: 'source or destination address ranges',
  options: {
    srcRange: { flags: ['--src-range'], kind: addressRange, negatable: true },
    dstRange: { flags: ['--dst-range'], kind: addressRange, negatable: true },
  },
});

export const length = defineExtension({
  name: 'length',
  summary: 'layer-3 packet length or range',
  options: { length: { flags: ['--length'], kind: uintRange(65535), negatable: true } },
});

export const pkttype = defineExtension({
  name: 'pkttype',
  summary: 'link-layer packet type',
  options: {
    pktType: {
      flags: ['--pkt-type'],
      kind: oneOf(['unicast', 'broadcast', 'multicast'], {}, true),
      negatable: true,
    },
  },
});

export const MATCHES = [
  tcp,
  udp,
  icmp,
  icmp6,
  multiport,
  state,
  conntrack,
  recent,
  limit,
  comment,
  mark,
  connmark,
  iprange,
  length,
  pkttype,
] as const;

export type TcpMatch = { readonly module: 'tcp' } & ExtensionValues<typeof tcp.options>;
export type UdpMatch = { readonly module: 'udp' } & ExtensionValues<typeof udp.options>;
export type IcmpMatch = { readonly module: 'icmp' } & ExtensionValues<typeof icmp.options>;
export type Icmp6Match = { readonly module: 'icmp6' } & ExtensionValues<typeof icmp6.options>;
export type MultiportMatch = { readonly module: 'multiport' } & ExtensionValues<typeof multiport.options>;
export type StateMatch = { readonly module: 'state' } & ExtensionValues<typeof state.options>;
export type ConntrackMatch = { readonly module: 'conntrack' } & ExtensionValues<typeof conntrack.options>;
export type RecentMatch = { readonly module: 'recent' } & ExtensionValues<typeof recent.options>;
export type LimitMatch = { readonly module: 'limit' } & ExtensionValues<typeof limit.options>;
export type CommentMatch = { readonly module: 'comment' } & ExtensionValues<typeof comment.options>;
export type MarkMatch = { readonly module: 'mark' } & ExtensionValues<typeof mark.options>;
export type ConnmarkMatch = { readonly module: 'connmark' } & ExtensionValues<typeof connmark.options>;
export type IprangeMatch = { readonly module: 'iprange' } & ExtensionValues<typeof iprange.options>;
export type LengthMatch = { readonly module: 'length' } & ExtensionValues<typeof length.options>;
export type PkttypeMatch = { readonly module: 'pkttype' } & ExtensionValues<typeof pkttype.options>;

export type TypedMatch =
  | TcpMatch
  | UdpMatch
  | IcmpMatch
  | Icmp6Match
  | MultiportMatch
  | StateMatch
  | ConntrackMatch
  | RecentMatch
  | LimitMatch
  | CommentMatch
  | MarkMatch
  | ConnmarkMatch
  | IprangeMatch
  | LengthMatch
  | PkttypeMatch;
