/**
 * Change events: every committed change, with the revision it produced and
 * who made it. Listeners are called synchronously in revision order; a
 * listener that throws is removed rather than allowed to stall the service.
 */
import type { Family } from '../domain/family.js';
import type { Change } from './planner.js';

export interface ChangeEventChange {
  /**
   * Besides the planned changes: `ruleset.reloaded` (the model was re-read as a whole after the
   * change feed was lost), `ruleset.diverged` (verify found the model and the kernel apart, for
   * this chain; a re-read follows), `backend.mixed` (rules in the other iptables backend, which
   * the kernel also filters with; `detail` says which).
   */
  readonly type: Change['type'] | 'ruleset.reloaded' | 'ruleset.diverged' | 'backend.mixed';
  readonly detail?: string;
  readonly family: Family;
  readonly table?: string;
  readonly chain?: string;
  readonly position?: number;
  readonly id?: string;
  readonly text?: string;
  readonly newName?: string;
  readonly policy?: string;
}

export interface ChangeEvent {
  readonly revision: number;
  /** `service` for changes made through Portcullis, `external` for changes found in the kernel. */
  readonly origin: 'service' | 'external';
  /** Which client asked (`rest`, `grpc`, ...) for service changes. */
  readonly client?: string;
  readonly time: string;
  readonly changes: readonly ChangeEventChange[];
  /** For service changes: the id of the request that made it (logs, audit log). */
  readonly requestId?: string;
}

export type ChangeListener = (event: ChangeEvent) => void;

export class EventHub {
  private readonly listeners = new Set<ChangeListener>();

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  emit(event: ChangeEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch {
        this.listeners.delete(l);
      }
    }
  }

  clear(): void {
    this.listeners.clear();
  }
}

/** The public form of a planned change (no internal entry objects). */
export function publicChange(c: Change): ChangeEventChange {
  switch (c.type) {
    case 'rule.added':
      return {
        type: c.type,
        family: c.family,
        table: c.table,
        chain: c.chain,
        position: c.position,
        id: c.entry.id,
        text: c.text,
      };
    case 'rule.deleted':
      return {
        type: c.type,
        family: c.family,
        table: c.table,
        chain: c.chain,
        position: c.position,
        id: c.id,
        text: c.text,
      };
    case 'chain.renamed':
      return { type: c.type, family: c.family, table: c.table, chain: c.chain, newName: c.newName };
    case 'policy.set':
      return { type: c.type, family: c.family, table: c.table, chain: c.chain, policy: c.policy };
    default:
      return { type: c.type, family: c.family, table: c.table, chain: c.chain };
  }
}
