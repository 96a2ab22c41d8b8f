/**
 * `save`: the ruleset as iptables-save text, from the service (GET /v1/ruleset with
 * `Accept: text/plain`), without counters and without iptables-save's `# Generated`
 * comment lines; `-t TABLE` keeps that table's block only.
 */
import { call } from '../api.js';
import type { WordCommand } from '../argv.js';
import { TABLES } from '../commands.js';
import { CliError, EXIT } from '../errors.js';
import type { Context } from './context.js';

/** The `*table` ... `COMMIT` block of one table, or '' when the text has none. */
export function tableBlock(text: string, table: string): string {
  const lines = text.split('\n');
  const start = lines.indexOf(`*${table}`);
  if (start === -1) return '';
  const end = lines.indexOf('COMMIT', start);
  return `${lines.slice(start, end === -1 ? undefined : end + 1).join('\n')}\n`;
}

export async function save(ctx: Context, cmd: WordCommand): Promise<number> {
  const table = cmd.options.get('table');
  if (typeof table === 'string' && !TABLES.some((t) => t === table))
    throw new CliError(EXIT.table, `table "${table}" does not exist (${TABLES.join(', ')})`);
  if (cmd.operands.length > 0)
    throw new CliError(EXIT.usage, `save takes no operands (got "${cmd.operands[0]}")`);
  if (ctx.common.json) {
    const answer = await call(
      ctx.connection,
      ctx.api.GET('/v1/ruleset', { params: { query: { family: ctx.common.family } } }),
    );
    if (typeof answer === 'string') throw new CliError(EXIT.failed, 'the service answered text, not JSON');
    const tables = typeof table === 'string' ? answer.tables.filter((t) => t.name === table) : answer.tables;
    ctx.io.stdout.write(`${JSON.stringify({ ...answer, tables }, null, 2)}\n`);
    return EXIT.ok;
  }
  const text = await call(
    ctx.connection,
    ctx.api.GET('/v1/ruleset', {
      params: { query: { family: ctx.common.family } },
      headers: { accept: 'text/plain' },
      parseAs: 'text',
    }),
  );
  ctx.io.stdout.write(typeof table === 'string' ? tableBlock(text, table) : text);
  return EXIT.ok;
}
