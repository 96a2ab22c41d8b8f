/**
 * iptables' rule verbs: -A, -I, -R, -D, -C. The rule goes as the API's `spec` (spec.ts),
 * so the server reads it with the same parser as any other client's. Success prints
 * nothing, as iptables does (`--json` prints the API's answer).
 *
 * -D by spec and -C go through a transaction: the contract deletes by content only there.
 * -C is a dry run of that delete: it succeeds exactly when an identical rule (after the
 * server's canonicalization) is in the chain, and changes nothing.
 */
import { call } from '../api.js';
import type { IptablesCommand } from '../argv.js';
import { CliError, EXIT } from '../errors.js';
import { asOperations, type DeleteOp, type ReplaceOp } from '../operations.js';
import { checkedSpec } from '../spec.js';
import { type Context, changed, printJson, txOptions, writeQuery } from './context.js';

function chainOf(cmd: IptablesCommand): string {
  if (cmd.chain === undefined) throw new CliError(EXIT.usage, `${cmd.option} requires a chain`);
  return cmd.chain;
}

function done(ctx: Context, answer: unknown): number {
  changed(ctx, answer);
  return EXIT.ok;
}

export async function append(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/tables/{table}/chains/{chain}/rules', {
      params: { path: { table: cmd.table, chain: chainOf(cmd) }, query: writeQuery(ctx) },
      body: { spec: checkedSpec(cmd.ruleWords) },
    }),
  );
  return done(ctx, answer);
}

export async function insert(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/tables/{table}/chains/{chain}/rules/at/{position}', {
      params: {
        path: { table: cmd.table, chain: chainOf(cmd), position: cmd.position ?? 1 },
        query: writeQuery(ctx),
      },
      body: { spec: checkedSpec(cmd.ruleWords) },
    }),
  );
  return done(ctx, answer);
}

async function transaction(ctx: Context, ops: DeleteOp[] | ReplaceOp[], dryRun: boolean) {
  return call(
    ctx.connection,
    ctx.api.POST('/v1/transactions', {
      body: { operations: asOperations(ops), dryRun, ...txOptions(ctx) },
    }),
  );
}

export async function replace(ctx: Context, cmd: IptablesCommand): Promise<number> {
  if (cmd.position === undefined) throw new CliError(EXIT.usage, '-R requires a rule number');
  const op: ReplaceOp = {
    op: 'replace',
    family: ctx.common.family,
    table: cmd.table,
    chain: chainOf(cmd),
    target: { position: cmd.position },
    rule: { spec: checkedSpec(cmd.ruleWords) },
  };
  return done(ctx, await transaction(ctx, [op], false));
}

export async function remove(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const chain = chainOf(cmd);
  if (cmd.position !== undefined) {
    const answer = await call(
      ctx.connection,
      ctx.api.DELETE('/v1/tables/{table}/chains/{chain}/rules/at/{position}', {
        params: { path: { table: cmd.table, chain, position: cmd.position }, query: writeQuery(ctx) },
      }),
    );
    return done(ctx, answer);
  }
  const op: DeleteOp = {
    op: 'delete',
    family: ctx.common.family,
    table: cmd.table,
    chain,
    target: { rule: { spec: checkedSpec(cmd.ruleWords) } },
  };
  return done(ctx, await transaction(ctx, [op], false));
}

export async function check(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const op: DeleteOp = {
    op: 'delete',
    family: ctx.common.family,
    table: cmd.table,
    chain: chainOf(cmd),
    target: { rule: { spec: checkedSpec(cmd.ruleWords) } },
  };
  try {
    await transaction(ctx, [op], true);
  } catch (err) {
    // iptables' words for a rule that is not there; other failures keep their own.
    if (err instanceof CliError && err.exitCode === EXIT.failed && /\brule\b/i.test(err.message))
      throw new CliError(EXIT.failed, 'Bad rule (does a matching rule exist in that chain?)');
    throw err;
  }
  if (ctx.common.json) printJson(ctx, { exists: true });
  return EXIT.ok;
}
