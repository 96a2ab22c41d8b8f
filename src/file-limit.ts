/**
 * The open-file limit the process asks for. Every connection is a file descriptor; with the
 * common default of 1024, about a thousand idle connections make every further request (and
 * every iptables process) fail. Node raises the soft limit to the hard one at start-up, but
 * has no setrlimit to raise the hard limit: `prlimit` (util-linux) does it for our own pid,
 * run with an argv array, never a shell. Raising the hard limit needs CAP_SYS_RESOURCE
 * (root usually has it; systemd's LimitNOFILE= sets it for the service instead). The caller
 * logs what was achieved and lowers the connection cap when the limit stays too low.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface FileLimit {
  /** Infinity for "unlimited". */
  readonly soft: number;
  readonly hard: number;
}

export interface RaiseResult {
  readonly before: FileLimit;
  readonly after: FileLimit;
  /** Set when prlimit was run and failed (or is missing): why. */
  readonly error?: string;
}

export interface RaiseDeps {
  /** Reads the current limit. @default /proc/self/limits */
  readonly read?: () => FileLimit | undefined;
  /** Runs prlimit with these arguments. @default execFile('prlimit', args) */
  readonly run?: (args: readonly string[]) => Promise<void>;
  readonly pid?: number;
}

function limitValue(text: string): number {
  return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text);
}

/** The open-file limit in a /proc/PID/limits text. */
export function parseFileLimit(limitsText: string): FileLimit | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)\s+files\s*$/m.exec(limitsText);
  if (!m) return undefined;
  return { soft: limitValue(m[1] as string), hard: limitValue(m[2] as string) };
}

function readOwnLimit(): FileLimit | undefined {
  try {
    return parseFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

function runPrlimit(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('prlimit', [...args], { timeout: 5000, shell: false }, (err, _stdout, stderr) => {
      if (!err) resolve();
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error('prlimit is not installed (Debian package util-linux)'));
      else reject(new Error(String(stderr).trim() || err.message));
    });
  });
}

/**
 * Raises the open-file limit to at least `wanted` where possible: first soft and hard
 * together (needs CAP_SYS_RESOURCE), else the soft limit as far as the hard one allows.
 * Never lowers anything and never throws; `after` is what the process really has.
 */
export async function raiseFileLimit(wanted: number, deps: RaiseDeps = {}): Promise<RaiseResult> {
  const read = deps.read ?? readOwnLimit;
  const run = deps.run ?? runPrlimit;
  const pid = String(deps.pid ?? process.pid);
  const before = read();
  if (before === undefined) {
    const unknown = { soft: Number.NaN, hard: Number.NaN };
    return {
      before: unknown,
      after: unknown,
      error: 'the open-file limit is unknown (no /proc/self/limits)',
    };
  }
  if (before.soft >= wanted) return { before, after: before };
  let error: string | undefined;
  try {
    const hard = Math.max(wanted, before.hard);
    await run(['--pid', pid, `--nofile=${wanted}:${Number.isFinite(hard) ? hard : 'unlimited'}`]);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    if (before.soft < before.hard) {
      try {
        await run(['--pid', pid, `--nofile=${Math.min(wanted, before.hard)}:`]);
        error = undefined;
      } catch (e2) {
        error = e2 instanceof Error ? e2.message : String(e2);
      }
    }
  }
  const after = read() ?? before;
  return error === undefined ? { before, after } : { before, after, error };
}
