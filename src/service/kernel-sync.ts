/**
 * Kernel sync: reading the kernel into the model, and noticing when someone
 * else changed it.
 *
 * - On nf_tables with `nft` the change feed (`nft monitor`) reports every
 *   commit with its process id; commits that are not ours make the service
 *   re-read the kernel. Rule handles are listed with the save, verified (see
 *   readKernel), so deletes can go by handle.
 * - Without a feed (legacy backend, no nft), or once the feed is lost (the
 *   monitor died or dropped events), a periodic check re-reads the kernel and
 *   compares it with the model. Losing the feed is visible: status says
 *   `poll` and why, and an event (`ruleset.reloaded`) is emitted.
 * - Every re-read runs as a queue job (see reload), never concurrently with a
 *   change; what changed becomes an event with origin `external`.
 * - Start-up is short (ready in under 2 s at 50,000 rules): the model is read
 *   with iptables-save alone while the monitor starts beside it (it reads the
 *   whole ruleset itself before it can report anything, about as long as the
 *   save). Once the feed is live, a `start` re-read learns the handles and
 *   catches any change made in between; until then deletes go by spec.
 */
import { createHash } from 'node:crypto';
import { type Family, TABLES, type TableName } from '../domain/family.js';
import type { Ruleset } from '../domain/model.js';
import type { ChangeFeed, Executor, Generation, RuleHandles } from '../exec/executor.js';
import { parseSave, scanSave } from '../iptables/save-parser.js';
import type { ChangeEventChange } from './events.js';
import { BUILTIN_SET, type ServiceModel } from './model.js';
import { notify, type ServiceObserver } from './observer.js';
import {
  type ChainState,
  checkReadable,
  type FamilyState,
  type RuleEntry,
  stateFromSave,
  uncheckedEntries,
} from './state.js';

export type ReloadReason = 'external' | 'poll' | 'resync' | 'demand' | 'feed-lost' | 'start';

export interface ReloadJob {
  readonly kind: 'reload';
  readonly families: readonly Family[];
  readonly reason: ReloadReason;
}

export interface KernelSyncOptions {
  readonly executor: Executor;
  readonly feed: ChangeFeed | undefined;
  readonly handles: RuleHandles | undefined;
  readonly families: readonly Family[];
  readonly model: ServiceModel;
  /** Without a feed: how often to compare the kernel with the model (ms); 0 disables. */
  readonly pollIntervalMs: number;
  /** Puts a reload job on the queue; false when the queue refused it (full or closing). */
  readonly schedule: (job: ReloadJob, done: () => void) => boolean;
  readonly observer?: ServiceObserver;
  /** The other iptables backend (legacy next to nf_tables), read only. */
  readonly other?: { readonly backend: 'legacy' | 'nf_tables'; readonly executor: Executor };
  /**
   * A read of the kernel replaced the model: what was kept of the earlier one's chains (views)
   * must go, or it keeps that read (its entries cut from a whole iptables-save output) alive.
   */
  readonly replaced?: () => void;
}

/** Tables of the other iptables backend: the kernel filters with them too. */
export interface OtherBackend {
  readonly backend: 'legacy' | 'nf_tables';
  readonly tables: readonly {
    readonly family: Family;
    readonly table: TableName;
    readonly rules: number;
    /** Built-in chains whose policy is not ACCEPT. */
    readonly dropPolicies: readonly string[];
  }[];
  /** Whether any of them can change a packet's fate (a rule, or a policy other than ACCEPT). */
  readonly filtering: boolean;
}

/** How often to poll once the feed is lost when polling was not configured (ms). */
const FALLBACK_POLL_MS = 5000;
/** Changes wait for the starting feed at most this long after the start-up read (ms), see beforeChange. */
const FEED_HOLD_MS = 5000;
/** The background readability check: at most this long at a time (ms), then a pause (ms). */
const CHECK_SLICE_MS = 4;
const CHECK_PAUSE_MS = 16;
/** ...and how long after a read the check begins (ms). */
const CHECK_FIRST_MS = 1000;

