/**
 * `restore [--test] [--noflush] [-T TABLE] [FILE]`: the tables of an iptables-save file
 * become the ruleset in one transaction (restore-file.ts says how). `--test` plans it as a
 * dry run and applies nothing. Silent on success, as iptables-restore is.
 */
import { call, type TableName } from '../api.js';
import type { WordCommand } from '../argv.js';
import { TABLES } from '../commands.js';
import { CliError, EXIT, usage } from '../errors.js';
import { asOperations } from '../operations.js';
import { parseRestoreFile, restoreOperations } from '../restore-file.js';
import { listChains } from './chains.js';
import { type Context, changed, txOptions } from './context.js';

/** The file's text: the operand, or standard input. */
async function input(ctx: Context, cmd: WordCommand): Promise<string> {
  if (cmd.operands.length > 1) throw usage(`${cmd.name} takes one file (got ${cmd.operands.length})`);
  const file = cmd.operands[0];
  if (file === undefined || file === '-') return ctx.io.readStdin();
  try {
    return await ctx.io.readFile(file);
  } catch (err) {
    throw new CliError(
      EXIT.failed,
      `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** The transaction a restore file asks for, and whether it goes as a dry run. */
export async function plannedRestore(ctx: Context, cmd: WordCommand, dryRun: boolean) {
  if (cmd.options.has('counters')) throw usage('--counters is not supported: counters are never restored');
  const only = cmd.options.get('table');
  let table: TableName | undefined;
  if (typeof only === 'string') {
    table = TABLES.find((t) => t === only);
    if (table === undefined)
      throw new CliError(EXIT.table, `table "${only}" does not exist (${TABLES.join(', ')})`);
  }
  const tables = parseRestoreFile(await input(ctx, cmd), table);
  const { family } = ctx.common;
  const ops = await restoreOperations(tables, family, cmd.options.has('noflush'), async (t) => {
    const chains = await listChains(ctx.api, ctx.connection, family, t);
    return new Set(chains.map((c) => c.name));
  });
  if (ops.length === 0) return undefined;
  return call(
    ctx.connection,
    ctx.api.POST('/v1/transactions', {
      body: { operations: asOperations(ops), dryRun, ...txOptions(ctx) },
    }),
  );
}

export async function restore(ctx: Context, cmd: WordCommand): Promise<number> {
  const answer = await plannedRestore(ctx, cmd, cmd.options.has('test'));
  changed(ctx, answer ?? { changes: [] });
  return EXIT.ok;
}
