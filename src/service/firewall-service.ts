/**
 * FirewallService: the one place where reads are answered and changes are made.
 *
 * Design
 * - Reads come from an in-memory model (state.ts) kept equal to the kernel;
 *   `iptables-save` is read at start, after an external change, and on demand
 *   (counters) — never per request.
 * - Every change is a job on the CommandQueue (one writer, group commit). A
 *   batch is planned on a copy-on-write draft, executed as one
 *   `iptables-restore --noflush` per family, and the draft becomes the model
 *   only when the kernel accepted it. A job the kernel refuses is found from
 *   the failing input line and failed alone; the others are re-planned and
 *   applied. A job that is one delete of a rule whose nf_tables handle is known
 *   goes by handle (`nft delete rule ... handle N`): fast at 50k rules and
 *   immune to another process shifting positions a moment before.
 * - External changes: on nf_tables a ChangeFeed (`nft monitor`) reports every
 *   commit with its process id; commits that are not ours make the service
 *   re-read the kernel. Without a feed (legacy), a periodic check compares
 *   the kernel's ruleset with the model.
 * - Every successful change advances the revision; every change may carry an
 *   expected revision and then fails with `failed_precondition`, changing
 *   nothing, if the ruleset has moved on.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DomainError } from '../domain/errors.js';
import {
  BUILTIN_CHAINS,
  FAMILIES,
  type Family,
  isFamily,
  isTableName,
  TABLES,
  type TableName,
} from '../domain/family.js';
import type { Counters, Policy, Rule, Ruleset } from '../domain/model.js';
import {
  type BackendInfo,
  type ChangeFeed,
  ExecError,
  type Executor,
  type Generation,
  type RuleHandles,
} from '../exec/executor.js';
import { RestoreBuilder } from '../iptables/restore-builder.js';
import { writeRestore, writeTable } from '../iptables/restore-writer.js';
import { ruleText } from '../iptables/rule-writer.js';
import { parseSave } from '../iptables/save-parser.js';
import { CommandQueue, type CommandQueueOptions, type Outcome } from '../queue/command-queue.js';
import {
  type ChangeEvent,
  type ChangeEventChange,
  type ChangeListener,
  EventHub,
  publicChange,
} from './events.js';
import type { ApplyOptions, Operation, ValidOp } from './operations.js';
import type { TableSpec } from './plan-types.js';
import { type JobPlan, type PlannedCommand, Planner, type RuleView } from './planner.js';
import {
  type ChainState,
  Draft,
  type FamilyState,
  type RuleEntry,
  referencesTo,
  settleHandle,
  stateFromRuleset,
  type TableOrder,
  toRuleset,
  toTable,
} from './state.js';
import { validateOperations } from './validate-operations.js';

export interface FirewallServiceOptions {
  readonly executor: Executor;
  /** nf_tables commit stream; with `handles`, enables delete-by-handle and instant external-change detection. */
  readonly feed?: ChangeFeed;
  readonly handles?: RuleHandles;
  /**
   * Families to manage.
   * @default ['ipv4', 'ipv6']
   */
  readonly families?: readonly Family[];
  /** Ruleset that `reset` returns to, per family; tables it lacks reset to empty with ACCEPT policies. */
  readonly baseline?: ReadonlyMap<Family, Ruleset>;
  readonly queue?: CommandQueueOptions;
  /**
   * Without a feed: how often to compare the kernel with the model (ms); 0 disables.
   * @default 5000
   */
  readonly pollIntervalMs?: number;
  /**
   * How long to wait for the feed to report our own commit (ms).
   * @default 3000
   */
  readonly feedTimeoutMs?: number;
}

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
}

