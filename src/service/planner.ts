/**
 * Plans operations on a Draft: checks each one against the current model
 * (existence, positions, references), applies it to the draft, and records
 * the iptables-restore commands that make the kernel do the same. Nothing
 * here touches the kernel; the service executes the plan and commits the
 * draft only when the kernel accepted it.
 *
 * Deletes are never positional inside restore text (a position can point at
 * another rule if someone else changed the chain a moment before): they go
 * by nf_tables handle when the rule's handle is known (see the service), and
 * otherwise by rule spec, which removes an identical rule.
 */
import { DomainError, invalid } from '../domain/errors.js';
import {
  BUILTIN_CHAINS,
  type Family,
  isFamily,
  isTableName,
  TABLES,
  type TableName,
} from '../domain/family.js';
import type { Policy, Rule } from '../domain/model.js';
import { targetChain } from '../domain/model.js';
import { normalizeRule } from '../domain/rule.js';
import { ruleId } from '../domain/rule-id.js';
import { checkChainName, checkUserChainName } from '../domain/validate.js';
import type { Command } from '../iptables/commands.js';
import { checkRuleLine } from '../iptables/rule-check.js';
import { parseRuleSpec } from '../iptables/rule-parser.js';
import { ruleText } from '../iptables/rule-writer.js';
import type { Operation, RuleInput, RuleRef } from './operations.js';
import {
  type ChainState,
  type Draft,
  emptyTable,
  freshEntry,
  type RuleEntry,
  referencesTo,
  settleHandle,
} from './state.js';

/** A typed command for one family's restore, owned by one table. `adds` marks a command that creates a rule. */
export interface PlannedCommand {
  readonly family: Family;
  readonly table: TableName;
  readonly command: Command;
  /**
   * Commands that undo this one (applied in reverse order of the plan's commands), computed
   * against the state before it: a change committed in one table before another table (or
   * family) failed is undone by these alone, so rules other processes added meanwhile stay.
   */
  readonly undo: readonly Command[];
  readonly adds?: { readonly chain: string; readonly entry: RuleEntry };
}

/** A rule as reported back: where it is and what it is. */
export interface RuleView {
  readonly id: string;
  readonly position: number;
  readonly text: string;
  readonly rule: Rule;
}

/** What changed, for events and dry-run diffs. */
export type Change =
  | {
      readonly type: 'rule.added';
      readonly family: Family;
      readonly table: TableName;
      readonly chain: string;
      readonly position: number;
      readonly text: string;
      readonly entry: RuleEntry;
    }
  | {
      readonly type: 'rule.deleted';
      readonly family: Family;
      readonly table: TableName;
      readonly chain: string;
      readonly position: number;
      readonly text: string;
      readonly id: string;
    }
  | {
      readonly type: 'chain.created' | 'chain.deleted' | 'chain.flushed' | 'counters.zeroed';
      readonly family: Family;
      readonly table: TableName;
      readonly chain: string;
    }
  | {
      readonly type: 'chain.renamed';
      readonly family: Family;
      readonly table: TableName;
      readonly chain: string;
      readonly newName: string;
    }
  | {
      readonly type: 'policy.set';
      readonly family: Family;
      readonly table: TableName;
      readonly chain: string;
      readonly policy: Policy;
    };

export interface OpOutcome {
  readonly op: Operation['op'];
  /** The rule added, replaced or ensured (final id resolved after commit). */
  readonly entry?: {
    readonly family: Family;
    readonly table: TableName;
    readonly chain: string;
    readonly entry: RuleEntry;
  };
  /** For ensure: the rule was already there, nothing changed. */
  readonly existed?: boolean;
  /** For delete: the rule removed. */
  readonly deleted?: RuleView;
}

/** A delete that can go by nf_tables handle instead of through restore text. */
export interface HandleDelete {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  readonly handle: number;
}

export interface JobPlan {
  readonly commands: PlannedCommand[];
  readonly changes: Change[];
  readonly outcomes: OpOutcome[];
  /** Set when the whole job is one delete of a rule with a known handle. */
  handleDelete?: HandleDelete;
}

