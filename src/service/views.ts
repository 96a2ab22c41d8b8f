/**
 * What reads and change results look like: views of chains and rules (with id
 * and position), chain summaries, and per-operation results. Pure functions of
 * the model; no state, no kernel.
 */
import type { Family, TableName } from '../domain/family.js';
import type { Counters, Policy } from '../domain/model.js';
import type { Finding } from '../simulate/index.js';
import type { ChangeEventChange } from './events.js';
import type { Lockout } from './guard.js';
import { BUILTIN_SET } from './model.js';
import type { Operation } from './operations.js';
import type { JobPlan, RuleView } from './plan-types.js';
import type { ChainState, Draft, FamilyState, RuleEntry } from './state.js';

export type { RuleView } from './plan-types.js';

export interface OpResult {
  readonly op: Operation['op'];
  readonly rule?: RuleView;
  readonly existed?: boolean;
  readonly deleted?: RuleView;
}

export interface ApplyResult {
  readonly revision: number;
  readonly results: readonly OpResult[];
  readonly changes: readonly ChangeEventChange[];
  /** Dry run only: the exact restore text per family, nothing applied. */
  readonly restoreText?: Partial<Record<Family, string>>;
  readonly dryRun?: true;
  /** Dry run only: the protected paths (SSH, the API, the caller) the change would cut. */
  readonly lockouts?: readonly Lockout[];
  /** Dry run only: lint findings the change would add. */
  readonly findings?: readonly Finding[];
  /** Commit-confirmed: the pending confirmation (confirm it by id before the deadline, or it is rolled back). */
  readonly confirmation?: ConfirmationView;
}

export interface ConfirmationView {
  readonly id: string;
  /** When the change is rolled back unless confirmed (ISO time). */
  readonly deadline: string;
  /** Protected paths the change cuts (it was accepted because it rolls itself back). */
  readonly lockouts: readonly Lockout[];
}

export interface RuleDetail extends RuleView {
  readonly counters?: Counters;
  /** When the rule expires and is deleted (ISO time), if it was added with a TTL. */
  readonly expiresAt?: string;
}

export interface ChainView {
  readonly name: string;
  readonly builtin: boolean;
  readonly policy?: Policy;
  readonly counters?: Counters;
  readonly rules: readonly RuleDetail[];
}

export interface ChainSummary {
  readonly name: string;
  readonly builtin: boolean;
  readonly policy?: Policy;
  readonly rules: number;
  readonly references: number;
}

export function viewAt(entries: readonly RuleEntry[], i: number): RuleView {
  const e = entries[i] as RuleEntry;
  return { id: e.id, position: i + 1, text: e.text, rule: e.rule };
}

/** `expiry` says when a rule (by its text) expires, if it does. */
export function chainView(
  table: TableName,
  c: ChainState,
  expiry?: (text: string) => string | undefined,
): ChainView {
  return {
    name: c.name,
    builtin: BUILTIN_SET[table].has(c.name),
    ...(c.policy ? { policy: c.policy } : {}),
    rules: c.entries.map((_, i) => {
      const v = viewAt(c.entries, i);
      const at = expiry?.(v.text);
      return at === undefined ? v : { ...v, expiresAt: at };
    }),
  };
}

/**
 * Views of unchanged chains, so that repeated reads of a chain get the very same view (and the
 * doors the very same encoded reply, cached on it: transport/http/routes.ts, grpc/handlers.ts).
 * Keyed by the chain's state, which is never mutated (state.ts): a changed chain is another
 * state, so a cached view is never stale. Only views without expiries (those come from the
 * pending store, beside the state). Bounded by rules: the least recently read go first.
 */
export class ChainViewCache {
  private readonly views = new Map<ChainState, ChainView>();
  private rules = 0;

  constructor(
    /** Most rules held in all cached views together. */
    private readonly budget = 20_000,
  ) {}

  /** Forgets every view (a re-read replaced every chain's state: none can be asked for again). */
  clear(): void {
    this.views.clear();
    this.rules = 0;
  }

  get(table: TableName, c: ChainState): ChainView {
    const hit = this.views.get(c);
    if (hit) {
      this.views.delete(c);
      this.views.set(c, hit);
      return hit;
    }
    const view = chainView(table, c);
    const size = c.entries.length + 1;
    if (size > this.budget / 4) return view;
    this.views.set(c, view);
    this.rules += size;
    for (const [old, v] of this.views) {
      if (this.rules <= this.budget) break;
      this.views.delete(old);
      this.rules -= v.rules.length + 1;
    }
    return view;
  }
}

export type ChainLookup = (family: Family, table: TableName, chain: string) => ChainState | undefined;

export function stateChainLookup(state: ReadonlyMap<Family, FamilyState>): ChainLookup {
  return (family, table, chain) => state.get(family)?.tables.get(table)?.chains.get(chain);
}

export function draftChainLookup(draft: Draft): ChainLookup {
  return (family, table, chain) => draft.chain(family, table, chain);
}

/** An operation's result, with the final id and position of the rule it added (looked up in `lookup`). */
export function outcomeView(o: JobPlan['outcomes'][number], lookup: ChainLookup): OpResult {
  let rule: RuleView | undefined;
  if (o.entry) {
    const c = lookup(o.entry.family, o.entry.table, o.entry.chain);
    // Appended rules (the common case) sit at the end: search from there.
    const i = c ? c.entries.lastIndexOf(o.entry.entry) : -1;
    rule =
      c && i !== -1
        ? viewAt(c.entries, i)
        : { id: o.entry.entry.id, position: 0, text: o.entry.entry.text, rule: o.entry.entry.rule };
  }
  return {
    op: o.op,
    ...(rule ? { rule } : {}),
    ...(o.existed !== undefined ? { existed: o.existed } : {}),
    ...(o.deleted ? { deleted: o.deleted } : {}),
  };
}