export interface RuleDetail extends RuleView {
  readonly counters?: Counters;
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

export interface ServiceStatus {
  readonly revision: number;
  readonly families: readonly Family[];
  readonly backend: BackendInfo | undefined;
  /** How external changes are noticed. */
  readonly watch: 'nft-monitor' | 'poll' | 'none';
  readonly queueDepth: number;
  readonly batches: number;
  readonly ready: boolean;
  readonly lastExternalChange: string | undefined;
  /** Timings of the last kernel transaction: jobs in it, and milliseconds planning, in the kernel, committing. */
  readonly lastRun?: {
    readonly jobs: number;
    readonly planMs: number;
    readonly kernelMs: number;
    readonly commitMs: number;
  };
}

type Job =
  | { readonly kind: 'apply'; readonly ops: readonly ValidOp[]; readonly options: ApplyOptions }
  | {
      readonly kind: 'reload';
      readonly families: readonly Family[];
      readonly reason: 'external' | 'poll' | 'resync' | 'demand';
    };

type JobResult = ApplyResult | { readonly revision: number; readonly changed: boolean };

interface PlannedJob {
  readonly index: number;
  readonly job: Extract<Job, { kind: 'apply' }>;
  readonly plan: JobPlan;
  /** Whether the job changes anything (a no-op ensure does not). */
  readonly changes: boolean;
}

const BUILTIN_SET = Object.fromEntries(
  TABLES.map((t) => [t, new Set(BUILTIN_CHAINS[t])]),
) as unknown as Readonly<Record<TableName, ReadonlySet<string>>>;

function kernelError(e: ExecError): DomainError {
  // iptables-restore (nf_tables) prints a bare "iptables-restore v1.8.9 (nf_tables): " banner
  // line before the real error ("line 3: RULE_APPEND failed (Invalid argument): ...").
  const first =
    e.stderr.split('\n').find((l) => l.trim() !== '' && !/^\S+ v[\d.]+ \([^)]*\):\s*$/.test(l)) ?? e.message;
  const details = {
    ...(e.line === undefined ? {} : { line: e.line }),
    ...(e.lineText === undefined ? {} : { input: e.lineText }),
    kernel: first.slice(0, 500),
  };
  switch (e.kind) {
    case 'not_found':
      return new DomainError('not_found', `the kernel refused the change: ${first}`, { details, cause: e });
    case 'already_exists':
      return new DomainError('already_exists', `the kernel refused the change: ${first}`, {
        details,
        cause: e,
      });
    case 'invalid_input':
      return new DomainError('invalid_argument', `the kernel refused the change: ${first}`, {
        details,
        cause: e,
      });
    case 'failed':
      return new DomainError('failed_precondition', `the kernel refused the change: ${first}`, {
        details,
        cause: e,
      });
    case 'aborted':
      return new DomainError('aborted', 'the change was cancelled', { cause: e });
    default:
      return new DomainError(
        'unavailable',
        `the firewall could not be changed right now (${e.kind}): ${e.message}`,
        { details, cause: e },
      );
  }
}

export class FirewallService {
  private readonly executor: Executor;
  private readonly feed: ChangeFeed | undefined;
  private readonly handles: RuleHandles | undefined;
  readonly families: readonly Family[];
  private readonly queue: CommandQueue<Job, JobResult>;
  private readonly hub = new EventHub();
  private readonly feedTimeoutMs: number;
  private readonly pollIntervalMs: number;
  private readonly baseline: ReadonlyMap<Family, Ruleset> | undefined;
  private state = new Map<Family, FamilyState>();
  private rev = 0;
  private backend: BackendInfo | undefined;
  private started = false;
  private closing = false;
  private reloadQueued = false;
  private lastExternal: string | undefined;
  private unsubscribeFeed: (() => void) | undefined;
  /** Handles of recently added rules still being learned from the change feed. */
  private handleLearning: Promise<void> = Promise.resolve();
  private lastRun: ServiceStatus['lastRun'];
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(options: FirewallServiceOptions) {
    if (!options || typeof options.executor !== 'object')
      throw new TypeError('Expected `executor` to be an Executor');
    this.executor = options.executor;
    this.feed = options.feed;
    this.handles = options.handles;
    this.families = options.families ?? FAMILIES;
    for (const f of this.families)
      if (!isFamily(f)) throw new TypeError(`Expected \`families\` to hold ipv4 or ipv6, got ${String(f)}`);
    this.baseline = options.baseline;
    this.feedTimeoutMs = options.feedTimeoutMs ?? 3000;
    this.pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.queue = new CommandQueue<Job, JobResult>((jobs) => this.runBatch(jobs), options.queue);
  }

  /** Reads the kernel, starts watching it, and makes the service ready. */
  async start(): Promise<void> {
    if (this.started) return;
    this.backend = await this.executor.info(this.families[0] ?? 'ipv4');
    if (this.feed) {
      await this.feed.start();
      this.unsubscribeFeed = this.feed.onExternal((g) => this.onExternal(g));
    }
    for (const family of this.families) this.state.set(family, await this.readKernel(family));
    this.rev = 1;
    this.started = true;
    if (!this.feed && this.pollIntervalMs > 0) {
      this.pollTimer = setInterval(() => {
        if (!this.reloadQueued) {
          this.reloadQueued = true;
          this.queue.schedule({ kind: 'reload', families: this.families, reason: 'poll' }, () => {
            this.reloadQueued = false;
          });
        }
      }, this.pollIntervalMs);
      this.pollTimer.unref();
    }
  }

