/** `status`: the service's revision, backend, families, queue and health, aligned. */
import { call } from '../api.js';
import type { WordCommand } from '../argv.js';
import { EXIT, usage } from '../errors.js';
import { renderStatus } from '../format/status.js';
import { styleFor } from '../format/style.js';
import { type Context, printJson } from './context.js';

export async function status(ctx: Context, cmd: WordCommand): Promise<number> {
  if (cmd.operands.length > 0) throw usage(`status takes no operands (got "${cmd.operands[0]}")`);
  const answer = await call(ctx.connection, ctx.api.GET('/v1/status'));
  if (ctx.common.json) printJson(ctx, answer);
  else ctx.io.stdout.write(renderStatus(answer, styleFor(ctx.io.stdout, ctx.io.env)));
  return EXIT.ok;
}