export interface PlannerOptions {
  /** Whether rule handles may be used for deletes (nf_tables with a live change feed). */
  readonly useHandles: boolean;
  /** Baseline for reset, per family and table; absent tables reset to empty with ACCEPT policies. */
  readonly baseline?: ReadonlyMap<
    Family,
    ReadonlyMap<TableName, readonly { name: string; policy?: Policy; rules: readonly Rule[] }[]>
  >;
  /** Declarative replaces rebuild a chain (flush + append) when more than this many rules would be deleted. */
  readonly rebuildThreshold?: number;
}

export function toRule(input: RuleInput, family: Family, field: string): Rule {
  if (typeof input !== 'object' || input === null)
    throw invalid(field, `${field} must be an object: a typed rule or { "spec": "..." }`);
  if ('spec' in input) {
    const keys = Object.keys(input);
    if (keys.length !== 1) throw invalid(field, `${field}: "spec" cannot be combined with other fields`);
    if (typeof input.spec !== 'string') throw invalid(`${field}.spec`, `${field}.spec must be a string`);
    return parseRuleSpec(input.spec, family, `${field}.spec`);
  }
  const rule = normalizeRule(input, family, field);
  checkRuleLine(rule, family, field);
  return rule;
}

/** The undo of a command that needs no state from before it (see PlannedCommand.undo). */
function inverse(c: Command): Command[] {
  switch (c.op) {
    case 'append':
    case 'insert':
      return [{ op: 'delete', table: c.table, chain: c.chain, rule: c.rule }];
    case 'createChain':
      return [{ op: 'deleteChain', table: c.table, chain: c.chain }];
    case 'deleteChain':
      return [{ op: 'createChain', table: c.table, chain: c.chain }];
    case 'rename':
      return [{ op: 'rename', table: c.table, chain: c.newName, newName: c.chain }];
    default:
      // zero: counters cannot be put back; the others are given their undo where planned.
      return [];
  }
}

/** Appends that put back a chain's rules (the undo of a flush). */
function refill(table: TableName, chain: string, entries: readonly RuleEntry[]): Command[] {
  return entries.map((e) => ({ op: 'append', table, chain, rule: e.rule }));
}

function view(entry: RuleEntry, index: number): RuleView {
  return { id: entry.id, position: index + 1, text: entry.text, rule: entry.rule };
}

function checkPosition(value: unknown, max: number, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalid(field, `${field} must be a whole number from 1`);
  }
  if (value > max)
    throw new DomainError('invalid_argument', `${field} ${value} is past the end (at most ${max})`, {
      field,
    });
  return value;
}

export class Planner {
  private readonly rebuildThreshold: number;

  constructor(
    private readonly draft: Draft,
    private readonly options: PlannerOptions,
  ) {
    this.rebuildThreshold = options.rebuildThreshold ?? 16;
  }

  /** Plans a job (one operation, or a transaction's list) on the draft. Throws DomainError; the draft is then unusable. */
  plan(ops: readonly Operation[], fieldPrefix = ''): JobPlan {
    const plan: JobPlan = { commands: [], changes: [], outcomes: [] };
    this.handleMode = ops.length === 1 && ops[0]?.op === 'delete' && this.options.useHandles;
    ops.forEach((op, i) => {
      const field = ops.length > 1 || fieldPrefix ? `${fieldPrefix}operations[${i}]` : '';
      try {
        this.planOne(op, plan, field);
      } catch (e) {
        throw e instanceof DomainError && ops.length > 1 && e.field === undefined
          ? e.withFieldPrefix(field)
          : e;
      }
    });
    return plan;
  }

  /** Planning a job that is one delete, which may go by handle. */
  private handleMode = false;

  private f(field: string, name: string): string {
    return field ? `${field}.${name}` : name;
  }