  /** Stops accepting changes, finishes queued ones, stops watching. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.queue.close();
    await this.handleLearning;
    this.unsubscribeFeed?.();
    await this.feed?.close();
    this.hub.clear();
  }

  get revision(): number {
    return this.rev;
  }

  get ready(): boolean {
    return this.started && !this.closing;
  }

  subscribe(listener: ChangeListener): () => void {
    return this.hub.subscribe(listener);
  }

  status(): ServiceStatus {
    return {
      revision: this.rev,
      families: this.families,
      backend: this.backend,
      watch: this.feed ? 'nft-monitor' : this.pollIntervalMs > 0 ? 'poll' : 'none',
      queueDepth: this.queue.depth,
      batches: this.queue.batchCount,
      ready: this.ready,
      lastExternalChange: this.lastExternal,
      ...(this.lastRun ? { lastRun: this.lastRun } : {}),
    };
  }

  // ---------------------------------------------------------------- reads

  private familyState(family: Family): FamilyState {
    this.assertStarted();
    if (!isFamily(family))
      throw new DomainError('invalid_argument', 'family must be ipv4 or ipv6', { field: 'family' });
    const s = this.state.get(family);
    if (!s)
      throw new DomainError('invalid_argument', `family ${family} is not managed by this service`, {
        field: 'family',
      });
    return s;
  }

  private chainState(family: Family, table: TableName, chain: string): ChainState {
    const t = this.tableState(family, table);
    const c = t.get(chain);
    if (c) return c;
    if (BUILTIN_SET[table].has(chain))
      return { name: chain, policy: 'ACCEPT', counters: undefined, entries: [] };
    throw new DomainError(
      'not_found',
      `chain ${String(chain).slice(0, 40)} does not exist in table ${table} (${family})`,
      { field: 'chain' },
    );
  }

  private tableState(family: Family, table: TableName): ReadonlyMap<string, ChainState> {
    if (!isTableName(table))
      throw new DomainError('invalid_argument', `table must be one of ${TABLES.join(', ')}`, {
        field: 'table',
      });
    return this.familyState(family).tables.get(table)?.chains ?? toEmpty(table);
  }

  /** Tables in the order this backend's iptables-save prints them (see TableOrder). */
  private get tableOrder(): TableOrder {
    return this.backend?.backend === 'legacy' ? 'kernel' : 'nft';
  }

  /** The whole ruleset of a family (as the model; ids via getChain), tables as iptables-save orders them. */
  getRuleset(family: Family): { revision: number; ruleset: Ruleset } {
    return { revision: this.rev, ruleset: toRuleset(this.familyState(family), this.tableOrder) };
  }

  /**
   * The whole ruleset of a family as iptables-save text (from the model, not the kernel):
   * equal to what iptables-save prints, comment lines and counters aside.
   */
  getRulesetText(family: Family): { revision: number; text: string } {
    return {
      revision: this.rev,
      text: writeRestore(toRuleset(this.familyState(family), this.tableOrder)),
    };
  }

  /** A table's chains with their rules. Tables not yet used by anyone read as empty built-ins. */
  getTable(family: Family, table: TableName): { revision: number; chains: ChainView[] } {
    const chains = this.tableState(family, table);
    return { revision: this.rev, chains: [...chains.values()].map((c) => chainView(table, c)) };
  }

  /** One chain, rules in order with id and position; with `counters`, read live from the kernel. */
  async getChain(
    family: Family,
    table: TableName,
    chain: string,
    options: { counters?: boolean } = {},
  ): Promise<{ revision: number; chain: ChainView }> {
    const c = this.chainState(family, table, chain);
    const revision = this.rev;
    if (!options.counters) return { revision, chain: chainView(table, c) };
    const live = parseSave(await this.executor.save(family, { table, counters: true }), family, {
      counters: true,
    });
    const kc = live.tables.find((t) => t.name === table)?.chains.find((x) => x.name === chain);
    const view = chainView(table, c);
    const sameRules =
      kc !== undefined &&
      kc.rules.length === c.entries.length &&
      kc.rules.every((r, i) => ruleText(r) === c.entries[i]?.text);
    if (!sameRules) {
      this.requestReload('resync');
      throw new DomainError(
        'aborted',
        'the chain changed in the kernel while its counters were read; retry',
        { field: 'chain' },
      );
    }
    return {
      revision,
      chain: {
        ...view,
        ...(kc.counters ? { counters: kc.counters } : {}),
        rules: view.rules.map((r, i) => {
          const counters = kc.rules[i]?.counters;
          return counters ? { ...r, counters } : r;
        }),
      },
    };
  }

