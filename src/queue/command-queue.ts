/**
 * The command queue: one writer, group commit.
 *
 * Why: iptables changes are cheap in bulk and expensive one by one (one
 * restore carrying 1000 appends costs about what a single `iptables -A` costs
 * at 50k rules). So callers enqueue jobs; while one batch runs, new jobs wait,
 * and the next batch takes all of them at once. Each caller still gets its own
 * result: the batch runner returns one outcome per job (it isolates failing
 * jobs itself), and a runner that throws fails only its batch — the queue
 * keeps going.
 *
 * Bounded: at most `maxDepth` jobs wait; past that, and for jobs that waited
 * longer than `jobDeadlineMs` before their batch started, callers get a
 * `resource_exhausted` "busy, retry" error instead of unbounded memory or
 * latency. `close()` stops accepting, lets queued jobs finish, then resolves.
 * A job must never enqueue from inside a batch (it would wait for itself).
 * With `detectReentry` that is detected and refused; it is off by default
 * because the detection needs AsyncLocalStorage, whose promise hooks slow
 * every promise in the process (a third of a batch's planning time here).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DomainError } from '../domain/errors.js';

export type Outcome<R> =
  | { readonly ok: true; readonly value: R }
  | { readonly ok: false; readonly error: unknown };

/** Runs a batch; must return exactly one outcome per job, in order. */
export type BatchRunner<J, R> = (jobs: readonly J[]) => Promise<readonly Outcome<R>[]>;

export interface CommandQueueOptions {
  /**
   * Most jobs that may wait at once; one more is refused with `resource_exhausted`.
   * @default 10000
   */
  readonly maxDepth?: number;
  /**
   * Most milliseconds a job may wait before its batch starts; past that it fails with `resource_exhausted`.
   * @default 30000
   */
  readonly jobDeadlineMs?: number;
  /**
   * Most jobs in one batch.
   * @default 2048
   */
  readonly maxBatch?: number;
  /**
   * Refuse `enqueue` from inside a running batch (a job awaiting itself would hang).
   * Costs AsyncLocalStorage promise hooks process-wide: meant for tests.
   * @default false
   */
  readonly detectReentry?: boolean;
}

interface Pending<J, R> {
  readonly job: J;
  readonly enqueuedAt: number;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

function checkOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(
      `Expected \`${name}\` to be a whole number from 1, got \`${String(value)}\` (${typeof value})`,
    );
  }
  return value;
}

export class CommandQueue<J, R> {
  readonly maxDepth: number;
  readonly jobDeadlineMs: number;
  readonly maxBatch: number;
  private readonly inBatch: AsyncLocalStorage<object> | undefined;
  private readonly waiting: Pending<J, R>[] = [];
  private running = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  private batches = 0;

  constructor(
    private readonly runner: BatchRunner<J, R>,
    options: CommandQueueOptions = {},
  ) {
    if (typeof runner !== 'function') throw new TypeError('Expected `runner` to be a function');
    this.maxDepth = checkOption('maxDepth', options.maxDepth, 10_000);
    this.jobDeadlineMs = checkOption('jobDeadlineMs', options.jobDeadlineMs, 30_000);
    this.maxBatch = checkOption('maxBatch', options.maxBatch, 2048);
    if (options.detectReentry !== undefined && typeof options.detectReentry !== 'boolean') {
      throw new TypeError(
        `Expected \`detectReentry\` to be a boolean, got \`${String(options.detectReentry)}\``,
      );
    }
    this.inBatch = options.detectReentry ? new AsyncLocalStorage<object>() : undefined;
  }

  /** Jobs waiting for a batch (not counting the batch running now). */
  get depth(): number {
    return this.waiting.length;
  }

  /** Number of batches run so far. */
  get batchCount(): number {
    return this.batches;
  }

  get isClosed(): boolean {
    return this.closing;
  }

