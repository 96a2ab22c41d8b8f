/**
 * Seeded generators of random valid rules (typed JSON, as the APIs receive
 * them) over the typed matches and targets and the rule-level fields; shared
 * by the kernel property tests (test/iptables/property.test.ts, lossless.test.ts)
 * and the differential test of the service. Fully determined by the seed.
 *
 * `hostile` draws comment and log-prefix text from an alphabet chosen to break
 * quoting (both quotes, backslashes, \\' and \\", spaces, #, $, Unicode, maximum
 * lengths in bytes); `extras` adds the typed matches and targets that need a
 * particular table, chain or kernel object (hashlimit, addrtype, set, owner,
 * mac, ttl/hl, NAT targets, MARK, CONNMARK, TCPMSS, DSCP, CT, TRACE, goto).
 */

import { dispatchConflict } from '../../src/domain/extensions/option-dispatch.js';
import { BUILTIN_CHAINS, type Family, type TableName } from '../../src/domain/family.js';
import type { Chain, Match, Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { writeTable } from '../../src/iptables/restore-writer.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';

export const USER_CHAIN = 'PROP_USER';
export const JUMP_CHAIN = 'PROP_JUMP';

/** The chains generated rules go into: the table's built-in chains and the two user chains. */
export function generatedChains(table: TableName): string[] {
  return [...BUILTIN_CHAINS[table], USER_CHAIN, JUMP_CHAIN];
}

/** `table` for the restore writer, each chain of generatedChains holding its rules of `generated`. */
export function generatedTable(
  table: TableName,
  generated: readonly { readonly chain: string; readonly model: Rule }[],
): { name: TableName; chains: Chain[] } {
  return {
    name: table,
    chains: generatedChains(table).map((name) => ({
      name,
      ...(BUILTIN_CHAINS[table].includes(name) ? { policy: 'ACCEPT' as const } : {}),
      rules: generated.filter((g) => g.chain === name).map((g) => g.model),
    })),
  };
}

/**
 * Restore text of `tables`, each with `size` generated rules spread over generatedChains,
 * fully determined by the seed.
 */
export function generatedRuleset(
  seed: number,
  size: number,
  family: Family,
  tables: readonly TableName[],
  options: RuleGenOptions = { hostile: true },
): string {
  const r = prng(seed);
  return tables
    .map((table) => {
      const generated: { chain: string; model: Rule }[] = [];
      for (let i = 0; i < size; i++) {
        const chain = r.pick(generatedChains(table));
        generated.push({ chain, model: normalizeRule(rule(r, family, table, chain, options), family) });
      }
      return writeTable(generatedTable(table, generated));
    })
    .join('');
}

export interface RuleGenOptions {
  /** Comments and log prefixes from the hostile alphabet (Unicode included). */
  readonly hostile?: boolean;
  /** Also the matches and targets of EXTRA_MATCHES / EXTRA_TARGETS. */
  readonly extras?: boolean;
  /** Names of ipsets that exist (for `-m set`), per family. */
  readonly sets?: Readonly<Record<Family, readonly string[]>>;
}

// ------------------------------------------------------------------ PRNG

/** mulberry32: small, fast, good enough to spread test cases; fully determined by the seed. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T;
  const chance = (p: number): boolean => next() < p;
  const some = <T>(items: readonly T[], min = 1): T[] => {
    const out = items.filter(() => chance(0.5));
    while (out.length < min) {
      const x = pick(items);
      if (!out.includes(x)) out.push(x);
    }
    return out;
  };
  return { next, int, pick, chance, some };
}
export type Rng = ReturnType<typeof prng>;

// ------------------------------------------------------------ generators

export type Json = Record<string, unknown>;

function ipv4(r: Rng, net: '192.0.2' | '198.51.100' = r.pick(['192.0.2', '198.51.100'] as const)): string {
  return `${net}.${r.int(0, 255)}`;
}
function ipv6(r: Rng): string {
  const form = r.int(0, 9);
  if (form === 0) return `::ffff:${ipv4(r)}`;
  const groups = Array.from({ length: 6 }, () => (r.chance(0.4) ? 0 : r.int(0, 0xffff)).toString(16));
  return `2001:db8:${groups.join(':')}`;
}
function address(r: Rng, family: Family): string {
  return family === 'ipv4' ? ipv4(r) : ipv6(r);
}
function cidr(r: Rng, family: Family): string {
  const a = address(r, family);
  if (r.chance(0.3)) return a;
  return family === 'ipv4' ? `${a}/${r.int(8, 32)}` : `${a}/${r.int(16, 128)}`;
}
function port(r: Rng): number {
  return r.pick([0, 22, 53, 80, 443, 8080, 65535, r.int(1, 65535)]);
}
function portRange(r: Rng): string {
  if (r.chance(0.6)) return String(port(r));
  const a = r.int(0, 65535);
  const b = r.int(0, 65535);
  return `${Math.min(a, b)}:${Math.max(a, b)}`;
}
/** Texts that look like syntax: iptables-save prints some of them bare (`--comment -j`). */
const TRICKY = [
  '-j',
  '-A',
  '--dport',
  '-p',
  '!',
  '#',
  'COMMIT',
  '*filter',
  '"',
  "'",
  '\\',
  ' ',
  '-m tcp',
  '\\"',
  'a"b\'c',
];

/** Printable ASCII, with the characters that need quoting over-represented. */
export function text(r: Rng, min: number, max: number): string {
  if (r.chance(0.15)) {
    const t = r.pick(TRICKY.filter((x) => x.length >= min && x.length <= max));
    if (t !== undefined) return t;
  }
  const special = ` "'\\!#-$;&|:/,.*`;
  let s = '';
  const n = r.int(min, max);
  for (let i = 0; i < n; i++)
    s += r.chance(0.3) ? r.pick([...special]) : String.fromCharCode(r.int(0x20, 0x7e));
  return s;
}
function maybeInvert(r: Rng, m: Json, keys: string[]): Json {
  const inv = keys.filter((k) => m[k] !== undefined && r.chance(0.25));
  return inv.length ? { ...m, invert: inv } : m;
}

interface Context {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  /** `-p` as given, undefined for none; `protocolInverted` when negated. */
  readonly protocol: string | undefined;
  readonly protocolInverted: boolean;
  readonly options: RuleGenOptions;
}

/**
 * Pieces of hostile text: what quoting gets wrong (quotes, backslashes, an
 * escaped quote, `#`, `$`, what looks like syntax) and Unicode of every UTF-8
 * length, including a surrogate pair and the line separator U+2028 (not a
 * control character: the kernel keeps it like any other byte).
 */
const HOSTILE = [
  '"',
  "'",
  '\\',
  "\\'",
  '\\"',
  ' ',
  '  ',
  '#',
  '$',
  '$x',
  '`',
  '-j',
  ' -j DROP',
  '!',
  'COMMIT',
  '*filter',
  'é',
  'ü',
  '✓',
  '中文',
  '🔥',
  '\u00a0',
  '\u2028',
  'a',
  'Z',
  '0',
  '_',
  '-',
];

/**
 * Text from the hostile alphabet of at least `min` characters and at most `maxBytes`
 * bytes of UTF-8, now and then exactly `maxBytes`.
 */
export function hostileText(r: Rng, min: number, maxBytes: number): string {
  const bytes = (t: string) => Buffer.byteLength(t, 'utf8');
  const budget = r.chance(0.15) ? maxBytes : r.int(min, Math.min(maxBytes, 40));
  let s = '';
  for (let i = 0; i < 300 && bytes(s) < budget; i++) {
    const piece = r.pick(HOSTILE);
    if (bytes(s) + bytes(piece) <= maxBytes) s += piece;
  }
  // Fill to the exact budget with one-byte characters.
  while (bytes(s) < budget) s += r.pick(['x', '"', '\\', "'", ' ']);
  return s.length >= min ? s : 'x'.repeat(min);
}

function commentText(r: Rng, c: Context, min: number, maxBytes: number, asciiMax: number): string {
  return c.options.hostile ? hostileText(r, min, maxBytes) : text(r, min, asciiMax);
}

type MatchGen = (r: Rng, c: Context) => Json | undefined;

const ICMP_TYPES = [
  'any',
  '255',
  '255/3',
  'echo-request',
  'echo-reply',
  'destination-unreachable',
  'port-unreachable',
  'host-prohibited',
  'time-exceeded',
  '8',
  '3/3',
  '11/1',
  '254',
  '254/255',
];
const ICMP6_TYPES = [
  'echo-request',
  'echo-reply',
  'destination-unreachable',
  'port-unreachable',
  'packet-too-big',
  'neighbour-solicitation',
  'router-advertisement',
  '128',
  '1/4',
  '4/2',
  '255',
];
const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];
const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const CT_STATUS = ['NONE', 'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED'];

