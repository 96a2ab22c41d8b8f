/**
 * The batch runner: the queue's worker, and the only code that commits changes
 * to the model (see model.ts for who may touch which state).
 *
 * A batch is the jobs that waited while the previous one ran (group commit).
 * Apply jobs are planned in order on one copy-on-write Draft and executed as
 * one `iptables-restore --noflush` per family; the draft becomes the model only
 * when the kernel accepted it. A job the kernel refuses is found from the
 * failing input line and failed alone; the others are re-planned and applied
 * (a failure that cannot be pinned on a line isolates the jobs one by one). A
 * job that is one delete of a rule whose nf_tables handle is known goes by
 * handle: fast at 50k rules and immune to another process shifting positions.
 * When a later part of a run fails after earlier blocks or families committed,
 * exactly those committed commands are undone (each command carries its undo).
 * Reload jobs are handed to kernel sync.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DomainError, type ErrorCode } from '../domain/errors.js';
import { FAMILIES, type Family, type TableName } from '../domain/family.js';
import type { Rule, Ruleset } from '../domain/model.js';
import {
  type ChangeFeed,
  ExecError,
  type Executor,
  type RuleChange,
  type RuleHandles,
} from '../exec/executor.js';
import { RestoreBuilder } from '../iptables/restore-builder.js';
import { parseSave } from '../iptables/save-parser.js';
import type { Outcome } from '../queue/command-queue.js';
import { type ChangeJournal, type JournalBlock, MARKER_PREFIX } from '../store/change-journal.js';
import { type Canonicalizer, hasUntypedPart, type ProbeItem } from './canonicalize.js';
import { type ChangeEvent, publicChange } from './events.js';
import { type Lockout, type LockoutGuard, lockoutError } from './guard.js';
import type { KernelSync, ReloadJob } from './kernel-sync.js';
import { BUILTIN_SET, type ServiceModel, staleRevision } from './model.js';
import { type CommitRecord, notify, type ServiceObserver } from './observer.js';
import { rulesOf, withRules } from './op-rules.js';
import type { ApplyOptions, ValidOp } from './operations.js';
import {
  type AfterCommit,
  type ConfirmationRecord,
  type ExpiryRecord,
  isEmptyAfter,
  type PendingStore,
  undoOperations,
} from './pending.js';
import type { JobPlan, PlannedCommand, PlannerOptions } from './plan-types.js';
import { Planner } from './planner.js';
import { Draft, type FamilyState, lazyRuleset, type RuleEntry, settleHandle } from './state.js';
import { type ApplyResult, outcomeView, stateChainLookup } from './views.js';

export interface ApplyJob {
  readonly kind: 'apply';
  readonly ops: readonly ValidOp[];
  readonly options: ApplyOptions;
  /** performance.now() when it was queued (for the queue wait it reports). */
  readonly enqueuedAt?: number;
}

export type Job = ApplyJob | ReloadJob;
export type JobResult = ApplyResult | { readonly revision: number; readonly changed: boolean };

/** Timings of the last kernel transaction: jobs in it, and milliseconds planning, in the kernel, committing. */
export interface RunTimings {
  readonly jobs: number;
  readonly planMs: number;
  readonly kernelMs: number;
  readonly commitMs: number;
}

interface PlannedJob {
  readonly index: number;
  readonly job: ApplyJob;
  readonly plan: JobPlan;
  /** Whether the job changes anything (a no-op ensure does not). */
  readonly changes: boolean;
  /** Protected paths a commit-confirmed job cuts (accepted because it rolls itself back). */
  readonly lockouts?: readonly Lockout[];
}

type Failure = { culprit: number | undefined; error: DomainError } | undefined;

/** A block the kernel committed: its commands, and its journal marker when the run is journaled. */
interface CommittedBlock {
  readonly family: Family;
  readonly table: TableName;
  readonly marker?: string;
  readonly commands: readonly PlannedCommand[];
}

export interface BatchRunnerOptions {
  readonly executor: Executor;
  readonly handles: RuleHandles | undefined;
  readonly model: ServiceModel;
  readonly sync: KernelSync;
  readonly plannerOptions: () => Omit<PlannerOptions, 'useHandles'>;
  /** How long to wait for the feed to report our own commit (ms). */
  readonly feedTimeoutMs: number;
  /** Where a change that commits in several parts records its intent (none: not recorded). */
  readonly journal?: ChangeJournal;
  /** Asks the kernel how it writes untyped rules. */
  readonly canonicalizer: Canonicalizer;
  /** Refuses changes that would cut a protected path (none: not guarded). */
  readonly guard?: LockoutGuard;
  /** Records pending confirmations and expiries once their change is whole (none: no state dir). */
  readonly pending?: PendingStore;
  readonly observer?: ServiceObserver;
}

