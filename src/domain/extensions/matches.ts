/**
 * Typed matches (`-m NAME ...`). Each table lists its options in the order
 * iptables-save prints them; see define.ts for what the fields mean. A match
 * that is not listed here is kept as a validated token list (RawMatch).
 * hashlimit (hashlimit.ts) and the ICMP type tables (icmp.ts) have files of
 * their own; merging repeated tcp/udp matches is repeated-matches.ts.
 *
 * Kernel facts (iptables 1.8.9, nf_tables) behind the less obvious rules here:
 * - `--icmp-type 255[/code]` is the kernel's "any" and is printed as `any`.
 * - `--ctstatus NONE` next to other statuses is dropped (NONE is no bit).
 * - `--tcp-option 0` is refused; `--tcp-flags NONE NONE` is left out, other
 *   empty masks are dropped by nf_tables and so refused here.
 * - Repeated tcp/udp matches are merged into one (mergeRepeatedMatches); no
 *   other module is.
 * - iptables refuses most matches without their options (`-m state` alone);
 *   `-m limit`, `-m tcp` and `-m udp` alone are fine.
 */
import { preview } from '../address.js';
import { invalid } from '../errors.js';
import type { Family } from '../family.js';
import { canonicalProtocol } from '../protocol.js';
import { checkUint, MAX_COMMENT } from '../validate.js';
import { choice, defineExtension, type ExtensionValues, type OptionSpec } from './define.js';
import { hashlimit } from './hashlimit.js';
import { ICMP_TYPES, ICMP6_TYPES, icmpType } from './icmp.js';
import {
  address,
  addressRange,
  cidr,
  flag,
  kind,
  markMask,
  name,
  oneOf,
  pair,
  portList,
  portRange,
  rate,
  text,
  U32_MAX,
  uint,
  type ValueKind,
  wordSet,
} from './kinds.js';

export { type HashlimitMode, hashlimit } from './hashlimit.js';

const FULL_RANGE = '0:65535';
const port = (flags: string[]): OptionSpec<string> => ({
  flags,
  kind: portRange,
  negatable: true,
  omitWhen: FULL_RANGE,
});

export const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'] as const;
export type TcpFlag = (typeof TCP_FLAGS)[number];
const tcpFlagSet: ValueKind<readonly TcpFlag[]> = kind(
  (input, ctx) => {
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
  (v) => (v.length ? v.join(',') : 'NONE'),
);

/**
 * The nf_tables backend keeps `! --sport 0:N` as "port > N" and prints it
 * back as `--sport N+1:65535` without the `!`; `! --sport 0:65535` would
 * match nothing, but iptables-nft drops it and the rule then matches every
 * port, so it is refused.
 */
function finishPorts(
  draft: Record<string, unknown>,
  _family: Family,
  field: string,
  inverted: Set<string>,
): void {
  for (const key of ['sport', 'dport']) {
    const v = draft[key];
    if (typeof v !== 'string' || !inverted.has(key) || !v.startsWith('0:')) continue;
    const hi = Number(v.slice(2));
    if (hi === 65535)
      throw invalid(`${field}.${key}`, `${field}.${key}: ! 0:65535 matches no packet; leave the rule out`);
    inverted.delete(key);
    draft[key] = hi + 1 === 65535 ? '65535' : `${hi + 1}:65535`;
  }
}

/**
 * `--tcp-flags NONE NONE` (an empty mask) matches every packet and iptables
 * leaves it out. Any other empty-mask test cannot be kept: `NONE SYN` and
 * `! NONE NONE` would match nothing and `! NONE SYN` everything, but the
 * nf_tables backend drops all of them (the rule then matches every tcp packet),
 * so they are refused.
 */
function finishTcp(
  draft: Record<string, unknown>,
  family: Family,
  field: string,
  inverted: Set<string>,
): void {
  finishPorts(draft, family, field, inverted);
  const flags = draft.tcpFlags as { mask: readonly TcpFlag[]; comp: readonly TcpFlag[] } | undefined;
  if (flags === undefined || flags.mask.length > 0) return;
  if (flags.comp.length > 0 || inverted.has('tcpFlags')) {
    throw invalid(
      `${field}.tcpFlags`,
      `${field}.tcpFlags: an empty mask (NONE) tests no flag, so this matches every packet or none and iptables drops it; leave tcpFlags out or name the flags to test`,
    );
  }
  delete draft.tcpFlags;
}

export const tcp = defineExtension({
  name: 'tcp',
  summary: 'TCP ports, flags and options (needs protocol tcp)',
  protocol: 'tcp',
  options: {
    sport: port(['--sport', '--source-port']),
    dport: port(['--dport', '--destination-port']),
    /** Option kind 1 to 255; iptables refuses 0 ("Bad TCP option"). */
    tcpOption: { flags: ['--tcp-option'], kind: uint(1, 255), negatable: true },
    tcpFlags: {
      flags: ['--tcp-flags'],
      kind: pair('mask', tcpFlagSet, 'comp', tcpFlagSet),
      negatable: true,
      shorthands: {
        '--syn': { arity: 0, toValue: () => ({ mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] }) },
      },
    },
  },
  finish: finishTcp,
});

