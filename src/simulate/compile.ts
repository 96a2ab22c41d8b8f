/**
 * Rulesets compiled for tracing: every rule becomes a list of checks, an
 * action, its canonical text and its id (the service's ids: ruleIds over
 * ruleText), plus the two path steps a trace pushes most ("no" and "yes"),
 * built once so that walking a 50,000-rule chain allocates nothing per rule.
 *
 * Compiled forms are cached per Ruleset object in a WeakMap, and chains are
 * compiled on first use: a Ruleset is immutable, so the cache can never be
 * stale, and it goes away with the Ruleset.
 */
import type { Family, TableName } from '../domain/family.js';
import { BUILTIN_CHAINS } from '../domain/family.js';
import type { Chain, Policy, Rule, Ruleset } from '../domain/model.js';
import { canonicalProtocol } from '../domain/protocol.js';
import { ruleIds } from '../domain/rule-id.js';
import { ruleText } from '../iptables/rule-writer.js';
import type { Check } from './check.js';
import { fieldChecks } from './checks-fields.js';
import { matchChecks } from './checks-match.js';
import { addressWords, parseCidr, type Words } from './ip.js';
import type { PolicyStep, RuleRef, RuleStep } from './result.js';
import { type Action, compileAction } from './targets.js';

/**
 * A cheap pre-test that can only say "no": one field of the rule kept as plain
 * numbers so the walker tests it inline, without a call. Kinds: 0 none,
 * 1/2 ipv4 source/destination CIDR, 3/4 ipv6 source/destination CIDR,
 * 5/6 ipv4 source/destination range, 7 destination port range (tcp/udp),
 * 8 protocol, 9 in interface (exact name).
 */
export interface Quick {
  readonly qKind: number;
  readonly qA: number;
  readonly qB: number;
  readonly qWords: Words;
  readonly qMask: Words;
  readonly qName: string;
}

export interface CompiledRule extends Quick {
  readonly ref: RuleRef;
  readonly rule: Rule;
  /** Rule-level fields first, then matches in order (the kernel's order). */
  readonly checks: readonly Check[];
  /** Has a match with a side effect (recent): evaluated strictly in order. */
  readonly effectful: boolean;
  readonly action: Action;
  readonly stepYes: RuleStep;
  readonly stepNo: RuleStep;
}

export interface CompiledChain {
  readonly table: TableName;
  readonly name: string;
  readonly builtin: boolean;
  readonly policy: Policy | undefined;
  readonly rules: readonly CompiledRule[];
  readonly policyStep: PolicyStep | undefined;
}

export interface CompiledTable {
  readonly name: TableName;
  readonly model: ReadonlyMap<string, Chain>;
  chain(name: string): CompiledChain | undefined;
}

export interface CompiledRuleset {
  readonly family: Family;
  readonly ruleset: Ruleset;
  table(name: TableName): CompiledTable | undefined;
}

const refCache = new WeakMap<Chain, { family: Family; table: TableName; refs: readonly RuleRef[] }>();

/** Refs (text and id) of a chain's rules, in order; cached per Chain object. */
export function chainRefs(family: Family, table: TableName, chain: Chain): readonly RuleRef[] {
  const hit = refCache.get(chain);
  if (hit && hit.family === family && hit.table === table) return hit.refs;
  const texts = chain.rules.map(ruleText);
  const ids = ruleIds(family, table, chain.name, texts);
  const refs = texts.map((text, i) =>
    Object.freeze({ table, chain: chain.name, position: i + 1, ruleId: ids[i] as string, ruleText: text }),
  );
  refCache.set(chain, { family, table, refs });
  return refs;
}

const NONE: Quick = Object.freeze({ qKind: 0, qA: 0, qB: 0, qWords: [], qMask: [], qName: '' });

