/**
 * The real executor: spawns `iptables-save`, `iptables-restore` and `iptables --version`
 * (or their ip6tables twins) with argv arrays, never a shell, optionally inside a named
 * network namespace through `ip netns exec`. Restore text goes on stdin; stdout and stderr
 * are captured with a size cap; a timeout or an AbortSignal SIGKILLs the process.
 */
import { type Family, isTableName, type TableName } from '../domain/family.js';
import { checkChainName } from '../domain/validate.js';
import {
  type BackendInfo,
  ExecError,
  type Executor,
  failureMessage,
  type RestoreOptions,
  type RestoreResult,
  type SaveOptions,
  summarizeStderr,
} from './executor.js';
import { RestoreSession } from './restore-session.js';
import { checkInteger, checkNetns, checkProgram, netnsArgv, runProcess } from './run-process.js';

/** The three programs driven for one address family. */
export interface FamilyBinaries {
  /** @default 'iptables-save' (ipv4), 'ip6tables-save' (ipv6) */
  save: string;
  /** @default 'iptables-restore' (ipv4), 'ip6tables-restore' (ipv6) */
  restore: string;
  /** Used for `--version`. @default 'iptables' (ipv4), 'ip6tables' (ipv6) */
  cli: string;
}

export interface BinariesOptions {
  /** Programs for IPv4, e.g. `{ restore: 'iptables-legacy-restore' }`. Unset ones keep their default. */
  ipv4?: Partial<FamilyBinaries>;
  /** Programs for IPv6. Unset ones keep their default. */
  ipv6?: Partial<FamilyBinaries>;
  /** The iproute2 program used for `ip netns exec`. @default 'ip' */
  ip?: string;
}

export interface ChildProcessExecutorOptions {
  /**
   * Run every command inside this named network namespace (`ip netns exec NAME ...`).
   * Must match `^[A-Za-z0-9_.-]{1,64}$` and not start with `.` or `-`.
   * @default undefined (the service's own namespace)
   */
  netns?: string;
  /**
   * Seconds `iptables-restore` waits for the xtables lock (`-w N`); 0 means do not wait.
   * The nf_tables backend takes no lock and ignores it.
   * @default 10
   */
  waitSeconds?: number;
  /**
   * Milliseconds a command may run before it is killed with SIGKILL. Keep it above
   * `waitSeconds * 1000` so a lock wait ends as `lock_timeout`, not `timeout`.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Largest stdout kept, in bytes; a larger `iptables-save` output kills the process and fails.
   * @default 268435456 (256 MiB)
   */
  maxOutputBytes?: number;
  /** Override program names or paths (absolute paths, or names looked up in PATH). */
  binaries?: BinariesOptions;
  /**
   * Keep one `iptables-restore --noflush` per family running (through coreutils' `stdbuf`) and
   * feed it the restores that allow it (`reuse`), batch after batch: about 10 ms less per batch
   * at 50,000 rules (restore-session.ts). nf_tables only: iptables-legacy-restore holds the
   * xtables lock for as long as it runs.
   * @default false
   */
  longLivedRestore?: boolean;
}

const DEFAULT_BINARIES: Readonly<Record<Family, FamilyBinaries>> = {
  ipv4: { save: 'iptables-save', restore: 'iptables-restore', cli: 'iptables' },
  ipv6: { save: 'ip6tables-save', restore: 'ip6tables-restore', cli: 'ip6tables' },
};

function checkTableName(table: unknown): TableName {
  if (!isTableName(table)) throw new TypeError('table must be filter, nat, mangle, raw or security');
  return table;
}

interface RunResult {
  stdout: string;
  stderr: string;
  pid: number | undefined;
}

interface RunSpec {
  /** The iptables program being run, for messages. */
  program: string;
  args: readonly string[];
  input?: string;
  signal: AbortSignal | undefined;
  timeoutMs: number;
  onSpawn?: ((pid: number) => void) | undefined;
}

export class ChildProcessExecutor implements Executor {
  readonly netns: string | undefined;
  readonly waitSeconds: number;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly #binaries: Readonly<Record<Family, FamilyBinaries>>;
  readonly #ip: string;
  readonly longLivedRestore: boolean;
  readonly #sessions = new Map<Family, RestoreSession>();
  /** Set when a long-lived restore could not be used: every restore is then a process of its own. */
  #sessionsOff = false;

