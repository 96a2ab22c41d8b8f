/**
 * Seeded random operations for the differential and crash tests: every kind
 * of operation the service performs (rule adds, inserts, ensures, replaces,
 * deletes by id/position/spec; chain create, delete with and without force,
 * flush, rename; policies; zeroing counters; declarative replaces of a chain
 * and a table; reset), as single operations and as transactions mixing them,
 * over both families and several tables. Operations are drawn against a
 * snapshot of the model so that most are valid; some are not (a chain that
 * went away, a rule already deleted), which is part of the test: a refused
 * change must change nothing.
 */
import type { Family, TableName } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import type { Operation } from '../../src/service/operations.js';
import type { Rng } from './rule-gen.js';

export const DIFF_TABLES: readonly TableName[] = ['filter', 'nat', 'mangle', 'raw'];
const BUILTINS: Readonly<Record<TableName, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};
/** User chain names the generator creates (and renames between). */
const NAMES = ['U1', 'U2', 'U3', 'U4', 'SSH', 'LOG_AND_DROP'];

/** What the generator needs to know of the model: chains per family/table with their rules' ids and texts. */
export interface Snapshot {
  readonly chains: ReadonlyMap<
    string,
    { readonly ids: readonly string[]; readonly builtin: boolean; readonly texts: readonly string[] }
  >;
}

export function snapshotOf(
  rulesets: ReadonlyMap<Family, Ruleset>,
  ids: (family: Family, table: TableName, chain: string) => readonly string[],
): Snapshot {
  const chains = new Map<string, { ids: readonly string[]; builtin: boolean; texts: readonly string[] }>();
  for (const [family, rs] of rulesets) {
    for (const t of rs.tables) {
      for (const c of t.chains) {
        chains.set(`${family}/${t.name}/${c.name}`, {
          ids: ids(family, t.name, c.name),
          builtin: BUILTINS[t.name].includes(c.name),
          texts: c.rules.map((rule) => ruleText(rule)),
        });
      }
    }
  }
  return { chains };
}

/** Chains other processes write in the kernel tests (never a target of generated changes). */
export const EXTERNAL_CHAINS: readonly string[] = ['EXT', 'BUSY'];

function userChains(s: Snapshot, family: Family, table: TableName): string[] {
  const prefix = `${family}/${table}/`;
  return [...s.chains]
    .filter(
      ([k, v]) => k.startsWith(prefix) && !v.builtin && !EXTERNAL_CHAINS.includes(k.slice(prefix.length)),
    )
    .map(([k]) => k.slice(prefix.length));
}

function chainsOf(s: Snapshot, family: Family, table: TableName): string[] {
  return [...BUILTINS[table], ...userChains(s, family, table)];
}

function addr(r: Rng, family: Family): string {
  return family === 'ipv4'
    ? `${r.pick(['192.0.2', '198.51.100'])}.${r.int(1, 254)}`
    : `2001:db8:${r.int(0, 9)}::${r.int(1, 0xffff).toString(16)}`;
}

const TEXTS = ['ssh', 'a b', 'it\'s "quoted"', 'back\\slash', 'ünï ✓', '-j DROP', '#$'];

/** A rule spec for `chain` of `table`, jumping only to user chains that exist. */
export function ruleSpec(r: Rng, s: Snapshot, family: Family, table: TableName, chain: string): string {
  const parts: string[] = [];
  if (r.chance(0.4)) parts.push(`${r.chance(0.2) ? '! ' : ''}-s ${addr(r, family)}`);
  const proto = r.pick(['tcp', 'udp', 'none', 'none']);
  if (proto !== 'none') {
    parts.push(`-p ${proto}`);
    if (r.chance(0.7)) parts.push(`--dport ${r.pick([22, 53, 80, 443, r.int(1, 65535)])}`);
  }
  if (r.chance(0.2)) parts.push('-m conntrack --ctstate ESTABLISHED,RELATED');
  if (r.chance(0.15))
    parts.push(`-m comment --comment ${JSON.stringify(r.pick(TEXTS)).replace(/'/g, "\\'")}`);
  if (r.chance(0.05)) parts.push('-m statistic --mode random --probability 0.50000000000');
  const jumps = userChains(s, family, table).filter((c) => c !== chain);
  const verdicts = table === 'nat' ? ['ACCEPT', 'RETURN'] : ['ACCEPT', 'DROP', 'RETURN'];
  if (jumps.length && r.chance(0.2)) parts.push(`-j ${r.pick(jumps)}`);
  else if (r.chance(0.85)) parts.push(`-j ${r.pick(verdicts)}`);
  return parts.join(' ');
}