  enqueue(job: J, signal?: AbortSignal): Promise<R> {
    if (this.inBatch?.getStore()) {
      return Promise.reject(
        new DomainError('internal', 'a queued job tried to enqueue another job: it would wait for itself'),
      );
    }
    if (this.closing)
      return Promise.reject(
        new DomainError('unavailable', 'the service is shutting down; retry against a running instance'),
      );
    if (this.waiting.length >= this.maxDepth) {
      return Promise.reject(
        new DomainError(
          'resource_exhausted',
          `busy: ${this.waiting.length} changes are already waiting; retry shortly`,
          {
            details: { queueDepth: this.waiting.length, retryAfterMs: 1000 },
          },
        ),
      );
    }
    if (signal?.aborted)
      return Promise.reject(new DomainError('aborted', 'the request was cancelled before it was queued'));
    return new Promise<R>((resolve, reject) => {
      const onAbort = signal
        ? () => {
            const i = this.waiting.indexOf(pending);
            if (i !== -1) {
              this.waiting.splice(i, 1);
              reject(new DomainError('aborted', 'the request was cancelled before it was applied'));
            }
          }
        : undefined;
      const pending: Pending<J, R> = { job, enqueuedAt: Date.now(), resolve, reject, signal, onAbort };
      if (signal && onAbort) signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(pending);
      this.kick();
    });
  }

  /**
   * Queues a job without waiting for it (allowed from inside a batch: nothing awaits it there).
   * Its outcome goes to `onDone`. Refused silently when closing or full: returns false.
   */
  schedule(job: J, onDone?: (outcome: Outcome<R>) => void): boolean {
    if (this.closing || this.waiting.length >= this.maxDepth) return false;
    this.waiting.push({
      job,
      enqueuedAt: Date.now(),
      resolve: (value) => onDone?.({ ok: true, value }),
      reject: (error) => onDone?.({ ok: false, error }),
      signal: undefined,
      onAbort: undefined,
    });
    this.kick();
    return true;
  }

  /** Stops accepting jobs; resolves when every queued job has finished. */
  close(): Promise<void> {
    this.closing = true;
    if (!this.closed) {
      this.closed = new Promise((resolve) => {
        this.resolveClosed = resolve;
      });
      this.maybeClosed();
    }
    return this.closed;
  }

  private maybeClosed(): void {
    if (this.closing && !this.running && this.waiting.length === 0) this.resolveClosed?.();
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // Let callers that enqueue in the same tick join this batch.
    setImmediate(() => {
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const now = Date.now();
        const batch: Pending<J, R>[] = [];
        while (batch.length < this.maxBatch && this.waiting.length > 0) {
          const p = this.waiting.shift() as Pending<J, R>;
          if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
          if (now - p.enqueuedAt > this.jobDeadlineMs) {
            p.reject(
              new DomainError(
                'resource_exhausted',
                `busy: the change waited ${now - p.enqueuedAt} ms without being applied; retry shortly`,
                {
                  details: { waitedMs: now - p.enqueuedAt, retryAfterMs: 1000 },
                },
              ),
            );
            continue;
          }
          batch.push(p);
        }
        if (batch.length === 0) continue;
        this.batches++;
        let outcomes: readonly Outcome<R>[];
        try {
          const jobs = batch.map((p) => p.job);
          outcomes = await (this.inBatch ? this.inBatch.run({}, () => this.runner(jobs)) : this.runner(jobs));
          if (outcomes.length !== batch.length) {
            throw new DomainError(
              'internal',
              `batch runner returned ${outcomes.length} outcomes for ${batch.length} jobs`,
            );
          }
        } catch (error) {
          outcomes = batch.map(() => ({ ok: false, error }));
        }
        batch.forEach((p, i) => {
          const o = outcomes[i] as Outcome<R>;
          if (o.ok) p.resolve(o.value);
          else p.reject(o.error);
        });
      }
    } finally {
      this.running = false;
      if (this.waiting.length > 0) this.kick();
      else this.maybeClosed();
    }
  }
}
