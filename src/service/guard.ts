/**
 * The lockout guard: a change that would cut the operator off is caught before
 * it reaches the kernel.
 *
 * Protected paths are packet descriptions for the simulator (src/simulate):
 * TCP to the SSH port (NEW and ESTABLISHED, and the replies in OUTPUT), from
 * the configured sources or from anywhere ("anywhere" is traced from an address
 * no rule's -s names, so banning addresses is not a lockout of everyone else,
 * while a catch-all DROP or `! -s NET -j DROP` is); TCP to the API's own ports from the
 * admin sources; for a remote caller, its own address to the port it is using;
 * and on ipv6 neighbour discovery (solicitations and advertisements), without
 * which no ipv6 packet arrives at all. Each path is traced on the ruleset as it
 * is and as the change would leave it; a path that goes from accepted to
 * dropped, rejected or "maybe dropped" is a lockout, and the change is refused
 * (failed_precondition, reason `lockout`) unless it says allowLockout.
 *
 * Cost: tracing is milliseconds, but a ruleset must be compiled first. So a
 * change is first checked statically: commands that add or remove a rule that
 * cannot match any protected packet, or that only add accepts, counters and
 * logs in the filter table, cannot change a path's fate, and skip the trace
 * (the common case: appends and deletes of rules for other ports). Anything
 * else (policies, flushes, chain deletes, rules that may match) is traced.
 */
import { DomainError } from '../domain/errors.js';
import { BUILTIN_CHAINS, type Family, type TableName } from '../domain/family.js';
import type { Chain, Rule, Ruleset } from '../domain/model.js';
import type { Command } from '../iptables/commands.js';
import {
  normalizePacket,
  type Packet,
  type PacketInput,
  type TraceResult,
  tracePacket,
} from '../simulate/index.js';
import { addressWords, type Cidr, inCidr, parseCidr } from '../simulate/ip.js';
import type { PlannedCommand } from './plan-types.js';
import { entriesOf } from './state.js';

export interface GuardConfig {
  /** TCP ports of SSH to protect (e.g. [22]); empty: SSH is not protected. */
  readonly sshPorts: readonly number[];
  /** Sources SSH must stay open from (addresses or CIDRs); empty: from anywhere. */
  readonly sshSources: readonly string[];
  /** TCP ports of the API (REST, gRPC) to protect; empty when the API is not in the managed namespace. */
  readonly apiPorts: readonly number[];
  /** Sources the API must stay open from. */
  readonly adminSources: readonly string[];
  /**
   * Protect a TCP caller's own path (its address to the port it reached us on). Off when the
   * API does not live behind the managed firewall (a service managing another namespace).
   * @default true
   */
  readonly protectCallers?: boolean;
}

/** The caller of a change, when it came over TCP: its own path is protected too. */
export interface Caller {
  readonly address: string;
  readonly port: number;
}

export interface ProtectedPath {
  /** What it stands for, e.g. `ssh tcp/22 NEW from 198.51.100.7`. */
  readonly name: string;
  readonly packet: Packet;
}

export interface Lockout {
  readonly path: string;
  readonly family: Family;
  /** The verdict(s) after the change: `DROP`, `REJECT`, or `maybe DROP` when it became uncertain. */
  readonly after: string;
  /** What cuts it: a rule (table, chain, position, text) or a policy. */
  readonly cutBy: string;
}

const ND = [
  { type: 135, name: 'neighbour solicitation', destination: 'ff02::1:ff00:1' },
  { type: 136, name: 'neighbour advertisement', destination: 'fe80::2' },
] as const;

function familyOf(address: string): Family {
  return address.includes(':') ? 'ipv6' : 'ipv4';
}

/** Candidates for a source "from anywhere", per family (documentation, private and public ranges). */
const ANYWHERE: Readonly<Record<Family, readonly string[]>> = {
  ipv4: [
    '203.0.113.77',
    '192.0.2.77',
    '198.51.100.77',
    '100.64.77.77',
    '172.31.77.77',
    '10.77.77.77',
    '8.8.77.77',
  ],
  ipv6: ['2001:db8:77::77', 'fd77::77', '2a00:77::77', '2600:77::77'],
};

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** One IPv4 host as iptables prints it (`10.1.2.3/32`: no leading zeros). */
const HOST_32 = new RegExp(`^(?:${OCTET}\\.){3}${OCTET}/32$`);

/**
 * The source a path "from anywhere" is traced with: an address no rule's `-s` names (bans of
 * single addresses or networks do not lock everyone else out), so that source-keyed matches
 * (`recent`) are decided too. Undefined when every candidate is named: then unknown, and any
 * rule on the source may cut the path.
 */