export class KernelSync {
  private readonly o: KernelSyncOptions;
  private reloadQueued = false;
  private closing = false;
  private unsubscribeFeed: (() => void) | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Why the feed was given up, once it was. */
  private lost: string | undefined;
  /** The feed has started (the monitor reports every commit from now on). */
  private live = false;
  /** Polling only until the feed is live (see start). */
  private pollingUntilLive = false;
  /** External generations the feed reported so far (handle verification compares two counts). */
  private externalSeen = 0;
  private otherTimer: NodeJS.Timeout | undefined;
  private otherRulesets = new Map<Family, Ruleset>();
  private otherSummary = '';
  /** Rules read from the kernel and not yet parsed once (see checkSoon), and how far the pass is. */
  private unchecked: RuleEntry[] = [];
  private checkedUpTo = 0;
  private unreadableInPass: string[] = [];
  private checking: NodeJS.Timeout | undefined;
  private unreadableNow: string | undefined;
  /** Settles once the feed is live or given up, or the hold ran out (see beforeChange). */
  private feedSettled: Promise<void> = Promise.resolve();
  private settleFeed: () => void = () => {};
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(options: KernelSyncOptions) {
    this.o = options;
  }

  /** The families the service manages (what a re-read reads). */
  get families(): readonly Family[] {
    return this.o.families;
  }

  /** Rules in the kernel this version cannot read (status shows it), if the last check found any. */
  get unreadable(): string | undefined {
    return this.unreadableNow;
  }

  /** The change feed while it can be trusted. */
  get feed(): ChangeFeed | undefined {
    return this.live && this.lost === undefined ? this.o.feed : undefined;
  }

  /** Whether deletes may go by handle and handles are learned: a live feed and the handle lister. */
  get useHandles(): boolean {
    return this.feed !== undefined && this.o.handles !== undefined;
  }

  /** How external changes are noticed now. */
  get watch(): 'nft-monitor' | 'poll' | 'none' {
    if (this.feed) return 'nft-monitor';
    return this.pollTimer ? 'poll' : 'none';
  }

  /** Why the nft feed was given up (status shows it), if it was. */
  get feedLost(): string | undefined {
    return this.lost;
  }

  /**
   * Starts the feed (or polling) and reads every managed family into the model: from `saves`
   * (iptables-save output already asked for) where given.
   */
  async start(saves?: ReadonlyMap<Family, Promise<string>>): Promise<void> {
    const feed = this.o.feed;
    // The monitor reads the whole ruleset before it reports anything: let it do so beside ours,
    // before any change of ours lands (every commit during that read makes nft monitor start
    // it over: started after our saves, it stayed un-live for as long as clients kept writing).
    if (feed) {
      this.feedSettled = new Promise<void>((r) => {
        this.settleFeed = r;
      });
      this.unsubscribeFeed = feed.onExternal((g) => this.onExternal(g));
      feed.start().then(
        () => {
          this.settleFeed();
          if (this.closing) return;
          this.live = true;
          if (this.pollingUntilLive) this.stopPolling();
          // Handles, and whatever changed while the feed was not yet listening.
          this.requestReload('start', true);
        },
        (err: unknown) =>
          this.giveUpFeed(
            `the nft monitor could not be started (${err instanceof Error ? err.message : String(err)}); external changes are polled`,
          ),
      );
    }
    // The families side by side: one's save runs while the other is parsed.
    const began = performance.now();
    // A loop, not a closure over `saves`: the feed keeps a closure made in this function (its
    // listener), and with it whatever of this function's variables closures use.
    const reading: Promise<FamilyState>[] = [];
    for (const family of this.o.families) reading.push(this.readKernel(family, saves?.get(family)));
    const reads = Promise.all(reading);
    // The other backend is read beside ours (it is not part of the model).
    const other = this.readOther();
    const [states] = await Promise.all([reads, other]);
    for (const [i, family] of this.o.families.entries())
      this.o.model.state.set(family, states[i] as FamilyState);
    this.o.replaced?.();
    this.checkSoon();
    // The timers are made in methods of their own: a closure made here shares this function's
    // context, and one over `states` or `saves` would keep the first read (at 500k rules its
    // entries and the 70 MB save text they slice) for as long as the timer lives.
    if (!feed) this.startPolling(this.o.pollIntervalMs);
    else if (!this.live && this.lost === undefined) this.holdUntilLive(performance.now() - began);
    if (feed && this.o.other) this.watchOther();
  }

  /**
   * Changes wait for the starting monitor (beforeChange), but not long. Until it is live nothing
   * reports external changes, and nft monitor starts its read over at every commit, so under
   * steady writes that can take up to its start timeout. Poll meanwhile, but at most a tenth of
   * the time (`readMs`: what the start-up read took): every poll is a whole read, and at 500k
   * rules polls every 5 s kept the monitor from going live and the queue busy for a minute.
   */
  private holdUntilLive(readMs: number): void {
    this.holdTimer = setTimeout(() => this.settleFeed(), FEED_HOLD_MS);
    this.holdTimer.unref();
    const interval = Math.max(
      this.o.pollIntervalMs > 0 ? this.o.pollIntervalMs : FALLBACK_POLL_MS,
      Math.ceil(10 * readMs),
    );
    this.startPolling(interval);
    this.pollingUntilLive = this.pollTimer !== undefined;
  }

