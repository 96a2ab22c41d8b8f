/**
 * iptables' chain verbs: -N, -X, -F, -Z, -E, -P. Without a chain, -X deletes every user
 * chain and -F empties every chain of the table, each as one transaction (all or nothing,
 * where iptables would stop half way).
 */
import { type Api, call, type Schemas } from '../api.js';
import type { IptablesCommand } from '../argv.js';
import { POLICIES } from '../commands.js';
import type { Connection } from '../connection.js';
import { CliError, EXIT, usage } from '../errors.js';
import { asOperations, type CliOperation } from '../operations.js';
import { type Context, changed, txOptions, writeQuery } from './context.js';

function chainOf(cmd: IptablesCommand): string {
  if (cmd.chain === undefined) throw usage(`${cmd.option} requires a chain`);
  return cmd.chain;
}

function done(ctx: Context, answer: unknown): number {
  changed(ctx, answer);
  return EXIT.ok;
}

/** The chains of the table (names, built-in or not). */
export async function listChains(
  api: Api,
  connection: Connection,
  family: Schemas['Family'],
  table: Schemas['TableName'],
): Promise<Schemas['ChainSummary'][]> {
  const answer = await call(
    connection,
    api.GET('/v1/tables/{table}/chains', { params: { path: { table }, query: { family } } }),
  );
  return answer.chains;
}

async function transaction(ctx: Context, ops: readonly CliOperation[]): Promise<number> {
  if (ops.length === 0) return done(ctx, { changes: [] });
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/transactions', {
      body: { operations: asOperations(ops), dryRun: false, ...txOptions(ctx) },
    }),
  );
  return done(ctx, answer);
}

export async function newChain(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/tables/{table}/chains', {
      params: { path: { table: cmd.table }, query: writeQuery(ctx) },
      body: { name: chainOf(cmd) },
    }),
  );
  return done(ctx, answer);
}

/**
 * `-X`/`-F` with a chain: that chain's own endpoint. Without: every chain `pick` selects, as
 * one transaction of `op` (iptables would stop half way through the table).
 */
async function oneOrAll(
  ctx: Context,
  cmd: IptablesCommand,
  one: (chain: string) => Promise<unknown>,
  op: 'deleteChain' | 'flushChain',
  pick: (c: Schemas['ChainSummary']) => boolean,
): Promise<number> {
  if (cmd.chain !== undefined) return done(ctx, await one(cmd.chain));
  const chains = await listChains(ctx.api, ctx.connection, ctx.common.family, cmd.table);
  const base = { family: ctx.common.family, table: cmd.table };
  return transaction(
    ctx,
    chains.filter(pick).map((c) => ({ op, ...base, chain: c.name })),
  );
}

export function deleteChain(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const one = (chain: string) =>
    call(
      ctx.connection,
      ctx.api.DELETE('/v1/tables/{table}/chains/{chain}', {
        params: { path: { table: cmd.table, chain }, query: writeQuery(ctx) },
      }),
    );
  return oneOrAll(ctx, cmd, one, 'deleteChain', (c) => !c.builtin);
}

export function flush(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const one = (chain: string) =>
    call(
      ctx.connection,
      ctx.api.POST('/v1/tables/{table}/chains/{chain}/flush', {
        params: { path: { table: cmd.table, chain }, query: writeQuery(ctx) },
      }),
    );
  return oneOrAll(ctx, cmd, one, 'flushChain', (c) => c.rules > 0);
}

export async function zero(ctx: Context, cmd: IptablesCommand): Promise<number> {
  if (cmd.position !== undefined)
    throw usage('zeroing the counters of one rule is not supported: give only the chain');
  if (cmd.chain !== undefined) {
    const answer = await call(
      ctx.connection,
      ctx.api.POST('/v1/tables/{table}/chains/{chain}/zero-counters', {
        params: { path: { table: cmd.table, chain: cmd.chain }, query: writeQuery(ctx) },
      }),
    );
    return done(ctx, answer);
  }
  return transaction(ctx, [{ op: 'zeroCounters', family: ctx.common.family, table: cmd.table }]);
}

export async function rename(ctx: Context, cmd: IptablesCommand): Promise<number> {
  if (cmd.newName === undefined) throw usage('-E requires old-chain-name and new-chain-name');
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/tables/{table}/chains/{chain}/rename', {
      params: { path: { table: cmd.table, chain: chainOf(cmd) }, query: writeQuery(ctx) },
      body: { newName: cmd.newName },
    }),
  );
  return done(ctx, answer);
}

export async function policy(ctx: Context, cmd: IptablesCommand): Promise<number> {
  const value = POLICIES.find((p) => p === cmd.policy);
  // iptables: "Bad policy name", status 1.
  if (value === undefined)
    throw new CliError(EXIT.failed, `Bad policy name "${cmd.policy ?? ''}" (ACCEPT or DROP)`);
  const answer = await call(
    ctx.connection,
    ctx.api.PUT('/v1/tables/{table}/chains/{chain}/policy', {
      params: { path: { table: cmd.table, chain: chainOf(cmd) }, query: writeQuery(ctx) },
      body: { policy: value },
    }),
  );
  return done(ctx, answer);
}
