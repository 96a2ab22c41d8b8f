import { describe, expect, it } from 'vitest';
import { DomainError, type ErrorCode } from '../../src/domain/errors.js';
import { type BatchRunner, CommandQueue, type Outcome } from '../../src/queue/command-queue.js';

/** A promise with its resolve handle, to hold a batch open while the test enqueues more. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves after pending immediates (the queue starts a batch on setImmediate). */
const tick = () => new Promise((r) => setImmediate(r));

async function rejection(p: Promise<unknown>): Promise<DomainError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<DomainError> {
  const e = await rejection(p);
  expect(e.code).toBe(code);
  return e;
}

/**
 * A runner that records every batch, doubles numbers, fails negative ones alone, and
 * can be held open: while `gate` is set, each batch waits for it before answering.
 */
function recordingRunner() {
  const batches: number[][] = [];
  let gate: Promise<void> | undefined;
  const started: (() => void)[] = [];
  const runner: BatchRunner<number, number> = async (jobs) => {
    batches.push([...jobs]);
    for (const s of started.splice(0)) s();
    if (gate) await gate;
    return jobs.map(
      (j): Outcome<number> =>
        j < 0
          ? { ok: false, error: new DomainError('invalid_argument', `bad ${j}`) }
          : { ok: true, value: j * 2 },
    );
  };
  return {
    runner,
    batches,
    sizes: () => batches.map((b) => b.length),
    hold(): () => void {
      const d = deferred();
      gate = d.promise;
      return () => {
        gate = undefined;
        d.resolve();
      };
    },
    /** Resolves when the next batch has started. */
    nextBatch(): Promise<void> {
      return new Promise((r) => started.push(r));
    },
  };
}

describe('CommandQueue options', () => {
  const runner: BatchRunner<number, number> = async (jobs) => jobs.map((j) => ({ ok: true, value: j }));

  it.each([
    ['maxDepth', 0],
    ['maxDepth', -1],
    ['maxDepth', 1.5],
    ['maxDepth', '5'],
    ['maxDepth', Number.NaN],
    ['maxDepth', Number.POSITIVE_INFINITY],
    ['jobDeadlineMs', 0],
    ['jobDeadlineMs', null],
    ['maxBatch', 0],
    ['maxBatch', 2.5],
  ])('refuses %s = %s with a TypeError naming the option', (name, value) => {
    expect(() => new CommandQueue(runner, { [name]: value } as never)).toThrow(TypeError);
    expect(() => new CommandQueue(runner, { [name]: value } as never)).toThrow(
      new RegExp(`\`${name}\`.*whole number`),
    );
  });

  it('refuses a runner that is not a function', () => {
    expect(() => new CommandQueue(undefined as never)).toThrow(/`runner` to be a function/);
  });

  it('has documented defaults and keeps given values', () => {
    const q = new CommandQueue(runner);
    expect([q.maxDepth, q.jobDeadlineMs, q.maxBatch]).toEqual([10_000, 30_000, 2048]);
    const r = new CommandQueue(runner, { maxDepth: 3, jobDeadlineMs: 7, maxBatch: 2 });
    expect([r.maxDepth, r.jobDeadlineMs, r.maxBatch]).toEqual([3, 7, 2]);
  });
});