  /** The nft feed does not see the legacy backend: look at it on a timer (a cheap read). */
  private watchOther(): void {
    this.otherTimer = setInterval(
      () => void this.readOther().catch(() => undefined),
      this.o.pollIntervalMs > 0 ? this.o.pollIntervalMs : FALLBACK_POLL_MS,
    );
    this.otherTimer.unref();
  }

  /**
   * What a change waits for before it is applied: nothing, except while the nft monitor is
   * starting. The monitor reads the whole ruleset before it reports anything and starts that
   * read over at every commit, so changes applied from the moment the service is ready (it is
   * ready before the monitor at 50k rules: about 1.4 s of the monitor's read is left) could keep
   * it from ever going live, leaving external changes to polls and deletes without handles.
   * So the first changes wait until it is live or given up, at most 5 s after ready (reads are
   * not held). No longer: its read grows faster than the ruleset (on this machine 1.3 s with
   * 500 chains of 100 rules, 28 s with 2,000, 76 s with 5,000), so past some size waiting only
   * delays changes.
   */
  beforeChange(): Promise<void> {
    return this.feedSettled;
  }

  /** The other backend's tables, when it has any. */
  get otherBackend(): OtherBackend | undefined {
    if (!this.o.other || this.otherRulesets.size === 0) return undefined;
    const tables = [...this.otherRulesets].flatMap(([family, rs]) =>
      rs.tables.map((t) => ({
        family,
        table: t.name,
        rules: t.chains.reduce((n, c) => n + c.rules.length, 0),
        dropPolicies: t.chains
          .filter((c) => c.policy !== undefined && c.policy !== 'ACCEPT')
          .map((c) => c.name),
      })),
    );
    return {
      backend: this.o.other.backend,
      tables,
      filtering: tables.some((t) => t.rules > 0 || t.dropPolicies.length > 0),
    };
  }

  /** The other backend's rulesets (read only: the simulator must see what else filters). */
  get otherRuleset(): ReadonlyMap<Family, Ruleset> {
    return this.otherRulesets;
  }

  /**
   * Reads the other backend; when what it holds changed, says so with a `backend.mixed` event
   * (the model itself does not change). Its own executor: it never touches the managed backend.
   */
  async readOther(): Promise<void> {
    const other = this.o.other;
    if (!other || this.closing) return;
    const next = new Map<Family, Ruleset>();
    for (const family of this.o.families) {
      try {
        const rs = parseSave(await other.executor.save(family), family);
        if (rs.tables.length > 0) next.set(family, rs);
      } catch {
        // Not readable (no modules, no permission): nothing to see there.
      }
    }
    this.otherRulesets = next;
    const summary = JSON.stringify(this.otherBackend ?? null);
    if (summary === this.otherSummary) return;
    const before = this.otherSummary;
    this.otherSummary = summary;
    const o = this.otherBackend;
    if (!o && before === '') return;
    const model = this.o.model;
    model.hub.emit({
      revision: model.revision,
      origin: 'external',
      client: 'other-backend',
      time: new Date().toISOString(),
      changes: o
        ? o.tables.map((t) => ({
            type: 'backend.mixed' as const,
            family: t.family,
            table: t.table,
            detail: `${o.backend} table ${t.table} with ${t.rules} rule(s)${t.dropPolicies.length ? `, DROP policy on ${t.dropPolicies.join(', ')}` : ''}: the kernel filters with it too`,
          }))
        : this.o.families.map((family) => ({
            type: 'backend.mixed' as const,
            family,
            detail: `the ${other.backend} tables are gone`,
          })),
    });
  }

  /**
   * Rules read from the kernel are parsed when first looked at (state.ts). So that one this
   * version cannot read is reported soon after the read, not when someone first asks for it,
   * every rule the model has never parsed is parsed once in the background, 4 ms at a time with
   * 16 ms pauses (a fifth of a core: at 50,000 rules about a second of CPU, spread over some
   * 5 s after start; a re-read adds only its new rules), without keeping the result. What fails
   * is logged and shown in status.
   */
  private checkSoon(): void {
    this.unchecked = [...this.o.model.state.values()].flatMap(uncheckedEntries);
    this.checkedUpTo = 0;
    this.unreadableInPass = [];
    if (this.unchecked.length === 0) {
      this.unreadableNow = undefined;
      return;
    }
    if (this.checking === undefined) {
      // Not before the service is ready and listening (about 0.1-0.3 s after the read).
      this.checking = setTimeout(() => this.checkSlice(), CHECK_FIRST_MS);
      this.checking.unref();
    }
  }