  /** Chains of a table with policy, rule count and how many rules jump to each. */
  listChains(family: Family, table: TableName): { revision: number; chains: ChainSummary[] } {
    const chains = this.tableState(family, table);
    const t = { name: table, chains };
    return {
      revision: this.rev,
      chains: [...chains.values()].map((c) => ({
        name: c.name,
        builtin: BUILTIN_SET[table].has(c.name),
        ...(c.policy ? { policy: c.policy } : {}),
        rules: c.entries.length,
        references: referencesTo(t, c.name).length,
      })),
    };
  }

  /** Finds a rule by id anywhere in a table. */
  findRule(family: Family, table: TableName, id: string): { chain: string; rule: RuleView } | undefined {
    for (const c of this.tableState(family, table).values()) {
      const i = c.entries.findIndex((e) => e.id === id);
      if (i !== -1) return { chain: c.name, rule: viewAt(c.entries, i) };
    }
    return undefined;
  }

  // ---------------------------------------------------------------- changes

  /**
   * Applies operations as one all-or-nothing transaction (a single operation is the
   * common case). With `dryRun`, returns the restore text and the diff, changing nothing.
   */
  async apply(ops: readonly Operation[], options: ApplyOptions = {}): Promise<ApplyResult> {
    this.assertStarted();
    if (
      options.expectedRevision !== undefined &&
      (!Number.isSafeInteger(options.expectedRevision) || options.expectedRevision < 0)
    ) {
      throw new DomainError('invalid_argument', 'expected revision must be a whole number', {
        field: 'expectedRevision',
      });
    }
    const valid = validateOperations(ops, this.families);
    if (options.dryRun) return this.dryRun(valid, options);
    const result = await this.queue.enqueue({ kind: 'apply', ops: valid, options }, options.signal);
    return result as ApplyResult;
  }

  /** Re-reads the kernel now (through the queue, after pending changes). */
  async reload(): Promise<{ revision: number; changed: boolean }> {
    this.assertStarted();
    return (await this.queue.enqueue({ kind: 'reload', families: this.families, reason: 'demand' })) as {
      revision: number;
      changed: boolean;
    };
  }

  private dryRun(ops: readonly ValidOp[], options: ApplyOptions): ApplyResult {
    if (options.expectedRevision !== undefined && options.expectedRevision !== this.rev)
      throw this.stale(options.expectedRevision);
    const draft = new Draft(this.state);
    const plan = new Planner(draft, this.plannerOptions(false)).plan(ops);
    const restoreText: Partial<Record<Family, string>> = {};
    for (const family of FAMILIES) {
      const r = renderRestore(
        plan.commands.filter((c) => c.family === family).map((command) => ({ command, owner: 0 })),
      );
      if (r.text) restoreText[family] = r.text;
    }
    const changed = plan.commands.length > 0;
    return {
      dryRun: true,
      revision: changed ? this.rev + 1 : this.rev,
      results: plan.outcomes.map((o) => outcomeView(o, draftChainLookup(draft))),
      changes: plan.changes.map(publicChange),
      restoreText,
    };
  }

  private stale(expected: number): DomainError {
    return new DomainError(
      'failed_precondition',
      `the ruleset is at revision ${this.rev}, not ${expected}: re-read it and retry`,
      {
        field: 'expectedRevision',
        details: { currentRevision: this.rev, expectedRevision: expected },
      },
    );
  }

  private plannerOptions(useHandles: boolean) {
    return {
      useHandles,
      ...(this.baselineTables ? { baseline: this.baselineTables } : {}),
    };
  }

  private get baselineTables() {
    if (!this.baseline) return undefined;
    const out = new Map<Family, Map<TableName, TableSpec[]>>();
    for (const [family, rs] of this.baseline) {
      out.set(
        family,
        new Map(
          rs.tables.map((t) => [
            t.name,
            t.chains.map((c) => ({
              name: c.name,
              ...(c.policy ? { policy: c.policy } : {}),
              rules: c.rules,
            })),
          ]),
        ),
      );
    }
    return out;
  }

  private assertStarted(): void {
    if (!this.started)
      throw new DomainError(
        'unavailable',
        'the service is starting: the firewall has not been read yet; retry shortly',
      );
  }

  // ---------------------------------------------------------------- batches

