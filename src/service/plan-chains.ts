/**
 * Planning chain operations: create, delete (with force: the rules that jump
 * to it and its own rules go first), flush, rename (jumps follow, ids are
 * recomputed), policy and zeroing counters. See planner.ts for the shared steps.
 */
import { DomainError } from '../domain/errors.js';
import { BUILTIN_CHAINS } from '../domain/family.js';
import type { Rule } from '../domain/model.js';
import type { ValidOp } from './operations.js';
import type { JobPlan } from './plan-types.js';
import { at, type Planner, refill } from './planner.js';
import { type ChainState, referencesTo, settleHandle } from './state.js';

type ChainOp = Extract<
  ValidOp,
  { op: 'createChain' | 'deleteChain' | 'flushChain' | 'renameChain' | 'setPolicy' | 'zeroCounters' }
>;

export function planChainOp(p: Planner, op: ChainOp, plan: JobPlan): void {
  const { family, table, field } = op;
  switch (op.op) {
    case 'createChain':
      createChain(p, op, plan);
      break;
    case 'deleteChain':
      deleteChain(p, op, plan);
      break;
    case 'flushChain': {
      const chain = p.existing(family, table, op.chain, field);
      p.draft.setChain(
        family,
        table,
        { ...chain, entries: [] },
        chain.entries.map((e) => e.text),
      );
      plan.commands.push({
        family,
        table,
        command: { op: 'flush', table, chain: op.chain },
        undo: refill(table, op.chain, chain.entries),
      });
      plan.changes.push({ type: 'chain.flushed', family, table, chain: op.chain });
      break;
    }
    case 'renameChain':
      renameChain(p, op, plan);
      break;
    case 'setPolicy': {
      const chain = p.existing(family, table, op.chain, field);
      p.draft.setChain(family, table, { ...chain, policy: op.policy });
      plan.commands.push({
        family,
        table,
        command: { op: 'policy', table, chain: op.chain, policy: op.policy },
        undo: [{ op: 'policy', table, chain: op.chain, policy: chain.policy ?? 'ACCEPT' }],
      });
      plan.changes.push({ type: 'policy.set', family, table, chain: op.chain, policy: op.policy });
      break;
    }
    case 'zeroCounters': {
      if (op.chain !== undefined) p.existing(family, table, op.chain, field);
      else if (!p.draft.table(family, table)) {
        throw new DomainError('not_found', `table ${table} (${family}) is not in use`, {
          field: at(field, 'table'),
        });
      }
      plan.commands.push({
        family,
        table,
        command: op.chain === undefined ? { op: 'zero', table } : { op: 'zero', table, chain: op.chain },
        // Counters cannot be put back.
        undo: [],
      });
      plan.changes.push({ type: 'counters.zeroed', family, table, chain: op.chain ?? '*' });
      break;
    }
  }
  plan.outcomes.push({ op: op.op });
}

/** Creates a user chain in the draft (used by createChain and by replaces that need a new chain). */
export function createChain(
  p: Planner,
  op: { family: ChainOp['family']; table: ChainOp['table']; chain: string; field: string },
  plan: JobPlan,
): void {
  const { family, table, field } = op;
  p.draft.table(family, table, true);
  if (p.draft.chain(family, table, op.chain)) {
    throw new DomainError(
      'already_exists',
      `chain ${op.chain} already exists in table ${table} (${family})`,
      {
        field: at(field, 'chain'),
      },
    );
  }
  p.draft.setChain(family, table, { name: op.chain, policy: undefined, counters: undefined, entries: [] });
  plan.commands.push({
    family,
    table,
    command: { op: 'createChain', table, chain: op.chain },
    undo: [{ op: 'deleteChain', table, chain: op.chain }],
  });
  plan.changes.push({ type: 'chain.created', family, table, chain: op.chain });
}

function deleteChain(p: Planner, op: Extract<ChainOp, { op: 'deleteChain' }>, plan: JobPlan): void {
  const { family, table, field } = op;
  const chain = p.existing(family, table, op.chain, field);
  const tableState = p.draft.table(family, table) as ReadonlyMap<string, ChainState>;
  const refs = referencesTo({ name: table, chains: tableState }, op.chain).filter(
    (r) => r.chain !== op.chain,
  );
  if (!op.force && chain.entries.length > 0) {
    throw new DomainError(
      'failed_precondition',
      `chain ${op.chain} still has ${chain.entries.length} rule(s): flush it first, or delete with force`,
      { field: at(field, 'chain'), details: { rules: chain.entries.length } },
    );
  }
  if (!op.force && refs.length > 0) {
    throw new DomainError(
      'failed_precondition',
      `chain ${op.chain} is referenced by ${refs.map((r) => `${r.chain} rule ${r.position}`).join(', ')}: delete those rules first, or delete with force`,
      { field: at(field, 'chain'), details: { references: refs } },
    );
  }
  // Force: delete referring rules (highest position first per chain), then flush and delete the chain.
  for (const ref of [...refs].reverse()) {
    const c = p.draft.chain(family, table, ref.chain) as ChainState;
    p.removeRule(plan, family, table, c, ref.position - 1);
  }
  if (chain.entries.length > 0) {
    plan.commands.push({
      family,
      table,
      command: { op: 'flush', table, chain: op.chain },
      undo: refill(table, op.chain, chain.entries),
    });
    plan.changes.push({ type: 'chain.flushed', family, table, chain: op.chain });
  }
  p.draft.deleteChain(family, table, op.chain);
  plan.commands.push({
    family,
    table,
    command: { op: 'deleteChain', table, chain: op.chain },
    undo: [{ op: 'createChain', table, chain: op.chain }],
  });
  plan.changes.push({ type: 'chain.deleted', family, table, chain: op.chain });
}

function renameChain(p: Planner, op: Extract<ChainOp, { op: 'renameChain' }>, plan: JobPlan): void {
  const { family, table, field, newName } = op;
  p.existing(family, table, op.chain, field);
  if (p.draft.chain(family, table, newName) || BUILTIN_CHAINS[table].includes(newName)) {
    throw new DomainError('already_exists', `chain ${newName} already exists in table ${table} (${family})`, {
      field: at(field, 'newName'),
    });
  }
  p.draft.renameChain(family, table, op.chain, newName);
  // Rules that jump to the chain follow the rename in the kernel: rewrite them in the model.
  const tableState = p.draft.table(family, table) as ReadonlyMap<string, ChainState>;
  for (const c of [...tableState.values()]) {
    const touched: string[] = [];
    const entries = c.entries.map((e, i) => {
      const t = e.rule.target;
      if (!t || !(('jump' in t && t.jump === op.chain) || ('goto' in t && t.goto === op.chain))) return e;
      const rule: Rule = { ...e.rule, target: 'jump' in t ? { jump: newName } : { goto: newName } };
      const renamed = p.newEntry(family, table, c, rule, i);
      if (e.handle !== undefined) settleHandle(renamed, e.handle);
      touched.push(e.text, renamed.text);
      return renamed;
    });
    if (touched.length) p.draft.setChain(family, table, { ...c, entries }, touched);
  }
  const renamed = p.draft.chain(family, table, newName) as ChainState;
  // Ids include the chain name: recompute every id of the renamed chain.
  p.draft.setChain(
    family,
    table,
    renamed,
    renamed.entries.map((e) => e.text),
  );
  plan.commands.push({
    family,
    table,
    command: { op: 'rename', table, chain: op.chain, newName },
    undo: [{ op: 'rename', table, chain: newName, newName: op.chain }],
  });
  plan.changes.push({ type: 'chain.renamed', family, table, chain: op.chain, newName });
}