/** A kernel refusal as the DomainError a client sees (the kernel's own line kept in details). */
export function kernelError(e: ExecError): DomainError {
  // iptables-restore (nf_tables) prints a bare "iptables-restore v1.8.9 (nf_tables): " banner
  // line before the real error ("line 3: RULE_APPEND failed (Invalid argument): ...").
  const first =
    e.stderr.split('\n').find((l) => l.trim() !== '' && !/^\S+ v[\d.]+ \([^)]*\):\s*$/.test(l)) ?? e.message;
  const details = {
    ...(e.line === undefined ? {} : { line: e.line }),
    ...(e.lineText === undefined ? {} : { input: e.lineText }),
    kernel: first.slice(0, 500),
  };
  const refused = (code: 'not_found' | 'already_exists' | 'invalid_argument' | 'failed_precondition') =>
    new DomainError(code, `the kernel refused the change: ${first}`, { details, cause: e });
  switch (e.kind) {
    case 'not_found':
      return refused('not_found');
    case 'already_exists':
      return refused('already_exists');
    case 'invalid_input':
      return refused('invalid_argument');
    case 'failed':
      return refused('failed_precondition');
    case 'aborted':
      return new DomainError('aborted', 'the change was cancelled', { cause: e });
    default:
      return new DomainError(
        'unavailable',
        `the firewall could not be changed right now (${e.kind}): ${e.message}`,
        {
          details,
          cause: e,
        },
      );
  }
}

interface RenderedRestore {
  readonly text: string;
  /** owners[line - 1] = job index that owns that input line (undefined for headers and COMMIT). */
  readonly owners: readonly (number | undefined)[];
  /** For each command given (in order), the COMMIT line of its block. */
  readonly commitLines: readonly number[];
  readonly tables: readonly { table: TableName; commitLine: number; changes: boolean; marker?: string }[];
  /** Rules added, in the order the kernel will report them. */
  readonly adds: readonly { table: TableName; chain: string; entry: RuleEntry }[];
}

/**
 * The job to blame for a refused restore, and the error it gets. iptables names the input
 * line; nf_tables blames a jump to a missing chain on the block's COMMIT line, so such an
 * error is pinned on the command that jumps there. A missing chain or ipset is named, with
 * the field of the operation that refers to it.
 */
export function pinpoint(
  error: ExecError,
  r: RenderedRestore,
  lines: readonly { command: PlannedCommand; owner: number }[],
  family: Family,
): { culprit: number | undefined; error: DomainError } {
  const line = error.line as number;
  const block = r.tables.find((b) => b.commitLine >= line);
  const inBlock = lines.filter((_, i) => r.commitLines[i] === block?.commitLine);
  const chain = /Chain '([^']+)' does not exist/.exec(error.stderr)?.[1];
  if (chain !== undefined && error.lineText === 'COMMIT') {
    const jumper = inBlock.find((l) => {
      const c = l.command.command;
      const t = 'rule' in c ? c.rule.target : undefined;
      return t !== undefined && (('jump' in t && t.jump === chain) || ('goto' in t && t.goto === chain));
    });
    if (jumper) {
      const field = jumper.command.field ? `${jumper.command.field}.rule.target` : 'rule.target';
      return {
        culprit: jumper.owner,
        error: new DomainError(
          'not_found',
          `jump target chain ${chain} does not exist in table ${jumper.command.table} (${family}): another process deleted it`,
          { field, details: { chain, kernel: `Chain '${chain}' does not exist` }, cause: error },
        ),
      };
    }
  }
  const culprit = r.owners[line - 1];
  const set = /Set (\S+) doesn't exist/.exec(error.stderr)?.[1];
  if (set !== undefined) {
    const at = lines.find((l) => l.owner === culprit && 'rule' in l.command.command);
    const c = at?.command.command;
    const i = c && 'rule' in c ? c.rule.matches.findIndex((m) => m.module === 'set') : -1;
    const base = at?.command.field ? `${at.command.field}.rule` : 'rule';
    return {
      culprit,
      error: new DomainError(
        'not_found',
        `ipset ${set} does not exist: create it first (ipset create ${set} hash:ip${family === 'ipv6' ? ' family inet6' : ''})`,
        {
          field: i >= 0 ? `${base}.matches[${i}].matchSet` : base,
          details: { set, ...(error.line === undefined ? {} : { line: error.line }) },
          cause: error,
        },
      ),
    };
  }
  return { culprit, error: kernelError(error) };
}

/** Restore text for one family, from the one restore builder (with journal markers when given). */
export function renderRestore(
  lines: readonly { command: PlannedCommand; owner: number }[],
  marker?: (table: TableName, block: number) => string,
): RenderedRestore {
  const builder = new RestoreBuilder();
  for (const l of lines) builder.add(l.command.command, l.owner);
  const built = builder.build(marker ? { marker } : {});
  const adds = built.adds.map((i) => {
    const c = lines[i]?.command as PlannedCommand;
    const a = c.adds as NonNullable<PlannedCommand['adds']>;
    return { table: c.table, chain: a.chain, entry: a.entry };
  });
  return {
    text: built.text,
    owners: built.owners,
    commitLines: built.commitLines,
    tables: built.blocks,
    adds,
  };
}

