/**
 * Counts the service's own kernel writes (restores, deletes by handle), so that a read of the
 * kernel made outside the queue can prove that none of ours began or was under way while it
 * ran (kernel-sync.ts: the start-up read that learns rule handles). Every write the service
 * makes goes through the executor and the handle deleter it was given; the facade wraps both
 * once, so no write can be missed.
 */
import type { Executor, RuleHandles } from '../exec/executor.js';

export class WriteCounter {
  /** Writes begun so far. */
  started = 0;
  /** Writes finished (either way) so far. */
  finished = 0;

  /** No write of ours is under way. */
  get idle(): boolean {
    return this.started === this.finished;
  }

  executor(inner: Executor): Executor {
    const restore: Executor['restore'] = (family, text, options) =>
      this.count(() => inner.restore(family, text, options));
    return delegate(inner, { restore });
  }

  handles(inner: RuleHandles): RuleHandles {
    const del: RuleHandles['delete'] = (family, refs, options) =>
      this.count(() => inner.delete(family, refs, options));
    return delegate(inner, { delete: del });
  }

  private async count<T>(write: () => Promise<T>): Promise<T> {
    this.started++;
    try {
      return await write();
    } finally {
      this.finished++;
    }
  }
}

/** `inner` with `overrides`; every other method is called on `inner` itself (private fields stay reachable). */
function delegate<T extends object>(inner: T, overrides: Partial<T>): T {
  return new Proxy(inner, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return (overrides as Record<PropertyKey, unknown>)[prop];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
