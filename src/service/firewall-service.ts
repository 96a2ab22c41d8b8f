/**
 * FirewallService: the facade, the one object the front doors use (through the
 * narrow FirewallApi port, api.ts). It answers reads from the model and turns
 * changes into queue jobs; the rooms behind it each hold one concern:
 *
 * - validate-operations.ts: requests -> validated operations (before queueing)
 * - batch-runner.ts: the queue's worker; plans, executes, undoes, commits
 * - planner.ts (+ plan-*.ts): operations -> typed commands on a draft
 * - kernel-sync.ts: kernel reads, external changes (nft feed or polling)
 * - views.ts: what reads and results look like
 * - model.ts: the shared model and who may touch it
 *
 * Every successful change advances the revision; every change may carry an
 * expected revision and then fails with `failed_precondition`, changing
 * nothing, if the ruleset has moved on. Reads never call the executor outside
 * the queue (live counters are read as a queue job).
 */

import { dirname } from 'node:path';
import { DomainError } from '../domain/errors.js';
import { FAMILIES, type Family, isFamily, isTableName, TABLES, type TableName } from '../domain/family.js';
import type { Counters, Ruleset } from '../domain/model.js';
import { checkUint } from '../domain/validate.js';
import type { BackendInfo, ChangeFeed, Executor, RuleHandles } from '../exec/executor.js';
import { RestoreBuilder } from '../iptables/restore-builder.js';
import { writeRestore } from '../iptables/restore-writer.js';
import { ruleText } from '../iptables/rule-writer.js';
import { parseSave } from '../iptables/save-parser.js';
import {
  type HardenParams,
  hardenOps,
  type PresetContext,
  type RateLimitParams,
  rateLimitOps,
} from '../presets/presets.js';
import { CommandQueue, type CommandQueueOptions } from '../queue/command-queue.js';
import {
  type Finding,
  lint,
  normalizePacket,
  type Packet,
  type TraceResult,
  tracePacket,
  type Verdict,
} from '../simulate/index.js';
import { ChangeJournal } from '../store/change-journal.js';
import { ensureDir } from '../store/durable.js';
import type { FirewallApi } from './api.js';
import { BatchRunner, type Job, type JobResult, type RunTimings, renderRestore } from './batch-runner.js';
import { Canonicalizer, PROBE_PREFIX } from './canonicalize.js';
import { DeferredChanges, type RollbackReport } from './deferred.js';
import { type ChangeListener, publicChange } from './events.js';
import { type GuardConfig, LockoutGuard } from './guard.js';
import { KernelSync, type OtherBackend } from './kernel-sync.js';
import { emptyChains, ServiceModel, staleRevision } from './model.js';
import type { ServiceObserver } from './observer.js';
import type { ApplyOptions, Operation, ValidOp } from './operations.js';
import { type ConfirmationRecord, isAfterCommit, PendingStore } from './pending.js';
import type { TableSpec } from './plan-types.js';
import { Planner } from './planner.js';
import { type Recovery, recoverJournal } from './recovery.js';
import {
  acceptedRules,
  type ChainState,
  Draft,
  type FamilyState,
  referencesTo,
  stateFromRuleset,
  stateText,
  type TableOrder,
  toRuleset,
} from './state.js';
import { validateOperations } from './validate-operations.js';
import { compareFamily, type VerifyDifference, type VerifyResult, verifyResult } from './verify.js';
import {
  type ApplyResult,
  type ChainSummary,
  type ChainView,
  ChainViewCache,
  chainView,
  draftChainLookup,
  outcomeView,
  type RuleView,
  viewAt,
} from './views.js';

export type { ApplyResult, ChainSummary, ChainView, OpResult, RuleDetail } from './views.js';