export const udp = defineExtension({
  name: 'udp',
  summary: 'UDP ports (needs protocol udp)',
  protocol: 'udp',
  options: {
    sport: port(['--sport', '--source-port']),
    dport: port(['--dport', '--destination-port']),
  },
  finish: finishPorts,
});

/**
 * iptables refuses these matches without their options ("option --state must
 * be specified"), so a typed match without them is refused too, naming it.
 * `exactly`: the options exclude each other (multiport).
 */
function requires(module: string, options: Readonly<Record<string, string>>, exactly = false) {
  const keys = Object.keys(options);
  const named = keys.map((k) => `${k} (${options[k]})`);
  return (draft: Record<string, unknown>, _f: Family, field: string): void => {
    const given = keys.filter((k) => draft[k] !== undefined);
    if (given.length === 0) {
      throw invalid(
        keys.length === 1 ? `${field}.${keys[0]}` : field,
        keys.length === 1
          ? `${module} needs option ${named[0]}`
          : `${module} needs ${exactly ? 'one' : 'at least one'} of ${named.join(', ')}`,
      );
    }
    if (exactly && given.length > 1)
      throw invalid(
        `${field}.${given[1]}`,
        `${module} takes only one of ${keys.join(', ')}, not ${given.join(' and ')}`,
      );
  };
}

export const icmp = defineExtension({
  name: 'icmp',
  summary: 'ICMP type and code (IPv4; needs protocol icmp)',
  protocol: 'icmp',
  families: ['ipv4'],
  options: { icmpType: { flags: ['--icmp-type'], kind: icmpType(ICMP_TYPES, true), negatable: true } },
  finish: requires('icmp', { icmpType: '--icmp-type' }),
});

export const icmp6 = defineExtension({
  name: 'icmp6',
  summary: 'ICMPv6 type and code (IPv6; needs protocol ipv6-icmp)',
  protocol: 'ipv6-icmp',
  families: ['ipv6'],
  options: { icmpv6Type: { flags: ['--icmpv6-type'], kind: icmpType(ICMP6_TYPES, false), negatable: true } },
  finish: requires('icmp6', { icmpv6Type: '--icmpv6-type' }),
});

export const multiport = defineExtension({
  name: 'multiport',
  summary: 'up to 15 ports or ranges (needs protocol tcp, udp, udplite, sctp or dccp)',
  options: {
    sports: { flags: ['--sports', '--source-ports'], kind: portList, negatable: true },
    dports: { flags: ['--dports', '--destination-ports'], kind: portList, negatable: true },
    ports: { flags: ['--ports'], kind: portList, negatable: true },
  },
  finish: requires('multiport', { sports: '--sports', dports: '--dports', ports: '--ports' }, true),
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
  finish: requires('state', { state: '--state' }),
});

const protocolNumber: ValueKind<number> = kind((input, ctx) => {
  const p = canonicalProtocol(input, ctx.field);
  if (p.number === undefined)
    throw invalid(ctx.field, `${ctx.field}: protocol "${String(input)}" has no known number`);
  return p.number;
});
const uintRange = (max: number): ValueKind<string> =>
  kind(
    (input, ctx) => {
      const t = String(input);
      const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(t);
      if (!m) throw invalid(ctx.field, `${ctx.field} must be a number or range like 10:20`);
      const lo = checkUint(m[1], ctx.field, 0, max);
      const hi = m[2] === undefined ? lo : checkUint(m[2], ctx.field, 0, max);
      if (lo > hi) throw invalid(ctx.field, `${ctx.field} range "${t}" starts after it ends`);
      return lo === hi ? String(lo) : `${lo}:${hi}`;
    },
    (v) => v,
  );

