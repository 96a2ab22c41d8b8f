/**
 * `lint`: the service's findings about the ruleset (GET /v1/lint): rules that can never
 * match, duplicates, risky policies. Status 1 when a finding is an error, so `portcullis
 * lint` can gate a deployment; warnings and notes alone leave it 0.
 */
import { call } from '../api.js';
import type { WordCommand } from '../argv.js';
import { EXIT, usage } from '../errors.js';
import { renderLint } from '../format/lint.js';
import { styleFor } from '../format/style.js';
import { type Context, printJson } from './context.js';

export async function lint(ctx: Context, cmd: WordCommand): Promise<number> {
  if (cmd.operands.length > 0) throw usage(`lint takes no operands (got "${cmd.operands[0]}")`);
  const answer = await call(ctx.connection, ctx.api.GET('/v1/lint'));
  if (ctx.common.json) printJson(ctx, answer);
  else ctx.io.stdout.write(renderLint(answer, styleFor(ctx.io.stdout, ctx.io.env)));
  return answer.findings.some((f) => f.severity === 'error') ? EXIT.failed : EXIT.ok;
}
