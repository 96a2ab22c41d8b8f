/**
 * Structured logs (pino): one JSON object per line on stderr by default, or readable
 * lines (pino-pretty) for a terminal. Every line written while a request is served
 * carries that request's `requestId` (request-context.ts).
 *
 * Secrets never reach the log: fields named like credentials (authorization, token,
 * password, secret, cookie, key, cert, ...) are written as `[redacted]`, and in any
 * text a `Bearer ...` value and a PEM block (certificates, keys) are cut out. Errors are
 * written as their message.
 */

import { createRequire } from 'node:module';
import { type DestinationStream, pino } from 'pino';
import type Pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from '../config.js';
import { currentRequestId } from './request-context.js';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger adding `bindings` to every line. */
  child(bindings: LogFields): Logger;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** @default 'auto' (pretty on a terminal, else JSON) */
  readonly format?: LogFormat;
  /** Where lines go. @default stderr, written synchronously (nothing is lost at exit) */
  readonly destination?: DestinationStream;
  /** Whether stderr is a terminal (for `auto`). @default process.stderr.isTTY */
  readonly terminal?: boolean;
}

/** Field names whose values are never written. */
const SECRET_KEY =
  /^(authorization|token|tokens|bearer|password|passphrase|secret|cookie|key|private_?key|cert|certificate|tls_?key|sha256)$/i;
const PEM = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g;
const BEARER = /\b(Bearer)\s+\S+/gi;

/** Text with credentials cut out. */
export function scrub(text: string): string {
  return text.replace(PEM, '[redacted pem]').replace(BEARER, '$1 [redacted]');
}

function clean(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEY.test(key)) return '[redacted]';
  if (value instanceof Error) return scrub(value.message);
  if (typeof value === 'string') return scrub(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 4) return '[nested]';
  if (Array.isArray(value)) return value.map((v) => clean('', v, depth + 1));
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return '[binary]';
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = clean(k, v, depth + 1);
  return out;
}

/** The fields as they may be written. */
export function cleanFields(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = clean(k, v, 0);
  }
  return out;
}

function wrap(base: pino.Logger): Logger {
  const emit =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}): void => {
      if (!base.isLevelEnabled(level)) return;
      base[level](cleanFields(fields), scrub(msg));
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (bindings) => wrap(base.child(cleanFields(bindings))),
  };
}

export function createLogger(options: LoggerOptions): Logger {
  const terminal = options.terminal ?? process.stderr.isTTY === true;
  const format = options.format ?? 'auto';
  const readable = format === 'pretty' || (format === 'auto' && terminal);
  const destination =
    options.destination ??
    (readable
      ? // Loaded only for a terminal (about 25 ms: a daemon under a supervisor logs JSON).
        (createRequire(import.meta.url)('pino-pretty') as typeof Pretty)({
          destination: 2,
          sync: true,
          colorize: terminal,
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname',
        })
      : pino.destination({ dest: 2, sync: true }));
  const base = pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Every line of a request carries its id, wherever in the code it is logged.
      mixin: () => {
        const requestId = currentRequestId();
        return requestId === undefined ? {} : { requestId };
      },
    },
    destination,
  );
  return wrap(base);
}

/** A logger that writes nothing (tests, library use). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