export class BatchRunner {
  private readonly o: BatchRunnerOptions;
  /** Handles of recently added rules still being learned from the change feed. */
  private handleLearning: Promise<void> = Promise.resolve();
  lastRun: RunTimings | undefined;
  /**
   * Set when a failure left the kernel other than the model says (a refusal because another
   * process changed it, an undo that failed, a commit whose extent is unknown): the model is
   * re-read before the next run is planned and before the batch's outcomes go out, so that no
   * caller reads a model that lies after an error (a re-read queued behind the batch would let
   * one in between).
   */
  private stale = false;

  constructor(options: BatchRunnerOptions) {
    this.o = options;
  }

  /** Waits for handle learning still under way (on close). */
  settled(): Promise<void> {
    return this.handleLearning;
  }

  private get feed(): ChangeFeed | undefined {
    return this.o.sync.feed;
  }

  planner(draft: Draft, useHandles: boolean): Planner {
    return new Planner(draft, { ...this.o.plannerOptions(), useHandles });
  }

  async run(jobs: readonly Job[]): Promise<Outcome<JobResult>[]> {
    const outcomes: Outcome<JobResult>[] = new Array(jobs.length);
    let i = 0;
    while (i < jobs.length) {
      const job = jobs[i] as Job;
      if (job.kind === 'reload') {
        try {
          outcomes[i] = { ok: true, value: await this.o.sync.reload(job.families, job.reason) };
        } catch (error) {
          outcomes[i] = { ok: false, error: DomainError.from(error) };
        }
        i++;
        continue;
      }
      let j = i;
      while (j < jobs.length && jobs[j]?.kind === 'apply') j++;
      // While the nft monitor starts, changes wait for it (kernel-sync.ts beforeChange).
      await this.o.sync.beforeChange();
      const started = performance.now();
      await this.runApplyGroup(jobs, i, j, outcomes);
      for (let k = i; k < j; k++) {
        const o = outcomes[k];
        notify(this.o.observer, 'job', {
          outcome: o?.ok === false ? (DomainError.from(o.error).code as ErrorCode) : 'ok',
          waitMs: Math.max(0, started - ((jobs[k] as ApplyJob).enqueuedAt ?? started)),
        });
      }
      i = j;
    }
    return outcomes;
  }

  /** Plans and applies jobs [from, to) in order; fills their outcomes. */
  private async runApplyGroup(
    jobs: readonly Job[],
    from: number,
    to: number,
    outcomes: Outcome<JobResult>[],
  ): Promise<void> {
    const model = this.o.model;
    let pending = Array.from({ length: to - from }, (_, k) => from + k);
    // Untyped rules take the kernel's form first; a job whose rule the kernel refuses fails alone.
    const opsOf = await this.canonicalize(jobs, pending, outcomes);
    pending = pending.filter((i) => outcomes[i] === undefined);
    // Deletes go by handle: let the handles of rules just added arrive first.
    if (pending.some((i) => (jobs[i] as ApplyJob).ops.some((op) => op.op === 'delete'))) {
      await this.handleLearning;
    }
    let isolate = 0; // while > 0, runs hold one job (after a failure we could not pin on a line)
    while (pending.length > 0) {
      await this.resyncIfStale();
      const draft = new Draft(model.state);
      const planner = this.planner(draft, this.o.sync.useHandles);
      // A commit-confirmed change goes through restore, journaled (see afterOf), never by handle.
      const restorePlanner = this.planner(draft, false);
      const run: PlannedJob[] = [];
      let mode: 'restore' | 'handles' | undefined;
      let runFamily: Family | undefined;
      let working = model.revision;
      const done: number[] = [];
      const t0 = performance.now();
      for (const index of pending) {
        if (isolate > 0 && run.length === 1) break;
        const job = jobs[index] as ApplyJob;
        if (job.options.expectedRevision !== undefined && job.options.expectedRevision !== working) {
          outcomes[index] = { ok: false, error: staleRevision(job.options.expectedRevision, working) };
          done.push(index);
          continue;
        }
        const restore = draft.checkpoint();
        let plan: JobPlan;
        const jobPlanner = job.options.confirmWithin !== undefined ? restorePlanner : planner;
        try {
          plan = jobPlanner.plan(opsOf.get(index) ?? job.ops);
        } catch (error) {
          restore();
          outcomes[index] = { ok: false, error: DomainError.from(error) };
          done.push(index);
          continue;
        }
        const jobMode = plan.handleDelete ? 'handles' : 'restore';
        const jobFamily = plan.handleDelete?.family;
        if (mode !== undefined && (jobMode !== mode || (mode === 'handles' && jobFamily !== runFamily))) {
          restore();
          break;
        }
        // The lockout guard: a job that would cut a protected path is refused (unless it says
        // allowLockout), judged on the state the jobs before it leave.
        let lockouts: readonly Lockout[] | undefined;
        if (plan.commands.length > 0) {
          const ops = opsOf.get(index) ?? job.ops;
          const guarded = this.guarded(job, plan, draft, restore, () => jobPlanner.plan(ops));
          if ('refused' in guarded) {
            outcomes[index] = { ok: false, error: lockoutError(guarded.refused) };
            done.push(index);
            continue;
          }
          plan = guarded.plan;
          lockouts = guarded.lockouts;
        }
        mode = jobMode;
        runFamily = jobFamily;
        const changes = plan.commands.length > 0;
        if (changes) working++;
        run.push({ index, job, plan, changes, ...(lockouts ? { lockouts } : {}) });
        done.push(index);
      }
      if (run.length === 0) {
        pending = pending.filter((p) => !done.includes(p));
        continue;
      }
      const t1 = performance.now();
      const after = this.afterOf(run);
      const failed =
        mode === 'handles' ? await this.executeHandles(run, after) : await this.executeRestore(run, after);
      const t2 = performance.now();
      if (failed === undefined) {
        notify(this.o.observer, 'batch', { jobs: run.length });
        this.commitRun(draft, run, outcomes);
        this.attachConfirmations(run, after, outcomes);
        this.lastRun = {
          jobs: run.length,
          planMs: t1 - t0,
          kernelMs: t2 - t1,
          commitMs: performance.now() - t2,
        };
        if (isolate > 0) isolate--;
        pending = pending.filter((p) => !done.includes(p));
        continue;
      }
      // The kernel refused: fail the culprit (or isolate if unknown), re-plan the rest.
      const notRun = pending.filter((p) => !done.includes(p) || run.some((r) => r.index === p));
      if (failed.culprit !== undefined) {
        outcomes[failed.culprit] = { ok: false, error: failed.error };
        pending = notRun.filter((p) => p !== failed.culprit);
        for (const p of done) if (!run.some((r) => r.index === p)) pending = pending.filter((x) => x !== p);
      } else if (run.length === 1) {
        outcomes[run[0]?.index as number] = { ok: false, error: failed.error };
        pending = notRun.filter((p) => p !== run[0]?.index);
        for (const p of done) if (!run.some((r) => r.index === p)) pending = pending.filter((x) => x !== p);
      } else {
        isolate = run.length;
        pending = notRun.filter((p) => run.some((r) => r.index === p) || !done.includes(p));
        for (const p of done) if (!run.some((r) => r.index === p)) pending = pending.filter((x) => x !== p);
      }
    }
    await this.resyncIfStale();
  }

