/**
 * Plans validated operations on a Draft: checks each against the current model
 * (does the chain exist, is the position past the end, where does the jump go),
 * applies it to the draft, and records the typed commands that make the kernel
 * do the same, each with the commands that undo it. Nothing here touches the
 * kernel, and nothing here validates input (validate-operations.ts did, at the
 * facade); the batch runner executes the plan and commits the draft only when
 * the kernel accepted it.
 *
 * The work is split by kind of operation: rules (plan-rules.ts), chains
 * (plan-chains.ts), declarative replaces and reset (plan-tables.ts). This file
 * holds the dispatch and what they share: finding chains, adding and removing
 * one rule (with its entry, change and undo).
 *
 * Deletes are never positional inside restore text (a position can point at
 * another rule if someone else changed the chain a moment before): they go by
 * nf_tables handle when the rule's handle is known (see the batch runner), and
 * otherwise by rule spec, which removes an identical rule.
 */
import { DomainError, invalid } from '../domain/errors.js';
import { BUILTIN_CHAINS, type Family, type TableName } from '../domain/family.js';
import type { Rule } from '../domain/model.js';
import { targetChain } from '../domain/model.js';
import { ruleId } from '../domain/rule-id.js';
import type { Command } from '../iptables/commands.js';
import { ruleText } from '../iptables/rule-writer.js';
import type { ValidOp, ValidRuleRef } from './operations.js';
import { planChainOp } from './plan-chains.js';
import { planRuleOp } from './plan-rules.js';
import { planTableOp } from './plan-tables.js';
import type { JobPlan, PlannedCommand, PlannerOptions, RuleView } from './plan-types.js';
import { type ChainState, type Draft, emptyTable, freshEntry, type RuleEntry } from './state.js';

export type { Change, HandleDelete, JobPlan, OpOutcome, PlannedCommand, RuleView } from './plan-types.js';

/** Appends that put back a chain's rules (the undo of a flush). */
export function refill(table: TableName, chain: string, entries: readonly RuleEntry[]): Command[] {
  return entries.map((e) => ({ op: 'append', table, chain, rule: e.rule }));
}

export function view(entry: RuleEntry, index: number): RuleView {
  return { id: entry.id, position: index + 1, text: entry.text, rule: entry.rule };
}

/** `field.name`, or `name` for a single operation (whose field is ''). */
export function at(field: string, name: string): string {
  return field ? `${field}.${name}` : name;
}

/** A position that must not be past `max` (whether it is a whole number was checked at the facade). */
export function withinChain(position: number, max: number, field: string): number {
  if (position > max)
    throw new DomainError('invalid_argument', `${field} ${position} is past the end (at most ${max})`, {
      field,
    });
  return position;
}

export class Planner {
  readonly rebuildThreshold: number;
  /** Planning a job that is one delete, which may go by handle. */
  private handleMode = false;

  constructor(
    readonly draft: Draft,
    readonly options: PlannerOptions,
  ) {
    this.rebuildThreshold = options.rebuildThreshold ?? 16;
  }

  /** Plans a job (one operation, or a transaction's list) on the draft. Throws DomainError; the draft is then unusable. */
  plan(ops: readonly ValidOp[]): JobPlan {
    const plan: JobPlan = { commands: [], changes: [], outcomes: [] };
    this.handleMode = ops.length === 1 && ops[0]?.op === 'delete' && this.options.useHandles;
    for (const op of ops) {
      const first = plan.commands.length;
      try {
        this.planOne(op, plan);
        if (op.field)
          for (let k = first; k < plan.commands.length; k++)
            plan.commands[k] = { ...(plan.commands[k] as PlannedCommand), field: op.field };
      } catch (e) {
        throw e instanceof DomainError && ops.length > 1 && e.field === undefined
          ? e.withFieldPrefix(op.field)
          : e;
      }
    }
    return plan;
  }

  planOne(op: ValidOp, plan: JobPlan): void {
    switch (op.op) {
      case 'append':
      case 'insert':
      case 'ensure':
      case 'replace':
      case 'delete':
        planRuleOp(this, op, plan);
        return;
      case 'createChain':
      case 'deleteChain':
      case 'flushChain':
      case 'renameChain':
      case 'setPolicy':
      case 'zeroCounters':
        planChainOp(this, op, plan);
        return;
      case 'replaceChain':
      case 'replaceTable':
      case 'reset':
        planTableOp(this, op, plan);
        return;
    }
  }

  /** The chain, or not_found naming it. */
  existing(family: Family, table: TableName, chain: string, field = ''): ChainState {
    const c =
      this.draft.chain(family, table, chain) ??
      (BUILTIN_CHAINS[table].includes(chain) ? this.materialize(family, table, chain) : undefined);
    if (!c)
      throw new DomainError('not_found', `chain ${chain} does not exist in table ${table} (${family})`, {
        field: at(field, 'chain'),
      });
    return c;
  }

