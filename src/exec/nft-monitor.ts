/**
 * The nf_tables change feed: a long-running `nft -a monitor` whose output is parsed into
 * generations (one per committed kernel transaction), each attributed to the process that
 * committed it. The service uses it to learn the handles of the rules its own restores added
 * (claim the restore's pid from `onSpawn`, then `takeOwn`) and to notice anyone else's change
 * (`onExternal`), so that it can keep its model without re-reading the whole ruleset.
 *
 * What `nft -a monitor` (v1.0.6) prints, one event a line, the events of a commit before its
 * generation line:
 *
 *   add rule ip filter INPUT ip saddr 192.0.2.2 counter packets 0 bytes 0 accept # handle 3
 *   insert rule ip filter INPUT handle 17 ip saddr 192.0.2.24 counter packets 0 bytes 0 # handle 20
 *   delete rule ip filter INPUT handle 2
 *   create chain ip filter FOO # handle 5
 *   # new generation 5 by process 16520 (iptables)
 *
 * `handle P` before the rule text is the rule right before the new one (for add *and* insert,
 * verified by experiment); without it an `add` was appended and an `insert` went to the head.
 * A replace (`iptables -R`, `nft replace rule`) is `delete rule ... handle N` followed by an
 * `add` that keeps handle N, in place. The rule's own handle is the LAST `# handle N` of the
 * line (a quoted comment or log prefix may contain `# handle`).
 *
 * Loss of the feed is reported in band: listeners get a {@link FEED_LOST} generation (see
 * {@link isFeedLost}) when the monitor dies or says it dropped events; the model must then
 * be treated as unknown and re-read.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { getPriority, setPriority } from 'node:os';
import type { Readable } from 'node:stream';
import type { Family } from '../domain/family.js';
import { type ChangeFeed, ExecError, type Generation, type RuleChange } from './executor.js';
import { openFifo } from './fifo.js';
import { checkInteger, checkNetns, checkProgram, netnsArgv, runProcess } from './run-process.js';

/** Where the kernel put an added rule. */
export type Placement =
  /** Right after the rule with this handle. */
  | { readonly after: number }
  /** Appended at the end of the chain. */
  | 'end'
  /** At the head of the chain. */
  | 'start';

/** A rule change with what the monitor says beyond the port's {@link RuleChange}. */
export interface MonitorRuleChange extends RuleChange {
  /** For `add`: where the rule went. Absent for `delete`. */
  readonly placement?: Placement;
  /** For `add`: true when it replaced, in place, the rule deleted earlier in the same commit with the same handle. */
  readonly replaced?: boolean;
}

/** One line of `nft -a monitor` output, parsed. */
export type MonitorLine =
  | {
      readonly kind: 'rule';
      readonly op: 'add';
      readonly family: Family;
      readonly table: string;
      readonly chain: string;
      readonly handle: number;
      /** Handle printed before the rule text: the rule right before the new one. */
      readonly after: number | undefined;
      /** `insert rule` (no `after`: at the head) rather than `add rule` (no `after`: appended). */
      readonly insert: boolean;
    }
  | {
      readonly kind: 'rule';
      readonly op: 'delete';
      readonly family: Family;
      readonly table: string;
      readonly chain: string;
      readonly handle: number;
    }
  | { readonly kind: 'generation'; readonly id: number; readonly pid?: number; readonly command?: string }
  /** Any other event: tables, chains (incl. policies), sets, elements, rules of other families. */
  | { readonly kind: 'other'; readonly family: Family | undefined }
  /** `# ERROR: ...`: the monitor lost events (ENOBUFS) or its socket failed. */
  | { readonly kind: 'lost'; readonly text: string }
  /** Blank lines and informational comments. */
  | { readonly kind: 'ignored' };

const FAMILY_WORDS: Readonly<Record<string, Family>> = { ip: 'ipv4', ip6: 'ipv6' };
/** An nft name as printed: bare, or double-quoted (newer nft versions quote odd names). */
const NAME = String.raw`(?:"[^"]*"|[^\s"]+)`;
const RULE_ADD = new RegExp(
  String.raw`^(add|insert) rule (\S+) (${NAME}) (${NAME})(?: handle (\d+)(?=\s|$))?(?:\s.*)?\s# handle (\d+)\s*$`,
);
const RULE_DELETE = new RegExp(String.raw`^delete rule (\S+) (${NAME}) (${NAME}) handle (\d+)\s*$`);
const GENERATION = /^# new generation (\d+)(?: by process (\d+) \((.*)\))?\s*$/;
const EVENT = /^(?:add|insert|delete|create|replace|update|destroy|flush|reset|rename) \S+(?: (\S+))?/;