  /** Re-reads the kernel now when a failure left the model behind (see `stale`). */
  private async resyncIfStale(): Promise<void> {
    if (!this.stale) return;
    this.stale = false;
    try {
      await this.o.sync.reload(this.o.sync.families, 'resync');
    } catch {
      // Could not read the kernel now: the queue re-reads it next (and keeps trying on errors).
      this.o.sync.requestReload('resync');
    }
  }

  /**
   * The job's plan, or what it would cut (the draft then rolled back). Checked
   * statically first; traced only when a command may change a path's fate: the draft is rolled
   * back to compare before with after, and the job planned again when it passes.
   */
  private guarded(
    job: ApplyJob,
    plan: JobPlan,
    draft: Draft,
    restore: () => void,
    replan: () => JobPlan,
  ): { plan: JobPlan; lockouts?: readonly Lockout[] } | { refused: Lockout[] } {
    const guard = this.o.guard;
    if (!guard || job.options.allowLockout === true) return { plan };
    const callers = job.options.caller ? [job.options.caller] : [];
    if (guard.isSafe(plan.commands, guard.paths([], callers))) return { plan };
    const after = rulesetsOf(draft.preview());
    restore();
    const before = rulesetsOf(draft.preview());
    const found = guard.check(before, after, guard.paths([before, after], callers));
    // Commit-confirmed: the safe way to take the risk; the result names what it cuts.
    if (found.length > 0 && job.options.confirmWithin === undefined) return { refused: found };
    return { plan: replan(), ...(found.length > 0 ? { lockouts: found } : {}) };
  }

  /**
   * What the run records once it is whole: a pending confirmation per commit-confirmed job
   * (the undo of its own diff), an expiry per added rule that asked for one, and the
   * confirmations and expiries its jobs settle (pending.ts).
   */
  private afterOf(run: readonly PlannedJob[]): AfterCommit | undefined {
    if (!this.o.pending) return undefined;
    const confirmations: ConfirmationRecord[] = [];
    const expiries: ExpiryRecord[] = [];
    const resolves: string[] = [];
    const expired: string[] = [];
    const now = Date.now();
    for (const r of run) {
      const o = r.job.options;
      resolves.push(...(o.settles?.confirmations ?? []));
      expired.push(...(o.settles?.expiries ?? []));
      if (!r.changes) continue;
      if (o.confirmWithin !== undefined)
        confirmations.push({
          id: randomBytes(8).toString('hex'),
          createdAt: new Date(now).toISOString(),
          deadline: new Date(now + o.confirmWithin * 1000).toISOString(),
          ...(o.origin ? { origin: o.origin } : {}),
          ...(o.identity ? { identity: o.identity } : {}),
          ...(o.requestId ? { requestId: o.requestId } : {}),
          operations: r.job.ops.map((op) => op.op),
          undo: undoOperations(r.plan.commands),
          lockouts: r.lockouts ?? [],
        });
      for (const c of r.plan.commands) {
        if (!c.adds) continue;
        const op = c.field === undefined ? r.job.ops[0] : r.job.ops.find((x) => x.field === c.field);
        if (!op || (op.op !== 'append' && op.op !== 'insert' && op.op !== 'ensure') || !op.expiresAt)
          continue;
        expiries.push({
          key: randomBytes(8).toString('hex'),
          family: c.family,
          table: c.table,
          chain: c.adds.chain,
          text: c.adds.entry.text,
          expiresAt: op.expiresAt,
        });
      }
    }
    const after: AfterCommit = {
      ...(confirmations.length ? { confirmations } : {}),
      ...(expiries.length ? { expiries } : {}),
      ...(resolves.length ? { resolves } : {}),
      ...(expired.length ? { expired } : {}),
    };
    return isEmptyAfter(after) ? undefined : after;
  }