function ports(r: Rng): string[] {
  const out: string[] = [];
  let slots = 0;
  const n = r.int(1, 6);
  for (let i = 0; i < n; i++) {
    const p = portRange(r);
    const cost = p.includes(':') ? 2 : 1;
    if (slots + cost > 15) break;
    slots += cost;
    out.push(p);
  }
  return out;
}

const MATCH_GENS: Readonly<Record<string, MatchGen>> = {
  tcp(r, c) {
    if (c.protocol !== 'tcp' || c.protocolInverted) return undefined;
    const m: Json = { module: 'tcp' };
    if (r.chance(0.5)) m.sport = portRange(r);
    if (r.chance(0.6)) m.dport = portRange(r);
    let emptyMask = false;
    if (r.chance(0.3)) {
      // NONE NONE (matches every packet) is left out; other empty masks are refused, so not made.
      emptyMask = r.chance(0.1);
      const mask = emptyMask ? [] : r.some(TCP_FLAGS);
      m.tcpFlags = { mask, comp: mask.filter(() => r.chance(0.5)) };
    }
    if (r.chance(0.15)) m.tcpOption = r.int(1, 255);
    const negatable = ['sport', 'dport', 'tcpOption', ...(emptyMask ? [] : ['tcpFlags'])];
    return maybeInvert(r, m, negatable);
  },
  udp(r, c) {
    if (c.protocol !== 'udp' || c.protocolInverted) return undefined;
    const m: Json = { module: 'udp' };
    if (r.chance(0.5)) m.sport = portRange(r);
    if (r.chance(0.7)) m.dport = portRange(r);
    return maybeInvert(r, m, ['sport', 'dport']);
  },
  icmp(r, c) {
    if (c.family !== 'ipv4' || c.protocol !== 'icmp' || c.protocolInverted) return undefined;
    return maybeInvert(r, { module: 'icmp', icmpType: r.pick(ICMP_TYPES) }, ['icmpType']);
  },
  icmp6(r, c) {
    if (c.family !== 'ipv6' || c.protocol !== 'ipv6-icmp' || c.protocolInverted) return undefined;
    return maybeInvert(r, { module: 'icmp6', icmpv6Type: r.pick(ICMP6_TYPES) }, ['icmpv6Type']);
  },
  multiport(r, c) {
    if (!['tcp', 'udp', 'sctp'].includes(c.protocol ?? '') || c.protocolInverted) return undefined;
    const key = r.pick(['sports', 'dports', 'ports']);
    return maybeInvert(r, { module: 'multiport', [key]: ports(r) }, [key]);
  },
  state(r) {
    return maybeInvert(r, { module: 'state', state: r.some(CT_STATES.slice(0, 5)) }, ['state']);
  },
  conntrack(r, c) {
    const m: Json = { module: 'conntrack' };
    const options: Array<() => void> = [
      () => {
        m.ctstate = r.some(CT_STATES);
      },
      () => {
        m.ctproto = r.pick(['tcp', 'udp', 'icmp', 'sctp', 47]);
      },
      () => {
        m.ctorigsrc = cidr(r, c.family);
      },
      () => {
        m.ctorigdst = cidr(r, c.family);
      },
      () => {
        m.ctreplsrc = cidr(r, c.family);
      },
      () => {
        m.ctrepldst = cidr(r, c.family);
      },
      () => {
        m.ctorigsrcport = portRange(r);
      },
      () => {
        m.ctorigdstport = portRange(r);
      },
      () => {
        m.ctreplsrcport = portRange(r);
      },
      () => {
        m.ctrepldstport = portRange(r);
      },
      () => {
        m.ctstatus = r.chance(0.1) ? ['NONE'] : r.some(CT_STATUS);
      },
      () => {
        const a = r.int(0, 100000);
        m.ctexpire = r.chance(0.5) ? String(a) : `${a}:${a + r.int(0, 100000)}`;
      },
      () => {
        m.ctdir = r.pick(['ORIGINAL', 'REPLY']);
      },
    ];
    for (const o of r.some(options)) o();
    return maybeInvert(
      r,
      m,
      Object.keys(m).filter((k) => k !== 'module' && k !== 'ctdir'),
    );
  },
  recent(r, c) {
    const action = r.pick(['set', 'rcheck', 'update', 'remove']);
    const m: Json = { module: 'recent', action };
    if (action === 'rcheck' || action === 'update') {
      if (r.chance(0.6)) m.seconds = r.int(1, 86400);
      if (r.chance(0.2) && m.seconds !== undefined) m.reap = true;
      if (r.chance(0.5)) m.hitcount = r.int(1, 20);
      if (r.chance(0.2)) m.rttl = true;
    }
    if (r.chance(0.5)) m.name = r.pick(['DEFAULT', 'ssh', 'list-1', 'a.b_c']);
    if (r.chance(0.3))
      m.mask =
        c.family === 'ipv4'
          ? r.pick(['255.255.255.0', '255.255.0.0', '0.0.0.0'])
          : r.pick(['ffff:ffff:ffff:ffff::', '::']);
    if (r.chance(0.4)) m.side = r.pick(['rsource', 'rdest']);
    return maybeInvert(r, m, ['action']);
  },
  limit(r) {
    const m: Json = { module: 'limit' };
    if (r.chance(0.8))
      m.limit = `${r.int(1, 10000)}/${r.pick(['sec', 'second', 's', 'min', 'minute', 'hour', 'h', 'day', 'd'])}`;
    if (r.chance(0.5)) m.limitBurst = r.int(1, 10000);
    return m;
  },
  comment(r, c) {
    return {
      module: 'comment',
      comment: c.options.hostile ? hostileText(r, 0, 255) : text(r, 0, r.chance(0.1) ? 255 : 40),
    };
  },
  mark(r) {
    const v = r.int(0, 0xffffffff);
    return maybeInvert(
      r,
      {
        module: 'mark',
        mark: r.chance(0.5) ? v : `0x${v.toString(16)}/0x${r.int(0, 0xffffffff).toString(16)}`,
      },
      ['mark'],
    );
  },
  connmark(r) {
    const v = r.int(0, 0xffff);
    return maybeInvert(r, { module: 'connmark', mark: r.chance(0.5) ? String(v) : `${v}/0xff00` }, ['mark']);
  },
  iprange(r, c) {
    const range = (): string => {
      if (c.family === 'ipv4') {
        const a = r.int(0, 255);
        const b = r.int(a, 255);
        return `192.0.2.${a}-192.0.2.${b}`;
      }
      const a = r.int(0, 0xffff);
      const b = r.int(a, 0xffff);
      return `2001:db8::${a.toString(16)}-2001:db8::${b.toString(16)}`;
    };
    const m: Json = { module: 'iprange' };
    if (r.chance(0.6)) m.srcRange = range();
    if (!m.srcRange || r.chance(0.4)) m.dstRange = range();
    return maybeInvert(r, m, ['srcRange', 'dstRange']);
  },
  length(r) {
    const a = r.int(0, 65535);
    return maybeInvert(r, { module: 'length', length: r.chance(0.5) ? a : `${a}:${r.int(a, 65535)}` }, [
      'length',
    ]);
  },
  pkttype(r) {
    return maybeInvert(
      r,
      { module: 'pkttype', pktType: r.pick(['unicast', 'broadcast', 'multicast', 'Unicast']) },
      ['pktType'],
    );
  },
};

