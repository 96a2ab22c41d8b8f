/**
 * Planning declarative operations: make a chain hold exactly a list of rules,
 * make a table hold exactly a set of chains, and reset to the baseline (empty
 * tables with ACCEPT policies unless configured). Each is planned as the
 * minimal change: the common prefix and suffix of a chain stay, only the middle
 * is replaced (or the chain is rebuilt when that is cheaper).
 */
import { BUILTIN_CHAINS, type Family, TABLES, type TableName } from '../domain/family.js';
import type { Rule } from '../domain/model.js';
import { ruleText } from '../iptables/rule-writer.js';
import type { ValidChainSpec, ValidOp } from './operations.js';
import { createChain } from './plan-chains.js';
import type { JobPlan } from './plan-types.js';
import { at, type Planner, refill } from './planner.js';
import { adoptRule, type ChainState, type RuleEntry } from './state.js';
import { checkTableChains } from './validate-operations.js';

type TableOp = Extract<ValidOp, { op: 'replaceChain' | 'replaceTable' | 'reset' }>;

export function planTableOp(p: Planner, op: TableOp, plan: JobPlan): void {
  switch (op.op) {
    case 'replaceChain': {
      const { family, table, field } = op;
      if (!p.draft.chain(family, table, op.chain) && !BUILTIN_CHAINS[table].includes(op.chain))
        createChain(p, { family, table, chain: op.chain, field }, plan);
      for (const [i, r] of op.rules.entries()) p.checkJump(family, table, r, at(field, `rules[${i}]`));
      replaceRules(p, plan, family, table, p.existing(family, table, op.chain, field), op.rules);
      break;
    }
    case 'replaceTable':
      replaceTable(p, plan, op.family, op.table, op.chains);
      break;
    case 'reset': {
      const families: Family[] = op.family ? [op.family] : ['ipv4', 'ipv6'];
      for (const family of families) {
        const baseline = p.options.baseline?.get(family);
        const tables = op.table
          ? [op.table]
          : TABLES.filter((t) => p.draft.table(family, t) || baseline?.has(t));
        for (const table of tables) {
          if (!p.draft.table(family, table) && !baseline?.has(table)) continue;
          const chains = checkTableChains(
            (
              baseline?.get(table) ??
              BUILTIN_CHAINS[table].map((name) => ({ name, policy: 'ACCEPT' as const, rules: [] }))
            ).map((c, i) => ({
              name: c.name,
              builtin: BUILTIN_CHAINS[table].includes(c.name),
              policy: c.policy,
              rules: c.rules,
              field: `baseline.${family}.${table}.chains[${i}]`,
            })),
          );
          replaceTable(p, plan, family, table, chains);
        }
      }
      break;
    }
  }
  plan.outcomes.push({ op: op.op });
}