export interface FirewallServiceOptions {
  readonly executor: Executor;
  /**
   * What `executor.info(families[0])` reports, when the caller has already asked (openKernel
   * does): start() then does not ask again (a process on the way to ready).
   */
  readonly backend?: BackendInfo;
  /**
   * iptables-save output for the first read, already asked for by the caller (main starts the
   * saves before the service's own modules load, to be ready sooner). Used unless start()
   * repaired a change from the journal first (the kernel then changed since they were taken).
   */
  readonly firstSaves?: ReadonlyMap<Family, Promise<string>>;
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
  /**
   * The state directory: a change that commits in several parts (tables, families) is
   * journaled there first, and finished or undone at start after a crash.
   * @default undefined (not journaled)
   */
  readonly stateDir?: string;
  /**
   * How often to verify that the model equals the kernel (ms); 0 disables. Each check reads
   * the whole ruleset (about 0.6 s at 50,000 rules), so keep it off or slow on big rulesets.
   * @default 0
   */
  readonly verifyIntervalMs?: number;
  /** Told about kernel transactions, batches, jobs, commits and re-reads (metrics, persistence, audit). */
  readonly observer?: ServiceObserver;
  /** The other iptables backend, read only (see kernel-sync.ts): its tables are reported, never changed. */
  readonly otherBackend?: { readonly backend: 'legacy' | 'nf_tables'; readonly executor: Executor };
  /** Protected paths: a change that would cut one is refused (guard.ts). @default undefined (no guard) */
  readonly guard?: GuardConfig;
}

/** A packet traced through the ruleset (and the other backend's, which the kernel also filters with). */
export interface TraceReport {
  readonly revision: number;
  /** Traced on the ruleset a proposed transaction would leave, not the current one. */
  readonly proposed: boolean;
  /** The answer for the packet: definite when both backends' answers are. */
  readonly definite: boolean;
  readonly verdict?: Verdict;
  readonly possibleVerdicts: readonly Verdict[];
  /** Through the ruleset this service manages. */
  readonly managed: TraceResult;
  /** Through the other iptables backend's tables, when it has any for the family. */
  readonly other?: { readonly backend: 'legacy' | 'nf_tables'; readonly result: TraceResult };
}

export interface ServiceStatus {
  readonly revision: number;
  readonly families: readonly Family[];
  readonly backend: BackendInfo | undefined;
  /** How external changes are noticed. */
  readonly watch: 'nft-monitor' | 'poll' | 'none';
  /** Why the nft change feed was given up (external changes are then polled), if it was. */
  readonly feedLost?: string;
  /** Rules in the kernel this version cannot read (reads and changes that need them fail), if any. */
  readonly unreadable?: string;
  readonly queueDepth: number;
  readonly batches: number;
  readonly ready: boolean;
  readonly lastExternalChange: string | undefined;
  /** Timings of the last kernel transaction: jobs in it, and milliseconds planning, in the kernel, committing. */
  readonly lastRun?: RunTimings;
  /**
   * Tables in the other iptables backend (legacy next to nf_tables): the kernel filters packets
   * through them too, so what this service manages is not all that decides a packet's fate.
   */
  readonly otherBackend?: OtherBackend;
  /** The last verify: when, and whether the model equalled the kernel. */
  readonly lastVerify?: { readonly time: string; readonly consistent: boolean; readonly differences: number };
}

export class FirewallService implements FirewallApi {
  private readonly executor: Executor;
  readonly families: readonly Family[];
  private readonly model = new ServiceModel();
  private readonly views = new ChainViewCache();
  private readonly queue: CommandQueue<Job | ReadJob, JobResult | unknown>;
  private readonly sync: KernelSync;
  private readonly runner: BatchRunner;
  private readonly baseline: ReadonlyMap<Family, Ruleset> | undefined;
  private readonly baselineTables:
    | ReadonlyMap<Family, ReadonlyMap<TableName, readonly TableSpec[]>>
    | undefined;
  private readonly journal: ChangeJournal | undefined;
  /** Pending confirmations and rule expiries (state dir), and what acts on them in time. */
  private readonly pending: PendingStore | undefined;
  private deferred: DeferredChanges | undefined;
  /** Set once what was due at start (rollbacks, expiries) has run. */
  private caughtUp = false;
  private readonly guard: LockoutGuard | undefined;
  /** Lint of the current model, by the model's state object (reads compute it once per change). */
  private lintCache: { state: unknown; findings: Finding[] } | undefined;
  private backend: BackendInfo | undefined;
  private firstSaves: ReadonlyMap<Family, Promise<string>> | undefined;
  /** What start found of a change in flight at the last stop. */
  recovery: Recovery | undefined;
  private started = false;
  private closing = false;
  private readonly verifyIntervalMs: number;
  private verifyTimer: NodeJS.Timeout | undefined;
  private lastVerify: VerifyResult | undefined;