const REJECT_WITH: Readonly<Record<Family, readonly string[]>> = {
  ipv4: [
    'icmp-net-unreachable',
    'icmp-host-unreachable',
    'icmp-port-unreachable',
    'icmp-proto-unreachable',
    'icmp-net-prohibited',
    'icmp-host-prohibited',
    'icmp-admin-prohibited',
    'port-unreach',
  ],
  ipv6: [
    'icmp6-no-route',
    'icmp6-adm-prohibited',
    'icmp6-addr-unreachable',
    'icmp6-port-unreachable',
    'icmp6-policy-fail',
    'icmp6-reject-route',
    'no-route',
  ],
};

function target(r: Rng, c: Context): Json | undefined {
  const builtin = BUILTIN_CHAINS[c.table].includes(c.chain);
  const kinds = ['ACCEPT', 'RETURN', 'LOG', 'NFLOG', 'none'];
  if (c.table !== 'nat') kinds.push('DROP');
  // The kernel's REJECT is registered for the filter table only.
  if (c.table === 'filter') kinds.push('REJECT', 'REJECT');
  if (builtin) kinds.push('jump', 'jump');
  switch (r.pick(kinds)) {
    case 'none':
      return undefined;
    case 'jump':
      return { jump: r.pick([USER_CHAIN, JUMP_CHAIN]) };
    case 'REJECT': {
      const t: Json = { target: 'REJECT' };
      if (r.chance(0.7)) {
        const choices = [...REJECT_WITH[c.family]];
        if (c.protocol === 'tcp' && !c.protocolInverted) choices.push('tcp-reset');
        t.rejectWith = r.pick(choices);
      }
      return t;
    }
    case 'LOG': {
      const t: Json = { target: 'LOG' };
      if (r.chance(0.7)) t.prefix = commentText(r, c, 1, 29, 29);
      if (r.chance(0.6)) t.level = r.pick([0, 1, 2, 3, 4, 5, 6, 7, 'debug', 'warning', 'emerg', 'info']);
      for (const f of ['tcpSequence', 'tcpOptions', 'ipOptions', 'uid', 'macDecode'])
        if (r.chance(0.2)) t[f] = true;
      return t;
    }
    case 'NFLOG': {
      const t: Json = { target: 'NFLOG' };
      if (r.chance(0.6)) t.prefix = commentText(r, c, 1, 63, 63);
      if (r.chance(0.6)) t.group = r.int(0, 65535);
      if (r.chance(0.4)) t.size = r.int(0, 0xffff);
      if (r.chance(0.4)) t.threshold = r.int(0, 100);
      return t;
    }
    default:
      return { target: r.pick(kinds.filter((k) => ['ACCEPT', 'DROP', 'RETURN'].includes(k))) };
  }
}

