/**
 * The service's shared state: the committed model of every family, its
 * revision, and the event hub. One object, so that every room of the service
 * (facade and views, batch runner, kernel sync) sees the same model.
 *
 * Who may touch which state (as Calico's table.go says it):
 * - `state` and `revision` are replaced only inside a queue job: by the batch
 *   runner after the kernel accepted a change (commit), and by kernel sync after
 *   it re-read the kernel. The queue runs one job batch at a time, so these
 *   writes never race. Readers (views) take the current maps, which are never
 *   mutated in place (a Draft copies what it changes).
 * - The nf_tables handle of an entry is settled once, in the background, by
 *   handle learning (batch runner); nothing a reader sees depends on it.
 * - Reads never call the executor outside the queue.
 */

import { DomainError } from '../domain/errors.js';
import { BUILTIN_CHAINS, type Family, TABLES, type TableName } from '../domain/family.js';
import { EventHub } from './events.js';
import type { ChainState, FamilyState, RuleEntry } from './state.js';

export const BUILTIN_SET = Object.fromEntries(
  TABLES.map((t) => [t, new Set(BUILTIN_CHAINS[t])]),
) as unknown as Readonly<Record<TableName, ReadonlySet<string>>>;

export class ServiceModel {
  /** The committed model (see the module comment for who replaces it). */
  state = new Map<Family, FamilyState>();
  revision = 0;
  /** When the last external change was found (ISO time). */
  lastExternal: string | undefined;
  readonly hub = new EventHub();

  /** The state of a managed family, or invalid_argument. */
  family(family: Family): FamilyState {
    const s = this.state.get(family);
    if (!s)
      throw new DomainError('invalid_argument', `family ${family} is not managed by this service`, {
        field: 'family',
      });
    return s;
  }
}

/** A table nobody has used yet reads as its built-in chains, empty, with ACCEPT policies. */
export function emptyChains(table: TableName): ReadonlyMap<string, ChainState> {
  return new Map(
    [...BUILTIN_SET[table]].map((name) => [
      name,
      { name, policy: 'ACCEPT' as const, counters: undefined, entries: [] as RuleEntry[] },
    ]),
  );
}

/** The error for a write whose expected revision is not the current one. */
export function staleRevision(expected: number, current: number): DomainError {
  return new DomainError(
    'failed_precondition',
    `the ruleset is at revision ${current}, not ${expected}: re-read it and retry`,
    { field: 'expectedRevision', details: { currentRevision: current, expectedRevision: expected } },
  );
}
