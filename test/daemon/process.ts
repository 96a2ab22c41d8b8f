/**
 * Portcullis as a child process for the daemon tests: `node --import tsx src/main.ts` with
 * a clean environment (no PORTCULLIS_* of the test run), stderr collected, JSON log lines
 * parsed, waits bounded, and every process it started killed by pid at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { findLog, type LogRecord, parseLogLines } from '../../src/observe/log-lines.js';
import { stopDaemon } from '../helpers/stop.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'main.ts');

export interface Daemon {
  readonly child: ChildProcess;
  log(): string;
  records(): LogRecord[];
  /** Waits until a log record with this message (and fields) appears; rejects on exit or timeout. */
  waitFor(msg: string, fields?: Readonly<Record<string, unknown>>, timeoutMs?: number): Promise<LogRecord>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Daemon[] = [];

afterEach(async () => {
  for (const d of started.splice(0)) await stopDaemon(d.child, d.exited);
}, 30_000);

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return { ...env, ...extra };
}

export function startDaemon(args: readonly string[], env: Record<string, string> = {}): Daemon {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  const waiters = new Set<() => void>();
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    text += d;
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.on('exit', (code, signal) => {
      res({ code, signal });
      for (const w of [...waiters]) w();
    });
  });
  const d: Daemon = {
    child,
    log: () => text,
    records: () => parseLogLines(text),
    exited,
    waitFor(msg, fields = {}, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for "${msg}"; log:\n${text}`));
        }, timeoutMs);
        const check = () => {
          const r = findLog(text, msg, fields);
          if (r) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(r);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(
              new Error(`exited (${child.exitCode ?? child.signalCode}) before "${msg}"; log:\n${text}`),
            );
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
  started.push(d);
  return d;
}