const INTERFACES = ['eth0', 'lo', 'veth+', 'br-lan_1.2', 'wg0', '+', 'abcdefghijklmn+', 'abcdefghijklmno'];
const PROTOCOLS: Readonly<Record<Family, readonly (string | number | undefined)[]>> = {
  ipv4: [
    'tcp',
    'tcp',
    'tcp',
    'udp',
    'udp',
    'icmp',
    'icmp',
    'sctp',
    'gre',
    47,
    'all',
    6,
    undefined,
    undefined,
  ],
  ipv6: [
    'tcp',
    'tcp',
    'tcp',
    'udp',
    'udp',
    'ipv6-icmp',
    'ipv6-icmp',
    'icmpv6',
    'sctp',
    'gre',
    'all',
    undefined,
    undefined,
  ],
};
const PROTOCOL_CANON: Readonly<Record<string, string>> = { '6': 'tcp', '47': 'gre', icmpv6: 'ipv6-icmp' };

/**
 * nf_tables gathers the ports and flags of repeated tcp/udp matches (those
 * without --tcp-option) into one; two different values for one option are
 * refused. So a later such match either repeats an earlier value exactly
 * (which merges) or leaves the option out.
 */
function avoidConflicts(r: Rng, m: Json, seen: Map<string, Json>): Json {
  const keys =
    m.module === 'tcp' ? ['sport', 'dport', 'tcpFlags'] : m.module === 'udp' ? ['sport', 'dport'] : [];
  if (!keys.length || m.tcpOption !== undefined) return m;
  const earlier = seen.get(m.module as string) ?? {};
  const out: Json = { ...m };
  const invert = new Set((m.invert as string[] | undefined) ?? []);
  const earlierInvert = new Set((earlier.invert as string[] | undefined) ?? []);
  for (const k of keys) {
    if (earlier[k] === undefined) {
      if (out[k] !== undefined) {
        earlier[k] = out[k];
        if (invert.has(k)) earlierInvert.add(k);
      }
      continue;
    }
    if (out[k] === undefined) continue;
    if (r.chance(0.5)) {
      out[k] = earlier[k];
      if (earlierInvert.has(k)) invert.add(k);
      else invert.delete(k);
    } else {
      delete out[k];
      invert.delete(k);
    }
  }
  if (earlierInvert.size) earlier.invert = [...earlierInvert];
  seen.set(m.module as string, earlier);
  if (invert.size) out.invert = [...invert];
  else delete out.invert;
  return out;
}