  private address(op: { family: unknown; table: unknown; chain?: unknown }, field: string): void {
    if (!isFamily(op.family))
      throw invalid(this.f(field, 'family'), `${this.f(field, 'family')} must be ipv4 or ipv6`);
    if (!isTableName(op.table)) {
      throw invalid(this.f(field, 'table'), `${this.f(field, 'table')} must be one of ${TABLES.join(', ')}`);
    }
    if (op.chain !== undefined) checkChainName(op.chain, this.f(field, 'chain'));
  }

  /** The chain, or not_found naming it. */
  private existing(family: Family, table: TableName, chain: string, field = ''): ChainState {
    const c =
      this.draft.chain(family, table, chain) ??
      (BUILTIN_CHAINS[table].includes(chain) ? this.materialize(family, table, chain) : undefined);
    if (!c)
      throw new DomainError('not_found', `chain ${chain} does not exist in table ${table} (${family})`, {
        field: this.f(field, 'chain'),
      });
    return c;
  }

  /** Built-in chains exist as soon as their table is used; the kernel creates the table on demand. */
  private materialize(family: Family, table: TableName, chain: string): ChainState | undefined {
    this.draft.table(family, table, true);
    return this.draft.chain(family, table, chain) ?? emptyTable(table).chains.get(chain);
  }

  private checkJump(family: Family, table: TableName, rule: Rule, field: string): void {
    const target = targetChain(rule);
    if (target === undefined) return;
    if (BUILTIN_CHAINS[table].includes(target)) {
      throw invalid(this.f(field, 'rule.target'), `a rule cannot jump to the built-in chain ${target}`);
    }
    if (!this.draft.chain(family, table, target)) {
      throw new DomainError(
        'not_found',
        `jump target chain ${target} does not exist in table ${table} (${family}); create it first`,
        {
          field: this.f(field, 'rule.target'),
        },
      );
    }
  }

  private newEntry(
    family: Family,
    table: TableName,
    chain: ChainState,
    rule: Rule,
    index: number,
  ): RuleEntry {
    const text = ruleText(rule);
    const occurrence = this.draft.occurrencesBefore(family, table, chain.name, text, index);
    return freshEntry(rule, text, ruleId(family, table, chain.name, text, occurrence));
  }

