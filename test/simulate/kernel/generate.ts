/**
 * Seeded random rulesets and the packets that exercise them, for the kernel
 * agreement test. Probes are chosen first (what the lab can really send:
 * TCP SYN, UDP datagram, ICMP echo, a UDP reply of an ESTABLISHED flow, an
 * ICMP error RELATED to one); rules are then drawn with values aimed at those
 * probes (their addresses, ports, lengths, TTLs), so that many rules match
 * and paths get long. Every ruleset is valid iptables-restore input: matches
 * come with the protocol they need, user chains only jump "forward" (no loops).
 */
import type { Family } from '../../../src/domain/family.js';
import { CLIENT_HOSTS, hostAddress, LINKS, type Link, SERVER_HOSTS } from './plan.js';

/** mulberry32: small, fast, good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Dice {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export type ProbeKind = 'tcp' | 'udp' | 'ping' | 'established' | 'related';

export interface Probe {
  readonly kind: ProbeKind;
  readonly family: Family;
  readonly link: Link;
  /** Client address (the packet's source at the server). */
  readonly src: string;
  /** Server address (the packet's destination). */
  readonly dst: string;
  /** Ports of the packet as the server sees it (source = client side). */
  readonly sport: number;
  readonly dport: number;
  /** Payload bytes (of the server's datagram for `related`). */
  readonly size: number;
  readonly ttl: number;
}

/** Fresh ports, so that no two probes of a run share a connection. */
export class Ports {
  private client: number;
  private server: number;
  constructor(d: Dice) {
    this.client = d.int(20_000, 30_000);
    this.server = d.int(40_000, 45_000);
  }
  nextClient(): number {
    return this.client++;
  }
  nextServer(): number {
    return this.server++;
  }
}

const SERVICE_PORTS = [22, 53, 80, 443, 8080];

export function makeProbe(d: Dice, family: Family, ports: Ports): Probe {
  const kind = d.pick<ProbeKind>(['tcp', 'tcp', 'udp', 'udp', 'ping', 'established', 'related']);
  const link = d.pick(LINKS);
  const src = hostAddress(link, family, d.pick(CLIENT_HOSTS));
  const dst = hostAddress(link, family, d.pick(SERVER_HOSTS));
  const size = d.int(0, 120);
  const ttl = d.chance(0.5) ? 64 : d.int(1, 255);
  const service = () => (d.chance(0.8) ? d.pick(SERVICE_PORTS) : d.int(1, 65535));
  switch (kind) {
    case 'tcp':
      return { kind, family, link, src, dst, sport: ports.nextClient(), dport: service(), size: 0, ttl: 64 };
    case 'udp':
      return { kind, family, link, src, dst, sport: ports.nextClient(), dport: service(), size, ttl };
    case 'ping':
      return { kind, family, link, src, dst, sport: -1, dport: -1, size: Math.max(size, 16), ttl };
    case 'established':
      return {
        kind,
        family,
        link,
        src,
        dst,
        sport: ports.nextClient(),
        dport: ports.nextServer(),
        size,
        ttl,
      };
    case 'related':
      return {
        kind,
        family,
        link,
        src,
        dst,
        sport: ports.nextClient(),
        dport: ports.nextServer(),
        size,
        ttl: 64,
      };
  }
}

const header = (family: Family) => (family === 'ipv4' ? 20 : 40);

/** Layer-3 length of the packet the server receives. */
export function probeLength(p: Probe): number {
  const h = header(p.family);
  switch (p.kind) {
    case 'tcp':
      return h + 40; // SYN with MSS, SACK-permitted, timestamps, window scale
    case 'udp':
    case 'established':
    case 'ping':
      return h + 8 + p.size;
    case 'related':
      return h + 8 + h + 8 + p.size; // the error quotes the whole small datagram
  }
}