export function rule(
  r: Rng,
  family: Family,
  table: TableName,
  chain: string,
  options: RuleGenOptions = {},
): Json {
  const out: Json = {};
  const invert: string[] = [];
  if (r.chance(0.3)) out.source = cidr(r, family);
  if (r.chance(0.2)) out.destination = cidr(r, family);
  // iptables: "Can't use -o with INPUT", "Can't use -i with OUTPUT".
  const noIn = chain === 'OUTPUT' || chain === 'POSTROUTING';
  const noOut = chain === 'INPUT' || chain === 'PREROUTING';
  if (!noIn && r.chance(0.2)) out.inInterface = r.pick(INTERFACES);
  if (!noOut && r.chance(0.2)) out.outInterface = r.pick(INTERFACES);
  const p = r.pick(PROTOCOLS[family]);
  if (p !== undefined) out.protocol = p;
  if (family === 'ipv4' && r.chance(0.05)) out.fragment = true;
  for (const k of ['source', 'destination', 'inInterface', 'outInterface', 'protocol', 'fragment'])
    if (out[k] !== undefined && out[k] !== 'all' && r.chance(0.15)) invert.push(k);
  if (invert.length) out.invert = invert;
  const protocol = p === undefined || p === 'all' ? undefined : (PROTOCOL_CANON[String(p)] ?? String(p));
  const c: Context = {
    family,
    table,
    chain,
    protocol,
    protocolInverted: invert.includes('protocol'),
    options,
  };
  const matches: Json[] = [];
  const native = new Map<string, Json>();
  const add = (m: Json | undefined) => {
    if (!m) return;
    const next = avoidConflicts(r, m, native);
    // iptables would hand this match's options to a module loaded in between
    // (the domain refuses such a rule: src/domain/extensions/option-dispatch.ts).
    if (dispatchConflict([...matches, next] as unknown as Match[])) return;
    matches.push(next);
  };
  // The protocol's own match first and usually: that is what rules mostly look like.
  for (const own of ['tcp', 'udp', 'icmp', 'icmp6']) if (r.chance(0.7)) add(MATCH_GENS[own]?.(r, c));
  // Then any matches, a module possibly more than once (nf_tables merges repeated tcp/udp ones).
  const n = r.int(0, 3);
  for (let i = 0; i < n; i++) add(MATCH_GENS[r.pick(Object.keys(MATCH_GENS))]?.(r, c));
  if (options.extras && r.chance(0.5)) add(extraMatch(r, c));
  if (matches.length) out.matches = matches;
  const t = options.extras && r.chance(0.35) ? (extraTarget(r, c) ?? target(r, c)) : target(r, c);
  if (t) out.target = t;
  return out;
}

