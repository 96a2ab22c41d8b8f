/**
 * Runs the portcullis command in-process (src/cli/main.ts `main`) with captured output, a
 * given stdin and environment, and no terminal: what a script would see.
 */

import type { Io } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdin?: string;
  readonly files?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Called with each piece of stdout as it is written (watch). */
  readonly onStdout?: (text: string) => void;
}

export async function runCli(argv: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: {
      write: (t) => {
        stdout += t;
        options.onStdout?.(t);
      },
      isTTY: false,
    },
    stderr: {
      write: (t) => {
        stderr += t;
      },
      isTTY: false,
    },
    readStdin: async () => options.stdin ?? '',
    readFile: async (path) => {
      const text = options.files?.[path];
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return text;
    },
    env: options.env ?? {},
    signal: options.signal ?? new AbortController().signal,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}
