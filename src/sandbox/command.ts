/**
 * Runs a helper program to the end and collects what it printed: the one
 * spawn-and-collect of the sandbox (`npm run demo`) and of the tests (network
 * namespaces, `buf`, the demo itself). argv only, never a shell; every run is
 * bounded by a timeout. A non-zero exit is not an error here: the caller reads
 * `code` (or uses mustRun).
 *
 * Not for iptables: the executors run those through src/exec/run-process.ts,
 * which turns failures into ExecErrors.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit code; null when a signal ended the process (e.g. the timeout's). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed. @default undefined (stdin is /dev/null) */
  readonly input?: string;
  /** @default 15000 */
  readonly timeoutMs?: number;
  /** Signal sent when the timeout passes. @default 'SIGKILL' */
  readonly killSignal?: NodeJS.Signals;
  /**
   * Reject at once when the timeout passes, instead of resolving with what the
   * killed process printed. @default false
   */
  readonly rejectOnTimeout?: boolean;
  /** @default process.env with LC_ALL=C and LANG=C (untranslated messages) */
  readonly env?: NodeJS.ProcessEnv;
  /** @default the current directory */
  readonly cwd?: string;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** Runs `argv`; resolves with its exit code and output, rejects only when it cannot start (or on rejectOnTimeout). */
export function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      shell: false,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: options.env ?? { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill(options.killSignal ?? 'SIGKILL');
      if (options.rejectOnTimeout)
        reject(new Error(`${argv.join(' ')} did not finish within ${timeoutMs} ms and was killed`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) {
      // A program may exit without reading its input: the write then fails with EPIPE.
      child.stdin?.on('error', () => {});
      child.stdin?.end(options.input);
    }
  });
}

/** Runs `argv` and returns its stdout; throws, with its stderr, unless it exits with 0. */
export async function mustRun(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  const r = await runCommand(argv, options);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`);
  return r.stdout;
}
