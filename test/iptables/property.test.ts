/**
 * Property: every valid rule we can model survives the kernel unchanged.
 *
 * A seeded generator builds a few hundred random valid rules (typed JSON, as the
 * APIs receive it) per family and table, over the stable typed matches and
 * targets and the rule-level fields. For each batch:
 *
 *   normalizeRule -> writeTable -> restore -> save(1) -> parseSave -> writeTable -> restore -> save(2)
 *
 * and then: the parsed models equal the generated ones, ruleText(model) is the
 * text iptables-save printed after `-A CHAIN `, and save(2) equals save(1).
 * One restore per family and table keeps the whole test to seconds.
 *
 * The seed is fixed so CI is deterministic; set PORTCULLIS_PROPERTY_SEED=<n> to
 * explore others (every failure message starts with the seed to reproduce it).
 */
import { expect, it } from 'vitest';
import { BUILTIN_CHAINS, type Family, type TableName } from '../../src/domain/family.js';
import type { Chain, Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/domain/rule.js';
import { writeTable } from '../../src/iptables/restore-writer.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { executorFor } from '../helpers/roundtrip.js';

const SEED = Number(process.env.PORTCULLIS_PROPERTY_SEED ?? 20261122) >>> 0;
const RULES_PER_BATCH = 60;
const USER_CHAIN = 'PROP_USER';
const JUMP_CHAIN = 'PROP_JUMP';

// ------------------------------------------------------------------ PRNG

/** mulberry32: small, fast, good enough to spread test cases; fully determined by the seed. */
function prng(seed: number) {
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
type Rng = ReturnType<typeof prng>;

// ------------------------------------------------------------ generators

type Json = Record<string, unknown>;

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
function text(r: Rng, min: number, max: number): string {
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
  comment(r) {
    return { module: 'comment', comment: text(r, 0, r.chance(0.1) ? 255 : 40) };
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
      if (r.chance(0.7)) t.prefix = text(r, 1, 29);
      if (r.chance(0.6)) t.level = r.pick([0, 1, 2, 3, 4, 5, 6, 7, 'debug', 'warning', 'emerg', 'info']);
      for (const f of ['tcpSequence', 'tcpOptions', 'ipOptions', 'uid', 'macDecode'])
        if (r.chance(0.2)) t[f] = true;
      return t;
    }
    case 'NFLOG': {
      const t: Json = { target: 'NFLOG' };
      if (r.chance(0.6)) t.prefix = text(r, 1, 63);
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

function rule(r: Rng, family: Family, table: TableName, chain: string): Json {
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
  const c: Context = { family, table, chain, protocol, protocolInverted: invert.includes('protocol') };
  const matches: Json[] = [];
  const native = new Map<string, Json>();
  const add = (m: Json | undefined) => {
    if (m) matches.push(avoidConflicts(r, m, native));
  };
  // The protocol's own match first and usually: that is what rules mostly look like.
  for (const own of ['tcp', 'udp', 'icmp', 'icmp6']) if (r.chance(0.7)) add(MATCH_GENS[own]?.(r, c));
  // Then any matches, a module possibly more than once (nf_tables merges repeated tcp/udp ones).
  const n = r.int(0, 3);
  for (let i = 0; i < n; i++) add(MATCH_GENS[r.pick(Object.keys(MATCH_GENS))]?.(r, c));
  if (matches.length) out.matches = matches;
  const t = target(r, c);
  if (t) out.target = t;
  return out;
}

// --------------------------------------------------------------- the test

const BATCHES: ReadonlyArray<readonly [Family, TableName]> = [
  ['ipv4', 'filter'],
  ['ipv4', 'nat'],
  ['ipv4', 'mangle'],
  ['ipv4', 'raw'],
  ['ipv6', 'filter'],
  ['ipv6', 'nat'],
  ['ipv6', 'mangle'],
  ['ipv6', 'raw'],
];

interface Generated {
  readonly chain: string;
  readonly input: Json;
  readonly model: Rule;
}

function generate(seed: number, family: Family, table: TableName): Generated[] {
  const r = prng(seed);
  const chains = [...BUILTIN_CHAINS[table], USER_CHAIN, JUMP_CHAIN];
  const out: Generated[] = [];
  for (let i = 0; i < RULES_PER_BATCH; i++) {
    const chain = r.pick(chains);
    const input = rule(r, family, table, chain);
    let model: Rule;
    try {
      model = normalizeRule(input, family);
    } catch (e) {
      throw new Error(
        `seed ${seed} (${family}/${table}) generated a rule normalizeRule refuses: ${JSON.stringify(input)}: ${(e as Error).message}`,
      );
    }
    out.push({ chain, input, model });
  }
  return out;
}

function tableOf(table: TableName, generated: readonly Generated[]): { name: TableName; chains: Chain[] } {
  const chains = [...BUILTIN_CHAINS[table], USER_CHAIN, JUMP_CHAIN];
  return {
    name: table,
    chains: chains.map((name) => ({
      name,
      ...(BUILTIN_CHAINS[table].includes(name) ? { policy: 'ACCEPT' as const } : {}),
      rules: generated.filter((g) => g.chain === name).map((g) => g.model),
    })),
  };
}

/** `-A CHAIN rest` lines of a save text, per chain, in order. */
function ruleLines(saved: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of saved.split('\n')) {
    const m = /^-A (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const list = out.get(m[1] as string) ?? [];
    list.push(m[2] ?? '');
    out.set(m[1] as string, list);
  }
  return out;
}

const comparable = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

describeKernel('property: generated rules survive restore -> save -> parse -> write unchanged', () => {
  const ns = useNetns('ptest-prop');

  it.each(BATCHES)(`%s %s (seed ${SEED})`, async (family, table) => {
    const seed =
      (SEED ^ (family === 'ipv4' ? 0x1000 : 0x2000) ^ BATCHES.findIndex((b) => b[1] === table)) >>> 0;
    const generated = generate(seed, family, table);
    const exec = executorFor(ns());
    const where = `seed ${seed} (${family}/${table}; PORTCULLIS_PROPERTY_SEED=${SEED})`;

    const text1 = writeTable(tableOf(table, generated));
    try {
      await exec.restore(family, text1);
    } catch (e) {
      const line = (e as { line?: number }).line;
      const bad = line === undefined ? undefined : text1.split('\n')[line - 1];
      throw new Error(
        `${where}: the kernel refused a generated rule: ${(e as Error).message}\n  line: ${bad}`,
      );
    }
    const saved1 = await exec.save(family, { table });
    const parsed = parseSave(saved1, family).tables.find((t) => t.name === table);
    const lines = ruleLines(saved1);

    const problems: string[] = [];
    for (const chain of [...BUILTIN_CHAINS[table], USER_CHAIN, JUMP_CHAIN]) {
      const expected = generated.filter((g) => g.chain === chain);
      const back = parsed?.chains.find((c) => c.name === chain)?.rules ?? [];
      const printed = lines.get(chain) ?? [];
      if (back.length !== expected.length)
        problems.push(`${chain}: ${expected.length} rules written, ${back.length} read back`);
      expected.forEach((g, i) => {
        const ours = ruleText(g.model);
        const theirs = printed[i];
        const sameModel = JSON.stringify(back[i]) === JSON.stringify(g.model);
        if (ours !== theirs || !sameModel) {
          problems.push(
            [
              `${chain}[${i}] input: ${JSON.stringify(g.input)}`,
              `  ours:   ${ours}`,
              `  kernel: ${theirs}`,
              ...(sameModel
                ? []
                : [`  model:  ${JSON.stringify(g.model)}`, `  parsed: ${JSON.stringify(back[i])}`]),
            ].join('\n'),
          );
        }
      });
    }
    expect(problems, `${where}\n${problems.join('\n')}`).toEqual([]);

    // Second trip: what we parsed, written again, reads back as the same text.
    await exec.restore(family, writeTable(parsed as { name: TableName; chains: Chain[] }));
    const saved2 = await exec.save(family, { table });
    expect(comparable(saved2), where).toBe(comparable(saved1));
  });
});