  private checkSlice(): void {
    this.checking = undefined;
    if (this.closing) return;
    const end = performance.now() + CHECK_SLICE_MS;
    const todo = this.unchecked;
    while (this.checkedUpTo < todo.length && performance.now() < end) {
      try {
        checkReadable(todo[this.checkedUpTo] as RuleEntry);
      } catch (e) {
        this.unreadableInPass.push((e as Error).message);
      }
      this.checkedUpTo++;
    }
    if (this.checkedUpTo < todo.length) {
      this.checking = setTimeout(() => this.checkSlice(), CHECK_PAUSE_MS);
      this.checking.unref();
      return;
    }
    const found = this.unreadableInPass;
    this.unchecked = [];
    this.unreadableInPass = [];
    const before = this.unreadableNow;
    this.unreadableNow =
      found.length === 0
        ? undefined
        : `${found.length} rule(s) in the kernel cannot be read by this version of the service (reads and changes that need them fail); the first: ${found[0]}`;
    if (this.unreadableNow !== undefined && this.unreadableNow !== before)
      notify(this.o.observer, 'unreadable', { count: found.length, first: found[0] as string });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.settleFeed();
    if (this.checking) clearTimeout(this.checking);
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.otherTimer) clearInterval(this.otherTimer);
    this.pollTimer = undefined;
    this.unsubscribeFeed?.();
    await this.o.feed?.close();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.pollingUntilLive = false;
  }

  private startPolling(intervalMs: number): void {
    if (intervalMs <= 0 || this.pollTimer) return;
    this.pollTimer = setInterval(() => this.requestReload('poll'), intervalMs);
    this.pollTimer.unref();
  }

  private onExternal(generation: Generation): void {
    this.externalSeen++;
    // The feed reports its own loss in band: a generation with negative otherEvents.
    if (generation.otherEvents < 0) {
      this.giveUpFeed('the nft monitor stopped or dropped events; external changes are now polled');
      return;
    }
    this.requestReload('external');
  }

  /** The feed cannot be trusted any more: poll instead, and re-read everything now. */
  private giveUpFeed(why: string): void {
    this.settleFeed();
    if (this.lost !== undefined || this.closing) return;
    this.lost = why;
    this.unsubscribeFeed?.();
    // From now on at the configured interval, not the start-up one.
    if (this.pollingUntilLive) this.stopPolling();
    this.startPolling(this.o.pollIntervalMs > 0 ? this.o.pollIntervalMs : FALLBACK_POLL_MS);
    this.requestReload('feed-lost', true);
  }

  /** Queues a re-read of every managed family, once (a pending one covers later requests). */
  requestReload(reason: ReloadReason, force = false): void {
    if (this.closing || (this.reloadQueued && !force)) return;
    this.reloadQueued = true;
    const ok = this.o.schedule({ kind: 'reload', families: this.o.families, reason }, () => {
      if (reason === 'poll') this.reloadQueued = false;
    });
    if (!ok) this.reloadQueued = false;
  }

  /** A re-read, run as a queue job: the model becomes what the kernel holds; what changed is an event. */
  async reload(
    families: readonly Family[],
    reason: ReloadReason,
  ): Promise<{ revision: number; changed: boolean }> {
    this.reloadQueued = false;
    const model = this.o.model;
    const changes: ChangeEventChange[] = [];
    const next = new Map(model.state);
    for (const family of families) {
      const fresh = await this.readKernel(family);
      changes.push(...diffStates(family, model.state.get(family), fresh));
      next.set(family, fresh);
    }
    model.state = next;
    this.o.replaced?.();
    this.checkSoon();
    if (reason === 'feed-lost')
      for (const family of families) changes.push({ type: 'ruleset.reloaded', family });
    await this.readOther();
    notify(this.o.observer, 'reread', { reason, changed: changes.length > 0 });
    if (changes.length === 0) return { revision: model.revision, changed: false };
    model.revision++;
    model.lastExternal = new Date().toISOString();
    model.hub.emit({
      revision: model.revision,
      origin: 'external',
      client: reason,
      time: model.lastExternal,
      changes,
    });
    return { revision: model.revision, changed: true };
  }

  /** Reads one family's rules from the kernel, without handles (for verify). */
  async readRules(family: Family): Promise<FamilyState> {
    return stateFromSave(family, scanSave(await this.o.executor.save(family), family));
  }

  /**
   * Reads one family from the kernel (with verified rule handles when they are used), or from
   * `save`, iptables-save output already asked for (then without handles).
   */
  async readKernel(family: Family, save?: Promise<string>): Promise<FamilyState> {
    // Rules are kept as the text iptables-save printed (parsed when first looked at), and what
    // the model holds is reused (most of a re-read is unchanged rules).
    const previous = this.o.model.state.get(family);
    if (save || !this.useHandles)
      return stateFromSave(
        family,
        scanSave(await (save ?? this.o.executor.save(family)), family),
        undefined,
        previous,
      );
    if (this.o.feed?.barrier)
      return this.readKernelWithBarrier(family, this.o.feed.barrier.bind(this.o.feed), previous);
    // Rules (iptables-save) and handles (nft list) come from separate reads, and another process
    // may commit in between — e.g. one restore inserting a rule and deleting another, which keeps
    // the count and shifts every handle by one: a delete by handle would then remove the wrong
    // rule. So the handles are listed before and after the save, and a chain's handles are kept
    // only when both listings agree and match its rule count: handles are never reused, so any
    // rule added or removed in between would show. Chains that never agree go without handles
    // (their deletes go by spec). Waiting for the feed to report the commit is not enough: it
    // may report it only after the listing.
    const tables = new Set<TableName>(previous?.tables.keys() ?? TABLES);
    for (let attempt = 1; ; attempt++) {
      const before = await this.listHandles(family, tables);
      const saved = scanSave(await this.o.executor.save(family), family);
      const after = await this.listHandles(family, new Set(saved.map((t) => t.name)));
      const verified = new Map<TableName, Map<string, readonly number[]>>();
      let complete = true;
      for (const t of saved) {
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
      if (complete || attempt >= 3) return stateFromSave(family, saved, verified, previous);
    }
  }

  /**
   * Rules and handles read side by side, then proven consistent with the feed: a barrier (a
   * marker commit coming back through the monitor) after both reads, with no external commit
   * reported from before the reads began until the barrier, means nobody committed in between,
   * so both reads saw the same ruleset. One listing instead of two, and in parallel with the
   * save. A chain whose handle count differs from its rule count goes without handles.
   */
  private async readKernelWithBarrier(
    family: Family,
    barrier: () => Promise<void>,
    previous: FamilyState | undefined,
  ): Promise<FamilyState> {
    const tables = new Set<TableName>(previous?.tables.keys() ?? TABLES);
    for (let attempt = 1; ; attempt++) {
      const seen = this.externalSeen;
      const [handles, text] = await Promise.all([
        this.listHandles(family, tables),
        this.o.executor.save(family),
      ]);
      const saved = scanSave(text, family);
      let quiet = false;
      try {
        await barrier();
        quiet = this.externalSeen === seen;
      } catch {
        // The feed is gone: its loss is reported in band; the rules alone are still right.
      }
      const verified = new Map<TableName, Map<string, readonly number[]>>();
      let complete = true;
      for (const t of saved) {
        const chains = new Map<string, readonly number[]>();
        verified.set(t.name, chains);
        for (const c of t.chains) {
          if (c.rules.length === 0) {
            chains.set(c.name, []);
            continue;
          }
          const h = handles.get(t.name)?.get(c.name);
          if (quiet && h && h.length === c.rules.length) chains.set(c.name, h);
          else complete = false;
        }
        if (!tables.has(t.name)) complete = false;
        tables.add(t.name);
      }
      if (complete || attempt >= 3) return stateFromSave(family, saved, verified, previous);
    }
  }

  private async listHandles(
    family: Family,
    tables: ReadonlySet<TableName>,
  ): Promise<Map<TableName, ReadonlyMap<string, readonly number[]>>> {
    const out = new Map<TableName, ReadonlyMap<string, readonly number[]>>();
    await Promise.all(
      [...tables].map(async (t) => {
        try {
          out.set(t, await (this.o.handles as RuleHandles).list(family, t));
        } catch {
          // Without handles the table's rules are still fully usable: their deletes go by spec.
        }
      }),
    );
    return out;
  }
}

function fingerprint(c: ChainState): string {
  const h = createHash('sha256');
  h.update(c.policy ?? '-');
  for (const e of c.entries) h.update(`\n${e.text}`);
  return h.digest('hex');
}

/** What changed between two states of a family (chains, policies, rules by content). */
export function diffStates(
  family: Family,
  old: FamilyState | undefined,
  fresh: FamilyState,
): ChangeEventChange[] {
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
