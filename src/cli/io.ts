/**
 * What a command may touch of the outside world, as one object: the CLI's code takes it as
 * an argument, so tests run every command in-process with captured output, a given stdin,
 * environment and terminal-ness, and main.ts wires it to the real process.
 */
import { readFile } from 'node:fs/promises';

export interface Output {
  write(text: string): void;
  /** Whether this is a terminal (colour and live output only then). */
  readonly isTTY: boolean;
}

export interface Io {
  readonly stdout: Output;
  readonly stderr: Output;
  /** All of standard input, as UTF-8 text. */
  readStdin(): Promise<string>;
  /** Reads a file named on the command line. */
  readFile(path: string): Promise<string>;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted when the user interrupts (Ctrl-C): long-running commands (watch) end cleanly. */
  readonly signal: AbortSignal;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** The real process: its streams, environment and SIGINT/SIGTERM. */
export function processIo(): Io {
  const controller = new AbortController();
  // The first Ctrl-C ends a long-running command (watch) cleanly; a request in flight gets a
  // moment to finish, then the process ends as an interrupted one would (130).
  const stop = () => {
    controller.abort();
    setTimeout(() => process.exit(130), 1000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    stdout: { write: (t) => void process.stdout.write(t), isTTY: process.stdout.isTTY === true },
    stderr: { write: (t) => void process.stderr.write(t), isTTY: process.stderr.isTTY === true },
    readStdin: () => readAll(process.stdin),
    readFile: (path) => readFile(path, 'utf8'),
    env: process.env,
    signal: controller.signal,
  };
}
