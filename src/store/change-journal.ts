/**
 * The change journal: what a change that commits in several parts (several
 * tables, several families, or a table split into several blocks) intends,
 * written durably before its first part reaches the kernel, so that a crash
 * (kill -9, power loss) between parts can be finished or undone at the next
 * start before the service reports ready. A change applied by one commit
 * needs no journal: the kernel applies it whole or not at all.
 *
 * Each block of such a change creates a marker chain in the same commit
 * (`PCL-TX-<id>-<n>`), so the kernel itself records which blocks committed. The
 * entry holds, per block, the restore text that undoes it. At start:
 * - state `complete` (every part committed, markers not yet removed), or every
 *   marker present: the change is whole; the markers are removed;
 * - some markers present: those blocks are undone (newest first), then their
 *   markers removed: the change is absent.
 * At most one such change is in flight (the batch runner runs one at a time),
 * so the journal is one file.
 */
import { join } from 'node:path';
import type { Family, TableName } from '../domain/family.js';
import { readFileIfExists, removeDurable, writeFileAtomic } from './durable.js';

export interface JournalBlock {
  readonly family: Family;
  readonly table: TableName;
  /** The marker chain the block creates in its commit. */
  readonly marker: string;
  /** `--noflush` restore text that undoes the block's commands. */
  readonly undo: string;
}

export interface JournalEntry {
  readonly id: string;
  readonly state: 'applying' | 'complete';
  /** In commit order. */
  readonly blocks: readonly JournalBlock[];
  /**
   * What the service must record when (and only when) the change is whole: pending
   * confirmations, rule expiries, confirmations the change resolves (src/service/pending.ts).
   * Opaque here; kept through `complete`, so a crash after the commit and before the record
   * is settled at the next start.
   */
  readonly after?: unknown;
}

/** Marker chains start with this; no user chain may (validate-operations refuses it). */
export const MARKER_PREFIX = 'PCL-TX-';

export class ChangeJournal {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'change-journal.json');
  }

  async write(entry: JournalEntry): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(entry)}\n`);
  }

  async clear(): Promise<void> {
    await removeDurable(this.path);
  }

  /** The change in flight at the last stop, if any (a malformed file is an error naming it). */
  async read(): Promise<JournalEntry | undefined> {
    const text = await readFileIfExists(this.path);
    if (text === undefined) return undefined;
    let entry: unknown;
    try {
      entry = JSON.parse(text);
    } catch {
      throw new Error(`the change journal ${this.path} is not valid JSON`);
    }
    if (!isEntry(entry)) throw new Error(`the change journal ${this.path} does not hold a journal entry`);
    return entry;
  }
}

function isEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.id === 'string' &&
    (e.state === 'applying' || e.state === 'complete') &&
    Array.isArray(e.blocks) &&
    e.blocks.every((b: unknown) => {
      const x = b as Record<string, unknown>;
      return (
        typeof x === 'object' &&
        x !== null &&
        (x.family === 'ipv4' || x.family === 'ipv6') &&
        typeof x.table === 'string' &&
        typeof x.marker === 'string' &&
        x.marker.startsWith(MARKER_PREFIX) &&
        typeof x.undo === 'string'
      );
    })
  );
}