  constructor(options: FirewallServiceOptions) {
    if (!options || typeof options.executor !== 'object')
      throw new TypeError('Expected `executor` to be an Executor');
    this.executor = options.executor;
    this.backend = options.backend;
    this.firstSaves = options.firstSaves;
    this.families = options.families ?? FAMILIES;
    for (const f of this.families)
      if (!isFamily(f)) throw new TypeError(`Expected \`families\` to hold ipv4 or ipv6, got ${String(f)}`);
    this.baseline = options.baseline;
    this.baselineTables = baselineTables(options.baseline);
    this.journal = options.stateDir === undefined ? undefined : new ChangeJournal(options.stateDir);
    this.pending = options.stateDir === undefined ? undefined : new PendingStore(options.stateDir);
    this.verifyIntervalMs = options.verifyIntervalMs ?? 0;
    this.guard = options.guard ? new LockoutGuard(options.guard, this.families) : undefined;
    this.queue = new CommandQueue<Job | ReadJob, JobResult | unknown>(
      (jobs) => this.work(jobs),
      options.queue,
    );
    this.sync = new KernelSync({
      executor: options.executor,
      feed: options.feed,
      handles: options.handles,
      families: this.families,
      model: this.model,
      pollIntervalMs: options.pollIntervalMs ?? 5000,
      schedule: (job, done) => this.queue.schedule(job, done),
      ...(options.observer ? { observer: options.observer } : {}),
      ...(options.otherBackend ? { other: options.otherBackend } : {}),
      replaced: () => this.views.clear(),
    });
    this.runner = new BatchRunner({
      executor: options.executor,
      handles: options.handles,
      model: this.model,
      sync: this.sync,
      plannerOptions: () => (this.baselineTables ? { baseline: this.baselineTables } : {}),
      feedTimeoutMs: options.feedTimeoutMs ?? 3000,
      ...(this.journal ? { journal: this.journal } : {}),
      ...(options.observer ? { observer: options.observer } : {}),
      ...(this.guard ? { guard: this.guard } : {}),
      ...(this.pending ? { pending: this.pending } : {}),
      canonicalizer: new Canonicalizer({
        executor: options.executor,
        feed: () => this.sync.feed,
        feedTimeoutMs: options.feedTimeoutMs ?? 3000,
      }),
    });
  }

  /** The queue's worker: reads run alone, in order with changes; the rest is the batch runner's. */
  private async work(jobs: readonly (Job | ReadJob)[]) {
    const out: { ok: true; value: unknown }[] | Awaited<ReturnType<BatchRunner['run']>> = [];
    let i = 0;
    while (i < jobs.length) {
      const job = jobs[i] as Job | ReadJob;
      if (job.kind === 'read') {
        try {
          out[i] = { ok: true, value: await job.read() };
        } catch (error) {
          out[i] = { ok: false, error: DomainError.from(error) };
        }
        i++;
        continue;
      }
      let j = i;
      while (j < jobs.length && jobs[j]?.kind !== 'read') j++;
      const results = await this.runner.run(jobs.slice(i, j) as Job[]);
      results.forEach((r, k) => {
        out[i + k] = r;
      });
      i = j;
    }
    return out;
  }