function quickOf(rule: Rule, family: Family): Quick {
  const inv = (k: 'source' | 'destination' | 'inInterface' | 'protocol') => rule.invert?.includes(k) ?? false;
  for (const [key, kind4, kind6] of [
    ['source', 1, 3],
    ['destination', 2, 4],
  ] as const) {
    const text = rule[key];
    if (text === undefined || inv(key)) continue;
    const c = parseCidr(family, text);
    if (!c) continue;
    if (family === 'ipv4') return { ...NONE, qKind: kind4, qA: c.net[0] ?? 0, qB: c.mask[0] ?? 0 };
    return { ...NONE, qKind: kind6, qWords: c.net, qMask: c.mask };
  }
  for (const m of rule.matches) {
    if ('raw' in m) continue;
    if (m.module === 'iprange' && family === 'ipv4') {
      for (const [key, kind] of [
        ['srcRange', 5],
        ['dstRange', 6],
      ] as const) {
        const r = m[key];
        if (r === undefined || m.invert?.includes(key)) continue;
        const [lo, hi] = r.split('-').map((x) => addressWords(family, x)?.[0] ?? 0) as [number, number];
        return { ...NONE, qKind: kind, qA: lo, qB: hi };
      }
    }
    if (
      (m.module === 'tcp' || m.module === 'udp') &&
      m.dport !== undefined &&
      !(m.invert as readonly string[] | undefined)?.includes('dport')
    ) {
      const [lo, hi] = m.dport.split(':').map(Number) as [number, number | undefined];
      return { ...NONE, qKind: 7, qA: lo, qB: hi ?? lo };
    }
  }
  if (rule.inInterface !== undefined && !inv('inInterface') && !rule.inInterface.endsWith('+'))
    return { ...NONE, qKind: 9, qName: rule.inInterface };
  if (rule.protocol !== undefined && !inv('protocol')) {
    const n = canonicalProtocol(rule.protocol, 'protocol').number;
    if (n !== undefined && n !== 0) return { ...NONE, qKind: 8, qA: n };
  }
  return NONE;
}

function compileChain(family: Family, table: TableName, chain: Chain): CompiledChain {
  const refs = chainRefs(family, table, chain);
  const rules = chain.rules.map((rule, i): CompiledRule => {
    const ref = refs[i] as RuleRef;
    const checks = [...fieldChecks(rule, family), ...rule.matches.flatMap((m) => matchChecks(m, family))];
    const q = quickOf(rule, family);
    // Built field by field in one order (no spread), so every compiled rule has the
    // same hidden class and the walker's loads stay monomorphic.
    const compiled: CompiledRule = {
      qKind: q.qKind,
      qA: q.qA,
      qB: q.qB,
      qWords: q.qWords,
      qMask: q.qMask,
      qName: q.qName,
      ref,
      rule,
      checks,
      effectful: checks.some((c) => c.effect !== undefined),
      action: compileAction(rule.target, table),
      stepYes: Object.freeze({ kind: 'rule', ...ref, matched: 'yes' }),
      stepNo: Object.freeze({ kind: 'rule', ...ref, matched: 'no' }),
    };
    return compiled;
  });
  const builtin = BUILTIN_CHAINS[table].includes(chain.name);
  const policy = builtin ? (chain.policy ?? 'ACCEPT') : undefined;
  return {
    table,
    name: chain.name,
    builtin,
    policy,
    rules,
    policyStep: policy ? Object.freeze({ kind: 'policy', table, chain: chain.name, policy }) : undefined,
  };
}

const cache = new WeakMap<Ruleset, CompiledRuleset>();

export function compileRuleset(ruleset: Ruleset): CompiledRuleset {
  const hit = cache.get(ruleset);
  if (hit) return hit;
  const tables = new Map<TableName, CompiledTable>();
  for (const t of ruleset.tables) {
    const model = new Map(t.chains.map((c) => [c.name, c]));
    const compiled = new Map<string, CompiledChain>();
    tables.set(t.name, {
      name: t.name,
      model,
      chain(name) {
        let c = compiled.get(name);
        if (c) return c;
        const m = model.get(name);
        if (!m) return undefined;
        c = compileChain(ruleset.family, t.name, m);
        compiled.set(name, c);
        return c;
      },
    });
  }
  const result: CompiledRuleset = { family: ruleset.family, ruleset, table: (n) => tables.get(n) };
  cache.set(ruleset, result);
  return result;
}