// ------------------------------------------------------------ extras

/** A typed match or target from a spec fragment (the model's JSON is valid typed input). */
function fragment(spec: string, family: Family, part: 'match' | 'target'): Json {
  const r = parseRuleSpec(spec, family);
  return (part === 'match' ? r.matches[0] : r.target) as unknown as Json;
}

let hashlimitNames = 0;

function extraMatch(r: Rng, c: Context): Json | undefined {
  const { family, chain } = c;
  const inbound = ['PREROUTING', 'INPUT', 'FORWARD'].includes(chain);
  const outbound = ['OUTPUT', 'POSTROUTING'].includes(chain);
  const options: (() => string | undefined)[] = [
    () =>
      `-m addrtype ${r.chance(0.3) ? '! ' : ''}--${r.pick(['src', 'dst'])}-type ${r.some(family === 'ipv4' ? ['UNICAST', 'LOCAL', 'BROADCAST', 'MULTICAST'] : ['UNICAST', 'LOCAL', 'MULTICAST', 'ANYCAST']).join(',')}`,
    () =>
      `-m hashlimit --hashlimit-${r.pick(['upto', 'above'])} ${r.int(1, 1000)}/${r.pick(['sec', 'min', 'hour'])} --hashlimit-burst ${r.int(1, 50)}${r.chance(0.5) ? ` --hashlimit-mode ${r.some(['srcip', 'dstip', 'srcport', 'dstport']).join(',')}` : ''} --hashlimit-name h${hashlimitNames++}-${r.int(0, 1e6)}`,
    () => {
      const sets = c.options.sets?.[family] ?? [];
      if (sets.length === 0) return undefined;
      return `-m set ${r.chance(0.3) ? '! ' : ''}--match-set ${r.pick(sets)} ${r.pick(['src', 'dst'])}`;
    },
    () =>
      outbound
        ? `-m owner ${r.chance(0.3) ? '! ' : ''}--${r.pick(['uid', 'gid'])}-owner ${r.chance(0.5) ? r.int(0, 65000) : `${r.int(0, 999)}-${r.int(1000, 65000)}`}`
        : undefined,
    () =>
      inbound
        ? `-m mac ${r.chance(0.3) ? '! ' : ''}--mac-source 02:00:5E:${r.int(16, 255).toString(16).toUpperCase()}:00:${r.int(16, 255).toString(16).toUpperCase()}`
        : undefined,
    () =>
      family === 'ipv4'
        ? `-m ttl --ttl-${r.pick(['eq', 'gt', 'lt'])} ${r.int(1, 254)}`
        : `-m hl --hl-${r.pick(['eq', 'gt', 'lt'])} ${r.int(1, 254)}`,
    () =>
      inbound || chain === 'FORWARD'
        ? `-m physdev ${r.chance(0.3) ? '! ' : ''}--physdev-in ${r.pick(['eth0', 'veth+', 'br-lan.1'])}`
        : undefined,
  ];
  const spec = r.pick(options)();
  return spec === undefined ? undefined : fragment(spec, family, 'match');
}

