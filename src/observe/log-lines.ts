/**
 * Reading the service's own JSON log back (the demo, tests, the benchmarks): the lines a
 * child process wrote to stderr, as records, and the one with a given message.
 */
export type LogRecord = Readonly<Record<string, unknown>> & {
  readonly msg?: unknown;
  readonly level?: unknown;
};

/** Every JSON object line of `text` (other lines are skipped). */
export function parseLogLines(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push({ ...v });
    } catch {
      // a line cut short
    }
  }
  return out;
}

/** The first record whose `msg` is `msg` and whose fields include `fields`. */
export function findLog(
  text: string,
  msg: string,
  fields: Readonly<Record<string, unknown>> = {},
): LogRecord | undefined {
  return parseLogLines(text).find(
    (r) => r.msg === msg && Object.entries(fields).every(([k, v]) => r[k] === v),
  );
}

/** Whether `text` holds the line saying the service is ready. */
export function isReady(text: string): boolean {
  return /"msg":"ready"/.test(text);
}

/** The address (`host:port`) a listener logged, e.g. `listeningAddress(log, 'rest')`. */
export function listeningAddress(text: string, transport: 'rest' | 'grpc'): string | undefined {
  const r = findLog(text, transport === 'rest' ? 'REST API listening' : 'gRPC API listening', { transport });
  return typeof r?.address === 'string' ? r.address : undefined;
}
