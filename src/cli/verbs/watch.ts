/**
 * `watch`: the service's event stream (GET /v1/events, Server-Sent Events) as one line per
 * change: `#REVISION ORIGIN [CLIENT] CHANGE`, the change written as the iptables command
 * that makes it (`-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT`). With `--json`, one
 * ChangeEvent per line (NDJSON). Runs until interrupted (Ctrl-C ends it with status 0) or
 * until the service closes the stream (status 4: it went away).
 */
import { problemError, type Schemas, unreachable } from '../api.js';
import type { WordCommand } from '../argv.js';
import { CliError, EXIT, usage } from '../errors.js';
import { renderChange } from '../format/change.js';
import { styleFor } from '../format/style.js';
import type { Context } from './context.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isChangeEvent(value: unknown): value is Schemas['ChangeEvent'] {
  return (
    isRecord(value) &&
    typeof value.revision === 'number' &&
    (value.origin === 'service' || value.origin === 'external') &&
    Array.isArray(value.changes)
  );
}

interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Splits Server-Sent Events text into events; returns them and the unfinished rest. */
export function parseSse(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  const blocks = buffer.replace(/\r\n?/g, '\n').split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join('\n') });
  }
  return { events, rest };
}

function lines(ctx: Context, e: SseEvent): string[] {
  const style = styleFor(ctx.io.stdout, ctx.io.env);
  let parsed: unknown;
  try {
    parsed = JSON.parse(e.data);
  } catch {
    return [];
  }
  if (e.event === 'resync') {
    if (ctx.common.json) return [JSON.stringify({ resync: parsed })];
    const revision = isRecord(parsed) ? String(parsed.revision) : '?';
    return [`#${revision} resync: events were missed, re-read the ruleset`];
  }
  if (!isChangeEvent(parsed)) return [];
  if (ctx.common.json) return [JSON.stringify(parsed)];
  const who = `#${parsed.revision} ${parsed.origin}${parsed.client === undefined ? '' : ` ${parsed.client}`}`;
  return parsed.changes.map((c) => `${who} ${renderChange(c, style)}`);
}

export async function watch(ctx: Context, cmd: WordCommand): Promise<number> {
  if (cmd.operands.length > 0) throw usage(`watch takes no operands (got "${cmd.operands[0]}")`);
  const signal = ctx.io.signal;
  let stream: ReadableStream<Uint8Array> | null;
  try {
    const answer = await ctx.api.GET('/v1/events', { parseAs: 'stream', signal });
    if (!answer.response.ok || answer.data === undefined) {
      throw problemError(answer.response.status, answer.error);
    }
    stream = answer.data;
  } catch (err) {
    if (signal.aborted) return EXIT.ok;
    if (err instanceof CliError) throw err;
    throw unreachable(ctx.connection, err);
  }
  if (stream === null) throw new CliError(EXIT.resource, 'the service sent no event stream');
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parsed = parseSse(buffer);
      buffer = parsed.rest;
      for (const e of parsed.events) for (const line of lines(ctx, e)) ctx.io.stdout.write(`${line}\n`);
    }
  } catch (err) {
    if (signal.aborted) return EXIT.ok;
    throw unreachable(ctx.connection, err);
  }
  if (signal.aborted) return EXIT.ok;
  throw new CliError(EXIT.resource, `the service at ${ctx.connection.describe} closed the event stream`);
}