describe('CommandQueue batching', () => {
  it('puts jobs enqueued in the same tick into one batch, each caller getting its own result', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const results = await Promise.allSettled([1, 2, -3, 4].map((j) => q.enqueue(j)));
    expect(r.sizes()).toEqual([4]);
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message))).toEqual([
      2,
      4,
      'bad -3',
      8,
    ]);
    expect(q.batchCount).toBe(1);
  });

  it('group commit: jobs enqueued while a batch runs all go into the next batch', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const release = r.hold();
    const started = r.nextBatch();
    const first = q.enqueue(1);
    await started;
    const later = [2, 3, 4, 5, 6].map((j) => q.enqueue(j));
    expect(q.depth).toBe(5);
    release();
    expect(await first).toBe(2);
    expect(await Promise.all(later)).toEqual([4, 6, 8, 10, 12]);
    expect(r.batches).toEqual([[1], [2, 3, 4, 5, 6]]);
    expect(q.depth).toBe(0);
  });

  it('keeps submission order across batches', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const all: Promise<number>[] = [];
    for (let round = 0; round < 5; round++) {
      for (let k = 0; k < 3; k++) all.push(q.enqueue(round * 3 + k));
      if (round % 2 === 0) await tick();
    }
    await Promise.all(all);
    expect(r.batches.flat()).toEqual(Array.from({ length: 15 }, (_, i) => i));
  });

  it('splits a long queue into batches of at most maxBatch', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner, { maxBatch: 3 });
    const out = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((j) => q.enqueue(j)));
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(r.sizes()).toEqual([3, 3, 1]);
  });

  it('a runner that throws fails only its own batch; the queue keeps going', async () => {
    let calls = 0;
    const q = new CommandQueue<number, number>(async (jobs) => {
      calls++;
      if (calls === 1) throw new DomainError('unavailable', 'kernel went away');
      return jobs.map((j) => ({ ok: true, value: j }));
    });
    const firstBatch = [1, 2].map((j) => q.enqueue(j));
    for (const p of firstBatch) await expectCode(p, 'unavailable');
    expect(await Promise.all([3, 4].map((j) => q.enqueue(j)))).toEqual([3, 4]);
  });

  it('a runner that throws while later jobs wait does not stall them', async () => {
    const gate = deferred();
    let calls = 0;
    const q = new CommandQueue<number, number>(async (jobs) => {
      calls++;
      if (calls === 1) {
        await gate.promise;
        throw new Error('boom');
      }
      return jobs.map((j) => ({ ok: true, value: j }));
    });
    const first = q.enqueue(1);
    await tick();
    const second = q.enqueue(2);
    gate.resolve();
    await expect(first).rejects.toThrow('boom');
    expect(await second).toBe(2);
  });

  it('a runner returning the wrong number of outcomes fails that batch as internal', async () => {
    let calls = 0;
    const q = new CommandQueue<number, number>(async (jobs) => {
      calls++;
      return calls === 1 ? [] : jobs.map((j) => ({ ok: true, value: j }));
    });
    const e = await expectCode(q.enqueue(1), 'internal');
    expect(e.message).toMatch(/0 outcomes for 1 jobs/);
    expect(await q.enqueue(5)).toBe(5);
  });

  it('rejects a detectReentry that is not a boolean', () => {
    expect(() => new CommandQueue(async () => [], { detectReentry: 'yes' as unknown as boolean })).toThrow(
      TypeError,
    );
  });

  it('with detectReentry, refuses enqueue from inside a batch (it would wait for itself), but allows it after', async () => {
    let inner: Promise<number> | undefined;
    const q = new CommandQueue<number, number>(
      async (jobs) => {
        if (jobs[0] === 1) inner = q.enqueue(99);
        return jobs.map((j) => ({ ok: true, value: j }));
      },
      { detectReentry: true },
    );
    expect(await q.enqueue(1)).toBe(1);
    const e = await expectCode(inner as Promise<number>, 'internal');
    expect(e.message).toMatch(/wait for itself/);
    // The caller's continuation is outside the batch: it may enqueue again.
    const chained = await q.enqueue(2).then((v) => q.enqueue(v + 1));
    expect(chained).toBe(3);
  });
});

describe('CommandQueue bounds', () => {
  it('refuses a job past maxDepth with resource_exhausted "busy"', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner, { maxDepth: 2 });
    const release = r.hold();
    const started = r.nextBatch();
    const running = q.enqueue(1);
    await started; // job 1 left the waiting list
    const waiting = [q.enqueue(2), q.enqueue(3)];
    const e = await expectCode(q.enqueue(4), 'resource_exhausted');
    expect(e.message).toMatch(/^busy/);
    expect(e.details).toMatchObject({ queueDepth: 2 });
    expect(q.depth).toBe(2);
    release();
    expect(await running).toBe(2);
    expect(await Promise.all(waiting)).toEqual([4, 6]);
    // Room again once the queue drained.
    expect(await q.enqueue(5)).toBe(10);
    expect(r.batches).toEqual([[1], [2, 3], [5]]);
  });

  it('counts jobs that have not started yet, even in the same tick', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner, { maxDepth: 2 });
    const ok = [q.enqueue(1), q.enqueue(2)];
    await expectCode(q.enqueue(3), 'resource_exhausted');
    expect(await Promise.all(ok)).toEqual([2, 4]);
  });

  it('fails jobs that waited longer than jobDeadlineMs with resource_exhausted, runs the rest', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner, { jobDeadlineMs: 20 });
    const release = r.hold();
    const started = r.nextBatch();
    const first = q.enqueue(1);
    await started;
    const old = q.enqueue(2);
    await sleep(60);
    const young = q.enqueue(3);
    release();
    expect(await first).toBe(2);
    const e = await expectCode(old, 'resource_exhausted');
    expect(e.message).toMatch(/^busy: the change waited \d+ ms/);
    expect((e.details as { waitedMs: number }).waitedMs).toBeGreaterThan(20);
    expect(await young).toBe(6);
    expect(r.batches).toEqual([[1], [3]]);
  });
});