  private addRule(
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
      undo: inverse(command),
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
   * Removes the entry at `index` from the draft. By handle (when the job may use one), exactly
   * that rule goes; by spec, iptables deletes the first identical rule, so the model removes that one.
   */
  private removeRule(
    plan: JobPlan,
    family: Family,
    table: TableName,
    chain: ChainState,
    index: number,
  ): RuleView {
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

  private resolve(chain: ChainState, ref: RuleRef, family: Family, table: TableName, field: string): number {
    if (typeof ref !== 'object' || ref === null)
      throw invalid(field, `${field} must be { id }, { position } or { rule }`);
    if ('id' in ref) {
      const i = typeof ref.id === 'string' ? this.draft.indexOfId(family, table, chain.name, ref.id) : -1;
      if (i === -1)
        throw new DomainError(
          'not_found',
          `no rule with id ${String(ref.id).slice(0, 40)} in chain ${chain.name}`,
          { field: `${field}.id` },
        );
      return i;
    }
    if ('position' in ref) {
      const position = checkPosition(ref.position, Number.POSITIVE_INFINITY, `${field}.position`);
      if (position > chain.entries.length)
        throw new DomainError(
          'not_found',
          `no rule at position ${position} in chain ${chain.name} (it has ${chain.entries.length})`,
          { field: `${field}.position` },
        );
      return position - 1;
    }
    if ('rule' in ref) {
      const text = ruleText(toRule(ref.rule, family, `${field}.rule`));
      const i = chain.entries.findIndex((e) => e.text === text);
      if (i === -1)
        throw new DomainError('not_found', `no rule "${text}" in chain ${chain.name}`, {
          field: `${field}.rule`,
        });
      return i;
    }
    throw invalid(field, `${field} must be { id }, { position } or { rule }`);
  }

  private planOne(op: Operation, plan: JobPlan, field: string): void {
    if (typeof op !== 'object' || op === null)
      throw invalid(field || undefined, 'operation must be an object');
    switch (op.op) {
      case 'append':
      case 'insert':
      case 'ensure': {
        this.address(op, field);
        const chain = this.existing(op.family, op.table, op.chain, field);
        const rule = toRule(op.rule, op.family, this.f(field, 'rule'));
        this.checkJump(op.family, op.table, rule, field);
        const position =
          op.op === 'insert'
            ? checkPosition(op.position, chain.entries.length + 1, this.f(field, 'position'))
            : op.op === 'ensure' && op.position !== undefined
              ? checkPosition(op.position, chain.entries.length + 1, this.f(field, 'position'))
              : undefined;
        if (op.op === 'ensure') {
          const text = ruleText(rule);
          const found = chain.entries.find((e) => e.text === text);
          if (found) {
            plan.outcomes.push({
              op: op.op,
              existed: true,
              entry: { family: op.family, table: op.table, chain: op.chain, entry: found },
            });
            return;
          }
        }
        const entry = this.addRule(plan, op.family, op.table, chain, rule, position);
        plan.outcomes.push({
          op: op.op,
          ...(op.op === 'ensure' ? { existed: false } : {}),
          entry: { family: op.family, table: op.table, chain: op.chain, entry },
        });
        return;
      }
      case 'replace': {
        this.address(op, field);
        const chain = this.existing(op.family, op.table, op.chain, field);
        const index = this.resolve(chain, op.target, op.family, op.table, this.f(field, 'target'));
        const rule = toRule(op.rule, op.family, this.f(field, 'rule'));
        this.checkJump(op.family, op.table, rule, field);
        const oldText = (chain.entries[index] as RuleEntry).text;
        if (
          this.draft.occurrencesBefore(op.family, op.table, chain.name, oldText, chain.entries.length) === 1
        ) {
          // The old rule is unique: delete it by spec and insert the new one in the same
          // transaction. Atomic, and if another process shifted positions a moment before,
          // no other rule is overwritten (-R N would replace whatever is at N then).
          const deleted = this.removeRule(plan, op.family, op.table, chain, index);
          const after = this.draft.chain(op.family, op.table, chain.name) as ChainState;
          const entry = this.addRule(
            plan,
            op.family,
            op.table,
            after,
            rule,
            index < after.entries.length ? index + 1 : undefined,
          );
          plan.outcomes.push({
            op: op.op,
            entry: { family: op.family, table: op.table, chain: op.chain, entry },
            deleted,
          });
          return;
        }
        // Identical copies exist: a spec delete would remove the first copy; replace by position.
        const entry = this.newEntry(op.family, op.table, chain, rule, index);
        const old = this.draft.replaceEntry(op.family, op.table, chain.name, index, entry);
        plan.commands.push({
          family: op.family,
          table: op.table,
          command: { op: 'replace', table: op.table, chain: chain.name, position: index + 1, rule },
          undo: [
            { op: 'delete', table: op.table, chain: chain.name, rule },
            { op: 'insert', table: op.table, chain: chain.name, position: index + 1, rule: old.rule },
          ],
          adds: { chain: chain.name, entry },
        });
        plan.changes.push({
          type: 'rule.deleted',
          family: op.family,
          table: op.table,
          chain: chain.name,
          position: index + 1,
          text: old.text,
          id: old.id,
        });
        plan.changes.push({
          type: 'rule.added',
          family: op.family,
          table: op.table,
          chain: chain.name,
          position: index + 1,
          text: entry.text,
          entry,
        });
        plan.outcomes.push({
          op: op.op,
          entry: { family: op.family, table: op.table, chain: op.chain, entry },
          deleted: view(old, index),
        });
        return;
      }
      case 'delete': {
        this.address(op, field);
        const chain = this.existing(op.family, op.table, op.chain, field);
        const index = this.resolve(chain, op.target, op.family, op.table, this.f(field, 'target'));
        const deleted = this.removeRule(plan, op.family, op.table, chain, index);
        plan.outcomes.push({ op: op.op, deleted });
        return;
      }
      case 'createChain': {
        this.address(op, field);
        checkUserChainName(op.chain, this.f(field, 'chain'));
        if (BUILTIN_CHAINS[op.table].includes(op.chain)) {
          throw new DomainError('already_exists', `${op.chain} is a built-in chain of table ${op.table}`, {
            field: this.f(field, 'chain'),
          });
        }
        this.draft.table(op.family, op.table, true);
        if (this.draft.chain(op.family, op.table, op.chain)) {
          throw new DomainError(
            'already_exists',
            `chain ${op.chain} already exists in table ${op.table} (${op.family})`,
            { field: this.f(field, 'chain') },
          );
        }
        this.draft.setChain(op.family, op.table, {
          name: op.chain,
          policy: undefined,
          counters: undefined,
          entries: [],
        });
        plan.commands.push({
          family: op.family,
          table: op.table,
          command: { op: 'createChain', table: op.table, chain: op.chain },
          undo: [{ op: 'deleteChain', table: op.table, chain: op.chain }],
        });
        plan.changes.push({ type: 'chain.created', family: op.family, table: op.table, chain: op.chain });
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'deleteChain': {
        this.address(op, field);
        if (BUILTIN_CHAINS[op.table].includes(op.chain)) {
          throw invalid(this.f(field, 'chain'), `${op.chain} is a built-in chain and cannot be deleted`);
        }
        const chain = this.existing(op.family, op.table, op.chain, field);
        const table = this.draft.table(op.family, op.table) as ReadonlyMap<string, ChainState>;
        const refs = referencesTo({ name: op.table, chains: table }, op.chain).filter(
          (r) => r.chain !== op.chain,
        );
        if (!op.force && chain.entries.length > 0) {
          throw new DomainError(
            'failed_precondition',
            `chain ${op.chain} still has ${chain.entries.length} rule(s): flush it first, or delete with force`,
            {
              field: this.f(field, 'chain'),
              details: { rules: chain.entries.length },
            },
          );
        }
        if (!op.force && refs.length > 0) {
          throw new DomainError(
            'failed_precondition',
            `chain ${op.chain} is referenced by ${refs.map((r) => `${r.chain} rule ${r.position}`).join(', ')}: delete those rules first, or delete with force`,
            { field: this.f(field, 'chain'), details: { references: refs } },
          );
        }
        // Force: delete referring rules (highest position first per chain), then flush and delete the chain.
        for (const ref of [...refs].reverse()) {
          const c = this.draft.chain(op.family, op.table, ref.chain) as ChainState;
          this.removeRule(plan, op.family, op.table, c, ref.position - 1);
        }
        if (chain.entries.length > 0) {
          plan.commands.push({
            family: op.family,
            table: op.table,
            command: { op: 'flush', table: op.table, chain: op.chain },
            undo: refill(op.table, op.chain, chain.entries),
          });
          plan.changes.push({ type: 'chain.flushed', family: op.family, table: op.table, chain: op.chain });
        }
        this.draft.deleteChain(op.family, op.table, op.chain);
        plan.commands.push({
          family: op.family,
          table: op.table,
          command: { op: 'deleteChain', table: op.table, chain: op.chain },
          undo: [{ op: 'createChain', table: op.table, chain: op.chain }],
        });
        plan.changes.push({ type: 'chain.deleted', family: op.family, table: op.table, chain: op.chain });
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'flushChain': {
        this.address(op, field);
        const chain = this.existing(op.family, op.table, op.chain, field);
        this.draft.setChain(
          op.family,
          op.table,
          { ...chain, entries: [] },
          chain.entries.map((e) => e.text),
        );
        plan.commands.push({
          family: op.family,
          table: op.table,
          command: { op: 'flush', table: op.table, chain: op.chain },
          undo: refill(op.table, op.chain, chain.entries),
        });
        plan.changes.push({ type: 'chain.flushed', family: op.family, table: op.table, chain: op.chain });
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'renameChain': {
        this.address(op, field);
        if (BUILTIN_CHAINS[op.table].includes(op.chain))
          throw invalid(this.f(field, 'chain'), `${op.chain} is a built-in chain and cannot be renamed`);
        const newName = checkUserChainName(op.newName, this.f(field, 'newName'));
        this.existing(op.family, op.table, op.chain, field);
        if (this.draft.chain(op.family, op.table, newName) || BUILTIN_CHAINS[op.table].includes(newName)) {
          throw new DomainError(
            'already_exists',
            `chain ${newName} already exists in table ${op.table} (${op.family})`,
            { field: this.f(field, 'newName') },
          );
        }
        this.draft.renameChain(op.family, op.table, op.chain, newName);
        // Rules that jump to the chain follow the rename in the kernel: rewrite them in the model.
        const table = this.draft.table(op.family, op.table) as ReadonlyMap<string, ChainState>;
        for (const c of [...table.values()]) {
          const touched: string[] = [];
          const entries = c.entries.map((e, i) => {
            const t = e.rule.target;
            if (!t || !(('jump' in t && t.jump === op.chain) || ('goto' in t && t.goto === op.chain)))
              return e;
            const rule: Rule = { ...e.rule, target: 'jump' in t ? { jump: newName } : { goto: newName } };
            const renamed = this.newEntry(op.family, op.table, c, rule, i);
            if (e.handle !== undefined) settleHandle(renamed, e.handle);
            touched.push(e.text, renamed.text);
            return renamed;
          });
          if (touched.length) this.draft.setChain(op.family, op.table, { ...c, entries }, touched);
        }
        const renamed = this.draft.chain(op.family, op.table, newName) as ChainState;
        // Ids include the chain name: recompute every id of the renamed chain.
        this.draft.setChain(
          op.family,
          op.table,
          renamed,
          renamed.entries.map((e) => e.text),
        );
        plan.commands.push({
          family: op.family,
          table: op.table,
          command: { op: 'rename', table: op.table, chain: op.chain, newName },
          undo: [{ op: 'rename', table: op.table, chain: newName, newName: op.chain }],
        });
        plan.changes.push({
          type: 'chain.renamed',
          family: op.family,
          table: op.table,
          chain: op.chain,
          newName,
        });
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'setPolicy': {
        this.address(op, field);
        if (!BUILTIN_CHAINS[op.table].includes(op.chain)) {
          throw invalid(
            this.f(field, 'chain'),
            `only built-in chains have a policy; ${op.chain} is not one of ${BUILTIN_CHAINS[op.table].join(', ')}`,
          );
        }
        if (op.policy !== 'ACCEPT' && op.policy !== 'DROP')
          throw invalid(this.f(field, 'policy'), `${this.f(field, 'policy')} must be ACCEPT or DROP`);
        const chain = this.existing(op.family, op.table, op.chain, field);
        this.draft.setChain(op.family, op.table, { ...chain, policy: op.policy });
        plan.commands.push({
          family: op.family,
          table: op.table,
          command: { op: 'policy', table: op.table, chain: op.chain, policy: op.policy },
          undo: [{ op: 'policy', table: op.table, chain: op.chain, policy: chain.policy ?? 'ACCEPT' }],
        });
        plan.changes.push({
          type: 'policy.set',
          family: op.family,
          table: op.table,
          chain: op.chain,
          policy: op.policy,
        });
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'zeroCounters': {
        this.address(op, field);
        if (op.chain !== undefined) this.existing(op.family, op.table, op.chain, field);
        else if (!this.draft.table(op.family, op.table)) {
          throw new DomainError('not_found', `table ${op.table} (${op.family}) is not in use`, {
            field: this.f(field, 'table'),
          });
        }
        plan.commands.push({
          family: op.family,
          table: op.table,
          command:
            op.chain === undefined
              ? { op: 'zero', table: op.table }
              : { op: 'zero', table: op.table, chain: op.chain },
          // Counters cannot be put back.
          undo: [],
        });
        plan.changes.push({
          type: 'counters.zeroed',
          family: op.family,
          table: op.table,
          chain: op.chain ?? '*',
        });
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'replaceChain': {
        this.address(op, field);
        if (!Array.isArray(op.rules))
          throw invalid(this.f(field, 'rules'), `${this.f(field, 'rules')} must be a list`);
        if (
          !this.draft.chain(op.family, op.table, op.chain) &&
          !BUILTIN_CHAINS[op.table].includes(op.chain)
        ) {
          this.planOne(
            { op: 'createChain', family: op.family, table: op.table, chain: op.chain },
            plan,
            field,
          );
          plan.outcomes.pop();
        }
        const rules = op.rules.map((r, i) => toRule(r, op.family, this.f(field, `rules[${i}]`)));
        for (const [i, r] of rules.entries())
          this.checkJump(op.family, op.table, r, this.f(field, `rules[${i}]`));
        this.replaceRules(
          plan,
          op.family,
          op.table,
          this.existing(op.family, op.table, op.chain, field),
          rules,
        );
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'replaceTable': {
        this.address(op, field);
        if (!Array.isArray(op.chains))
          throw invalid(this.f(field, 'chains'), `${this.f(field, 'chains')} must be a list`);
        this.replaceTable(plan, op.family, op.table, op.chains, field);
        plan.outcomes.push({ op: op.op });
        return;
      }
      case 'reset': {
        if (op.family !== undefined && !isFamily(op.family))
          throw invalid(this.f(field, 'family'), 'family must be ipv4 or ipv6');
        if (op.table !== undefined && !isTableName(op.table))
          throw invalid(this.f(field, 'table'), `table must be one of ${TABLES.join(', ')}`);
        const families: Family[] = op.family ? [op.family] : ['ipv4', 'ipv6'];
        for (const family of families) {
          const baseline = this.options.baseline?.get(family);
          const tables = op.table
            ? [op.table]
            : TABLES.filter((t) => this.draft.table(family, t) || baseline?.has(t));
          for (const table of tables) {
            if (!this.draft.table(family, table) && !baseline?.has(table)) continue;
            const chains =
              baseline?.get(table) ??
              BUILTIN_CHAINS[table].map((name) => ({ name, policy: 'ACCEPT' as const, rules: [] }));
            this.replaceTable(plan, family, table, chains, field, true);
          }
        }
        plan.outcomes.push({ op: op.op });
        return;
      }
      default:
        throw invalid(
          this.f(field, 'op'),
          `unknown operation "${String((op as { op: unknown }).op).slice(0, 40)}"`,
        );
    }
  }

  /** Minimal change to make `chain` hold `rules`: keep the common prefix and suffix, replace the middle. */
  private replaceRules(
    plan: JobPlan,
    family: Family,
    table: TableName,
    chain: ChainState,
    rules: readonly Rule[],
  ): void {
    const old = chain.entries;
    const texts = rules.map((r) => ruleText(r));
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
    const deleteCount = old.length - prefix - suffix;
    if (deleteCount === 0 && texts.length - prefix - suffix === 0) return;
    // A delete by spec removes the first identical rule: if a rule to remove has a copy in the
    // prefix, that copy would go instead, so rebuild.
    const kept = new Set(old.slice(0, prefix).map((e) => e.text));
    const shadowed = old.slice(prefix, prefix + deleteCount).some((e) => kept.has(e.text));
    if (deleteCount > this.rebuildThreshold || shadowed) {
      // Cheaper to rebuild than to delete many rules one by one.
      plan.commands.push({
        family,
        table,
        command: { op: 'flush', table, chain: chain.name },
        undo: refill(table, chain.name, old),
      });
      plan.changes.push({ type: 'chain.flushed', family, table, chain: chain.name });
      let current: ChainState = { ...chain, entries: [] };
      this.draft.setChain(
        family,
        table,
        current,
        old.map((e) => e.text),
      );
      for (const r of rules) {
        this.addRule(plan, family, table, current, r, undefined);
        current = this.draft.chain(family, table, chain.name) as ChainState;
      }
      return;
    }
    let current = chain;
    for (let k = 0; k < deleteCount; k++) {
      this.removeRule(plan, family, table, current, prefix);
      current = this.draft.chain(family, table, chain.name) as ChainState;
    }
    for (let k = prefix; k < texts.length - suffix; k++) {
      const position = k + 1 <= current.entries.length ? k + 1 : undefined;
      this.addRule(plan, family, table, current, rules[k] as Rule, position);
      current = this.draft.chain(family, table, chain.name) as ChainState;
    }
  }

  private replaceTable(
    plan: JobPlan,
    family: Family,
    table: TableName,
    chainsInput: readonly {
      readonly name: string;
      readonly policy?: Policy;
      readonly rules: readonly RuleInput[] | readonly Rule[];
    }[],
    field: string,
    trusted = false,
  ): void {
    const desired = chainsInput.map((c, i) => {
      const cf = this.f(field, `chains[${i}]`);
      if (typeof c !== 'object' || c === null) throw invalid(cf, `${cf} must be an object`);
      const name = checkChainName(c.name, `${cf}.name`);
      const builtin = BUILTIN_CHAINS[table].includes(name);
      if (!builtin) checkUserChainName(name, `${cf}.name`);
      if (c.policy !== undefined && (!builtin || (c.policy !== 'ACCEPT' && c.policy !== 'DROP'))) {
        throw invalid(
          `${cf}.policy`,
          builtin ? `${cf}.policy must be ACCEPT or DROP` : `${cf}: user chain ${name} has no policy`,
        );
      }
      if (!Array.isArray(c.rules)) throw invalid(`${cf}.rules`, `${cf}.rules must be a list`);
      const rules = trusted
        ? (c.rules as readonly Rule[])
        : (c.rules as readonly RuleInput[]).map((r, j) => toRule(r, family, `${cf}.rules[${j}]`));
      return { name, builtin, policy: c.policy, rules, field: cf };
    });
    const names = new Set<string>();
    for (const d of desired) {
      if (names.has(d.name)) throw invalid(`${d.field}.name`, `chain ${d.name} is listed twice`);
      names.add(d.name);
    }
    for (const d of desired) {
      for (const [j, r] of d.rules.entries()) {
        const t = targetChain(r);
        if (t !== undefined && !names.has(t)) {
          throw new DomainError('not_found', `rule jumps to chain ${t}, which the new table does not have`, {
            field: `${d.field}.rules[${j}]`,
          });
        }
      }
    }
    this.draft.table(family, table, true);
    // 1. create new user chains, 2. policies, 3. contents, 4. flush and delete chains not wanted.
    for (const d of desired) {
      if (!d.builtin && !this.draft.chain(family, table, d.name)) {
        this.draft.setChain(family, table, {
          name: d.name,
          policy: undefined,
          counters: undefined,
          entries: [],
        });
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
      const c = this.existing(family, table, b);
      if (c.policy !== wanted) {
        this.draft.setChain(family, table, { ...c, policy: wanted });
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
      if (!names.has(b)) this.replaceRules(plan, family, table, this.existing(family, table, b), []);
    }
    for (const d of desired)
      this.replaceRules(plan, family, table, this.existing(family, table, d.name), d.rules);
    const current = this.draft.table(family, table) as ReadonlyMap<string, ChainState>;
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
      this.draft.deleteChain(family, table, c.name);
      plan.commands.push({
        family,
        table,
        command: { op: 'deleteChain', table, chain: c.name },
        undo: [{ op: 'createChain', table, chain: c.name }],
      });
      plan.changes.push({ type: 'chain.deleted', family, table, chain: c.name });
    }
  }
}