/** The simulator's description of the probe at the server's INPUT. */
export function probePacket(p: Probe): Record<string, unknown> {
  const icmp = p.family === 'ipv4' ? 'icmp' : 'ipv6-icmp';
  const base: Record<string, unknown> = {
    family: p.family,
    hook: 'INPUT',
    inInterface: p.link.server,
    source: p.src,
    destination: p.dst,
    length: probeLength(p),
    [p.family === 'ipv4' ? 'ttl' : 'hopLimit']: p.ttl,
    pktType: 'unicast',
    ctNat: [],
  };
  switch (p.kind) {
    case 'tcp':
      return {
        ...base,
        protocol: 'tcp',
        sourcePort: p.sport,
        destinationPort: p.dport,
        tcpFlags: ['SYN'],
        ctState: 'NEW',
      };
    case 'udp':
      return { ...base, protocol: 'udp', sourcePort: p.sport, destinationPort: p.dport, ctState: 'NEW' };
    case 'ping':
      return {
        ...base,
        protocol: icmp,
        icmpType: p.family === 'ipv4' ? 8 : 128,
        icmpCode: 0,
        ctState: 'NEW',
      };
    case 'established':
      return {
        ...base,
        protocol: 'udp',
        sourcePort: p.sport,
        destinationPort: p.dport,
        ctState: 'ESTABLISHED',
        ctDirection: 'REPLY',
      };
    case 'related':
      return {
        ...base,
        protocol: icmp,
        icmpType: p.family === 'ipv4' ? 3 : 1,
        icmpCode: p.family === 'ipv4' ? 3 : 4,
        ctState: 'RELATED',
        ctDirection: 'REPLY',
      };
  }
}

// ------------------------------------------------------------------ rules

type L4 = 'tcp' | 'udp' | 'icmp';
const l4 = (p: Probe): L4 =>
  p.kind === 'tcp' ? 'tcp' : p.kind === 'udp' || p.kind === 'established' ? 'udp' : 'icmp';

const STATE_OF: Readonly<Record<ProbeKind, string>> = {
  tcp: 'NEW',
  udp: 'NEW',
  ping: 'NEW',
  established: 'ESTABLISHED',
  related: 'RELATED',
};

function cidr(d: Dice, family: Family, address: string): string {
  const prefix = family === 'ipv4' ? d.pick([32, 32, 30, 25, 24, 16]) : d.pick([128, 128, 126, 64, 48, 32]);
  return `${address}/${prefix}`;
}

/** A port or range near `port` (or anywhere). Never starts at 0, so `!` stays valid. */
function portSpan(d: Dice, port: number): string {
  if (port < 0 || d.chance(0.25)) {
    const lo = d.int(1, 65000);
    return d.chance(0.5) ? String(lo) : `${lo}:${lo + d.int(1, 500)}`;
  }
  if (d.chance(0.5)) return String(port);
  const lo = Math.max(1, port - d.int(0, 20));
  const hi = Math.min(65535, port + d.int(0, 20));
  return lo === hi ? String(lo) : `${lo}:${hi}`; // multiport refuses a range `a:a`
}

function numberSpan(d: Dice, value: number, max: number): string {
  if (d.chance(0.3)) return String(d.chance(0.5) ? value : d.int(0, max));
  const lo = Math.max(0, value - d.int(0, 30));
  return `${lo}:${Math.min(max, value + d.int(0, 30))}`;
}

const not = (d: Dice, p = 0.2) => (d.chance(p) ? '! ' : '');

function subset(d: Dice, words: readonly string[], aim: string): string {
  const out = words.filter((w) => (w === aim ? d.chance(0.6) : d.chance(0.3)));
  return (out.length ? out : [d.pick(words)]).join(',');
}

interface Draft {
  /** Protocol the matches need; `any` when the rule has none or a negated one. */
  proto: L4 | 'any' | 'negated';
  parts: string[];
}

type Condition = (d: Dice, f: Family, p: Probe, r: Draft) => void;

/** Requires a protocol; false when the rule's protocol rules the match out. */
function need(r: Draft, options: readonly L4[], d: Dice, p: Probe): L4 | undefined {
  if (r.proto === 'negated') return undefined;
  if (r.proto === 'any') {
    const aim = l4(p);
    r.proto = options.includes(aim) ? aim : d.pick(options);
    return r.proto;
  }
  return options.includes(r.proto) ? r.proto : undefined;
}

