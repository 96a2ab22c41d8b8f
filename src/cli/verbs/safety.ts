/**
 * Change safety and presets, which iptables cannot do:
 * - `pending`: changes applied with `--confirm SECONDS` that wait for a confirmation;
 * - `confirm ID`: keep one; `rollback ID`: undo it now (its own diff);
 * - `limit PORT [--hitcount N] [--seconds S] ...`: the secure-server article in one call;
 * - `harden [--allow-ssh-from LIST] [--ssh-port N]`: the hardening article in one call.
 * Presets print the iptables commands they expanded into that changed something (nothing
 * on a second run), and take `--test` for a dry run, `--confirm` and `--allow-lockout`.
 */
import { call, type Schemas } from '../api.js';
import type { WordCommand } from '../argv.js';
import { EXIT, usage } from '../errors.js';
import { renderChange } from '../format/change.js';
import { type Context, changed, printJson, txOptions } from './context.js';

function oneId(cmd: WordCommand): string {
  const [id, more] = cmd.operands;
  if (id === undefined || more !== undefined) throw usage(`${cmd.name} takes one confirmation id`);
  return id;
}

export async function pending(ctx: Context, cmd: WordCommand): Promise<number> {
  if (cmd.operands.length > 0) throw usage('pending takes no operands');
  const answer = await call(ctx.connection, ctx.api.GET('/v1/confirmations'));
  if (ctx.common.json) printJson(ctx, answer);
  else
    for (const c of answer.confirmations)
      ctx.io.stdout.write(
        `${c.id}  rolled back at ${c.deadline}  ${c.operations.join(',')}${c.lockouts.length ? `  cuts: ${c.lockouts.map((l) => l.path).join('; ')}` : ''}\n`,
      );
  return EXIT.ok;
}

export async function confirm(ctx: Context, cmd: WordCommand): Promise<number> {
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/confirmations/{id}', { params: { path: { id: oneId(cmd) } } }),
  );
  if (ctx.common.json) printJson(ctx, answer);
  return EXIT.ok;
}

export async function rollback(ctx: Context, cmd: WordCommand): Promise<number> {
  const answer = await call(
    ctx.connection,
    ctx.api.DELETE('/v1/confirmations/{id}', { params: { path: { id: oneId(cmd) } } }),
  );
  if (ctx.common.json) printJson(ctx, answer);
  for (const s of answer.skipped) ctx.io.stderr.write(`portcullis: not undone: ${s}\n`);
  return EXIT.ok;
}

function numberOption(cmd: WordCommand, key: string): number | undefined {
  const v = cmd.options.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[0-9]{1,10}$/.test(v)) throw usage(`--${key} takes a whole number`);
  return Number(v);
}

function wordOption<const W extends string>(
  cmd: WordCommand,
  key: string,
  words: readonly W[],
): W | undefined {
  const v = cmd.options.get(key);
  if (v === undefined) return undefined;
  const found = words.find((w) => w === v);
  if (found === undefined) throw usage(`--${key} must be one of ${words.join(', ')}`);
  return found;
}

/** Prints what a preset changed, one iptables command per line (nothing when already in place). */
function presetDone(ctx: Context, answer: Schemas['PresetResult']): number {
  changed(ctx, answer);
  if (!ctx.common.json) for (const c of answer.changes) ctx.io.stdout.write(`${renderChange(c)}\n`);
  return EXIT.ok;
}

const PORTS: Readonly<Record<string, number>> = { ssh: 22, http: 80, https: 443 };

export async function limit(ctx: Context, cmd: WordCommand): Promise<number> {
  const [what, more] = cmd.operands;
  if (what === undefined || more !== undefined)
    throw usage('limit takes one port (a number, or ssh, http, https)');
  const port = PORTS[what] ?? (/^[0-9]{1,5}$/.test(what) ? Number(what) : Number.NaN);
  if (!(port >= 1 && port <= 65535)) throw usage(`limit: "${what}" is not a port`);
  const protocol = wordOption(cmd, 'protocol', ['tcp', 'udp'] as const);
  const method = wordOption(cmd, 'method', ['recent', 'hashlimit'] as const);
  const action = wordOption(cmd, 'action', ['DROP', 'REJECT'] as const);
  const seconds = numberOption(cmd, 'seconds');
  const hitcount = numberOption(cmd, 'hitcount');
  const chain = cmd.options.get('chain');
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/presets/rate-limit', {
      body: {
        port,
        families: [ctx.common.family],
        ...(protocol ? { protocol } : {}),
        ...(method ? { method } : {}),
        ...(action ? { action } : {}),
        ...(seconds !== undefined ? { seconds } : {}),
        ...(hitcount !== undefined ? { hitcount } : {}),
        ...(typeof chain === 'string' ? { chain } : {}),
        dryRun: cmd.options.has('test'),
        ...txOptions(ctx),
      },
    }),
  );
  return presetDone(ctx, answer);
}

export async function harden(ctx: Context, cmd: WordCommand): Promise<number> {
  if (cmd.operands.length > 0) throw usage('harden takes no operands');
  const from = cmd.options.get('allowSshFrom');
  const sshPort = numberOption(cmd, 'sshPort');
  const answer = await call(
    ctx.connection,
    ctx.api.POST('/v1/presets/harden', {
      body: {
        families: [ctx.common.family],
        ...(typeof from === 'string' ? { allowSshFrom: from.split(',').filter((s) => s !== '') } : {}),
        ...(sshPort !== undefined ? { sshPort } : {}),
        dryRun: cmd.options.has('test'),
        ...txOptions(ctx),
      },
    }),
  );
  return presetDone(ctx, answer);
}