const conntrackOptions = {
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
} as const;
export const conntrack = defineExtension({
  name: 'conntrack',
  summary: 'connection tracking state, addresses, ports, status, expiry and direction',
  options: conntrackOptions,
  finish(draft, _family, field) {
    // iptables: "conntrack: At least one option is required".
    if (Object.keys(conntrackOptions).every((k) => draft[k] === undefined))
      throw invalid(
        field,
        `conntrack needs at least one option (${Object.keys(conntrackOptions).join(', ')})`,
      );
    // NONE is no bit (0): next to other statuses the kernel keeps only those.
    const status = draft.ctstatus as readonly string[] | undefined;
    if (status && status.length > 1 && status.includes('NONE'))
      draft.ctstatus = status.filter((s) => s !== 'NONE');
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

/** A mark match value: iptables leaves out a full `/0xffffffff` mask. */
const matchMark: ValueKind<string> = {
  ...markMask,
  normalize(input, ctx) {
    const v = markMask.normalize(input, ctx);
    return v.endsWith('/0xffffffff') ? v.slice(0, -'/0xffffffff'.length) : v;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
};

export const mark = defineExtension({
  name: 'mark',
  summary: 'the packet mark (value[/mask])',
  options: { mark: { flags: ['--mark'], kind: matchMark, negatable: true } },
  finish: requires('mark', { mark: '--mark' }),
});

export const connmark = defineExtension({
  name: 'connmark',
  summary: 'the connection mark (value[/mask])',
  options: { mark: { flags: ['--mark'], kind: matchMark, negatable: true } },
  finish: requires('connmark', { mark: '--mark' }),
});

export const iprange = defineExtension({
  name: 'iprange',
  summary: 'source or destination address ranges',
  options: {
    srcRange: { flags: ['--src-range'], kind: addressRange, negatable: true },
    dstRange: { flags: ['--dst-range'], kind: addressRange, negatable: true },
  },
  finish: requires('iprange', { srcRange: '--src-range', dstRange: '--dst-range' }),
});

export const length = defineExtension({
  name: 'length',
  summary: 'layer-3 packet length or range',
  options: { length: { flags: ['--length'], kind: uintRange(65535), negatable: true } },
  finish: requires('length', { length: '--length' }),
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
  finish: requires('pkttype', { pktType: '--pkt-type' }),
});

const MAC = /^[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}$/;
const macAddress: ValueKind<string> = kind(
  (input, ctx) => {
    if (typeof input !== 'string' || !MAC.test(input)) {
      throw invalid(
        ctx.field,
        `${ctx.field} "${preview(String(input))}" must be a MAC address like 02:00:5e:10:00:01`,
      );
    }
    return input
      .split(':')
      .map((o) => o.toLowerCase().padStart(2, '0'))
      .join(':');
  },
  (v) => v,
);

export const mac = defineExtension({
  name: 'mac',
  summary: 'source MAC address (PREROUTING, INPUT and FORWARD only)',
  options: { macSource: { flags: ['--mac-source'], kind: macAddress, negatable: true } },
  finish(draft, _f, field) {
    if (draft.macSource === undefined) throw invalid(`${field}.macSource`, 'mac needs --mac-source');
  },
});

export const ADDRTYPES = [
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
] as const;
export type AddressType = (typeof ADDRTYPES)[number];
/** The kernel refuses the other types for ipv6. */
const ADDRTYPES_V6: readonly AddressType[] = [
  'UNSPEC',
  'UNICAST',
  'LOCAL',
  'ANYCAST',
  'MULTICAST',
  'UNREACHABLE',
];
const addrtypeSetAny = wordSet(ADDRTYPES);
const addressTypes: ValueKind<readonly AddressType[]> = {
  ...addrtypeSetAny,
  normalize(input, ctx) {
    const v = addrtypeSetAny.normalize(input, ctx);
    const bad = ctx.family === 'ipv6' ? v.find((t) => !ADDRTYPES_V6.includes(t)) : undefined;
    if (bad !== undefined)
      throw invalid(
        ctx.field,
        `${ctx.field}: ${bad} is not an ipv6 address type (${ADDRTYPES_V6.join(', ')})`,
      );
    return v;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
};

export const addrtype = defineExtension({
  name: 'addrtype',
  summary: 'address type (LOCAL, UNICAST, BROADCAST, ...) of source or destination',
  options: {
    srcType: { flags: ['--src-type'], kind: addressTypes, negatable: true },
    dstType: { flags: ['--dst-type'], kind: addressTypes, negatable: true },
    limitIfaceIn: { flags: ['--limit-iface-in'], kind: flag },
    limitIfaceOut: { flags: ['--limit-iface-out'], kind: flag },
  },
  finish(draft, _f, field) {
    if (draft.srcType === undefined && draft.dstType === undefined)
      throw invalid(`${field}.srcType`, 'addrtype needs srcType (--src-type) or dstType (--dst-type)');
    if (draft.limitIfaceIn && draft.limitIfaceOut)
      throw invalid(`${field}.limitIfaceOut`, 'addrtype takes limitIfaceIn or limitIfaceOut, not both');
  },
});

/** An ipset name (IPSET_MAXNAMELEN - 1 characters). */
const SET_FLAGS = ['src', 'dst'] as const;
export type SetFlag = (typeof SET_FLAGS)[number];
const setFlags: ValueKind<readonly SetFlag[]> = kind(
  (input, ctx) => {
    const items = typeof input === 'string' ? input.split(',') : input;
    if (!Array.isArray(items) || items.length === 0 || items.length > 6) {
      throw invalid(ctx.field, `${ctx.field} must be a list of 1 to 6 of src, dst (like src,dst)`);
    }
    return items.map((item: unknown, i) => {
      const f = SET_FLAGS.find((w) => w === item);
      if (f === undefined)
        throw invalid(ctx.field, `${ctx.field}[${i}] "${preview(String(item))}" must be src or dst`);
      return f;
    });
  },
  (v) => v.join(','),
);
const counter = (negatable: boolean): OptionSpec<number> => ({
  flags: [],
  kind: uint(0, Number.MAX_SAFE_INTEGER),
  negatable,
});

export const set = defineExtension({
  name: 'set',
  summary: 'membership of the packet in an ipset (the set must exist)',
  options: {
    matchSet: {
      flags: ['--match-set', '--set'],
      kind: pair('name', name(31), 'flags', setFlags),
      negatable: true,
    },
    returnNomatch: { flags: ['--return-nomatch'], kind: flag },
    /** Only `! --update-counters` (with invert) is printed; plain is the default. */
    updateCounters: { flags: ['--update-counters'], kind: flag, negatable: true, omitWhen: true },
    updateSubcounters: { flags: ['--update-subcounters'], kind: flag, negatable: true, omitWhen: true },
    packetsEq: { ...counter(true), flags: ['--packets-eq'] },
    packetsLt: { ...counter(false), flags: ['--packets-lt'] },
    packetsGt: { ...counter(false), flags: ['--packets-gt'] },
    bytesEq: { ...counter(true), flags: ['--bytes-eq'] },
    bytesLt: { ...counter(false), flags: ['--bytes-lt'] },
    bytesGt: { ...counter(false), flags: ['--bytes-gt'] },
  },
  finish(draft, _f, field) {
    if (draft.matchSet === undefined)
      throw invalid(`${field}.matchSet`, 'set needs matchSet (--match-set NAME src|dst,...)');
    for (const what of ['packets', 'bytes']) {
      const given = ['Eq', 'Lt', 'Gt'].filter((op) => draft[`${what}${op}`] !== undefined);
      if (given.length > 1)
        throw invalid(`${field}.${what}${given[1]}`, `set takes one of ${what}Eq, ${what}Lt, ${what}Gt`);
    }
  },
});

/** A uid or gid, or a range `a-b` (iptables prints a one-id range as the id). */
const idRange: ValueKind<string> = kind(
  (input, ctx) => {
    const t = typeof input === 'number' ? String(input) : input;
    const id = '(\\d{1,10}|0x[0-9a-fA-F]{1,8})';
    const m = typeof t === 'string' ? new RegExp(`^${id}(?:-${id})?$`).exec(t) : null;
    if (!m) {
      throw invalid(
        ctx.field,
        `${ctx.field} "${preview(String(t))}" must be a numeric id or range like 1000-1999 (names are not looked up)`,
      );
    }
    const lo = checkUint(m[1], ctx.field, 0, U32_MAX - 1);
    const hi = m[2] === undefined ? lo : checkUint(m[2], ctx.field, 0, U32_MAX - 1);
    if (lo > hi) throw invalid(ctx.field, `${ctx.field} range "${t}" starts after it ends`);
    return lo === hi ? String(lo) : `${lo}-${hi}`;
  },
  (v) => v,
);

export const owner = defineExtension({
  name: 'owner',
  summary: 'socket owner of locally generated packets (OUTPUT and POSTROUTING only)',
  options: {
    socketExists: { flags: ['--socket-exists'], kind: flag, negatable: true },
    uidOwner: { flags: ['--uid-owner'], kind: idRange, negatable: true },
    gidOwner: { flags: ['--gid-owner'], kind: idRange, negatable: true },
    supplGroups: { flags: ['--suppl-groups'], kind: flag },
  },
  finish(draft, _f, field) {
    if (draft.socketExists === undefined && draft.uidOwner === undefined && draft.gidOwner === undefined)
      throw invalid(field, 'owner needs one of uidOwner, gidOwner or socketExists');
    if (draft.supplGroups && draft.gidOwner === undefined)
      throw invalid(`${field}.supplGroups`, 'owner: supplGroups needs gidOwner');
  },
});

/** `ttl` / `hl` take exactly one of: equal (negatable), greater than, less than. */
function oneComparison(keys: readonly string[], name: string) {
  return (draft: Record<string, unknown>, _f: Family, field: string): void => {
    const given = keys.filter((k) => draft[k] !== undefined);
    if (given.length !== 1) {
      throw invalid(
        given.length > 1 ? `${field}.${given[1]}` : field,
        `${name} takes exactly one of ${keys.join(', ')}`,
      );
    }
  };
}

export const ttl = defineExtension({
  name: 'ttl',
  summary: 'IPv4 time to live equal to, above or below a value',
  families: ['ipv4'],
  options: {
    ttlEq: { flags: ['--ttl-eq'], kind: uint(0, 255), negatable: true },
    ttlGt: { flags: ['--ttl-gt'], kind: uint(0, 255) },
    ttlLt: { flags: ['--ttl-lt'], kind: uint(0, 255) },
  },
  finish: oneComparison(['ttlEq', 'ttlGt', 'ttlLt'], 'ttl'),
});

export const hl = defineExtension({
  name: 'hl',
  summary: 'IPv6 hop limit equal to, above or below a value',
  families: ['ipv6'],
  options: {
    hlEq: { flags: ['--hl-eq'], kind: uint(0, 255), negatable: true },
    hlGt: { flags: ['--hl-gt'], kind: uint(0, 255) },
    hlLt: { flags: ['--hl-lt'], kind: uint(0, 255) },
  },
  finish: oneComparison(['hlEq', 'hlGt', 'hlLt'], 'hl'),
});

/** A bridge port name: at most 15 characters (IFNAMSIZ - 1) including a final `+`. */
const bridgePort: ValueKind<string> = kind(
  (input, ctx) => {
    if (
      typeof input !== 'string' ||
      !/^[A-Za-z0-9_.:-]{0,15}\+?$/.test(input) ||
      input.length === 0 ||
      input.length > 15
    ) {
      throw invalid(
        ctx.field,
        `${ctx.field} "${preview(String(input))}" must be an interface name of at most 15 letters, digits, _ . : - (a final + matches a prefix)`,
      );
    }
    return input;
  },
  (v) => v,
);

export const physdev = defineExtension({
  name: 'physdev',
  summary: 'bridge ports a bridged packet came in on or goes out of',
  options: {
    physdevIsIn: { flags: ['--physdev-is-in'], kind: flag, negatable: true },
    physdevIn: { flags: ['--physdev-in'], kind: bridgePort, negatable: true },
    physdevIsOut: { flags: ['--physdev-is-out'], kind: flag, negatable: true },
    physdevOut: { flags: ['--physdev-out'], kind: bridgePort, negatable: true },
    physdevIsBridged: { flags: ['--physdev-is-bridged'], kind: flag, negatable: true },
  },
  finish(draft, _f, field) {
    if (Object.values(draft).every((v) => v === undefined))
      throw invalid(field, 'physdev needs at least one of its options');
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
  hashlimit,
  mac,
  addrtype,
  set,
  owner,
  ttl,
  hl,
  physdev,
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
export type HashlimitMatch = { readonly module: 'hashlimit' } & ExtensionValues<typeof hashlimit.options>;
export type MacMatch = { readonly module: 'mac' } & ExtensionValues<typeof mac.options>;
export type AddrtypeMatch = { readonly module: 'addrtype' } & ExtensionValues<typeof addrtype.options>;
export type SetMatch = { readonly module: 'set' } & ExtensionValues<typeof set.options>;
export type OwnerMatch = { readonly module: 'owner' } & ExtensionValues<typeof owner.options>;
export type TtlMatch = { readonly module: 'ttl' } & ExtensionValues<typeof ttl.options>;
export type HlMatch = { readonly module: 'hl' } & ExtensionValues<typeof hl.options>;
export type PhysdevMatch = { readonly module: 'physdev' } & ExtensionValues<typeof physdev.options>;

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
  | PkttypeMatch
  | HashlimitMatch
  | MacMatch
  | AddrtypeMatch
  | SetMatch
  | OwnerMatch
  | TtlMatch
  | HlMatch
  | PhysdevMatch;