  private async runBatch(jobs: readonly Job[]): Promise<Outcome<JobResult>[]> {
    const outcomes: Outcome<JobResult>[] = new Array(jobs.length);
    let i = 0;
    while (i < jobs.length) {
      const job = jobs[i] as Job;
      if (job.kind === 'reload') {
        try {
          outcomes[i] = { ok: true, value: await this.reloadFamilies(job.families, job.reason) };
        } catch (error) {
          outcomes[i] = { ok: false, error: DomainError.from(error) };
        }
        i++;
        continue;
      }
      let j = i;
      while (j < jobs.length && jobs[j]?.kind === 'apply') j++;
      await this.runApplyGroup(jobs, i, j, outcomes);
      i = j;
    }
    return outcomes;
  }

  private useHandles(): boolean {
    return this.feed !== undefined && this.handles !== undefined;
  }

  /** Plans and applies jobs [from, to) in order; fills their outcomes. */
  private async runApplyGroup(
    jobs: readonly Job[],
    from: number,
    to: number,
    outcomes: Outcome<JobResult>[],
  ): Promise<void> {
    let pending = Array.from({ length: to - from }, (_, k) => from + k);
    // Deletes go by handle: let the handles of rules just added arrive first.
    if (
      pending.some((i) => (jobs[i] as Extract<Job, { kind: 'apply' }>).ops.some((op) => op?.op === 'delete'))
    ) {
      await this.handleLearning;
    }
    let isolate = 0; // while > 0, runs hold one job (after a failure we could not pin on a line)
    while (pending.length > 0) {
      const draft = new Draft(this.state);
      const planner = new Planner(draft, this.plannerOptions(this.useHandles()));
      const run: PlannedJob[] = [];
      let mode: 'restore' | 'handles' | undefined;
      let runFamily: Family | undefined;
      let working = this.rev;
      const done: number[] = [];
      const t0 = performance.now();
      for (const index of pending) {
        if (isolate > 0 && run.length === 1) break;
        const job = jobs[index] as Extract<Job, { kind: 'apply' }>;
        if (job.options.expectedRevision !== undefined && job.options.expectedRevision !== working) {
          outcomes[index] = { ok: false, error: this.staleAt(job.options.expectedRevision, working) };
          done.push(index);
          continue;
        }
        const restore = draft.checkpoint();
        let plan: JobPlan;
        try {
          plan = planner.plan(job.ops);
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
        mode = jobMode;
        runFamily = jobFamily;
        const changes = plan.commands.length > 0;
        if (changes) working++;
        run.push({ index, job, plan, changes });
        done.push(index);
      }
      if (run.length === 0) {
        pending = pending.filter((p) => !done.includes(p));
        continue;
      }
      const t1 = performance.now();
      const failed = mode === 'handles' ? await this.executeHandles(run) : await this.executeRestore(run);
      const t2 = performance.now();
      if (failed === undefined) {
        this.commitRun(draft, run, outcomes);
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
  }

  private staleAt(expected: number, current: number): DomainError {
    return new DomainError(
      'failed_precondition',
      `the ruleset is at revision ${current}, not ${expected}: re-read it and retry`,
      {
        field: 'expectedRevision',
        details: { currentRevision: current, expectedRevision: expected },
      },
    );
  }

  /** Applies a run through iptables-restore, one transaction per family. Returns the failure, if any. */
  private async executeRestore(
    run: readonly PlannedJob[],
  ): Promise<{ culprit: number | undefined; error: DomainError } | undefined> {
    /** Commands the kernel committed so far (iptables commits block by block, family by family). */
    const committed: PlannedCommand[] = [];
    for (const family of FAMILIES) {
      const lines = run.flatMap((r) =>
        r.plan.commands.filter((c) => c.family === family).map((command) => ({ command, owner: r.index })),
      );
      const rendered = renderRestore(lines);
      if (!rendered.text) continue;
      let spawned: number | undefined;
      try {
        const result = await this.executor.restore(family, rendered.text, {
          noflush: true,
          onSpawn: (pid) => {
            spawned = pid;
            this.feed?.claim(pid);
          },
        });
        committed.push(...lines.map((l) => l.command));
        if (this.useHandles() && result.pid !== undefined) {
          // Learned in the background, so the next batch need not wait for the monitor's
          // lag; deletes wait for it (see runApplyGroup). Failing to learn handles only
          // makes later deletes of these rules slower (by spec).
          const learning = this.learnHandles(family, result.pid, rendered).catch(() => undefined);
          this.handleLearning = Promise.all([this.handleLearning, learning]).then(() => undefined);
        }
      } catch (error) {
        if (spawned !== undefined) this.feed?.release(spawned);
        if (!(error instanceof ExecError)) {
          await this.undo(committed);
          return { culprit: undefined, error: DomainError.from(error) };
        }
        if (error.line === undefined) {
          // Which blocks committed is unknown: put back what surely did, and re-read the kernel.
          await this.undo(committed);
          this.requestReload('resync');
          return { culprit: undefined, error: kernelError(error) };
        }
        // Blocks whose COMMIT came before the failing line were applied.
        const failedAt = error.line;
        committed.push(
          ...lines.filter((_, i) => (rendered.commitLines[i] as number) < failedAt).map((l) => l.command),
        );
        await this.undo(committed);
        const culprit = rendered.owners[failedAt - 1];
        if (error.kind === 'not_found' || error.kind === 'already_exists') this.requestReload('resync');
        return { culprit, error: kernelError(error) };
      }
    }
    return undefined;
  }

  /** Learns the handles of the rules a restore added, from the commits the feed saw. */
  private async learnHandles(family: Family, pid: number, rendered: RenderedRestore): Promise<void> {
    const feed = this.feed as ChangeFeed;
    // Every table with a command other than -Z commits a generation (-Z on an empty chain may not).
    const count = rendered.tables.filter((t) => t.changes).length;
    // The monitor prints each event separately: allow for its lag on big batches.
    const generations = await feed.takeOwn(
      pid,
      count,
      Math.ceil(this.feedTimeoutMs + rendered.adds.length / 10),
    );
    const adds = generations.flatMap((g) => g.rules.filter((r) => r.op === 'add'));
    const wanted = rendered.adds;
    if (adds.length !== wanted.length) return; // handles stay unknown: deletes of these rules go by spec
    for (let k = 0; k < adds.length; k++) {
      const a = adds[k] as Generation['rules'][number];
      const e = wanted[k] as { table: TableName; chain: string; entry: RuleEntry };
      if (a.table !== e.table || a.chain !== e.chain || a.family !== family) return;
    }
    for (let k = 0; k < adds.length; k++) {
      settleHandle((wanted[k] as { entry: RuleEntry }).entry, (adds[k] as { handle: number }).handle);
    }
  }

  /** Deletes by nf_tables handle: one transaction for the run (one family). */
  private async executeHandles(
    run: readonly PlannedJob[],
  ): Promise<{ culprit: number | undefined; error: DomainError } | undefined> {
    const refs = run.map((r) => r.plan.handleDelete as NonNullable<JobPlan['handleDelete']>);
    const family = refs[0]?.family as Family;
    let spawned: number | undefined;
    try {
      const result = await (this.handles as RuleHandles).delete(
        family,
        refs.map((r) => ({ table: r.table, chain: r.chain, handle: r.handle })),
        {
          timeoutMs: 30_000,
          onSpawn: (pid) => {
            spawned = pid;
            this.feed?.claim(pid);
          },
        },
      );
      if (result.pid !== undefined)
        await (this.feed as ChangeFeed).takeOwn(result.pid, 1, this.feedTimeoutMs);
      return undefined;
    } catch (error) {
      if (spawned !== undefined) this.feed?.release(spawned);
      if (!(error instanceof ExecError)) return { culprit: undefined, error: DomainError.from(error) };
      const culprit = error.line === undefined ? undefined : run[error.line - 1]?.index;
      if (error.kind === 'not_found') {
        this.requestReload('resync');
        return {
          culprit,
          error: new DomainError(
            'not_found',
            'the rule is no longer in the kernel: another process removed it',
            { cause: error },
          ),
        };
      }
      return { culprit, error: kernelError(error) };
    }
  }

  /**
   * Undoes commands the kernel committed before a later part of the same run failed: only
   * their own effect (each command's `undo`, newest first), so rules other processes added
   * meanwhile stay. A table the change created is deleted again when nothing else is in it.
   * When the undo itself fails, the model is re-read so that it still shows the kernel.
   */
  private async undo(committed: readonly PlannedCommand[]): Promise<void> {
    if (committed.length === 0) return;
    for (const family of FAMILIES) {
      const mine = committed.filter((c) => c.family === family);
      if (mine.length === 0) continue;
      const builder = new RestoreBuilder();
      for (let i = mine.length - 1; i >= 0; i--)
        for (const u of (mine[i] as PlannedCommand).undo) builder.add(u);
      try {
        if (!builder.isEmpty) await this.executor.restore(family, builder.toString(), { noflush: true });
        for (const table of new Set(mine.map((c) => c.table))) {
          if (this.state.get(family)?.tables.has(table)) continue;
          const saved = parseSave(await this.executor.save(family, { table }), family).tables[0];
          const empty =
            saved === undefined ||
            saved.chains.every(
              (c) => BUILTIN_SET[table].has(c.name) && c.rules.length === 0 && c.policy === 'ACCEPT',
            );
          if (saved !== undefined && empty) await this.executor.restore(family, `*${table}\nCOMMIT\n`);
        }
      } catch {
        this.requestReload('resync');
      }
    }
    // Rules put back have new nf_tables handles: re-read them.
    if (this.useHandles()) this.requestReload('resync');
  }

  private commitRun(draft: Draft, run: readonly PlannedJob[], outcomes: Outcome<JobResult>[]): void {
    this.state = draft.commit();
    const lookup = stateChainLookup(this.state);
    for (const r of run) {
      if (r.changes) this.rev++;
      const results = r.plan.outcomes.map((o) => outcomeView(o, lookup));
      const changes = r.plan.changes.map(publicChange);
      outcomes[r.index] = { ok: true, value: { revision: this.rev, results, changes } };
      if (r.changes) {
        const event: ChangeEvent = {
          revision: this.rev,
          origin: 'service',
          ...(r.job.options.origin ? { client: r.job.options.origin } : {}),
          time: new Date().toISOString(),
          changes,
        };
        this.hub.emit(event);
      }
    }
  }

  // ---------------------------------------------------------------- kernel reads

  private async readKernel(family: Family): Promise<FamilyState> {
    if (!this.useHandles()) return stateFromRuleset(parseSave(await this.executor.save(family), family));
    // Rules (iptables-save) and handles (nft list) come from separate reads, and another process
    // may commit in between — e.g. one restore inserting a rule and deleting another, which keeps
    // the count and shifts every handle by one: a delete by handle would then remove the wrong
    // rule. So the handles are listed before and after the save, and a chain's handles are kept
    // only when both listings agree and match its rule count: handles are never reused, so any
    // rule added or removed in between would show. Chains that never agree go without handles
    // (their deletes go by spec). Waiting for the feed to report the commit is not enough: it
    // may report it only after the listing.
    const tables = new Set<TableName>(this.state.get(family)?.tables.keys() ?? TABLES);
    for (let attempt = 1; ; attempt++) {
      const before = await this.listHandles(family, tables);
      const ruleset = parseSave(await this.executor.save(family), family);
      const after = await this.listHandles(family, new Set(ruleset.tables.map((t) => t.name)));
      const verified = new Map<TableName, Map<string, readonly number[]>>();
      let complete = true;
      for (const t of ruleset.tables) {
        const chains = new Map<string, readonly number[]>();
        verified.set(t.name, chains);
        for (const c of t.chains) {
          // An empty chain has no handles to verify (iptables-save also prints built-in
          // chains nf_tables has not created yet, which nft does not list).
          if (c.rules.length === 0) {
            chains.set(c.name, []);
            continue;
          }
          const a = before.get(t.name)?.get(c.name);
          const b = after.get(t.name)?.get(c.name);
          if (a && b && a.length === c.rules.length && b.length === a.length && a.every((h, i) => h === b[i]))
            chains.set(c.name, b);
          else complete = false;
        }
        tables.add(t.name);
      }
      if (complete || attempt >= 3) return stateFromRuleset(ruleset, verified);
    }
  }

  private async listHandles(
    family: Family,
    tables: ReadonlySet<TableName>,
  ): Promise<Map<TableName, ReadonlyMap<string, readonly number[]>>> {
    const out = new Map<TableName, ReadonlyMap<string, readonly number[]>>();
    for (const t of tables) {
      try {
        out.set(t, await (this.handles as RuleHandles).list(family, t));
      } catch {
        // Without handles the table's rules are still fully usable: their deletes go by spec.
      }
    }
    return out;
  }

  private async reloadFamilies(
    families: readonly Family[],
    reason: string,
  ): Promise<{ revision: number; changed: boolean }> {
    this.reloadQueued = false;
    const changes: ChangeEventChange[] = [];
    const next = new Map(this.state);
    for (const family of families) {
      const fresh = await this.readKernel(family);
      const old = this.state.get(family);
      changes.push(...diffStates(family, old, fresh));
      next.set(family, fresh);
    }
    this.state = next;
    if (changes.length === 0) return { revision: this.rev, changed: false };
    this.rev++;
    this.lastExternal = new Date().toISOString();
    this.hub.emit({
      revision: this.rev,
      origin: 'external',
      client: reason,
      time: this.lastExternal,
      changes,
    });
    return { revision: this.rev, changed: true };
  }

  private onExternal(_generation: Generation): void {
    this.requestReload('external');
  }

  private requestReload(reason: 'external' | 'resync'): void {
    if (this.reloadQueued || this.closing) return;
    this.reloadQueued = true;
    const ok = this.queue.schedule({ kind: 'reload', families: this.families, reason }, () => {});
    if (!ok) this.reloadQueued = false;
  }
}

// ---------------------------------------------------------------- helpers

interface RenderedRestore {
  readonly text: string;
  /** owners[line - 1] = job index that owns that input line (undefined for headers and COMMIT). */
  readonly owners: readonly (number | undefined)[];
  /** For each command given (in order), the COMMIT line of its block. */
  readonly commitLines: readonly number[];
  readonly tables: readonly { table: TableName; commitLine: number; changes: boolean }[];
  /** Rules added, in the order the kernel will report them. */
  readonly adds: readonly { table: TableName; chain: string; entry: RuleEntry }[];
}

/** Restore text for one family, from the one restore builder. */
function renderRestore(lines: readonly { command: PlannedCommand; owner: number }[]): RenderedRestore {
  const builder = new RestoreBuilder();
  for (const l of lines) builder.add(l.command.command, l.owner);
  const built = builder.build();
  const adds = built.adds.map((i) => {
    const c = lines[i]?.command as PlannedCommand;
    const a = c.adds as NonNullable<PlannedCommand['adds']>;
    return { table: c.table, chain: a.chain, entry: a.entry };
  });
  return {
    text: built.text,
    owners: built.owners,
    tables: built.blocks,
    adds,
    commitLines: built.commitLines,
  };
}

function toEmpty(table: TableName): ReadonlyMap<string, ChainState> {
  return new Map(
    [...BUILTIN_SET[table]].map((name) => [
      name,
      { name, policy: 'ACCEPT' as const, counters: undefined, entries: [] as RuleEntry[] },
    ]),
  );
}

function viewAt(entries: readonly RuleEntry[], i: number): RuleView {
  const e = entries[i] as RuleEntry;
  return { id: e.id, position: i + 1, text: e.text, rule: e.rule };
}

function chainView(table: TableName, c: ChainState): ChainView {
  return {
    name: c.name,
    builtin: BUILTIN_SET[table].has(c.name),
    ...(c.policy ? { policy: c.policy } : {}),
    rules: c.entries.map((_, i) => viewAt(c.entries, i)),
  };
}

type ChainLookup = (family: Family, table: TableName, chain: string) => ChainState | undefined;

function stateChainLookup(state: ReadonlyMap<Family, FamilyState>): ChainLookup {
  return (family, table, chain) => state.get(family)?.tables.get(table)?.chains.get(chain);
}

function draftChainLookup(draft: Draft): ChainLookup {
  return (family, table, chain) => draft.chain(family, table, chain);
}

function outcomeView(o: JobPlan['outcomes'][number], lookup: ChainLookup): OpResult {
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

function fingerprint(c: ChainState): string {
  const h = createHash('sha256');
  h.update(c.policy ?? '-');
  for (const e of c.entries) h.update(`\n${e.text}`);
  return h.digest('hex');
}

/** What changed between two states of a family (chains, policies, rules by content). */
function diffStates(family: Family, old: FamilyState | undefined, fresh: FamilyState): ChangeEventChange[] {
  const changes: ChangeEventChange[] = [];
  for (const table of TABLES) {
    const a = old?.tables.get(table)?.chains ?? new Map<string, ChainState>();
    const b = fresh.tables.get(table)?.chains ?? new Map<string, ChainState>();
    for (const [name, cb] of b) {
      const ca = a.get(name);
      if (!ca) {
        if (!BUILTIN_SET[table].has(name))
          changes.push({ type: 'chain.created', family, table, chain: name });
      } else if (fingerprint(ca) === fingerprint(cb)) continue;
      if (ca && ca.policy !== cb.policy && cb.policy)
        changes.push({ type: 'policy.set', family, table, chain: name, policy: cb.policy });
      const before = new Map<string, number>();
      for (const e of ca?.entries ?? []) before.set(e.text, (before.get(e.text) ?? 0) + 1);
      cb.entries.forEach((e, i) => {
        const n = before.get(e.text) ?? 0;
        if (n > 0) before.set(e.text, n - 1);
        else
          changes.push({
            type: 'rule.added',
            family,
            table,
            chain: name,
            position: i + 1,
            id: e.id,
            text: e.text,
          });
      });
      for (const [text, n] of before) {
        for (let k = 0; k < n; k++) changes.push({ type: 'rule.deleted', family, table, chain: name, text });
      }
    }
    for (const name of a.keys()) {
      if (!b.has(name) && !BUILTIN_SET[table].has(name))
        changes.push({ type: 'chain.deleted', family, table, chain: name });
    }
  }
  return changes;
}