function one(r: Rng, s: Snapshot, families: readonly Family[]): Operation {
  const family = r.pick(families);
  const table = r.pick(DIFF_TABLES);
  const chains = chainsOf(s, family, table);
  const chain = r.pick(chains);
  const ids = s.chains.get(`${family}/${table}/${chain}`)?.ids ?? [];
  const users = userChains(s, family, table);
  const kind = r.int(0, 99);
  const rule = () => ({ spec: ruleSpec(r, s, family, table, chain) });
  if (kind < 30) return { op: 'append', family, table, chain, rule: rule() };
  if (kind < 38)
    return { op: 'insert', family, table, chain, position: r.int(1, ids.length + 1), rule: rule() };
  if (kind < 44) return { op: 'ensure', family, table, chain, rule: rule() };
  if (kind < 52 && ids.length) {
    const target = r.chance(0.5) ? { id: r.pick(ids) } : { position: r.int(1, ids.length) };
    return { op: 'replace', family, table, chain, target, rule: rule() };
  }
  if (kind < 64 && ids.length) {
    const target = r.chance(0.6) ? { id: r.pick(ids) } : { position: r.int(1, ids.length) };
    return { op: 'delete', family, table, chain, target };
  }
  if (kind < 70) return { op: 'createChain', family, table, chain: r.pick(NAMES) };
  if (kind < 74 && users.length)
    return { op: 'deleteChain', family, table, chain: r.pick(users), force: r.chance(0.7) };
  if (kind < 77) return { op: 'flushChain', family, table, chain };
  if (kind < 80 && users.length)
    return { op: 'renameChain', family, table, chain: r.pick(users), newName: r.pick(NAMES) };
  if (kind < 86) {
    const builtin = r.pick(BUILTINS[table]);
    return { op: 'setPolicy', family, table, chain: builtin, policy: r.pick(['ACCEPT', 'DROP'] as const) };
  }
  if (kind < 90)
    return r.chance(0.5)
      ? { op: 'zeroCounters', family, table, chain }
      : { op: 'zeroCounters', family, table };
  if (kind < 95) {
    const rules = Array.from({ length: r.int(0, 5) }, () => rule());
    return { op: 'replaceChain', family, table, chain, rules };
  }
  if (kind < 98) {
    // Half of them send the table back as the model holds it, with a rule added and maybe one
    // dropped: what a client keeping a table in sync does (the service then finds most rules
    // by their text among the ones requests made before: accepted-rules.ts).
    if (r.chance(0.5)) return resync(r, s, family, table);
    const kept = users.filter(() => r.chance(0.7));
    return {
      op: 'replaceTable',
      family,
      table,
      chains: [
        ...BUILTINS[table].map((name) => ({
          name,
          ...(r.chance(0.3) ? { policy: r.pick(['ACCEPT', 'DROP'] as const) } : {}),
          rules: Array.from({ length: r.int(0, 3) }, () => ({ spec: ruleSpec(r, s, family, table, name) })),
        })),
        ...kept.map((name) => ({ name, rules: [{ spec: '-j RETURN' }] })),
      ],
    };
  }
  return { op: 'reset', family, table };
}

/** The table as the snapshot holds it, every rule by its text, one chain changed by a rule. */
function resync(r: Rng, s: Snapshot, family: Family, table: TableName): Operation {
  const prefix = `${family}/${table}/`;
  const chains = [...s.chains]
    .filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => ({ name: k.slice(prefix.length), texts: v.texts }));
  const target = r.pick(chains.length ? chains : [{ name: r.pick(BUILTINS[table]), texts: [] }]);
  const drop = target.texts.length > 0 && r.chance(0.5);
  const added = ruleSpec(r, s, family, table, target.name);
  const all = chains.some((c) => c.name === target.name) ? chains : [...chains, target];
  return {
    op: 'replaceTable',
    family,
    table,
    chains: all.map((c) => {
      const texts = c === target ? [...(drop ? c.texts.slice(1) : c.texts), added] : c.texts;
      return { name: c.name, rules: texts.map((spec) => ({ spec })) };
    }),
  };
}

/** One request: a single operation (70%) or a transaction of 2 to 5 mixing kinds, tables and families. */
export function request(r: Rng, s: Snapshot, families: readonly Family[]): Operation[] {
  if (r.chance(0.7)) return [one(r, s, families)];
  return Array.from({ length: r.int(2, 5) }, () => one(r, s, families));
}