  /** Each commit-confirmed job's result says its confirmation: id, deadline, paths it cuts. */
  private attachConfirmations(
    run: readonly PlannedJob[],
    after: AfterCommit | undefined,
    outcomes: Outcome<JobResult>[],
  ): void {
    const pending = [...(after?.confirmations ?? [])];
    for (const r of run) {
      if (r.job.options.confirmWithin === undefined || !r.changes) continue;
      const c = pending.shift();
      const o = outcomes[r.index];
      if (!c || !o?.ok || !('results' in o.value)) continue;
      outcomes[r.index] = {
        ok: true,
        value: { ...o.value, confirmation: { id: c.id, deadline: c.deadline, lockouts: c.lockouts } },
      };
    }
  }

  /** One job's operations with untyped rules in the kernel's form (for dry runs); throws a refusal. */
  async canonicalOps(ops: readonly ValidOp[]): Promise<readonly ValidOp[]> {
    const outcomes: Outcome<JobResult>[] = [];
    const map = await this.canonicalize([{ kind: 'apply', ops, options: {} }], [0], outcomes);
    const o = outcomes[0];
    if (o && !o.ok) throw o.error;
    return map.get(0) ?? ops;
  }

  /**
   * The operations of jobs holding untyped rules, with those rules in the kernel's form
   * (canonicalize.ts); a job with a rule the kernel refuses gets its outcome (the error,
   * naming the field) and is not planned.
   */
  private async canonicalize(
    jobs: readonly Job[],
    pending: readonly number[],
    outcomes: Outcome<JobResult>[],
  ): Promise<Map<number, readonly ValidOp[]>> {
    const items: (ProbeItem & { index: number; field: string })[] = [];
    for (const index of pending) {
      for (const op of (jobs[index] as ApplyJob).ops) {
        if (op.op === 'reset' || op.op === 'zeroCounters') continue;
        for (const { rule, field } of rulesOf(op, hasUntypedPart))
          items.push({ family: op.family, table: op.table, rule, index, field });
      }
    }
    const out = new Map<number, readonly ValidOp[]>();
    if (items.length === 0) return out;
    let forms: Map<Rule, Rule | DomainError>;
    try {
      forms = await this.o.canonicalizer.canonicalize(items);
    } catch (error) {
      for (const index of new Set(items.map((i) => i.index)))
        outcomes[index] = { ok: false, error: DomainError.from(error) };
      return out;
    }
    const map = new Map<Rule, Rule>();
    for (const item of items) {
      const form = forms.get(item.rule);
      if (form instanceof DomainError) {
        outcomes[item.index] ??= {
          ok: false,
          error: new DomainError(form.code, form.message, {
            field: item.field,
            ...(form.details ? { details: form.details } : {}),
            cause: form,
          }),
        };
      } else if (form) map.set(item.rule, form);
    }
    for (const index of new Set(items.map((i) => i.index))) {
      if (outcomes[index] === undefined)
        out.set(
          index,
          (jobs[index] as ApplyJob).ops.map((op) => withRules(op, map)),
        );
    }
    return out;
  }