function anywhereSource(
  family: Family,
  rulesets: readonly ReadonlyMap<Family, Ruleset>[],
): string | undefined {
  const named: Cidr[] = [];
  const candidates = ANYWHERE[family];
  const hosts = new Set<string>();
  for (const m of rulesets)
    for (const t of m.get(family)?.tables ?? [])
      for (const c of t.chains)
        for (const source of sources(c)) {
          // Most sources are single IPv4 hosts (a kube-shaped table has one per endpoint):
          // in iptables' dotted form such a host names a candidate only by being it.
          if (HOST_32.test(source)) {
            const host = source.slice(0, -3);
            if (candidates.includes(host)) hosts.add(host);
            continue;
          }
          const cidr = parseCidr(family, source);
          if (cidr && cidr.prefix > 0) named.push(cidr);
        }
  return candidates.find((a) => {
    const words = addressWords(family, a);
    return words !== undefined && !hosts.has(a) && !named.some((c) => inCidr(c, words));
  });
}

/** The first host of a CIDR (a source the simulator can decide every `-s` with). */
function hostOf(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

/**
 * The sources (`-s`, not negated) of a chain's rules. From the texts where the chain has them
 * (lazyRuleset): a rule's text is canonical, as iptables-save prints it, and there `-s` (or
 * `! -s`) comes first when the rule has one; no rule is parsed for it.
 */
export function sources(chain: Chain): string[] {
  const out: string[] = [];
  const entries = entriesOf(chain);
  if (!entries) {
    for (const r of chain.rules)
      if (r.source !== undefined && !r.invert?.includes('source')) out.push(r.source);
    return out;
  }
  for (const e of entries) {
    if (!e.text.startsWith('-s ')) continue;
    const end = e.text.indexOf(' ', 3);
    out.push(end < 0 ? e.text.slice(3) : e.text.slice(3, end));
  }
  return out;
}

/**
 * Names of `recent` lists the rulesets use: a protected connection has no recent hits in any.
 * Only rules whose text mentions `recent` are parsed for it (a recent match prints `-m recent`).
 */
function recentLists(rulesets: readonly ReadonlyMap<Family, Ruleset>[]): Record<string, never[]> {
  const out: Record<string, never[]> = {};
  const note = (r: Rule) => {
    for (const m of r.matches) if (!('raw' in m) && m.module === 'recent') out[m.name ?? 'DEFAULT'] = [];
  };
  for (const rs of rulesets.flatMap((m) => [...m.values()]))
    for (const t of rs.tables)
      for (const c of t.chains) {
        const entries = entriesOf(c);
        if (!entries) for (const r of c.rules) note(r);
        else for (const e of entries) if (e.text.includes('recent')) note(e.rule);
      }
  return out;
}

function verdictText(t: TraceResult): string {
  if (t.definite) return t.verdict;
  return `maybe ${t.possibleVerdicts.filter((v) => v !== 'ACCEPT').join('/') || 'dropped'}`;
}

function accepted(t: TraceResult): boolean {
  return t.definite && t.verdict === 'ACCEPT';
}

/** What decided the first outcome that does not accept. */
function cutBy(t: TraceResult): string {
  const o = t.outcomes.find((x) => x.verdict !== 'ACCEPT') ?? t.outcomes[0];
  const s = o?.decidedBy;
  if (!s) return 'unknown';
  if (s.kind === 'policy') return `the ${s.policy} policy of ${s.table} ${s.chain}`;
  if (s.kind === 'rule') return `${s.table} ${s.chain} rule ${s.position} (${s.ruleText})`;
  return s.text;
}

export class LockoutGuard {
  /** Paths for the static check (no rulesets) by caller: they depend on nothing else. */
  private readonly staticPaths = new Map<string, ProtectedPath[]>();

  constructor(
    private readonly config: GuardConfig,
    private readonly families: readonly Family[],
  ) {}

  /**
   * The protected paths (and the callers'). Each packet says it has no hits in any `recent` list
   * the rulesets use (a protected connection is a fresh one): pass the rulesets before and after
   * the change; lists used by neither stay unknown. Without rulesets (the static check of every
   * change) the paths depend only on the callers, and are built once per caller.
   */
  paths(rulesets: readonly ReadonlyMap<Family, Ruleset>[], callers: readonly Caller[] = []): ProtectedPath[] {
    if (rulesets.length > 0) return this.build(rulesets, callers);
    const key = callers.map((c) => `${c.address} ${c.port}`).join(',');
    let paths = this.staticPaths.get(key);
    if (!paths) {
      if (this.staticPaths.size >= 1024) this.staticPaths.clear();
      paths = this.build(rulesets, callers);
      this.staticPaths.set(key, paths);
    }
    return paths;
  }

  private build(
    rulesets: readonly ReadonlyMap<Family, Ruleset>[],
    callers: readonly Caller[],
  ): ProtectedPath[] {
    const recent = recentLists(rulesets);
    const out: ProtectedPath[] = [];
    const tcp = (family: Family, what: string, port: number, source: string | undefined) => {
      const from = source === undefined ? 'anywhere' : source;
      const address = source ?? anywhereSource(family, rulesets);
      const base = {
        family,
        protocol: 'tcp',
        ...(address === undefined ? {} : { source: address }),
        recent,
      };
      const add = (name: string, input: PacketInput) => out.push({ name, packet: normalizePacket(input) });
      add(`${what} tcp/${port} NEW from ${from} (${family})`, {
        ...base,
        hook: 'INPUT',
        destinationPort: port,
        ctState: 'NEW',
        tcpFlags: ['SYN'],
      });
      add(`${what} tcp/${port} ESTABLISHED from ${from} (${family})`, {
        ...base,
        hook: 'INPUT',
        destinationPort: port,
        ctState: 'ESTABLISHED',
        tcpFlags: ['ACK'],
      });
      const { source: _, ...reply } = base;
      add(`${what} tcp/${port} replies to ${from} (${family})`, {
        ...reply,
        ...(address === undefined ? {} : { destination: address }),
        hook: 'OUTPUT',
        sourcePort: port,
        ctState: 'ESTABLISHED',
        tcpFlags: ['ACK'],
      });
    };
    for (const family of this.families) {
      const sources = (list: readonly string[]) => {
        const mine = list.filter((s) => familyOf(s) === family).map(hostOf);
        return list.length === 0 ? [undefined] : mine;
      };
      for (const port of this.config.sshPorts)
        for (const s of sources(this.config.sshSources)) tcp(family, 'ssh', port, s);
      if (this.config.adminSources.length > 0)
        for (const port of this.config.apiPorts)
          for (const s of sources(this.config.adminSources)) tcp(family, 'api', port, s);
      if (family === 'ipv6' && (this.config.sshPorts.length > 0 || this.config.apiPorts.length > 0)) {
        for (const nd of ND) {
          out.push({
            name: `ipv6 ${nd.name}`,
            packet: normalizePacket({
              family: 'ipv6',
              hook: 'INPUT',
              protocol: 'ipv6-icmp',
              icmpType: nd.type,
              icmpCode: 0,
              hopLimit: 255,
              ctState: 'UNTRACKED',
              source: 'fe80::1',
              destination: nd.destination,
              recent,
            } satisfies PacketInput),
          });
        }
      }
    }
    for (const c of this.config.protectCallers === false ? [] : callers) {
      const family = familyOf(c.address);
      if (this.families.includes(family)) tcp(family, 'caller', c.port, c.address);
    }
    return out;
  }

  /**
   * Whether the commands cannot change any protected path's fate, without tracing: each adds or
   * removes a rule that cannot match any protected packet, or adds only an accept, a counter or
   * a log in the filter table, or zeroes counters.
   */
  isSafe(commands: readonly PlannedCommand[], paths: readonly ProtectedPath[]): boolean {
    return commands.every((c) => this.safeCommand(c.family, c.command, paths));
  }

  private safeCommand(family: Family, c: Command, paths: readonly ProtectedPath[]): boolean {
    switch (c.op) {
      case 'zero':
      case 'createChain':
        return true;
      case 'append':
      case 'insert':
        return (
          (c.table === 'filter' && harmless(c.rule)) ||
          !mayMatchAny(family, c.rule, reaching(c.table, c.chain, paths))
        );
      case 'delete':
        return onlyDenies(c.rule) || !mayMatchAny(family, c.rule, reaching(c.table, c.chain, paths));
      case 'policy':
        return c.policy === 'ACCEPT';
      default:
        return false;
    }
  }

  /** The paths accepted before the change that it would cut (empty: none). */
  check(
    before: ReadonlyMap<Family, Ruleset>,
    after: ReadonlyMap<Family, Ruleset>,
    paths: readonly ProtectedPath[],
  ): Lockout[] {
    const out: Lockout[] = [];
    for (const p of paths) {
      if (!accepted(tracePacket(before, p.packet))) continue;
      const now = tracePacket(after, p.packet);
      if (accepted(now)) continue;
      out.push({ path: p.name, family: p.packet.family, after: verdictText(now), cutBy: cutBy(now) });
    }
    return out;
  }
}

/** A rule that cannot make a packet's fate worse: accepts, counts or logs only. */
function harmless(rule: Rule): boolean {
  const t = rule.target;
  if (t === undefined) return true;
  return 'target' in t && ['ACCEPT', 'LOG', 'NFLOG'].includes(t.target);
}

/** Matches on what earlier rules may have changed (marks) or on state we do not model alone: never decided in isolation. */
const CONTEXTUAL = new Set(['mark', 'connmark', 'recent', 'set', 'limit', 'hashlimit']);

/**
 * The paths a rule in this chain can meet: a packet is traced through the built-in chains of its
 * own hook (and what they jump to), so a rule in another built-in chain never sees it (a rule in
 * INPUT cannot touch the replies in OUTPUT); a user chain may be jumped to from any hook.
 */
function reaching(
  table: TableName,
  chain: string,
  paths: readonly ProtectedPath[],
): readonly ProtectedPath[] {
  if (!BUILTIN_CHAINS[table].includes(chain)) return paths;
  return paths.filter((p) => p.packet.hook === chain);
}

/**
 * A rule whose removal cannot cut an accepted path: it drops or rejects, and its matches have no
 * side effect and read no state other rules write. A path accepted (definitely) before the
 * change never matched it, so without it the path is the same. Removing expired bans is the
 * common case, and must not cost a trace of the whole ruleset.
 */
function onlyDenies(rule: Rule): boolean {
  const t = rule.target;
  if (t === undefined || !('target' in t) || (t.target !== 'DROP' && t.target !== 'REJECT')) return false;
  return rule.matches.every((m) => !('raw' in m) && !CONTEXTUAL.has(m.module));
}

const PROTOCOLS: Readonly<Record<string, number>> = { tcp: 6, udp: 17, icmp: 1, 'ipv6-icmp': 58, sctp: 132 };

/** Definitely no match, from the protocol and destination port alone (no trace needed). */
function quickMismatch(rule: Rule, packet: Packet): boolean {
  if (
    rule.protocol !== undefined &&
    rule.invert?.includes('protocol') !== true &&
    packet.protocol !== undefined
  ) {
    const n = PROTOCOLS[rule.protocol] ?? Number(rule.protocol);
    if (Number.isInteger(n) && n !== packet.protocol) return true;
  }
  for (const m of rule.matches) {
    if ('raw' in m || (m.module !== 'tcp' && m.module !== 'udp')) continue;
    const dport = m.dport;
    const inverted: readonly string[] = m.invert ?? [];
    if (dport === undefined || inverted.includes('dport') || packet.destinationPort === undefined) continue;
    const [lo = Number.NaN, hi = lo] = String(dport).split(':').map(Number);
    if (packet.destinationPort < lo || packet.destinationPort > hi) return true;
  }
  return false;
}

/**
 * Whether the rule could match one of the packets: from protocol and port when that settles it,
 * else by tracing it alone in a one-rule chain. Conservative: a jump, or a match on marks or
 * other state earlier rules may change, may match.
 */
function mayMatchAny(family: Family, rule: Rule, paths: readonly ProtectedPath[]): boolean {
  if (rule.target !== undefined && ('jump' in rule.target || 'goto' in rule.target)) return true;
  if (rule.matches.some((m) => 'raw' in m || CONTEXTUAL.has(m.module))) return true;
  const probe: Rule = { ...rule, target: { target: 'ACCEPT' } };
  for (const p of paths) {
    if (p.packet.family !== family || quickMismatch(rule, p.packet)) continue;
    const ruleset: Ruleset = {
      family,
      tables: [{ name: 'filter', chains: [{ name: p.packet.hook, policy: 'DROP', rules: [probe] }] }],
    };
    try {
      const t = tracePacket(ruleset, p.packet);
      if (!(t.definite && t.verdict === 'DROP')) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/** The refusal of a change that would cut protected paths. */
export function lockoutError(lockouts: readonly Lockout[], field?: string): DomainError {
  const [first] = lockouts;
  const more = lockouts.length > 1 ? ` (and ${lockouts.length - 1} more)` : '';
  const what = first
    ? `${first.path} would be ${first.after}, cut by ${first.cutBy}${more}`
    : 'a protected path';
  return new DomainError(
    'failed_precondition',
    `this change would lock you out: ${what}; allow what it needs first, or send it with allowLockout (or confirmWithin)`,
    {
      ...(field ? { field } : {}),
      details: { reason: 'lockout', lockouts: lockouts.map((l) => ({ ...l })) },
    },
  );
}