  constructor(options: ChildProcessExecutorOptions = {}) {
    this.netns = checkNetns(options.netns);
    this.waitSeconds = checkInteger('waitSeconds', options.waitSeconds ?? 10, 0, 3600);
    this.timeoutMs = checkInteger('timeoutMs', options.timeoutMs ?? 30_000, 1, 24 * 3600 * 1000);
    this.maxOutputBytes = checkInteger(
      'maxOutputBytes',
      options.maxOutputBytes ?? 256 * 1024 * 1024,
      1,
      2 ** 31,
    );
    const b = options.binaries ?? {};
    const merge = (family: Family): FamilyBinaries => {
      const over = b[family] ?? {};
      const out = { ...DEFAULT_BINARIES[family] };
      for (const key of ['save', 'restore', 'cli'] as const) {
        const v = over[key];
        if (v !== undefined) out[key] = checkProgram(`binaries.${family}.${key}`, v);
      }
      return Object.freeze(out);
    };
    this.#binaries = Object.freeze({ ipv4: merge('ipv4'), ipv6: merge('ipv6') });
    this.#ip = checkProgram('binaries.ip', b.ip ?? 'ip');
    this.longLivedRestore = options.longLivedRestore === true;
  }

  async save(family: Family, options: SaveOptions = {}): Promise<string> {
    const args: string[] = [];
    if (options.counters) args.push('-c');
    if (options.table !== undefined) args.push('-t', options.table);
    const { stdout } = await this.#run({
      program: this.#binaries[family].save,
      args,
      signal: options.signal,
      timeoutMs: this.#timeout(options.timeoutMs),
    });
    return stdout;
  }

  async listRules(
    family: Family,
    table: TableName,
    chain: string,
    options: { timeoutMs?: number } = {},
  ): Promise<string> {
    const { stdout } = await this.#run({
      program: this.#binaries[family].cli,
      args: ['-w', String(this.waitSeconds), '-t', checkTableName(table), '-S', checkChainName(chain)],
      signal: undefined,
      timeoutMs: this.#timeout(options.timeoutMs),
    });
    return stdout;
  }

  async restore(family: Family, text: string, options: RestoreOptions = {}): Promise<RestoreResult> {
    const program = this.#binaries[family].restore;
    if (text.includes('\0')) {
      // iptables reads lines as C strings: a NUL would silently cut a line short.
      throw new ExecError({
        kind: 'invalid_input',
        message: `${program} input contains a NUL byte: refusing to run it; fix the input`,
        argv: [],
      });
    }
    const args = ['-w', String(this.waitSeconds)];
    if (options.noflush) args.push('--noflush');
    if (options.test) args.push('--test');
    if (options.counters) args.push('--counters');
    if (options.reuse && options.noflush && !options.test && !options.counters && text.endsWith('\n')) {
      const session = this.#session(family, program, args);
      if (session) {
        try {
          return await session.run(text, {
            timeoutMs: this.#timeout(options.timeoutMs),
            signal: options.signal,
            onSpawn: options.onSpawn,
          });
        } catch (error) {
          if (!(error instanceof ExecError) || error.kind !== 'binary_missing') throw error;
          // stdbuf (coreutils) is missing: restores run one process each from now on.
          this.#sessionsOff = true;
        }
      }
    }
    const { pid } = await this.#run({
      program,
      args,
      input: text,
      signal: options.signal,
      timeoutMs: this.#timeout(options.timeoutMs),
      onSpawn: options.onSpawn,
    });
    return { pid: options.test ? undefined : pid };
  }

  async info(family: Family): Promise<BackendInfo> {
    const program = this.#binaries[family].cli;
    const argv = this.#argv(program, ['--version']);
    const { stdout } = await this.#run({
      program,
      args: ['--version'],
      signal: undefined,
      timeoutMs: this.timeoutMs,
    });
    // "iptables v1.8.9 (nf_tables)", "iptables v1.8.9 (legacy)"; before 1.8 there was only legacy.
    const m = /\bv(\d+(?:\.\d+)+)(?:\s+\((nf_tables|legacy)\))?/.exec(stdout);
    if (m?.[1] === undefined) {
      throw new ExecError({
        kind: 'failed',
        message: `${program} --version printed ${JSON.stringify(stdout.trim().slice(0, 200))}, not "${program} vX.Y.Z (backend)": check the binaries option`,
        argv,
        exitCode: 0,
      });
    }
    return { backend: m[2] === 'nf_tables' ? 'nf_tables' : 'legacy', version: m[1] };
  }

  /** Ends the long-lived restores (each exits when its stdin closes). Restores after this start new ones. */
  close(): void {
    for (const session of this.#sessions.values()) session.close();
    this.#sessions.clear();
  }

  /** The family's long-lived restore, when they are on and work here. */
  #session(family: Family, program: string, args: readonly string[]): RestoreSession | undefined {
    if (!this.longLivedRestore || this.#sessionsOff) return undefined;
    let session = this.#sessions.get(family);
    if (session?.broken !== undefined) return undefined;
    if (!session) {
      const where = this.netns === undefined ? '' : ` in network namespace "${this.netns}"`;
      const argv = this.#argv('stdbuf', ['-oL', program, ...args]);
      session = new RestoreSession({
        argv,
        program,
        where,
        exitError: (code, stderr, input) =>
          this.#errorFromExit(
            { program, args, input, signal: undefined, timeoutMs: this.timeoutMs },
            argv,
            code,
            stderr,
            where,
          ),
      });
      this.#sessions.set(family, session);
    }
    return session;
  }

  #timeout(perCall: number | undefined): number {
    return perCall === undefined ? this.timeoutMs : checkInteger('timeoutMs', perCall, 1, 24 * 3600 * 1000);
  }

  #argv(program: string, args: readonly string[]): string[] {
    return netnsArgv(this.#ip, this.netns, program, args);
  }

  #run(spec: RunSpec): Promise<RunResult> {
    const argv = this.#argv(spec.program, spec.args);
    const command = argv[0];
    const where = this.netns === undefined ? '' : ` in network namespace "${this.netns}"`;
    return runProcess({
      argv,
      program: spec.program,
      where,
      input: spec.input,
      signal: spec.signal,
      timeoutMs: spec.timeoutMs,
      maxOutputBytes: this.maxOutputBytes,
      onSpawn: spec.onSpawn,
      spawnError: (err) => {
        // spawn failed: the program (or `ip`) could not be started at all.
        const missing = err.code === 'ENOENT';
        const denied = err.code === 'EACCES' || err.code === 'EPERM';
        const isIp = this.netns !== undefined && command === this.#ip;
        const what = isIp ? command : spec.program;
        let message: string;
        if (missing) {
          message = isIp
            ? `${what} was not found: install the Debian package iproute2 (needed for network namespace "${this.netns}")`
            : `${what} was not found: install the Debian package iptables, or fix the binaries option`;
        } else if (denied) {
          message = `${what} could not be executed (${err.code}): check the file's permissions, and run as root`;
        } else {
          message = `${what} could not be started: ${err.message}`;
        }
        return new ExecError({
          kind: missing ? 'binary_missing' : denied ? 'permission_denied' : 'failed',
          message,
          argv,
          cause: err,
        });
      },
      exitError: (code, stderr) => this.#errorFromExit(spec, argv, code, stderr, where),
    });
  }

  #errorFromExit(
    spec: RunSpec,
    argv: readonly string[],
    code: number | null,
    stderr: string,
    where: string,
  ): ExecError {
    const summary = summarizeStderr(stderr, code, spec.input);
    const { kind, line, lineText } = summary;
    let message: string;
    if (kind === 'binary_missing') {
      message = `${spec.program} was not found${where}: install the Debian package iptables, or fix the binaries option`;
    } else if (kind === 'permission_denied') {
      message = `${spec.program} needs root (CAP_NET_ADMIN): run as root (${summary.detail})`;
    } else if (/Cannot open network namespace/.test(stderr)) {
      message = `network namespace "${this.netns ?? ''}" does not exist: create it with \`ip netns add ${this.netns ?? ''}\` or fix the netns option`;
    } else {
      message = failureMessage(`${spec.program}${where}`, summary);
    }
    return new ExecError({ kind, message, argv, exitCode: code, stderr, line, lineText });
  }
}
