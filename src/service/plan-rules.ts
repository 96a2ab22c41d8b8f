/**
 * Planning rule operations: append, insert, ensure (add unless an identical
 * rule is there), replace and delete. See planner.ts for the shared steps.
 */
import { ruleText } from '../iptables/rule-writer.js';
import type { ValidOp } from './operations.js';
import type { JobPlan } from './plan-types.js';
import { at, type Planner, view, withinChain } from './planner.js';
import type { ChainState } from './state.js';

type RuleOp = Extract<ValidOp, { op: 'append' | 'insert' | 'ensure' | 'replace' | 'delete' }>;

export function planRuleOp(p: Planner, op: RuleOp, plan: JobPlan): void {
  const { family, table, field } = op;
  const chain = p.existing(family, table, op.chain, field);
  switch (op.op) {
    case 'append':
    case 'insert':
    case 'ensure': {
      p.checkJump(family, table, op.rule, field);
      const max = chain.entries.length + 1;
      const position =
        op.op === 'insert'
          ? withinChain(op.position, max, at(field, 'position'))
          : op.op === 'ensure' && op.position !== undefined
            ? withinChain(op.position, max, at(field, 'position'))
            : undefined;
      if (op.op === 'ensure') {
        const text = ruleText(op.rule);
        const found = chain.entries.find((e) => e.text === text);
        if (found) {
          plan.outcomes.push({
            op: op.op,
            existed: true,
            entry: { family, table, chain: op.chain, entry: found },
          });
          return;
        }
      }
      const entry = p.addRule(plan, family, table, chain, op.rule, position);
      plan.outcomes.push({
        op: op.op,
        ...(op.op === 'ensure' ? { existed: false } : {}),
        entry: { family, table, chain: op.chain, entry },
      });
      return;
    }
    case 'replace':
      replace(p, op, chain, plan);
      return;
    case 'delete': {
      const index = p.resolve(chain, op.target, family, table, at(field, 'target'));
      const deleted = p.removeRule(plan, family, table, chain, index);
      plan.outcomes.push({ op: op.op, deleted });
      return;
    }
  }
}

function replace(p: Planner, op: Extract<RuleOp, { op: 'replace' }>, chain: ChainState, plan: JobPlan): void {
  const { family, table, field, rule } = op;
  const index = p.resolve(chain, op.target, family, table, at(field, 'target'));
  p.checkJump(family, table, rule, field);
  const old = chain.entries[index];
  if (old === undefined) return;
  if (p.draft.occurrencesBefore(family, table, chain.name, old.text, chain.entries.length) === 1) {
    // The old rule is unique: delete it by spec and insert the new one in the same
    // transaction. Atomic, and if another process shifted positions a moment before,
    // no other rule is overwritten (-R N would replace whatever is at N then).
    const deleted = p.removeRule(plan, family, table, chain, index);
    const after = p.draft.chain(family, table, chain.name) as ChainState;
    const entry = p.addRule(
      plan,
      family,
      table,
      after,
      rule,
      index < after.entries.length ? index + 1 : undefined,
    );
    plan.outcomes.push({ op: op.op, entry: { family, table, chain: op.chain, entry }, deleted });
    return;
  }
  // Identical copies exist: a spec delete would remove the first copy; replace by position.
  const entry = p.newEntry(family, table, chain, rule, index);
  p.draft.replaceEntry(family, table, chain.name, index, entry);
  plan.commands.push({
    family,
    table,
    command: { op: 'replace', table, chain: chain.name, position: index + 1, rule },
    undo: [
      p.undoAdd(family, table, chain.name, rule, entry.text, index),
      { op: 'insert', table, chain: chain.name, position: index + 1, rule: old.rule },
    ],
    adds: { chain: chain.name, entry },
  });
  plan.changes.push({
    type: 'rule.deleted',
    family,
    table,
    chain: chain.name,
    position: index + 1,
    text: old.text,
    id: old.id,
  });
  plan.changes.push({
    type: 'rule.added',
    family,
    table,
    chain: chain.name,
    position: index + 1,
    text: entry.text,
    entry,
  });
  plan.outcomes.push({
    op: op.op,
    entry: { family, table, chain: op.chain, entry },
    deleted: view(old, index),
  });
}
