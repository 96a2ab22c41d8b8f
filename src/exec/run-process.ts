/**
 * Runs one short-lived program to completion, the way every executor adapter needs it:
 * argv only (never a shell), input on stdin, stdout captured up to a size cap, stderr
 * captured up to 64 KiB, a timeout and an AbortSignal that SIGKILL the process, and the
 * process id reported as soon as it exists. What a failure *means* is the caller's business:
 * it passes `spawnError` and `exitError` to build the ExecError from the evidence.
 *
 * Shared by ChildProcessExecutor (iptables-*) and the nf_tables adapters (nft).
 */
import { spawn } from 'node:child_process';
import { ExecError, type ExecErrorKind } from './executor.js';

/** stderr is evidence for a message, not data: keep the head, it holds the error. */
export const MAX_STDERR_BYTES = 64 * 1024;

const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export function checkProgram(name: string, value: unknown): string {
  if (
    typeof value !== 'string' ||
    value === '' ||
    value.startsWith('-') ||
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw new TypeError(
      `Expected \`${name}\` to be a program name or path (not empty, no control characters, not starting with '-'), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Validates a network namespace name (`ip netns exec NAME`); undefined passes through. */
export function checkNetns(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !NETNS_NAME.test(value)) {
    throw new TypeError(
      `Expected \`netns\` to be 1-64 characters of A-Z a-z 0-9 _ . - not starting with '.' or '-', got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** `program args...`, or `ip netns exec NS program args...` when a namespace is set. */
export function netnsArgv(
  ip: string,
  netns: string | undefined,
  program: string,
  args: readonly string[],
): string[] {
  return netns === undefined ? [program, ...args] : [ip, 'netns', 'exec', netns, program, ...args];
}

export interface ProcessSpec {
  /** The full argv, `ip netns exec NS` prefix included. */
  argv: readonly string[];
  /** The program being run, for messages. */
  program: string;
  /** ` in network namespace "NS"`, or '' — appended to the program in messages. */
  where: string;
  input?: string | undefined;
  signal: AbortSignal | undefined;
  timeoutMs: number;
  /** Largest stdout kept; more kills the process and fails. */
  maxOutputBytes: number;
  onSpawn?: ((pid: number) => void) | undefined;
  /** The error for a process that could not be started at all (spawn `error`). */
  spawnError: (err: NodeJS.ErrnoException) => ExecError;
  /** The error for a non-zero exit. */
  exitError: (code: number | null, stderr: string) => ExecError;
}

export interface ProcessResult {
  stdout: string;
  stderr: string;
  pid: number | undefined;
}

export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  const { argv, where } = spec;
  const [command, ...commandArgs] = argv as [string, ...string[]];

  if (spec.signal?.aborted) {
    return Promise.reject(
      new ExecError({
        kind: 'aborted',
        message: `${spec.program}${where} was aborted before it started`,
        argv,
        cause: spec.signal.reason,
      }),
    );
  }

  return new Promise<ProcessResult>((resolve, reject) => {
    const child = spawn(command, commandArgs, {
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      // Untranslated libc messages: the stderr patterns are English.
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    });
    if (child.pid !== undefined) spec.onSpawn?.(child.pid);

    const stdoutChunks: Buffer[] = [];
    let stdoutBytes = 0;
    const stderrChunks: Buffer[] = [];
    let stderrBytes = 0;
    let stopped: { kind: ExecErrorKind; message: string; cause?: unknown } | undefined;
    let settled = false;
    let exitCode: number | null | undefined;

    const cleanup = (): void => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: ExecError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(error);
    };
    const stoppedError = (): ExecError =>
      new ExecError({
        kind: stopped?.kind ?? 'failed',
        message: stopped?.message ?? `${spec.program}${where} was stopped`,
        argv,
        exitCode: exitCode ?? null,
        stderr: Buffer.concat(stderrChunks).toString('utf8'),
        cause: stopped?.cause,
      });
    const stop = (kind: ExecErrorKind, message: string, cause?: unknown): void => {
      if (stopped !== undefined || settled) return;
      stopped = cause === undefined ? { kind, message } : { kind, message, cause };
      if (exitCode === undefined) {
        child.kill('SIGKILL');
      } else {
        // Already exited, but something still holds its pipes open: stop waiting for them.
        child.stdout.destroy();
        child.stderr.destroy();
        fail(stoppedError());
      }
    };

    const timer = setTimeout(() => {
      stop(
        'timeout',
        `${spec.program}${where} did not finish within ${spec.timeoutMs} ms and was killed: raise timeoutMs, or look for a hung ${spec.program} process`,
      );
    }, spec.timeoutMs);
    const onAbort = (): void => {
      stop('aborted', `${spec.program}${where} was aborted by the caller and killed`, spec.signal?.reason);
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > spec.maxOutputBytes) {
        stop(
          'failed',
          `${spec.program}${where} printed more than ${spec.maxOutputBytes} bytes and was killed: raise maxOutputBytes`,
        );
        return;
      }
      stdoutChunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderrBytes < MAX_STDERR_BYTES)
        stderrChunks.push(chunk.subarray(0, MAX_STDERR_BYTES - stderrBytes));
      stderrBytes += chunk.length;
    });
    // A program may stop reading at the first bad line; the rest of the input then hits a
    // closed pipe (EPIPE). The exit code and stderr tell the real story.
    child.stdin.on('error', () => {});

    child.on('error', (err: NodeJS.ErrnoException) => fail(spec.spawnError(err)));

    // 'exit' rather than 'close': a killed child may leave a grandchild holding the pipes.
    child.on('exit', (code) => {
      exitCode = code;
      if (settled) return;
      if (stopped !== undefined) {
        child.stdout.destroy();
        child.stderr.destroy();
        fail(stoppedError());
        return;
      }
      // Normal exit: wait for the pipes to drain so no output is lost.
      const finish = (): void => {
        if (settled) return;
        const stderrText = Buffer.concat(stderrChunks).toString('utf8');
        if (code === 0) {
          settled = true;
          cleanup();
          resolve({
            stdout: Buffer.concat(stdoutChunks).toString('utf8'),
            stderr: stderrText,
            pid: child.pid,
          });
          return;
        }
        fail(spec.exitError(code, stderrText));
      };
      if (child.stdout.readableEnded && child.stderr.readableEnded) finish();
      else child.once('close', finish);
    });

    if (spec.input !== undefined) child.stdin.end(spec.input, 'utf8');
    else child.stdin.end();
  });
}