const ICMP_VALUES: Readonly<Record<Family, readonly string[]>> = {
  ipv4: ['8', 'echo-request', '0', '3', '3/3', '3/1', 'any', 'port-unreachable'],
  ipv6: ['128', 'echo-request', '129', '1', '1/4', '1/3', 'port-unreachable'],
};
const MARKS = ['0x1', '0x2', '0x3', '0x10', '0x1/0x1', '0x2/0x3', '0x10/0xf0', '0x0'];

const CONDITIONS: readonly (readonly [number, Condition])[] = [
  [
    3,
    (d, f, p, r) =>
      void r.parts.push(
        `${not(d)}-s ${cidr(d, f, d.chance(0.8) ? p.src : hostAddress(d.pick(LINKS), f, d.pick(CLIENT_HOSTS)))}`,
      ),
  ],
  [
    2,
    (d, f, p, r) =>
      void r.parts.push(
        `${not(d)}-d ${cidr(d, f, d.chance(0.8) ? p.dst : hostAddress(d.pick(LINKS), f, 10))}`,
      ),
  ],
  [
    2,
    (d, _f, p, r) =>
      void r.parts.push(
        `${not(d)}-i ${d.pick([p.link.server, p.link.server, 's+', `${p.link.server}+`, 'sb', 'x+'])}`,
      ),
  ],
  [
    4,
    (d, _f, p, r) => {
      const proto = need(r, ['tcp', 'udp'], d, p);
      if (!proto) return;
      const key = d.pick(['--dport', '--sport']);
      r.parts.push(`-m ${proto} ${not(d)}${key} ${portSpan(d, key === '--dport' ? p.dport : p.sport)}`);
    },
  ],
  [
    2,
    (d, _f, p, r) => {
      if (!need(r, ['tcp'], d, p)) return;
      const flags = [
        '--syn',
        '! --syn',
        '--tcp-flags SYN,ACK SYN',
        '--tcp-flags ALL SYN',
        '--tcp-flags FIN,SYN,RST,ACK SYN,ACK',
        '! --tcp-flags SYN SYN',
      ];
      r.parts.push(`-m tcp ${d.pick(flags)}`);
    },
  ],
  [
    2,
    (d, _f, p, r) => {
      if (!need(r, ['tcp', 'udp'], d, p)) return;
      const key = d.pick(['--dports', '--sports', '--ports']);
      const list = Array.from({ length: d.int(1, 4) }, () => portSpan(d, d.chance(0.5) ? p.dport : p.sport));
      r.parts.push(`-m multiport ${not(d, 0.15)}${key} ${list.join(',')}`);
    },
  ],
  [
    3,
    (d, f, p, r) => {
      if (!need(r, ['icmp'], d, p)) return;
      const v = d.pick(ICMP_VALUES[f]);
      r.parts.push(
        f === 'ipv4' ? `-m icmp ${not(d)}--icmp-type ${v}` : `-m icmp6 ${not(d)}--icmpv6-type ${v}`,
      );
    },
  ],
  [
    3,
    (d, _f, p, r) =>
      void r.parts.push(
        `-m state ${not(d)}--state ${subset(d, ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'], STATE_OF[p.kind])}`,
      ),
  ],
  [
    3,
    (d, f, p, r) => {
      const opts: string[] = [];
      if (d.chance(0.6))
        opts.push(
          `${not(d)}--ctstate ${subset(d, ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'DNAT'], STATE_OF[p.kind])}`,
        );
      if (d.chance(0.3)) opts.push(`--ctdir ${d.pick(['ORIGINAL', 'REPLY'])}`);
      if (d.chance(0.3)) opts.push(`${not(d)}--ctproto ${d.pick(['6', '17', f === 'ipv4' ? '1' : '58'])}`);
      if (d.chance(0.25)) {
        const orig = p.kind === 'established' || p.kind === 'related' ? p.dst : p.src;
        opts.push(`${not(d)}--ct${d.pick(['origsrc', 'repldst'])} ${cidr(d, f, orig)}`);
      }
      if (d.chance(0.2))
        opts.push(
          `${not(d)}--ctorigdstport ${portSpan(d, p.kind === 'established' || p.kind === 'related' ? p.sport : p.dport)}`,
        );
      if (opts.length === 0) opts.push(`--ctstate ${STATE_OF[p.kind]}`);
      r.parts.push(`-m conntrack ${opts.join(' ')}`);
    },
  ],
  [
    2,
    (d, f, p, r) => {
      const side = d.chance(0.5) ? 'src' : 'dst';
      const prefix = f === 'ipv4' ? p.link.v4 : p.link.v6;
      const address = side === 'src' ? p.src : p.dst;
      const host = Number.parseInt(address.slice(prefix.length), f === 'ipv4' ? 10 : 16);
      const lo = d.chance(0.3) ? host + d.int(1, 8) : Math.max(1, host - d.int(0, 8));
      const hi = lo + d.int(0, 16);
      const at = (n: number) => prefix + (f === 'ipv4' ? String(n) : n.toString(16));
      r.parts.push(`-m iprange ${not(d)}--${side}-range ${at(lo)}-${at(hi)}`);
    },
  ],
  [
    2,
    (d, _f, p, r) =>
      void r.parts.push(`-m length ${not(d, 0.15)}--length ${numberSpan(d, probeLength(p), 65535)}`),
  ],
  [
    2,
    (d, f, p, r) => {
      const m = f === 'ipv4' ? 'ttl' : 'hl';
      const op = d.pick(['eq', 'eq', 'gt', 'lt']);
      const v = d.chance(0.5) ? p.ttl : d.int(0, 255);
      const value =
        op === 'gt' ? Math.max(0, v - d.int(0, 2)) : op === 'lt' ? Math.min(255, v + d.int(0, 2)) : v;
      r.parts.push(`-m ${m} ${op === 'eq' ? not(d, 0.15) : ''}--${m}-${op} ${value}`);
    },
  ],
  [3, (d, _f, _p, r) => void r.parts.push(`-m mark ${not(d, 0.15)}--mark ${d.pick(MARKS)}`)],
  [1, (d, _f, _p, r) => void r.parts.push(`-m comment --comment "note ${d.int(0, 99)}"`)],
  [0.3, (d, _f, _p, r) => void r.parts.push(`-m limit --limit ${d.int(1, 100)}/sec`)],
  [
    0.3,
    (d, f, _p, r) => {
      if (f === 'ipv4') r.parts.push(`${not(d, 0.5)}-f`);
    },
  ],
];
const TOTAL_WEIGHT = CONDITIONS.reduce((n, [w]) => n + w, 0);