  /**
   * Applies a run through iptables-restore, one transaction per family. Returns the failure, if
   * any. When a job of the run commits in several parts (tables, families, blocks), the run is
   * journaled first (store/change-journal.ts), so that a crash between parts is repaired at start.
   */
  private async executeRestore(run: readonly PlannedJob[], after?: AfterCommit): Promise<Failure> {
    const perFamily = FAMILIES.map((family) => ({
      family,
      lines: run.flatMap((r) =>
        r.plan.commands.filter((c) => c.family === family).map((command) => ({ command, owner: r.index })),
      ),
    }));
    let id: string | undefined;
    let rendered = perFamily.map((p) => ({ ...p, rendered: renderRestore(p.lines) }));
    const split = this.o.journal ? multipartJobs(rendered) : new Set<number>();
    // A run with records to settle is always journaled, its recording jobs all or nothing: the
    // markers tell a restart whether they are whole (then their records are settled).
    if (after && this.o.journal) for (const r of run) if (recordsOf(r)) split.add(r.index);
    if (split.size > 0) {
      const tx = randomBytes(4).toString('hex');
      id = tx;
      rendered = perFamily.map((p) => ({
        ...p,
        rendered: renderRestore(p.lines, (_table, block) => `${MARKER_PREFIX}${tx}-${block}`),
      }));
      try {
        await (this.o.journal as ChangeJournal).write({
          id: tx,
          state: 'applying',
          blocks: journalBlocks(rendered, split),
          ...(after ? { after } : {}),
        });
      } catch (error) {
        return {
          culprit: undefined,
          error: new DomainError(
            'unavailable',
            `the change journal could not be written: ${(error as Error).message}`,
            {
              cause: error,
            },
          ),
        };
      }
    }
    /** Blocks the kernel committed so far (iptables commits block by block, family by family). */
    const committed: CommittedBlock[] = [];
    const failure = async (f: NonNullable<Failure>): Promise<Failure> => {
      if (await this.undo(committed)) await this.o.journal?.clear().catch(() => undefined);
      return f;
    };
    for (const { family, lines, rendered: r } of rendered) {
      if (!r.text) continue;
      let spawned: number | undefined;
      const feed = this.feed;
      const blocksUpTo = (line: number) =>
        r.tables
          .filter((b) => b.commitLine < line)
          .map((b) => ({
            family,
            table: b.table,
            ...(b.marker ? { marker: b.marker } : {}),
            commands: lines.filter((_, i) => r.commitLines[i] === b.commitLine).map((l) => l.command),
          }));
      const t0 = performance.now();
      const kernel = (ok: boolean) =>
        notify(this.o.observer, 'kernel', {
          family,
          kind: 'restore',
          tables: [...new Set(r.tables.map((b) => b.table))],
          ms: performance.now() - t0,
          ok,
        });
      try {
        const result = await this.o.executor.restore(family, r.text, {
          noflush: true,
          // The long-lived restore keeps its process id across batches: the feed tells their
          // commits apart by order, also after a wait that gave up (nft-monitor.ts, debts).
          reuse: true,
          onSpawn: (pid) => {
            spawned = pid;
            feed?.claim(pid);
          },
        });
        kernel(true);
        committed.push(...blocksUpTo(Number.POSITIVE_INFINITY));
        if (feed && this.o.sync.useHandles && result.pid !== undefined) {
          // Learned in the background, so the next batch need not wait for the monitor's
          // lag; deletes wait for it (see runApplyGroup). Failing to learn handles only
          // makes later deletes of these rules slower (by spec).
          const learning = this.learnHandles(feed, family, result.pid, r).catch(() => undefined);
          this.handleLearning = Promise.all([this.handleLearning, learning]).then(() => undefined);
        }
      } catch (error) {
        if (spawned !== undefined) feed?.release(spawned);
        if (!(error instanceof ExecError))
          return failure({ culprit: undefined, error: DomainError.from(error) });
        if (error.line === undefined) {
          // Which blocks committed is unknown: put back what surely did, and re-read the kernel.
          this.stale = true;
          return failure({ culprit: undefined, error: kernelError(error) });
        }
        // Blocks whose COMMIT came before the failing line were applied.
        committed.push(...blocksUpTo(error.line));
        // The kernel is not what the model says (another process changed it): re-read.
        if (error.kind === 'not_found' || error.kind === 'already_exists') this.stale = true;
        return failure(pinpoint(error, r, lines, family));
      }
    }
    if (after) {
      // Whole: record what it asked for before replying (the journal still holds it if this fails).
      try {
        await this.o.pending?.settle(after);
      } catch {
        this.o.sync.requestReload('resync');
      }
    }
    if (id !== undefined) {
      // Every part committed: the change is whole. Say so before the markers go, then clean up.
      const journal = this.o.journal as ChangeJournal;
      try {
        await journal.write({ id, state: 'complete', blocks: [], ...(after ? { after } : {}) });
        for (const family of FAMILIES) {
          const builder = new RestoreBuilder();
          const tables = new Set<string>();
          for (const b of committed)
            if (b.family === family && b.marker) {
              builder.deleteChain(b.table, b.marker);
              tables.add(b.table);
            }
          if (!builder.isEmpty) await this.ownRestore(family, builder.toString(), tables.size);
        }
        await journal.clear();
      } catch {
        // The journal stays (complete): the next start removes the markers; the model re-reads.
        this.o.sync.requestReload('resync');
      }
    }
    return undefined;
  }

  /**
   * A restore of the service's own that changes nothing the model shows (journal markers): its
   * commits are claimed and taken from the feed, so they are not mistaken for another process's
   * change (which would re-read the whole kernel: seconds at 50,000 rules).
   */
  private async ownRestore(family: Family, text: string, generations: number): Promise<void> {
    const feed = this.feed;
    let spawned: number | undefined;
    try {
      const result = await this.o.executor.restore(family, text, {
        noflush: true,
        onSpawn: (pid) => {
          spawned = pid;
          feed?.claim(pid);
        },
      });
      if (feed && result.pid !== undefined) await feed.takeOwn(result.pid, generations, this.o.feedTimeoutMs);
    } catch (error) {
      if (spawned !== undefined) feed?.release(spawned);
      throw error;
    }
  }

