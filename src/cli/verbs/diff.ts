/**
 * `diff [--noflush] [-T TABLE] [FILE]`: what `restore` would change, as iptables command
 * lines (`-A INPUT ...`, `-D ...`, `-P INPUT DROP`), planned by the service as a dry run
 * of the same transaction; nothing is applied. Prints nothing when the ruleset already is
 * what the file says.
 */
import type { WordCommand } from '../argv.js';
import { EXIT } from '../errors.js';
import { renderChange } from '../format/change.js';
import { styleFor } from '../format/style.js';
import { type Context, printJson } from './context.js';
import { plannedRestore } from './restore.js';

export async function diff(ctx: Context, cmd: WordCommand): Promise<number> {
  const answer = await plannedRestore(ctx, cmd, true);
  if (ctx.common.json) {
    printJson(ctx, answer ?? { changes: [] });
    return EXIT.ok;
  }
  const style = styleFor(ctx.io.stdout, ctx.io.env);
  for (const change of answer?.changes ?? []) ctx.io.stdout.write(`${renderChange(change, style)}\n`);
  return EXIT.ok;
}
