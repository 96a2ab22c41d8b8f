/**
 * Finishing or undoing, at start, a change that was committing in several
 * parts when the service stopped (kill -9, power loss): see
 * store/change-journal.ts for the journal and its markers. Runs before the
 * first read of the kernel, so the service reports ready only once every
 * change is whole or absent.
 */
import type { Family } from '../domain/family.js';
import type { Executor } from '../exec/executor.js';
import { RestoreBuilder } from '../iptables/restore-builder.js';
import { parseSave } from '../iptables/save-parser.js';
import { type ChangeJournal, MARKER_PREFIX } from '../store/change-journal.js';

export interface Recovery {
  /** `none`: nothing was in flight; `whole`: every part had committed; `undone`: the committed parts were undone. */
  readonly outcome: 'none' | 'whole' | 'undone';
  readonly id?: string;
  /** Blocks undone. */
  readonly undone: number;
}

export async function recoverJournal(
  journal: ChangeJournal,
  executor: Executor,
  families: readonly Family[],
  /** Records what a change found whole asked to record (the journal's `after`). */
  settle?: (after: unknown) => Promise<void>,
): Promise<Recovery> {
  const entry = await journal.read();
  if (!entry) return { outcome: 'none', undone: 0 };
  const prefix = `${MARKER_PREFIX}${entry.id}-`;
  // Which markers the kernel holds: the blocks that committed.
  const present: { family: Family; table: string; marker: string }[] = [];
  for (const family of families) {
    for (const t of parseSave(await executor.save(family), family).tables) {
      for (const c of t.chains)
        if (c.name.startsWith(prefix)) present.push({ family, table: t.name, marker: c.name });
    }
  }
  const has = (family: Family, table: string, marker: string) =>
    present.some((p) => p.family === family && p.table === table && p.marker === marker);
  const whole = entry.state === 'complete' || entry.blocks.every((b) => has(b.family, b.table, b.marker));
  if (whole) {
    for (const family of families) {
      const builder = new RestoreBuilder();
      for (const p of present) if (p.family === family) builder.deleteChain(p.table as never, p.marker);
      if (!builder.isEmpty) await executor.restore(family, builder.toString(), { noflush: true });
    }
    // What the change asked to record once whole, recorded before the journal goes.
    if (entry.after !== undefined) await settle?.(entry.after);
    await journal.clear();
    return { outcome: 'whole', id: entry.id, undone: 0 };
  }
  // Undo the committed blocks, newest first; each undo removes its marker in the same commit.
  let undone = 0;
  for (let i = entry.blocks.length - 1; i >= 0; i--) {
    const b = entry.blocks[i];
    if (!b || !has(b.family, b.table, b.marker)) continue;
    await executor.restore(b.family, b.undo, { noflush: true });
    undone++;
  }
  await journal.clear();
  return { outcome: 'undone', id: entry.id, undone };
}