  /** Built-in chains exist as soon as their table is used; the kernel creates the table on demand. */
  private materialize(family: Family, table: TableName, chain: string): ChainState | undefined {
    this.draft.table(family, table, true);
    return this.draft.chain(family, table, chain) ?? emptyTable(table).chains.get(chain);
  }

  checkJump(family: Family, table: TableName, rule: Rule, field: string): void {
    const target = targetChain(rule);
    if (target === undefined) return;
    if (BUILTIN_CHAINS[table].includes(target)) {
      throw invalid(at(field, 'rule.target'), `a rule cannot jump to the built-in chain ${target}`);
    }
    if (!this.draft.chain(family, table, target)) {
      throw new DomainError(
        'not_found',
        `jump target chain ${target} does not exist in table ${table} (${family}); create it first`,
        { field: at(field, 'rule.target') },
      );
    }
  }

  newEntry(family: Family, table: TableName, chain: ChainState, rule: Rule, index: number): RuleEntry {
    const text = ruleText(rule);
    const occurrence = this.draft.occurrencesBefore(family, table, chain.name, text, index);
    return freshEntry(rule, text, ruleId(family, table, chain.name, text, occurrence));
  }

  addRule(
    plan: JobPlan,
    family: Family,
    table: TableName,
    chain: ChainState,
    rule: Rule,
    position: number | undefined,
  ): RuleEntry {
    const index = position === undefined ? chain.entries.length : position - 1;
    const entry = this.newEntry(family, table, chain, rule, index);
    this.draft.insertEntry(family, table, chain.name, index, entry);
    const command: Command =
      position === undefined
        ? { op: 'append', table, chain: chain.name, rule }
        : { op: 'insert', table, chain: chain.name, position, rule };
    plan.commands.push({
      family,
      table,
      command,
      undo: [this.undoAdd(family, table, chain.name, rule, entry.text, index)],
      adds: { chain: chain.name, entry },
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
    return entry;
  }

  /**
   * The undo of a rule just added at `index`: a delete by spec when it is the only rule with
   * its text (immune to positions shifted by others), else by position (a spec delete would
   * remove the first identical rule, not this one).
   */
  undoAdd(family: Family, table: TableName, chain: string, rule: Rule, text: string, index: number): Command {
    const copies = this.draft.occurrencesBefore(family, table, chain, text, Number.POSITIVE_INFINITY);
    return copies === 1
      ? { op: 'delete', table, chain, rule }
      : { op: 'deleteAt', table, chain, position: index + 1 };
  }

  /**
   * Removes the entry at `index` from the draft. By handle (when the job may use one), exactly
   * that rule goes; by spec, iptables deletes the first identical rule, so the model removes that one.
   */
  removeRule(plan: JobPlan, family: Family, table: TableName, chain: ChainState, index: number): RuleView {
    const wanted = chain.entries[index] as RuleEntry;
    const byHandle = this.handleMode && wanted.handle !== undefined;
    const gone = byHandle ? index : chain.entries.findIndex((e) => e.text === wanted.text);
    const removed = this.draft.removeEntry(family, table, chain.name, gone);
    if (byHandle && wanted.handle !== undefined) {
      plan.handleDelete = { family, table, chain: chain.name, handle: wanted.handle };
    }
    plan.commands.push({
      family,
      table,
      command: { op: 'delete', table, chain: chain.name, rule: removed.rule },
      undo: [{ op: 'insert', table, chain: chain.name, position: gone + 1, rule: removed.rule }],
    });
    const v = view(wanted, index);
    plan.changes.push({
      type: 'rule.deleted',
      family,
      table,
      chain: chain.name,
      position: v.position,
      text: v.text,
      id: v.id,
    });
    return v;
  }

  /** The 0-based index of the rule a reference names, or not_found. */
  resolve(chain: ChainState, ref: ValidRuleRef, family: Family, table: TableName, field: string): number {
    if ('id' in ref) {
      const i = this.draft.indexOfId(family, table, chain.name, ref.id);
      if (i === -1)
        throw new DomainError('not_found', `no rule with id ${ref.id.slice(0, 40)} in chain ${chain.name}`, {
          field: `${field}.id`,
        });
      return i;
    }
    if ('position' in ref) {
      if (ref.position > chain.entries.length)
        throw new DomainError(
          'not_found',
          `no rule at position ${ref.position} in chain ${chain.name} (it has ${chain.entries.length})`,
          { field: `${field}.position` },
        );
      return ref.position - 1;
    }
    const i = chain.entries.findIndex((e) => e.text === ref.text);
    if (i === -1)
      throw new DomainError('not_found', `no rule "${ref.text}" in chain ${chain.name}`, {
        field: `${field}.rule`,
      });
    return i;
  }
}