function unquote(name: string): string {
  return name.length >= 2 && name.startsWith('"') && name.endsWith('"') ? name.slice(1, -1) : name;
}

function toInt(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Parses one line of `nft -a monitor` output. Pure. */
export function parseMonitorLine(line: string): MonitorLine {
  const text = line.replace(/\r$/, '');
  if (text.trim() === '') return { kind: 'ignored' };
  if (text.startsWith('#')) {
    const g = GENERATION.exec(text);
    if (g !== null) {
      const id = toInt(g[1]);
      if (id !== undefined) {
        const pid = toInt(g[2]);
        return {
          kind: 'generation',
          id,
          ...(pid === undefined ? {} : { pid }),
          ...(g[3] === undefined ? {} : { command: g[3] }),
        };
      }
    }
    if (text.startsWith('# ERROR')) return { kind: 'lost', text };
    return { kind: 'ignored' };
  }
  const add = RULE_ADD.exec(text);
  if (add !== null) {
    const family = FAMILY_WORDS[add[2] ?? ''];
    const handle = toInt(add[6]);
    if (family !== undefined && handle !== undefined) {
      return {
        kind: 'rule',
        op: 'add',
        family,
        table: unquote(add[3] ?? ''),
        chain: unquote(add[4] ?? ''),
        handle,
        after: toInt(add[5]),
        insert: add[1] === 'insert',
      };
    }
  }
  const del = RULE_DELETE.exec(text);
  if (del !== null) {
    const family = FAMILY_WORDS[del[1] ?? ''];
    const handle = toInt(del[4]);
    if (family !== undefined && handle !== undefined) {
      return {
        kind: 'rule',
        op: 'delete',
        family,
        table: unquote(del[2] ?? ''),
        chain: unquote(del[3] ?? ''),
        handle,
      };
    }
  }
  const event = EVENT.exec(text);
  return { kind: 'other', family: event === null ? undefined : FAMILY_WORDS[event[1] ?? ''] };
}

/**
 * Groups monitor lines into generations. Pure: push lines, get a {@link Generation} back
 * when a generation line closes a commit, or `'lost'` when events were lost (the partial
 * commit is discarded).
 */
export class GenerationAssembler {
  #rules: MonitorRuleChange[] = [];
  #other = 0;
  #families = new Set<Family>();
  #deleted = new Set<string>();

  push(line: string): Generation | 'lost' | undefined {
    const parsed = parseMonitorLine(line);
    switch (parsed.kind) {
      case 'ignored':
        return undefined;
      case 'lost':
        this.#reset();
        return 'lost';
      case 'other':
        this.#other += 1;
        if (parsed.family !== undefined) this.#families.add(parsed.family);
        return undefined;
      case 'rule': {
        this.#families.add(parsed.family);
        const base = {
          family: parsed.family,
          table: parsed.table,
          chain: parsed.chain,
          handle: parsed.handle,
        };
        const key = `${parsed.family} ${parsed.table} ${parsed.chain} ${parsed.handle}`;
        if (parsed.op === 'delete') {
          this.#deleted.add(key);
          this.#rules.push(Object.freeze({ op: 'delete', ...base }));
          return undefined;
        }
        const replaced = this.#deleted.has(key);
        const placement: Placement =
          parsed.after !== undefined
            ? Object.freeze({ after: parsed.after })
            : parsed.insert || replaced
              ? 'start'
              : 'end';
        this.#rules.push(
          Object.freeze({ op: 'add', ...base, placement, ...(replaced ? { replaced: true } : {}) }),
        );
        return undefined;
      }
      case 'generation': {
        const generation: Generation = Object.freeze({
          id: parsed.id,
          pid: parsed.pid,
          command: parsed.command,
          rules: Object.freeze(this.#rules),
          otherEvents: this.#other,
          families: Object.freeze([...this.#families].sort()),
        });
        this.#reset();
        return generation;
      }
    }
  }

  #reset(): void {
    this.#rules = [];
    this.#other = 0;
    this.#families = new Set();
    this.#deleted = new Set();
  }
}

/**
 * The synthetic generation delivered to `onExternal` listeners when the feed can no longer be
 * trusted (the monitor died, or said it lost events): id -1, no pid, `otherEvents` -1, both
 * families. Whatever the model holds must be re-read.
 */
export const FEED_LOST: Generation = Object.freeze({
  id: -1,
  pid: undefined,
  command: undefined,
  rules: Object.freeze([]),
  otherEvents: -1,
  families: Object.freeze(['ipv4', 'ipv6'] as const),
});

/** True for the {@link FEED_LOST} signal (any generation with negative `otherEvents`). */
export function isFeedLost(generation: Generation): boolean {
  return generation.otherEvents < 0;
}

export interface NftChangeFeedOptions {
  /** Watch this named network namespace (`ip netns exec NAME nft ...`). @default undefined (own namespace) */
  netns?: string;
  /** The nft program. @default 'nft' */
  nft?: string;
  /** The iproute2 program used for `ip netns exec`. @default 'ip' */
  ip?: string;
  /** Milliseconds `start()` waits for the monitor to prove it is listening (it reads the whole ruleset first: seconds at 50k rules). @default 120000 */
  startTimeoutMs?: number;
  /**
   * How much nicer than the service the monitor runs until it is live (0 to 19). Its first read
   * of the whole ruleset (about 1.4 s of CPU at 50k rules) runs beside the service's own read,
   * which readiness waits for: nicer, it takes the CPU the service leaves. Once live it gets the
   * service's priority back; where the service could not give it back (no CAP_SYS_NICE, and an
   * RLIMIT_NICE that does not reach), it is never made nicer.
   * @default 10
   */
  startNice?: number;
  /**
   * Most pids claimed at once. Past it the oldest claim without a waiting `takeOwn` is dropped
   * and the generations it held are delivered to `onExternal` (nobody took them).
   * @default 1024
   */
  maxClaims?: number;
  /** Most generations held for one claimed pid before its claim is dropped the same way. @default 1024 */
  maxGenerationsPerClaim?: number;
  /** Milliseconds a claim lives without a waiting `takeOwn` before it is dropped the same way. @default 60000 */
  claimTtlMs?: number;
}

interface Waiter {
  count: number;
  resolve: (generations: readonly Generation[]) => void;
  timer: NodeJS.Timeout;
  late?: ((generation: Generation) => boolean) | undefined;
}

/**
 * Generations a takeOwn that timed out short still expects (see ChangeFeed.takeOwn): they come
 * before any of a later use of the same pid (commit order), so they are paid first.
 */
interface Debt {
  owed: number;
  /** Without a check, a late generation is reported as external (never given to a later use). */
  accept: ((generation: Generation) => boolean) | undefined;
}

interface Claim {
  generations: Generation[];
  at: number;
  /** Uses of the pid not yet taken: a long-lived process commits for several callers in turn. */
  uses: number;
  waiter?: Waiter | undefined;
  /** What earlier uses that timed out still expect, oldest first: paid before `generations`. */
  debts: Debt[];
  /** takeOwns queued behind the waiting one (same pid, later commits), in order. */
  queued: {
    count: number;
    timeoutMs: number;
    resolve: (generations: readonly Generation[]) => void;
    late?: ((generation: Generation) => boolean) | undefined;
  }[];
}

type State = 'idle' | 'starting' | 'live' | 'lost' | 'closed';

/** Longest monitor line kept; a longer one (never seen in practice) is cut, its handle lost. */
const MAX_LINE_CHARS = 1024 * 1024;
const MAX_STDERR_CHARS = 16 * 1024;
/** How long after its spawn the monitor's netlink socket may take to appear (see #waitSubscribed). */
const SOCKET_WAIT_MS = 2000;

/**
 * Whether this process may give a child back its own priority after making it nicer: with
 * CAP_SYS_NICE, or an RLIMIT_NICE that reaches its nice value (the child inherits the limit).
 */
function mayRaisePriority(): boolean {
  try {
    const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (eff && ((BigInt(`0x${eff[1]}`) >> 23n) & 1n) === 1n) return true; // CAP_SYS_NICE
    const limit = /^Max nice priority\s+(\d+|unlimited)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return limit !== null && (limit[1] === 'unlimited' || Number(limit[1]) >= 20 - getPriority());
  } catch {
    return false;
  }
}

/**
 * {@link ChangeFeed} over `nft -a monitor`.
 *
 * - `start()` spawns the monitor, then commits a marker transaction (add and delete of a
 *   private, empty `inet` table named `portcullis_sync_<random>`) until the monitor prints it:
 *   the monitor is then provably subscribed, and every later commit will be seen. The marker
 *   generations are never delivered. (Other watchers of the namespace do see them.)
 * - Generations of a claimed pid are held for `takeOwn`; a claim ends when `takeOwn` settles
 *   (or by `release`, or when dropped by the bounds, see the options). A pid claimed again
 *   before its claim ended (a long-lived restore, exec/restore-session.ts) has one use per
 *   claim: each takeOwn, in order, takes exactly its count of generations, the last one all
 *   that are left, and the claim ends with the last use.
 * - A takeOwn that times out short leaves a debt: the generations it still expects go to its
 *   `late` check before anything later of the pid (the monitor lagged; those commits are the
 *   caller's, not another process's nor the next use's), for the claim lifetime once the
 *   claim has ended. See ChangeFeed.takeOwn.
 * - When the monitor dies or reports lost events, listeners get {@link FEED_LOST} (possibly
 *   more than once), pending `takeOwn`s settle with what they saw, and `lost` says why.
 */
export class NftChangeFeed implements ChangeFeed {
  readonly netns: string | undefined;
  readonly #nft: string;
  readonly #ip: string;
  readonly #startTimeoutMs: number;
  readonly #startNice: number;
  readonly #maxClaims: number;
  readonly #maxPerClaim: number;
  readonly #claimTtlMs: number;
  readonly #marker = `portcullis_sync_${randomBytes(6).toString('hex')}`;
  readonly #assembler = new GenerationAssembler();
  readonly #claims = new Map<number, Claim>();
  /** Debts of ended claims (the pid's last use timed out short), with when they were left. */
  readonly #late = new Map<number, { debts: Debt[]; at: number }>();
  readonly #listeners = new Set<(generation: Generation) => void>();
  #state: State = 'idle';
  #child: ChildProcess | undefined;
  /** The monitor's stdout: a pipe (fifo.ts) where one can be made, else Node's socket pair. */
  #out: Readable | undefined;
  #exited: Promise<void> | undefined;
  #partial = '';
  #stderr = '';
  #pendingIsMarker = false;
  #markerSeen: (() => void) | undefined;
  #spawnedAt = 0;
  #socketSeen = false;
  #barriers: Promise<void> = Promise.resolve();
  #lost: ExecError | undefined;
  /** Called when the feed is closed or lost: a marker wait in #sync ends at once. */
  #stop: () => void = () => {};
  readonly #stopped = new Promise<'stopped'>((resolve) => {
    this.#stop = () => resolve('stopped');
  });

  constructor(options: NftChangeFeedOptions = {}) {
    this.netns = checkNetns(options.netns);
    this.#nft = checkProgram('nft', options.nft ?? 'nft');
    this.#ip = checkProgram('ip', options.ip ?? 'ip');
    this.#startTimeoutMs = checkInteger('startTimeoutMs', options.startTimeoutMs ?? 120_000, 1, 3_600_000);
    this.#startNice = checkInteger('startNice', options.startNice ?? 10, 0, 19);
    this.#maxClaims = checkInteger('maxClaims', options.maxClaims ?? 1024, 1, 1_000_000);
    this.#maxPerClaim = checkInteger(
      'maxGenerationsPerClaim',
      options.maxGenerationsPerClaim ?? 1024,
      1,
      1_000_000,
    );
    this.#claimTtlMs = checkInteger('claimTtlMs', options.claimTtlMs ?? 60_000, 1, 24 * 3_600_000);
  }

  /** Why the feed stopped being trustworthy, once it has (undefined while live). */
  get lost(): ExecError | undefined {
    return this.#lost;
  }

  /** Process id of the monitor, while it runs. */
  get pid(): number | undefined {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null
      ? child.pid
      : undefined;
  }

  /** Number of pids currently claimed (for tests and metrics). */
  get claimCount(): number {
    return this.#claims.size;
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`NftChangeFeed.start(): already ${this.#state}`);
    this.#state = 'starting';
    const argv = netnsArgv(this.#ip, this.netns, this.#nft, ['-a', 'monitor']);
    const [command, ...args] = argv as [string, ...string[]];
    // See fifo.ts: through Node's socket pair the monitor falls behind a busy event loop.
    const fifo = openFifo();
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        shell: false,
        stdio: ['ignore', fifo?.writeFd ?? 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      });
    } catch (error) {
      if (fifo) closeSync(fifo.readFd);
      throw error;
    } finally {
      // The child has its own copy: with ours closed, the pipe ends when the monitor does.
      if (fifo) closeSync(fifo.writeFd);
    }
    const out = fifo ? new Socket({ fd: fifo.readFd, readable: true, writable: false }) : child.stdout!;
    const stderr = child.stderr!;
    this.#child = child;
    this.#out = out;
    this.#spawnedAt = Date.now();
    const own = this.#renice(child.pid, undefined);
    this.#exited = new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    });
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.#onData(chunk));
    // A read error ends the stream like EOF: the monitor's exit (or close) reports the loss.
    out.on('error', () => {});
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      if (this.#stderr.length < MAX_STDERR_CHARS) this.#stderr += chunk.slice(0, MAX_STDERR_CHARS);
    });
    const died = new Promise<never>((_, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const missing = err.code === 'ENOENT';
        reject(
          this.#fail(
            new ExecError({
              kind: missing ? 'binary_missing' : 'failed',
              message: missing
                ? `${command} was not found: install the Debian package ${command === this.#ip ? 'iproute2' : 'nftables'}`
                : `${command} could not be started: ${err.message}`,
              argv,
              cause: err,
            }),
          ),
        );
      };
      child.once('error', onError);
      child.once('exit', (code, signal) => {
        // stdout may still hold lines: flush them first, then report.
        const report = (): void => {
          this.#flushPartial();
          const stderr = this.#stderr.trim();
          reject(
            this.#fail(
              new ExecError({
                kind: /Operation not permitted|Permission denied/.test(stderr)
                  ? 'permission_denied'
                  : /exec of "[^"]*" failed: No such file/.test(stderr)
                    ? 'binary_missing'
                    : 'failed',
                message: `nft monitor${this.#where()} exited (${signal ?? `code ${String(code)}`})${stderr === '' ? '' : `: ${stderr.slice(0, 500)}`}`,
                argv,
                exitCode: code,
                stderr,
              }),
            ),
          );
        };
        if (out.readableEnded || out.destroyed) report();
        else out.once('close', report);
      });
    });
    died.catch(() => {});

    try {
      await Promise.race([this.#sync(), died]);
    } catch (err) {
      await this.close();
      throw err;
    }
    if (this.#state === 'starting') {
      this.#state = 'live';
      if (own !== undefined) this.#renice(child.pid, own);
    }
  }

  /**
   * Sets the monitor's priority: `to`, or #startNice below the service's. Returns the service's
   * own priority when the monitor's was changed. Best effort: a priority that cannot be set
   * (no such process, not allowed) only costs speed.
   */
  #renice(pid: number | undefined, to: number | undefined): number | undefined {
    if (pid === undefined) return undefined;
    // Lowered only where it can be raised again: a monitor left nicer for good would lag.
    if (to === undefined && (this.#startNice === 0 || !mayRaisePriority())) return undefined;
    try {
      const own = getPriority();
      setPriority(pid, to ?? Math.min(19, own + this.#startNice));
      return own;
    } catch {
      return undefined;
    }
  }

  claim(pid: number): void {
    checkInteger('pid', pid, 1, Number.MAX_SAFE_INTEGER);
    this.#sweep();
    const existing = this.#claims.get(pid);
    if (existing !== undefined) {
      existing.at = Date.now();
      existing.uses++;
      return;
    }
    this.#claims.set(pid, { generations: [], at: Date.now(), uses: 1, debts: [], queued: [] });
    if (this.#claims.size > this.#maxClaims) {
      for (const [oldPid, claim] of this.#claims) {
        if (claim.waiter === undefined) {
          this.#drop(oldPid, claim);
          break;
        }
      }
    }
  }

  takeOwn(
    pid: number,
    count: number,
    timeoutMs: number,
    late?: (generation: Generation) => boolean,
  ): Promise<readonly Generation[]> {
    checkInteger('pid', pid, 1, Number.MAX_SAFE_INTEGER);
    checkInteger('count', count, 0, Number.MAX_SAFE_INTEGER);
    checkInteger('timeoutMs', timeoutMs, 0, 24 * 3_600_000);
    if (!this.#claims.has(pid)) this.claim(pid);
    const claim = this.#claims.get(pid)!;
    claim.at = Date.now();
    return new Promise((resolve) => {
      claim.queued.push({ count, timeoutMs, resolve, late });
      if (claim.waiter === undefined) this.#next(pid, claim);
    });
  }

  /** Starts the first queued takeOwn of a claim: settled at once when its generations are in. */
  #next(pid: number, claim: Claim): void {
    const q = claim.queued.shift();
    if (q === undefined) return;
    claim.waiter = {
      count: q.count,
      resolve: q.resolve,
      timer: setTimeout(() => this.#settle(pid), q.timeoutMs),
      late: q.late,
    };
    if (claim.generations.length >= q.count || this.#state === 'lost' || this.#state === 'closed')
      this.#settle(pid);
  }

  /** Forgets `pid` (e.g. after its restore failed) and returns the generations held for it. */
  release(pid: number): readonly Generation[] {
    const claim = this.#claims.get(pid);
    if (claim === undefined) return [];
    const held = Object.freeze([...claim.generations]);
    this.#end(pid, claim);
    return held;
  }

  /** Ends a claim: its waiting takeOwn gets every generation held, queued ones nothing. */
  #end(pid: number, claim: Claim): void {
    this.#claims.delete(pid);
    const w = claim.waiter;
    claim.waiter = undefined;
    if (w !== undefined) {
      clearTimeout(w.timer);
      w.resolve(Object.freeze(claim.generations.splice(0)));
    }
    for (const q of claim.queued.splice(0)) q.resolve(Object.freeze([]));
  }

  onExternal(listener: (generation: Generation) => void): () => void {
    const wrapped = (g: Generation): void => listener(g);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stop();
    for (const [pid, claim] of [...this.#claims]) this.#end(pid, claim);
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 2000);
      await this.#exited;
      clearTimeout(hard);
    } else {
      await this.#exited;
    }
    // Ours is the only read end: nothing is lost by not waiting for its end of file.
    this.#out?.destroy();
    this.#late.clear();
    this.#listeners.clear();
  }

  #where(): string {
    return this.netns === undefined ? '' : ` in network namespace "${this.netns}"`;
  }

  /**
   * Resolves once every commit made before the call has been reported to the listeners: a
   * marker commit (swallowed, like start's) came back through the monitor, and netlink
   * delivers a namespace's commits in order. Kernel sync uses it to prove that nothing
   * committed between two reads (rules and handles). One barrier at a time.
   */
  barrier(timeoutMs = 10_000): Promise<void> {
    const run = this.#barriers.then(() => {
      if (this.#state !== 'live') throw this.#lost ?? new Error('the nft monitor is not running');
      return this.#sync(timeoutMs);
    });
    this.#barriers = run.catch(() => {});
    return run;
  }

  /**
   * Whether the monitor has joined the nf_tables multicast group (NFNLGRP_NFTABLES, bit 0x40
   * of the Groups column of /proc/PID/net/netlink for its own socket): it does so only after
   * reading the whole ruleset, and a commit before that is never printed. Undefined when it
   * cannot be told (no /proc, another portid): then markers are simply repeated.
   */
  #subscribed(): boolean | undefined {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/netlink`, 'utf8');
    } catch {
      return undefined;
    }
    let found = false;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] !== '12' || f[2] !== String(pid)) continue;
      found = true;
      if ((Number.parseInt(f[3] ?? '0', 16) & 0x40) !== 0) return true;
    }
    return found ? false : undefined;
  }

  /**
   * Waits (polling) until the monitor has subscribed, or it cannot be told, or the deadline.
   * Right after the spawn its socket does not exist yet (nft is still starting, or `ip netns
   * exec` has not exec'd it): that is waited for too, up to SOCKET_WAIT_MS, since a marker
   * committed then lands in the middle of the monitor's first read and makes it start over.
   */
  async #waitSubscribed(deadline: number): Promise<void> {
    for (;;) {
      const subscribed = this.#subscribed();
      if (subscribed !== undefined) this.#socketSeen = true;
      const notYet = !this.#socketSeen && Date.now() - this.#spawnedAt < SOCKET_WAIT_MS;
      if (subscribed === true || (subscribed === undefined && !notYet) || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Commits marker transactions until the monitor prints one. */
  async #sync(timeoutMs = this.#startTimeoutMs): Promise<void> {
    const seen = new Promise<void>((resolve) => {
      this.#markerSeen = resolve;
    });
    const deadline = Date.now() + timeoutMs;
    const input = `add table inet ${this.#marker}\ndelete table inet ${this.#marker}\n`;
    let wait = 50;
    let attempts = 0;
    while (Date.now() < deadline) {
      if (this.#state !== 'starting' && this.#state !== 'live')
        throw this.#lost ?? new Error('the nft monitor is not running');
      // A marker sent before the monitor has read the ruleset is lost, and makes it read again.
      await this.#waitSubscribed(deadline);
      attempts += 1;
      await runProcess({
        argv: netnsArgv(this.#ip, this.netns, this.#nft, ['-f', '-']),
        program: this.#nft,
        where: this.#where(),
        input,
        signal: undefined,
        timeoutMs: Math.max(1, deadline - Date.now()),
        maxOutputBytes: 1024 * 1024,
        spawnError: (err) =>
          new ExecError({
            kind: err.code === 'ENOENT' ? 'binary_missing' : 'failed',
            message: `${this.#nft} could not be started for the monitor's marker commit: ${err.message}`,
            argv: [this.#nft, '-f', '-'],
            cause: err,
          }),
        exitError: (code, stderr) =>
          new ExecError({
            kind: /Operation not permitted|Permission denied/.test(stderr) ? 'permission_denied' : 'failed',
            message: `the monitor's marker commit (nft -f -${this.#where()}) failed: ${stderr.trim().slice(0, 500)}`,
            argv: [this.#nft, '-f', '-'],
            exitCode: code,
            stderr,
          }),
      });
      // A wait that ends only by a timer or by the feed stopping: an unref'd timer here once let
      // a daemon's event loop run dry in the middle of its shutdown (a reload's barrier was
      // waiting after the monitor had gone), and the process exited 0 with its work undone.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), Math.min(wait, Math.max(1, deadline - Date.now())));
      });
      const outcome = await Promise.race([seen.then(() => 'seen' as const), late, this.#stopped]);
      clearTimeout(timer);
      if (outcome === 'seen') return;
      if (outcome === 'stopped') continue; // the check at the top throws
      // nft monitor first reads the whole ruleset and starts that read over whenever a commit
      // lands meanwhile (seconds at 50k rules): markers sent too often would keep it from ever
      // finishing, so the gap between markers grows until one read can complete.
      wait = Math.min(wait * 2, 30_000);
    }
    throw new ExecError({
      kind: 'timeout',
      message: `nft monitor${this.#where()} did not report ${attempts} marker commit(s) within ${this.#startTimeoutMs} ms: raise startTimeoutMs`,
      argv: netnsArgv(this.#ip, this.netns, this.#nft, ['-a', 'monitor']),
    });
  }

  #onData(chunk: string): void {
    const text = this.#partial + chunk;
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    if (this.#partial.length > MAX_LINE_CHARS) this.#partial = this.#partial.slice(0, MAX_LINE_CHARS);
    for (const line of lines) this.#onLine(line);
  }

  #flushPartial(): void {
    if (this.#partial !== '') {
      const line = this.#partial;
      this.#partial = '';
      this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    if (line.startsWith(`add table inet ${this.#marker}`)) this.#pendingIsMarker = true;
    const result = this.#assembler.push(line);
    if (result === undefined) return;
    if (result === 'lost') {
      this.#pendingIsMarker = false;
      this.#lost ??= new ExecError({
        kind: 'failed',
        message: `nft monitor${this.#where()} reported "${line.trim().slice(0, 200)}": changes may have been missed`,
        argv: [],
      });
      this.#emit(FEED_LOST);
      return;
    }
    const isMarker = this.#pendingIsMarker;
    this.#pendingIsMarker = false;
    // Only a commit of exactly our marker (add and delete of the private table) is swallowed:
    // a commit that also changed anything else is delivered like any other.
    if (isMarker && result.rules.length === 0 && result.otherEvents === 2) {
      this.#markerSeen?.();
      return;
    }
    this.#onGeneration(result);
  }

  #onGeneration(generation: Generation): void {
    this.#sweep();
    const pid = generation.pid;
    // Late generations come before any of a later use of the same pid (commit order): an
    // ended claim's debts first, then the current claim's, then the claim's own. One a debt
    // refuses is the current claim's, if there is one (a live process of ours has the pid).
    const late = pid === undefined ? undefined : this.#late.get(pid);
    if (late !== undefined && pid !== undefined) {
      const paid = this.#pay(late.debts, generation);
      if (late.debts.length === 0) this.#late.delete(pid);
      if (paid) return;
    }
    const claim = pid === undefined ? undefined : this.#claims.get(pid);
    if (pid === undefined || claim === undefined) {
      this.#emit(generation);
      return;
    }
    if (claim.debts.length > 0 && this.#pay(claim.debts, generation)) return;
    claim.generations.push(generation);
    claim.at = Date.now();
    if (claim.waiter !== undefined) {
      if (claim.generations.length >= claim.waiter.count) this.#settle(pid);
    } else if (claim.generations.length > this.#maxPerClaim) {
      this.#drop(pid, claim);
    }
  }

  /**
   * Resolves the waiting takeOwn of `pid` (if any) with what was seen: exactly its count while
   * later uses of the pid remain, else everything; the claim ends with its last use.
   */
  #settle(pid: number): void {
    const claim = this.#claims.get(pid);
    if (claim === undefined) return;
    const w = claim.waiter;
    claim.waiter = undefined;
    claim.uses--;
    const last = claim.uses <= 0 && claim.queued.length === 0;
    const taken = last ? claim.generations.splice(0) : claim.generations.splice(0, w?.count ?? 0);
    // Short at its timeout (the monitor lagging): what is still to come is this use's, not
    // another process's, nor the next use's.
    if (w !== undefined && taken.length < w.count)
      claim.debts.push({ owed: w.count - taken.length, accept: w.late });
    if (last) {
      this.#claims.delete(pid);
      if (claim.debts.length > 0 && this.#state === 'live')
        this.#late.set(pid, {
          debts: [...(this.#late.get(pid)?.debts ?? []), ...claim.debts],
          at: Date.now(),
        });
    }
    if (w !== undefined) {
      clearTimeout(w.timer);
      w.resolve(Object.freeze(taken));
    }
    if (!last) this.#next(pid, claim);
  }

  /**
   * Gives `generation` to the oldest debt, if its check takes it; else every debt is dropped
   * (the order can no longer be trusted) and the generation goes on as if there were none.
   */
  #pay(debts: Debt[], generation: Generation): boolean {
    const debt = debts[0] as Debt;
    let accepted = false;
    try {
      accepted = debt.accept?.(generation) === true;
    } catch {
      // A check that fails refuses.
    }
    if (!accepted) {
      debts.length = 0;
      return false;
    }
    if (--debt.owed <= 0) debts.shift();
    return true;
  }

  /** Drops an untaken claim: nobody will account for its generations, so they are external. */
  #drop(pid: number, claim: Claim): void {
    this.#claims.delete(pid);
    for (const g of claim.generations) this.#emit(g);
  }

  #sweep(): void {
    const oldest = Date.now() - this.#claimTtlMs;
    for (const [pid, late] of this.#late) if (late.at < oldest) this.#late.delete(pid);
    for (const [pid, claim] of this.#claims) {
      if (claim.waiter === undefined && claim.at < oldest) this.#drop(pid, claim);
    }
  }

  #fail(error: ExecError): ExecError {
    if (this.#state === 'closed') return error;
    const wasLive = this.#state === 'live' || this.#state === 'starting';
    this.#state = 'lost';
    this.#lost ??= error;
    this.#stop();
    for (const [pid, claim] of [...this.#claims]) if (claim.waiter !== undefined) this.#end(pid, claim);
    if (wasLive) this.#emit(FEED_LOST);
    return error;
  }

  #emit(generation: Generation): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(generation);
      } catch {
        // A listener's failure is its own; the feed keeps delivering to the others.
      }
    }
  }
}