  /** Learns the handles of the rules a restore added, from the commits the feed saw. */
  private async learnHandles(
    feed: ChangeFeed,
    family: Family,
    pid: number,
    rendered: RenderedRestore,
  ): Promise<void> {
    // Every table with a command other than -Z commits a generation (-Z on an empty chain may not).
    const changed = new Set(rendered.tables.filter((t) => t.changes).map((t) => t.table as string));
    const count = changed.size;
    const wanted = rendered.adds;
    type Added = (typeof wanted)[number];
    /** Gives the rules `of` (of one table, or all) the handles of `adds`, if they are those rules. */
    const learn = (adds: readonly RuleChange[], of: readonly Added[]): boolean => {
      const same =
        adds.length === of.length &&
        adds.every((a, k) => {
          const e = of[k] as Added;
          return a.table === e.table && a.chain === e.chain && a.family === family;
        });
      if (same) for (const [k, a] of adds.entries()) settleHandle((of[k] as Added).entry, a.handle);
      return same;
    };
    // The monitor prints each event separately: allow for its lag on big batches.
    const generations = await feed.takeOwn(
      pid,
      count,
      Math.ceil(this.o.feedTimeoutMs + rendered.adds.length / 10),
      // Later than that (a monitor far behind): a commit of one table this restore changed,
      // adding exactly the rules it added there, is this restore's, and teaches their handles.
      // Anything else goes on as any commit of the pid would (nft-monitor.ts: debts).
      (g) => {
        if (g.families.some((f) => f !== family)) return false;
        const tables = new Set(g.rules.map((r) => r.table));
        const [table] = tables;
        if (tables.size > 1 || (table !== undefined && !changed.has(table))) return false;
        return learn(
          g.rules.filter((r) => r.op === 'add'),
          wanted.filter((w) => w.table === table),
        );
      },
    );
    learn(
      generations.flatMap((g) => g.rules.filter((r) => r.op === 'add')),
      wanted,
    ); // otherwise handles stay unknown: deletes of these rules go by spec
  }

  /** Deletes by nf_tables handle: one transaction for the run (one family). */
  private async executeHandles(run: readonly PlannedJob[], after?: AfterCommit): Promise<Failure> {
    const refs = run.map((r) => r.plan.handleDelete as NonNullable<JobPlan['handleDelete']>);
    const family = refs[0]?.family as Family;
    const feed = this.feed;
    let spawned: number | undefined;
    const t0 = performance.now();
    const kernel = (ok: boolean) =>
      notify(this.o.observer, 'kernel', {
        family,
        kind: 'handles',
        tables: [...new Set(refs.map((x) => x.table))],
        ms: performance.now() - t0,
        ok,
      });
    try {
      const result = await (this.o.handles as RuleHandles).delete(
        family,
        refs.map((r) => ({ table: r.table, chain: r.chain, handle: r.handle })),
        {
          timeoutMs: 30_000,
          onSpawn: (pid) => {
            spawned = pid;
            feed?.claim(pid);
          },
        },
      );
      kernel(true);
      if (result.pid !== undefined && feed) await feed.takeOwn(result.pid, 1, this.o.feedTimeoutMs);
      // Deletes only (expiries): settling twice after a crash here finds nothing to delete.
      if (after) await this.o.pending?.settle(after).catch(() => undefined);
      return undefined;
    } catch (error) {
      kernel(false);
      if (spawned !== undefined) feed?.release(spawned);
      if (!(error instanceof ExecError)) return { culprit: undefined, error: DomainError.from(error) };
      const culprit = error.line === undefined ? undefined : run[error.line - 1]?.index;
      if (error.kind === 'not_found') {
        this.stale = true;
        return {
          culprit,
          error: new DomainError(
            'not_found',
            'the rule is no longer in the kernel: another process removed it',
            {
              cause: error,
            },
          ),
        };
      }
      return { culprit, error: kernelError(error) };
    }
  }

  /**
   * Undoes blocks the kernel committed before a later part of the same run failed: only their
   * commands' own effect (each command's `undo`, newest first), so rules other processes added
   * meanwhile stay; a block's journal marker goes in the same commit as its undo, so a crash
   * can never undo it twice. A table the change created is deleted again when nothing else is
   * in it. When the undo itself fails, the model is re-read so that it still shows the kernel.
   * Returns whether everything was undone.
   */
  private async undo(committed: readonly CommittedBlock[]): Promise<boolean> {
    if (committed.length === 0) return true;
    const { executor, model } = this.o;
    let ok = true;
    for (const family of FAMILIES) {
      const mine = committed.filter((b) => b.family === family);
      if (mine.length === 0) continue;
      const builder = new RestoreBuilder();
      for (let k = mine.length - 1; k >= 0; k--) {
        const b = mine[k] as CommittedBlock;
        for (let i = b.commands.length - 1; i >= 0; i--)
          for (const u of (b.commands[i] as PlannedCommand).undo) builder.add(u);
        if (b.marker) builder.deleteChain(b.table, b.marker);
      }
      const t0 = performance.now();
      try {
        if (!builder.isEmpty) await executor.restore(family, builder.toString(), { noflush: true });
        notify(this.o.observer, 'kernel', {
          family,
          kind: 'undo',
          tables: [...new Set(mine.map((b) => b.table))],
          ms: performance.now() - t0,
          ok: true,
        });
        for (const table of new Set(mine.map((b) => b.table))) {
          if (model.state.get(family)?.tables.has(table)) continue;
          const saved = parseSave(await executor.save(family, { table }), family).tables[0];
          const empty =
            saved === undefined ||
            saved.chains.every(
              (c) => BUILTIN_SET[table].has(c.name) && c.rules.length === 0 && c.policy === 'ACCEPT',
            );
          if (saved !== undefined && empty) await executor.restore(family, `*${table}\nCOMMIT\n`);
        }
      } catch {
        ok = false;
        this.stale = true;
      }
    }
    // Rules put back have new nf_tables handles: re-read them.
    if (this.o.sync.useHandles) this.stale = true;
    return ok;
  }

