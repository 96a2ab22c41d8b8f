/**
 * What planning produces: typed commands with their undo, the changes (for
 * events and dry-run diffs) and per-operation outcomes. Shared by the planner,
 * the batch runner and the views; no logic here.
 */
import type { Family, TableName } from '../domain/family.js';
import type { Policy, Rule } from '../domain/model.js';
import type { Command } from '../iptables/commands.js';
import type { Operation } from './operations.js';
import type { RuleEntry } from './state.js';

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
  /** Field path of the operation it came from ('' for a single operation), for errors. */
  readonly field?: string;
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

/** A declarative table's chains (from a request or the baseline). */
export interface TableSpec {
  readonly name: string;
  readonly policy?: Policy;
  readonly rules: readonly Rule[];
}

export interface PlannerOptions {
  /** Whether rule handles may be used for deletes (nf_tables with a live change feed). */
  readonly useHandles: boolean;
  /** Baseline for reset, per family and table; absent tables reset to empty with ACCEPT policies. */
  readonly baseline?: ReadonlyMap<Family, ReadonlyMap<TableName, readonly TableSpec[]>>;
  /** Declarative replaces rebuild a chain (flush + append) when more than this many rules would be deleted. */
  readonly rebuildThreshold?: number;
}
