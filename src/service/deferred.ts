/**
 * Changes the service makes by itself, later: rolling back a commit-confirmed
 * change that was not confirmed in time, and deleting rules that expired.
 * Both are ordinary changes through the queue (planned against the model of
 * the moment, journaled, with events, audit entries and the observers'
 * records), and both settle their record in the pending store in the same
 * durable step as the change (pending.ts), so a crash never loses or repeats one.
 *
 * Rollback rule: a rollback undoes the change's own diff only (each command's
 * undo: delete the rules it added, put back the rules it removed, restore the
 * policy it set, ...), never a whole table, so changes other clients made to the
 * same tables meanwhile stay. When part of the undo no longer applies (another
 * client already removed a rule it added), the rest is still undone, step by step.
 */
import { DomainError } from '../domain/errors.js';
import type { ApplyOptions, Operation } from './operations.js';
import type { ConfirmationRecord, ExpiryRecord, PendingStore } from './pending.js';

type Apply = (ops: readonly Operation[], options: ApplyOptions) => Promise<unknown>;

/** Longest a timer is set for at once (Node's limit is ~24.8 days); it re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RollbackReport {
  readonly id: string;
  /** Steps of the undo that no longer applied (each with why). */
  readonly skipped: readonly string[];
}

export class DeferredChanges {
  private confirmTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Work in flight (rollbacks, expiry rounds), awaited by close. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Expiries whose delete is under way: never picked twice (a second delete by the same spec would take an identical rule that is not due). */
  private readonly expiring = new Set<string>();

  constructor(
    private readonly store: PendingStore,
    private readonly apply: Apply,
    private readonly onRollback?: (r: RollbackReport) => void,
  ) {
    store.onChange = () => this.arm();
  }

  /** Runs what is already due (before the service reports ready), then arms the timers. */
  async start(): Promise<void> {
    await this.runDue();
    this.arm();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await Promise.allSettled([...this.inflight]);
  }

  /** Confirms a pending change: it stays. */
  async confirm(id: string): Promise<ConfirmationRecord> {
    const c = this.pendingOne(id);
    await this.store.settle({ resolves: [id] });
    return c;
  }

  /** Moves the deadline to `seconds` from now. */
  async extend(id: string, seconds: number): Promise<ConfirmationRecord> {
    this.pendingOne(id);
    return this.store.extend(id, new Date(Date.now() + seconds * 1000).toISOString());
  }

  /** Rolls a pending change back now. */
  async cancel(id: string): Promise<RollbackReport> {
    const c = this.pendingOne(id);
    return this.track(this.rollback(c));
  }

  list(): ConfirmationRecord[] {
    return [...this.store.confirmations.values()].sort((a, b) => a.deadline.localeCompare(b.deadline));
  }

  private pendingOne(id: string): ConfirmationRecord {
    const c = this.store.confirmations.get(id);
    if (!c) throw new DomainError('not_found', `no pending confirmation ${id.slice(0, 64)}`, { field: 'id' });
    if (this.store.rollingBack.has(id))
      throw new DomainError(
        'failed_precondition',
        `confirmation ${id} is being rolled back (its deadline passed or it was cancelled)`,
        { field: 'id' },
      );
    return c;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  private async runDue(): Promise<void> {
    const now = Date.now();
    const confirmations = [...this.store.confirmations.values()].filter(
      (c) => Date.parse(c.deadline) <= now && !this.store.rollingBack.has(c.id),
    );
    const expiries = [...this.store.expiries.values()].filter(
      (e) => Date.parse(e.expiresAt) <= now && !this.expiring.has(e.key),
    );
    await Promise.allSettled([
      ...confirmations.map((c) => this.track(this.rollback(c))),
      ...(expiries.length ? [this.track(this.expire(expiries))] : []),
    ]);
  }

  /** Sets one timer for the next deadline and one for the next expiry. */
  private arm(): void {
    if (this.closed) return;
    const next = (times: Iterable<string>) => {
      let min = Number.POSITIVE_INFINITY;
      for (const t of times) min = Math.min(min, Date.parse(t));
      return min;
    };
    const set = (prev: NodeJS.Timeout | undefined, at: number): NodeJS.Timeout | undefined => {
      if (prev) clearTimeout(prev);
      if (!Number.isFinite(at)) return undefined;
      const t = setTimeout(
        () => {
          if (!this.closed) void this.runDue().finally(() => this.arm());
        },
        Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())),
      );
      t.unref();
      return t;
    };
    const pendingConfirmations = [...this.store.confirmations.values()]
      .filter((c) => !this.store.rollingBack.has(c.id))
      .map((c) => c.deadline);
    this.confirmTimer = set(this.confirmTimer, next(pendingConfirmations));
    this.expiryTimer = set(
      this.expiryTimer,
      next(
        [...this.store.expiries.values()].filter((e) => !this.expiring.has(e.key)).map((e) => e.expiresAt),
      ),
    );
  }

  /** Undoes the change's own diff: all at once, or step by step when part of it no longer applies. */
  private async rollback(c: ConfirmationRecord): Promise<RollbackReport> {
    if (this.store.rollingBack.has(c.id)) return { id: c.id, skipped: [] };
    this.store.rollingBack.add(c.id);
    const options: ApplyOptions = {
      origin: 'rollback',
      identity: `not confirmed: ${c.id}`,
      ...(c.requestId ? { requestId: c.requestId } : {}),
      allowLockout: true,
    };
    const skipped: string[] = [];
    try {
      try {
        await this.apply(c.undo, { ...options, settles: { confirmations: [c.id] } });
      } catch {
        for (const [i, op] of c.undo.entries()) {
          try {
            await this.apply([op], options);
          } catch (error) {
            skipped.push(`step ${i + 1} (${op.op}): ${DomainError.from(error).message}`);
          }
        }
        await this.store.settle({ resolves: [c.id] });
      }
    } finally {
      this.store.rollingBack.delete(c.id);
    }
    const report = { id: c.id, skipped };
    this.onRollback?.(report);
    return report;
  }

  /** Deletes expired rules (by spec, so a rule changed meanwhile is left), batched by the queue. */
  private async expire(due: readonly ExpiryRecord[]): Promise<void> {
    for (const e of due) this.expiring.add(e.key);
    await Promise.allSettled(
      due.map(async (e) => {
        try {
          await this.apply(
            [
              {
                op: 'delete',
                family: e.family,
                table: e.table,
                chain: e.chain,
                target: { rule: { spec: e.text } },
              },
            ],
            { origin: 'expiry', identity: `expired: ${e.key}`, settles: { expiries: [e.key] } },
          );
        } catch (error) {
          // Gone or changed meanwhile (not_found), or refused: not expired twice.
          if (DomainError.from(error).code !== 'unavailable') await this.store.settle({ expired: [e.key] });
        } finally {
          this.expiring.delete(e.key);
        }
      }),
    );
  }
}