describe('CommandQueue cancellation', () => {
  it('refuses a job whose signal is already aborted', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const e = await expectCode(q.enqueue(1, AbortSignal.abort()), 'aborted');
    expect(e.message).toMatch(/before it was queued/);
    await tick();
    expect(r.batches).toEqual([]);
  });

  it('drops a waiting job when its signal aborts before its batch starts', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const release = r.hold();
    const started = r.nextBatch();
    const first = q.enqueue(1);
    await started;
    const ac = new AbortController();
    const cancelled = q.enqueue(2, ac.signal);
    const kept = q.enqueue(3);
    ac.abort();
    const e = await expectCode(cancelled, 'aborted');
    expect(e.message).toMatch(/before it was applied/);
    expect(q.depth).toBe(1);
    release();
    expect(await first).toBe(2);
    expect(await kept).toBe(6);
    expect(r.batches).toEqual([[1], [3]]);
  });

  it('an abort after the batch started does not affect the result', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const release = r.hold();
    const ac = new AbortController();
    const started = r.nextBatch();
    const p = q.enqueue(4, ac.signal);
    await started;
    ac.abort();
    release();
    expect(await p).toBe(8);
  });
});

describe('CommandQueue close', () => {
  it('stops accepting (unavailable), finishes queued jobs, then resolves', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const release = r.hold();
    const started = r.nextBatch();
    const running = q.enqueue(1);
    await started;
    const queued = q.enqueue(2);
    let closed = false;
    const closing = q.close().then(() => {
      closed = true;
    });
    expect(q.isClosed).toBe(true);
    const e = await expectCode(q.enqueue(3), 'unavailable');
    expect(e.message).toMatch(/shutting down/);
    expect(q.schedule(4)).toBe(false);
    await sleep(5);
    expect(closed).toBe(false);
    release();
    await closing;
    expect(await running).toBe(2);
    expect(await queued).toBe(4);
    expect(r.batches).toEqual([[1], [2]]);
  });

  it('resolves at once when idle, and every call returns the same promise', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const a = q.close();
    expect(q.close()).toBe(a);
    await a;
  });

  it('resolves after a batch whose runner threw', async () => {
    const q = new CommandQueue<number, number>(async () => {
      throw new Error('nope');
    });
    const p = q.enqueue(1);
    const closed = q.close();
    await expect(p).rejects.toThrow('nope');
    await closed;
  });
});

describe('CommandQueue schedule', () => {
  it('queues a job without a waiter and reports its outcome to onDone', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner);
    const seen: Outcome<number>[] = [];
    const done = deferred();
    expect(q.schedule(5, (o) => seen.push(o))).toBe(true);
    expect(
      q.schedule(-1, (o) => {
        seen.push(o);
        done.resolve();
      }),
    ).toBe(true);
    await done.promise;
    expect(seen[0]).toEqual({ ok: true, value: 10 });
    expect(seen[1]?.ok).toBe(false);
    expect(r.sizes()).toEqual([2]);
  });

  it('is allowed from inside a batch: the job runs in a later batch', async () => {
    const done = deferred<Outcome<number>>();
    const batches: number[][] = [];
    const q = new CommandQueue<number, number>(async (jobs) => {
      batches.push([...jobs]);
      if (jobs.includes(1)) expect(q.schedule(2, done.resolve)).toBe(true);
      return jobs.map((j) => ({ ok: true, value: j }));
    });
    expect(await q.enqueue(1)).toBe(1);
    expect(await done.promise).toEqual({ ok: true, value: 2 });
    expect(batches).toEqual([[1], [2]]);
  });

  it('returns false when the queue is full', async () => {
    const r = recordingRunner();
    const q = new CommandQueue(r.runner, { maxDepth: 1 });
    expect(q.schedule(1)).toBe(true);
    expect(q.schedule(2)).toBe(false);
    await q.close();
    expect(r.batches).toEqual([[1]]);
  });
});