function condition(d: Dice): Condition {
  let x = d.next() * TOTAL_WEIGHT;
  for (const [w, c] of CONDITIONS) {
    x -= w;
    if (x <= 0) return c;
  }
  return (CONDITIONS[0] as readonly [number, Condition])[1];
}

const PROTO_TEXT: Readonly<Record<Family, Readonly<Record<L4, readonly string[]>>>> = {
  ipv4: { tcp: ['tcp', '6'], udp: ['udp', '17'], icmp: ['icmp', '1'] },
  ipv6: { tcp: ['tcp', '6'], udp: ['udp', '17'], icmp: ['ipv6-icmp', '58'] },
};

interface ChainPlan {
  readonly name: string;
  /** Chains it may jump or go to (later ones only: no loops). */
  readonly callees: readonly string[];
}

function target(d: Dice, f: Family, table: 'filter' | 'mangle', plan: ChainPlan, r: Draft): string {
  const roll = d.next();
  const mark = () => {
    const op = d.pick(['set-xmark', 'set-mark', 'or-mark']);
    const value = d.pick(
      op === 'or-mark' ? ['0x1', '0x2', '0x10'] : ['0x1', '0x2', '0x3', '0x10', '0x1/0x3', '0x10/0xff'],
    );
    return `-j MARK --${op} ${value}`;
  };
  if (table === 'mangle') {
    if (roll < 0.5) return mark();
    if (roll < 0.6) return '-j ACCEPT';
    if (roll < 0.65) return '-j DROP';
    if (roll < 0.75) return '-j LOG';
    if (roll < 0.8) return '-j RETURN';
    return '';
  }
  const callee = plan.callees.length ? d.pick(plan.callees) : undefined;
  // Mostly non-terminating targets, so that paths are long and many rules are tested.
  if (roll < 0.15) return '-j ACCEPT';
  if (roll < 0.23) return '-j DROP';
  if (roll < 0.29) {
    if (r.proto === 'tcp' && d.chance(0.4)) return '-j REJECT --reject-with tcp-reset';
    return d.chance(0.5)
      ? '-j REJECT'
      : `-j REJECT --reject-with ${f === 'ipv4' ? 'icmp-host-prohibited' : 'icmp6-adm-prohibited'}`;
  }
  if (roll < 0.35) return '-j RETURN';
  if (roll < 0.5 && callee) return `-j ${callee}`;
  if (roll < 0.55 && callee) return `-g ${callee}`;
  if (roll < 0.7) return mark();
  if (roll < 0.78)
    return d.chance(0.5) ? '-j LOG --log-prefix "sim: "' : `-j NFLOG --nflog-group ${d.int(0, 5)}`;
  return '';
}

