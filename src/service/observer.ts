/**
 * What the service tells the rest of the daemon about its work: metrics,
 * persistence (save after every committed change) and the audit log all
 * listen here, so the service core knows nothing of them. Every hook is
 * optional and called synchronously; a hook that throws is ignored (an
 * observer can never fail a change).
 */
import type { ErrorCode } from '../domain/errors.js';
import type { Family, TableName } from '../domain/family.js';
import type { ChangeEventChange } from './events.js';

/** One job that changed the ruleset, as committed. */
export interface CommitRecord {
  readonly time: string;
  readonly revisionBefore: number;
  readonly revisionAfter: number;
  readonly origin: string | undefined;
  readonly identity: string | undefined;
  readonly requestId: string | undefined;
  /** The operations, by kind, in request order. */
  readonly operations: readonly string[];
  readonly changes: readonly ChangeEventChange[];
  /** The restore text this job contributed, per family (deletes by handle are shown as nft commands). */
  readonly restore: readonly { readonly family: Family; readonly text: string }[];
}

export interface ServiceObserver {
  /** A kernel transaction ran (a restore, a delete by handle, an undo, a probe). */
  kernel?(e: {
    readonly family: Family;
    readonly kind: 'restore' | 'handles' | 'undo' | 'probe';
    readonly tables: readonly TableName[];
    readonly ms: number;
    readonly ok: boolean;
  }): void;
  /** A batch was run: how many change jobs it held. */
  batch?(e: { readonly jobs: number }): void;
  /** A change job finished: its outcome and how long it waited in the queue. */
  job?(e: { readonly outcome: 'ok' | ErrorCode; readonly waitMs: number }): void;
  /** Changes were committed (called once per batch, with every job that changed something). */
  committed?(records: readonly CommitRecord[]): void;
  /** The model was re-read because of a change made elsewhere (or a resync). */
  reread?(e: { readonly reason: string; readonly changed: boolean }): void;
  /** Rules read from the kernel that this version cannot parse (found in the background after a read). */
  unreadable?(e: { readonly count: number; readonly first: string }): void;
}

/** Calls a hook, never letting it throw into the service. */
export function notify<K extends keyof ServiceObserver>(
  observer: ServiceObserver | undefined,
  hook: K,
  ...args: Parameters<NonNullable<ServiceObserver[K]>>
): void {
  const fn = observer?.[hook] as ((...a: unknown[]) => void) | undefined;
  if (!fn) return;
  try {
    fn.apply(observer, args);
  } catch {
    // An observer can never fail a change.
  }
}