  /** Reads the kernel, starts watching it, and makes the service ready. */
  async start(): Promise<void> {
    if (this.started) return;
    this.backend ??= await this.executor.info(this.families[0] ?? 'ipv4');
    if (this.journal) {
      await ensureDir(dirname(this.journal.path));
      const pending = this.pending;
      await pending?.load();
      this.recovery = await recoverJournal(this.journal, this.executor, this.families, async (after) => {
        if (pending && isAfterCommit(after)) await pending.settle(after);
      });
    }
    // Saves taken before a repair of the journal changed the kernel are not what it holds.
    const repaired = this.recovery !== undefined && this.recovery.outcome !== 'none';
    if (repaired) for (const save of this.firstSaves?.values() ?? []) save.catch(() => undefined);
    await this.sync.start(repaired ? undefined : this.firstSaves);
    this.firstSaves = undefined;
    await this.removeLeftoverProbes();
    this.model.revision = 1;
    this.started = true;
    if (this.pending) {
      // Rollbacks whose deadline passed while the service was down, and expiries, before ready.
      this.deferred = new DeferredChanges(this.pending, (ops, options) => this.apply(ops, options));
      await this.deferred.start();
    }
    this.caughtUp = true;
    if (this.verifyIntervalMs > 0) {
      this.verifyTimer = setInterval(() => {
        this.verify().catch(() => undefined);
      }, this.verifyIntervalMs);
      this.verifyTimer.unref();
    }
  }

  /** Probe chains a crashed process left behind (canonicalize.ts): removed before the service is ready. */
  private async removeLeftoverProbes(): Promise<void> {
    let found = false;
    for (const [family, state] of this.model.state) {
      const builder = new RestoreBuilder();
      for (const [table, t] of state.tables)
        for (const name of t.chains.keys())
          if (name.startsWith(PROBE_PREFIX)) builder.flush(table, name).deleteChain(table, name);
      if (builder.isEmpty) continue;
      found = true;
      await this.executor.restore(family, builder.toString(), { noflush: true });
    }
    if (found)
      for (const family of this.families) this.model.state.set(family, await this.sync.readKernel(family));
  }

  /** Stops accepting changes, finishes queued ones, stops watching. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.verifyTimer) clearInterval(this.verifyTimer);
    await this.deferred?.close();
    await this.sync.close().catch(() => undefined);
    await this.queue.close();
    await this.runner.settled();
    this.executor.close?.();
    this.model.hub.clear();
  }

  get revision(): number {
    return this.model.revision;
  }

  get ready(): boolean {
    return this.started && this.caughtUp && !this.closing;
  }

  subscribe(listener: ChangeListener): () => void {
    return this.model.hub.subscribe(listener);
  }

  status(): ServiceStatus {
    const feedLost = this.sync.feedLost;
    const unreadable = this.sync.unreadable;
    const otherBackend = this.sync.otherBackend;
    return {
      revision: this.model.revision,
      families: this.families,
      backend: this.backend,
      watch: this.sync.watch,
      ...(feedLost ? { feedLost } : {}),
      ...(unreadable ? { unreadable } : {}),
      ...(otherBackend ? { otherBackend } : {}),
      queueDepth: this.queue.depth,
      batches: this.queue.batchCount,
      ready: this.ready,
      lastExternalChange: this.model.lastExternal,
      ...(this.runner.lastRun ? { lastRun: this.runner.lastRun } : {}),
      ...(this.lastVerify
        ? {
            lastVerify: {
              time: this.lastVerify.time,
              consistent: this.lastVerify.consistent,
              differences: this.lastVerify.differences.length,
            },
          }
        : {}),
    };
  }

  /**
   * Compares the model with a fresh read of the kernel (as a queue job, so no change of ours
   * is half way). A difference is reported, published as an event (`ruleset.diverged`), and
   * the model is re-read.
   */
  async verify(): Promise<VerifyResult> {
    this.assertStarted();
    return (await this.queue.enqueue({
      kind: 'read',
      read: async () => {
        const t0 = performance.now();
        const differences: VerifyDifference[] = [];
        for (const family of this.families)
          differences.push(
            ...compareFamily(family, this.model.state.get(family), await this.sync.readRules(family)),
          );
        const result = verifyResult(this.model.revision, differences, t0);
        this.lastVerify = result;
        if (!result.consistent) {
          this.model.hub.emit({
            revision: this.model.revision,
            origin: 'external',
            client: 'verify',
            time: result.time,
            changes: result.differences.map((d) => ({
              type: 'ruleset.diverged',
              family: d.family,
              table: d.table,
              chain: d.chain,
              detail: d.kind,
            })),
          });
          this.sync.requestReload('resync');
        }
        return result;
      },
    })) as VerifyResult;
  }