function rule(
  d: Dice,
  f: Family,
  table: 'filter' | 'mangle',
  plan: ChainPlan,
  probes: readonly Probe[],
): string {
  const p = d.pick(probes);
  const r: Draft = { proto: 'any', parts: [] };
  const roll = d.next();
  let protoText = '';
  if (roll < 0.45) r.proto = l4(p);
  else if (roll < 0.58) r.proto = d.pick<L4>(['tcp', 'udp', 'icmp']);
  else if (roll < 0.63) {
    r.proto = 'negated';
    protoText = `! -p ${d.pick(PROTO_TEXT[f][d.pick<L4>(['tcp', 'udp', 'icmp'])])}`;
  }
  const n = d.int(0, 3);
  const used = new Set<Condition>();
  for (let i = 0; i < n; i++) {
    const c = condition(d);
    // Each kind at most once: iptables refuses `-s` twice, and two tcp matches with
    // different ports would be refused too.
    if (used.has(c)) continue;
    used.add(c);
    c(d, f, p, r);
  }
  if (r.proto !== 'any' && r.proto !== 'negated') protoText = `-p ${d.pick(PROTO_TEXT[f][r.proto])}`;
  const t = target(d, f, table, plan, r);
  return ['-A', plan.name, protoText, ...r.parts, t].filter((x) => x !== '').join(' ');
}

/** Save text of the mangle and filter tables for one round. */
export function makeRuleset(d: Dice, family: Family, probes: readonly Probe[]): string {
  const users = Array.from({ length: d.int(0, 3) }, (_, i) => `U${i}`);
  const plans: ChainPlan[] = [
    { name: 'INPUT', callees: users },
    ...users.map((name, i) => ({ name, callees: users.slice(i + 1) })),
  ];
  const lines = [
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
  ];
  if (d.chance(0.35)) {
    const plan = { name: 'INPUT', callees: [] };
    for (let i = d.int(1, 3); i > 0; i--) lines.push(rule(d, family, 'mangle', plan, probes));
  }
  lines.push(
    'COMMIT',
    '*filter',
    `:INPUT ${d.chance(0.5) ? 'DROP' : 'ACCEPT'} [0:0]`,
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
  );
  for (const u of users) lines.push(`:${u} - [0:0]`);
  for (const plan of plans) {
    const count = plan.name === 'INPUT' ? d.int(3, 12) : d.int(1, 6);
    for (let i = 0; i < count; i++) lines.push(rule(d, family, 'filter', plan, probes));
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}