/** Minimal change to make `chain` hold `rules`: keep the common prefix and suffix, replace the middle. */
function replaceRules(
  p: Planner,
  plan: JobPlan,
  family: Family,
  table: TableName,
  chain: ChainState,
  rules: readonly Rule[],
  known?: readonly (string | undefined)[],
): void {
  const old = chain.entries;
  const texts = rules.map((r, i) => known?.[i] ?? ruleText(r));
  let prefix = 0;
  while (prefix < old.length && prefix < texts.length && old[prefix]?.text === texts[prefix]) prefix++;
  let suffix = 0;
  while (
    suffix < old.length - prefix &&
    suffix < texts.length - prefix &&
    old[old.length - 1 - suffix]?.text === texts[texts.length - 1 - suffix]
  ) {
    suffix++;
  }
  // The kept rules were just parsed from the request: entries read from the kernel take that.
  for (let k = 0; k < prefix; k++) adoptRule(old[k] as RuleEntry, rules[k] as Rule);
  for (let k = 1; k <= suffix; k++)
    adoptRule(old[old.length - k] as RuleEntry, rules[rules.length - k] as Rule);
  const deleteCount = old.length - prefix - suffix;
  if (deleteCount === 0 && texts.length - prefix - suffix === 0) return;
  // A delete by spec removes the first identical rule: if a rule to remove has a copy in the
  // prefix, that copy would go instead, so rebuild.
  const kept = new Set(old.slice(0, prefix).map((e) => e.text));
  const shadowed = old.slice(prefix, prefix + deleteCount).some((e) => kept.has(e.text));
  if (deleteCount > p.rebuildThreshold || shadowed) {
    // Cheaper to rebuild than to delete many rules one by one.
    plan.commands.push({
      family,
      table,
      command: { op: 'flush', table, chain: chain.name },
      undo: refill(table, chain.name, old),
    });
    plan.changes.push({ type: 'chain.flushed', family, table, chain: chain.name });
    let current: ChainState = { ...chain, entries: [] };
    p.draft.setChain(
      family,
      table,
      current,
      old.map((e) => e.text),
    );
    for (const r of rules) {
      p.addRule(plan, family, table, current, r, undefined);
      current = p.draft.chain(family, table, chain.name) as ChainState;
    }
    return;
  }
  let current = chain;
  for (let k = 0; k < deleteCount; k++) {
    p.removeRule(plan, family, table, current, prefix);
    current = p.draft.chain(family, table, chain.name) as ChainState;
  }
  for (let k = prefix; k < texts.length - suffix; k++) {
    const position = k + 1 <= current.entries.length ? k + 1 : undefined;
    p.addRule(plan, family, table, current, rules[k] as Rule, position);
    current = p.draft.chain(family, table, chain.name) as ChainState;
  }
}

function replaceTable(
  p: Planner,
  plan: JobPlan,
  family: Family,
  table: TableName,
  desired: readonly ValidChainSpec[],
): void {
  const names = new Set(desired.map((d) => d.name));
  p.draft.table(family, table, true);
  // 1. create new user chains, 2. policies, 3. contents, 4. flush and delete chains not wanted.
  for (const d of desired) {
    if (!d.builtin && !p.draft.chain(family, table, d.name)) {
      p.draft.setChain(family, table, { name: d.name, policy: undefined, counters: undefined, entries: [] });
      plan.commands.push({
        family,
        table,
        command: { op: 'createChain', table, chain: d.name },
        undo: [{ op: 'deleteChain', table, chain: d.name }],
      });
      plan.changes.push({ type: 'chain.created', family, table, chain: d.name });
    }
  }
  for (const b of BUILTIN_CHAINS[table]) {
    const wanted = desired.find((d) => d.name === b)?.policy ?? 'ACCEPT';
    const c = p.existing(family, table, b);
    if (c.policy !== wanted) {
      p.draft.setChain(family, table, { ...c, policy: wanted });
      plan.commands.push({
        family,
        table,
        command: { op: 'policy', table, chain: b, policy: wanted },
        undo: [{ op: 'policy', table, chain: b, policy: c.policy ?? 'ACCEPT' }],
      });
      plan.changes.push({ type: 'policy.set', family, table, chain: b, policy: wanted });
    }
  }
  for (const b of BUILTIN_CHAINS[table]) {
    if (!names.has(b)) replaceRules(p, plan, family, table, p.existing(family, table, b), []);
  }
  for (const d of desired)
    replaceRules(p, plan, family, table, p.existing(family, table, d.name), d.rules, d.texts);
  const current = p.draft.table(family, table) as ReadonlyMap<string, ChainState>;
  const unwanted = [...current.values()].filter(
    (c) => !BUILTIN_CHAINS[table].includes(c.name) && !names.has(c.name),
  );
  for (const c of unwanted) {
    if (c.entries.length) {
      plan.commands.push({
        family,
        table,
        command: { op: 'flush', table, chain: c.name },
        undo: refill(table, c.name, c.entries),
      });
      plan.changes.push({ type: 'chain.flushed', family, table, chain: c.name });
    }
  }
  for (const c of unwanted) {
    p.draft.deleteChain(family, table, c.name);
    plan.commands.push({
      family,
      table,
      command: { op: 'deleteChain', table, chain: c.name },
      undo: [{ op: 'createChain', table, chain: c.name }],
    });
    plan.changes.push({ type: 'chain.deleted', family, table, chain: c.name });
  }
}
