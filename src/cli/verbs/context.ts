/**
 * What every command runs with: the parsed options, the typed client and the way out
 * (stdout, stderr, colour). Built once by main.ts.
 */
import type { Api, Schemas } from '../api.js';
import type { Common } from '../argv.js';
import type { Connection } from '../connection.js';
import type { Io } from '../io.js';

export interface Context {
  readonly io: Io;
  readonly common: Common;
  readonly connection: Connection;
  readonly api: Api;
}

/** Prints `value` as the API gave it (for `--json`). */
export function printJson(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Query parameters of a change: the family, the lockout override and commit-confirmed when asked for. */
export function writeQuery(ctx: Context): {
  family: Schemas['Family'];
  allowLockout?: boolean;
  confirmWithin?: number;
} {
  const { allowLockout, confirmWithin } = ctx.common;
  return {
    family: ctx.common.family,
    ...(allowLockout ? { allowLockout: true } : {}),
    ...(confirmWithin ? { confirmWithin } : {}),
  };
}

/** The lockout override and commit-confirmed, for a transaction's body. */
export function txOptions(ctx: Context): { allowLockout: boolean; confirmWithin?: number } {
  const { allowLockout, confirmWithin } = ctx.common;
  return { allowLockout, ...(confirmWithin ? { confirmWithin } : {}) };
}

/** After a change: `--json` prints the answer; a commit-confirmed one says how to keep it (stderr). */
export function changed(ctx: Context, answer: unknown): void {
  if (ctx.common.json) printJson(ctx, answer);
  const c =
    typeof answer === 'object' && answer !== null && 'confirmation' in answer
      ? answer.confirmation
      : undefined;
  if (typeof c !== 'object' || c === null || !('id' in c) || !('deadline' in c)) return;
  ctx.io.stderr.write(
    `portcullis: applied; keep it with "portcullis confirm ${String(c.id)}" before ${String(c.deadline)}, or it is rolled back\n`,
  );
}