function extraTarget(r: Rng, c: Context): Json | undefined {
  const { family, table, chain } = c;
  const v4 = family === 'ipv4';
  const host = v4 ? `192.0.2.${r.int(1, 254)}` : `2001:db8::${r.int(1, 0xffff).toString(16)}`;
  const builtin = BUILTIN_CHAINS[table].includes(chain);
  const options: (string | undefined)[] = [];
  if (builtin) options.push('goto');
  if (table === 'nat') {
    if (chain === 'POSTROUTING') options.push('-j MASQUERADE', `-j SNAT --to-source ${host}`);
    if (chain === 'INPUT') options.push(`-j SNAT --to-source ${host}`);
    if (chain === 'PREROUTING' || chain === 'OUTPUT')
      options.push(`-j DNAT --to-destination ${host}`, '-j REDIRECT');
  }
  if (table === 'mangle') {
    options.push(
      `-j MARK --set-mark 0x${r.int(0, 0xffff).toString(16)}`,
      `-j CONNMARK --set-mark ${r.int(0, 0xffff)}`,
      `-j DSCP --set-dscp ${r.int(0, 63)}`,
    );
  }
  if (table === 'raw')
    options.push('-j CT --notrack', '-j NOTRACK', '-j TRACE', `-j CT --zone ${r.int(1, 100)}`);
  if (options.length === 0) return undefined;
  const pick = r.pick(options);
  if (pick === undefined) return undefined;
  if (pick === 'goto') return { goto: r.pick([USER_CHAIN, JUMP_CHAIN]) };
  return fragment(pick, family, 'target');
}