  // ---------------------------------------------------------------- reads

  /** The model's accepted rules of a table by text, for validating declarative replaces. */
  private readonly knownRules = (family: Family, table: TableName) =>
    acceptedRules(this.model.state.get(family), table);

  private familyState(family: Family): FamilyState {
    this.assertStarted();
    if (!isFamily(family))
      throw new DomainError('invalid_argument', 'family must be ipv4 or ipv6', { field: 'family' });
    return this.model.family(family);
  }

  private chainState(family: Family, table: TableName, chain: string): ChainState {
    const c = this.tableState(family, table).get(chain);
    if (c) return c;
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
    return this.familyState(family).tables.get(table)?.chains ?? emptyChains(table);
  }

  /** Tables in the order this backend's iptables-save prints them (see TableOrder). */
  private get tableOrder(): TableOrder {
    return this.backend?.backend === 'legacy' ? 'kernel' : 'nft';
  }

  /** The whole ruleset of a family (as the model; ids via getChain), tables as iptables-save orders them. */
  getRuleset(family: Family): { revision: number; ruleset: Ruleset } {
    return { revision: this.model.revision, ruleset: toRuleset(this.familyState(family), this.tableOrder) };
  }

  /**
   * The whole ruleset of a family as iptables-save text (from the model, not the kernel):
   * equal to what iptables-save prints, comment lines and counters aside.
   */
  getRulesetText(family: Family): { revision: number; text: string } {
    return {
      revision: this.model.revision,
      text: stateText(this.familyState(family), this.tableOrder),
    };
  }

  /** The other backend's ruleset of a family (read only; see status().otherBackend), if it has tables. */
  getOtherRuleset(family: Family): Ruleset | undefined {
    this.familyState(family);
    return this.sync.otherRuleset.get(family);
  }

  /** The other backend's tables as views (rules with ids and positions) and as iptables-save text. */
  getOtherRulesetView(family: Family): { tables: { name: TableName; chains: ChainView[] }[]; text: string } {
    const rs = this.getOtherRuleset(family);
    if (!rs) throw new DomainError('not_found', `the other iptables backend has no tables for ${family}`);
    const state = stateFromRuleset(rs);
    return {
      tables: [...state.tables.values()].map((t) => ({
        name: t.name,
        chains: [...t.chains.values()].map((c) => chainView(t.name, c)),
      })),
      text: writeRestore(rs),
    };
  }

  /** A table's chains with their rules. Tables not yet used by anyone read as empty built-ins. */
  getTable(family: Family, table: TableName): { revision: number; chains: ChainView[] } {
    const chains = this.tableState(family, table);
    return {
      revision: this.model.revision,
      chains: [...chains.values()].map((c) => chainView(table, c, this.expiry(family, table, c.name))),
    };
  }

  /** One chain, rules in order with id and position; with `counters`, read live from the kernel (as a queue job). */
  async getChain(
    family: Family,
    table: TableName,
    chain: string,
    options: { counters?: boolean } = {},
  ): Promise<{ revision: number; chain: ChainView }> {
    const first = this.chainState(family, table, chain);
    if (!options.counters) {
      const expiry = this.expiry(family, table, chain);
      return {
        revision: this.model.revision,
        chain: expiry ? chainView(table, first, expiry) : this.views.get(table, first),
      };
    }
    return (await this.queue.enqueue({
      kind: 'read',
      read: () => this.readCounters(family, table, chain),
    })) as { revision: number; chain: ChainView };
  }