  private commitRun(draft: Draft, run: readonly PlannedJob[], outcomes: Outcome<JobResult>[]): void {
    const model = this.o.model;
    model.state = draft.commit();
    const lookup = stateChainLookup(model.state);
    const records: CommitRecord[] = [];
    const wantRecords = this.o.observer?.committed !== undefined;
    for (const r of run) {
      const before = model.revision;
      if (r.changes) model.revision++;
      if (r.changes && wantRecords) records.push(commitRecord(r, before, model.revision));
      const results = r.plan.outcomes.map((o) => outcomeView(o, lookup));
      const changes = r.plan.changes.map(publicChange);
      outcomes[r.index] = { ok: true, value: { revision: model.revision, results, changes } };
      if (r.changes) {
        const event: ChangeEvent = {
          revision: model.revision,
          origin: 'service',
          ...(r.job.options.origin ? { client: r.job.options.origin } : {}),
          time: new Date().toISOString(),
          changes,
          ...(r.job.options.requestId ? { requestId: r.job.options.requestId } : {}),
        };
        model.hub.emit(event);
      }
    }
    if (records.length) notify(this.o.observer, 'committed', records);
  }
}

/** What one job contributed, for the observers (audit log, persistence). */
function commitRecord(r: PlannedJob, before: number, after: number): CommitRecord {
  const { options } = r.job;
  const restore: { family: Family; text: string }[] = [];
  const h = r.plan.handleDelete;
  if (h) {
    restore.push({
      family: h.family,
      text: `delete rule ${h.family === 'ipv4' ? 'ip' : 'ip6'} ${h.table} ${h.chain} handle ${h.handle}\n`,
    });
  } else {
    for (const family of FAMILIES) {
      const lines = r.plan.commands
        .filter((c) => c.family === family)
        .map((command) => ({ command, owner: 0 }));
      if (lines.length) restore.push({ family, text: renderRestore(lines).text });
    }
  }
  return {
    time: new Date().toISOString(),
    revisionBefore: before,
    revisionAfter: after,
    origin: options.origin,
    identity: options.identity,
    requestId: options.requestId,
    operations: r.job.ops.map((o) => o.op),
    changes: r.plan.changes.map(publicChange),
    restore,
  };
}

/** Whether a job has records to settle once whole (a confirmation, expiries, settlements). */
function recordsOf(r: PlannedJob): boolean {
  const o = r.job.options;
  return (
    o.confirmWithin !== undefined ||
    (o.settles !== undefined && r.changes) ||
    r.job.ops.some((op) => (op.op === 'append' || op.op === 'insert' || op.op === 'ensure') && op.expiresAt)
  );
}

/** Jobs (by index) whose commands land in more than one committed block. */
function multipartJobs(
  rendered: readonly { lines: readonly { owner: number }[]; rendered: RenderedRestore; family: Family }[],
): Set<number> {
  const blocks = new Map<number, Set<string>>();
  for (const { family, lines, rendered: r } of rendered) {
    lines.forEach((l, i) => {
      let set = blocks.get(l.owner);
      if (!set) {
        set = new Set();
        blocks.set(l.owner, set);
      }
      set.add(`${family}:${r.commitLines[i]}`);
    });
  }
  return new Set([...blocks].filter(([, set]) => set.size > 1).map(([owner]) => owner));
}

/** The journal's blocks: per committed block, what undoes the commands of multi-part jobs in it. */
function journalBlocks(
  rendered: readonly {
    family: Family;
    lines: readonly { command: PlannedCommand; owner: number }[];
    rendered: RenderedRestore;
  }[],
  split: ReadonlySet<number>,
): JournalBlock[] {
  const out: JournalBlock[] = [];
  for (const { family, lines, rendered: r } of rendered) {
    for (const b of r.tables) {
      const mine = lines.filter((l, i) => split.has(l.owner) && r.commitLines[i] === b.commitLine);
      const builder = new RestoreBuilder();
      for (let i = mine.length - 1; i >= 0; i--)
        for (const u of (mine[i] as { command: PlannedCommand }).command.undo) builder.add(u);
      // The marker goes in the same commit as the undo: a crash can never undo the block twice.
      builder.deleteChain(b.table, b.marker as string);
      out.push({ family, table: b.table, marker: b.marker as string, undo: builder.toString() });
    }
  }
  return out;
}

/** The model of every family as the guard's simulator reads it (chains parsed when walked). */
export function rulesetsOf(state: ReadonlyMap<Family, FamilyState>): Map<Family, Ruleset> {
  return new Map([...state].map(([f, st]) => [f, lazyRuleset(st)] as const));
}