  private async readCounters(
    family: Family,
    table: TableName,
    chain: string,
  ): Promise<{ revision: number; chain: ChainView }> {
    const c = this.chainState(family, table, chain);
    const revision = this.model.revision;
    const live = parseSave(await this.executor.save(family, { table, counters: true }), family, {
      counters: true,
    });
    const kc = live.tables.find((t) => t.name === table)?.chains.find((x) => x.name === chain);
    const view = chainView(table, c, this.expiry(family, table, chain));
    const sameRules =
      kc !== undefined &&
      kc.rules.length === c.entries.length &&
      kc.rules.every((r, i) => ruleText(r) === c.entries[i]?.text);
    if (!sameRules) {
      this.sync.requestReload('resync');
      throw new DomainError(
        'aborted',
        'the chain changed in the kernel while its counters were read; retry',
        {
          field: 'chain',
        },
      );
    }
    return {
      revision,
      chain: {
        ...view,
        ...(kc.counters ? { counters: kc.counters as Counters } : {}),
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
      revision: this.model.revision,
      chains: [...chains.values()].map((c) => ({
        name: c.name,
        builtin: !!BUILTINS[table]?.includes(c.name),
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
    const valid = validateOperations(ops, this.families, this.knownRules);
    if (options.confirmWithin !== undefined) {
      checkUint(options.confirmWithin, 'confirmWithin', 1, MAX_CONFIRM_SECONDS);
      if (!this.pending) throw noStateDir('confirmWithin');
    }
    if (!this.pending && valid.some((op) => 'expiresAt' in op && op.expiresAt !== undefined))
      throw noStateDir('ttlSeconds/expiresAt');
    if (options.dryRun) {
      // Queued like a read: untyped rules take the kernel's form, and the plan sees pending changes.
      return (await this.queue.enqueue(
        { kind: 'read', read: async () => this.dryRun(await this.runner.canonicalOps(valid), options) },
        options.signal,
      )) as ApplyResult;
    }
    return (await this.queue.enqueue(
      { kind: 'apply', ops: valid, options, enqueuedAt: performance.now() },
      options.signal,
    )) as ApplyResult;
  }

  /** When a rule of the chain expires, by its text (undefined: no rule there expires). */
  private expiry(
    family: Family,
    table: TableName,
    chain: string,
  ): ((text: string) => string | undefined) | undefined {
    const pending = this.pending;
    if (!pending || pending.expiries.size === 0) return undefined;
    return (text) => pending.expiryOf(family, table, chain, text);
  }

  /**
   * A preset (src/presets): expanded into an ordinary transaction and applied with `options`
   * (dry run, confirmWithin, allowLockout as for any change). Idempotent: a second run changes
   * nothing. The result holds the operations it expanded into.
   */
  async preset(
    request: PresetRequest,
    options: ApplyOptions = {},
  ): Promise<ApplyResult & { operations: Operation[] }> {
    this.assertStarted();
    const ctx: PresetContext = {
      families: this.families,
      policy: (family, chain) =>
        this.model.state.get(family)?.tables.get('filter')?.chains.get(chain)?.policy,
    };
    const operations =
      request.kind === 'rateLimit' ? rateLimitOps(request.params, ctx) : hardenOps(request.params, ctx);
    return { ...(await this.apply(operations, options)), operations };
  }

  /** Changes applied with confirmWithin that wait for a confirmation, soonest deadline first. */
  listConfirmations(): ConfirmationRecord[] {
    this.assertStarted();
    return this.deferredChanges().list();
  }

  /** Confirms a commit-confirmed change: it stays. not_found when it is no longer pending. */
  async confirm(id: string): Promise<ConfirmationRecord> {
    this.assertStarted();
    return this.deferredChanges().confirm(checkConfirmationId(id));
  }

  /** Gives a pending change `seconds` more (from now) before it is rolled back. */
  async extendConfirmation(id: string, seconds: number): Promise<ConfirmationRecord> {
    this.assertStarted();
    checkUint(seconds, 'confirmWithin', 1, MAX_CONFIRM_SECONDS);
    return this.deferredChanges().extend(checkConfirmationId(id), seconds);
  }

  /** Rolls a pending change back now (its own diff; see deferred.ts). */
  async cancelConfirmation(id: string): Promise<RollbackReport> {
    this.assertStarted();
    return this.deferredChanges().cancel(checkConfirmationId(id));
  }

  private deferredChanges(): DeferredChanges {
    if (!this.deferred) throw noStateDir('confirmWithin');
    return this.deferred;
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
    const revision = this.model.revision;
    if (options.expectedRevision !== undefined && options.expectedRevision !== revision)
      throw staleRevision(options.expectedRevision, revision);
    const draft = new Draft(this.model.state);
    const plan = new Planner(draft, {
      useHandles: false,
      ...(this.baselineTables ? { baseline: this.baselineTables } : {}),
    }).plan(ops);
    const restoreText: Partial<Record<Family, string>> = {};
    for (const family of FAMILIES) {
      const r = renderRestore(
        plan.commands.filter((c) => c.family === family).map((command) => ({ command, owner: 0 })),
      );
      if (r.text) restoreText[family] = r.text;
    }
    const changed = plan.commands.length > 0;
    const after = changed ? draft.preview() : this.model.state;
    const beforeRs = this.rulesets(this.model.state);
    const afterRs = changed ? this.rulesets(after) : beforeRs;
    const lockouts =
      this.guard && changed
        ? this.guard.check(
            beforeRs,
            afterRs,
            this.guard.paths([beforeRs, afterRs], options.caller ? [options.caller] : []),
          )
        : [];
    const known = new Set(this.lint().map(findingKey));
    const findings = changed ? lint(afterRs).filter((f) => !known.has(findingKey(f))) : [];
    return {
      dryRun: true,
      revision: changed ? revision + 1 : revision,
      results: plan.outcomes.map((o) => outcomeView(o, draftChainLookup(draft))),
      changes: plan.changes.map(publicChange),
      restoreText,
      lockouts,
      findings,
    };
  }

  /** The model of every family as rulesets (what the simulator and the linter read). */
  private rulesets(state: ReadonlyMap<Family, FamilyState>): Map<Family, Ruleset> {
    return new Map([...state].map(([f, st]) => [f, toRuleset(st, this.tableOrder)] as const));
  }

  /** Lint findings of the current ruleset (every family), computed once per change. */
  lint(): Finding[] {
    this.assertStarted();
    const state = this.model.state;
    if (this.lintCache?.state !== state) this.lintCache = { state, findings: lint(this.rulesets(state)) };
    return this.lintCache.findings;
  }

  /**
   * What happens to a packet (validated here: invalid_argument naming the field): traced through
   * the current ruleset, or through the one a proposed transaction would leave (planned as a dry
   * run, in order with queued changes), and through the other backend's tables when there are any.
   */
  async trace(packet: unknown, operations?: readonly Operation[]): Promise<TraceReport> {
    this.assertStarted();
    const p = packetOf(packet);
    if (!this.families.includes(p.family))
      throw new DomainError('invalid_argument', `family ${p.family} is not managed by this service`, {
        field: 'packet.family',
      });
    let state: ReadonlyMap<Family, FamilyState> = this.model.state;
    let revision = this.model.revision;
    if (operations !== undefined) {
      const valid = validateOperations(operations, this.families, this.knownRules);
      const planned = (await this.queue.enqueue({
        kind: 'read',
        read: async () => {
          const ops = await this.runner.canonicalOps(valid);
          const draft = new Draft(this.model.state);
          new Planner(draft, {
            useHandles: false,
            ...(this.baselineTables ? { baseline: this.baselineTables } : {}),
          }).plan(ops);
          return { state: draft.preview(), revision: this.model.revision };
        },
      })) as { state: ReadonlyMap<Family, FamilyState>; revision: number };
      state = planned.state;
      revision = planned.revision;
    }
    const managed = tracePacket(this.rulesets(state), p);
    const otherRs = this.sync.otherRuleset.get(p.family);
    const otherBackend = this.sync.otherBackend;
    const other =
      otherRs && otherBackend
        ? { backend: otherBackend.backend, result: tracePacket(otherRs, p) }
        : undefined;
    return {
      revision,
      proposed: operations !== undefined,
      managed,
      ...(other ? { other } : {}),
      ...combine(managed, other?.result),
    };
  }

  private assertStarted(): void {
    if (!this.started)
      throw new DomainError(
        'unavailable',
        'the service is starting: the firewall has not been read yet; retry shortly',
      );
  }
}

export type PresetRequest =
  | { readonly kind: 'rateLimit'; readonly params: RateLimitParams }
  | { readonly kind: 'harden'; readonly params: HardenParams };

/** Longest commit-confirmed window: one day. */
export const MAX_CONFIRM_SECONDS = 86_400;

function checkConfirmationId(id: unknown): string {
  if (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id))
    throw new DomainError('invalid_argument', 'a confirmation id is 16 lowercase hex digits', {
      field: 'id',
    });
  return id;
}

function noStateDir(what: string): DomainError {
  return new DomainError(
    'failed_precondition',
    `${what} needs a state directory (--state-dir) to survive a restart; this service has none`,
    { field: what.split('/')[0] ?? what },
  );
}

/** The two backends' answers as one: a packet is accepted only when both accept it. */
function combine(
  managed: TraceResult,
  other: TraceResult | undefined,
): { definite: boolean; verdict?: Verdict; possibleVerdicts: readonly Verdict[] } {
  if (!other)
    return {
      definite: managed.definite,
      ...(managed.definite ? { verdict: managed.verdict } : {}),
      possibleVerdicts: managed.possibleVerdicts,
    };
  const possible = new Set<Verdict>();
  for (const a of managed.possibleVerdicts)
    for (const b of other.possibleVerdicts) possible.add(a === 'ACCEPT' ? b : a);
  const list = [...possible];
  return {
    definite: list.length === 1,
    ...(list.length === 1 ? { verdict: list[0] as Verdict } : {}),
    possibleVerdicts: list,
  };
}

/** A packet description validated, its fields named as the request names them (`packet.hook`). */
function packetOf(input: unknown): Packet {
  try {
    return normalizePacket(input);
  } catch (error) {
    const e = DomainError.from(error);
    if (e.code !== 'invalid_argument') throw e;
    const field = e.field === undefined || e.field === 'packet' ? 'packet' : `packet.${e.field}`;
    throw new DomainError('invalid_argument', e.message, { field });
  }
}

function findingKey(f: Finding): string {
  return `${f.code} ${f.family} ${f.table} ${f.chain} ${f.rules.map((r) => r.ruleText).join('|')}`;
}

/** A read that must run in order with changes (it calls the executor). */
interface ReadJob {
  readonly kind: 'read';
  readonly read: () => Promise<unknown>;
}

const BUILTINS: Readonly<Record<TableName, readonly string[]>> = Object.fromEntries(
  TABLES.map((t) => [t, [...emptyChains(t).keys()]]),
) as unknown as Readonly<Record<TableName, readonly string[]>>;

/** The baseline ruleset as table specs for the planner's reset. */
function baselineTables(
  baseline: ReadonlyMap<Family, Ruleset> | undefined,
): ReadonlyMap<Family, ReadonlyMap<TableName, readonly TableSpec[]>> | undefined {
  if (!baseline) return undefined;
  const out = new Map<Family, Map<TableName, TableSpec[]>>();
  for (const [family, rs] of baseline) {
    out.set(
      family,
      new Map(
        rs.tables.map((t) => [
          t.name,
          t.chains.map((c) => ({ name: c.name, ...(c.policy ? { policy: c.policy } : {}), rules: c.rules })),
        ]),
      ),
    );
  }
  return out;
}
