/**
 * What every benchmark needs around the thing it measures: a throwaway network namespace
 * (`pcl-bench-<pid>-<n>`, deleted in `finally` and on SIGINT/SIGTERM, never the host's own
 * firewall), programs run in it, free loopback ports, the daemon started in it with a bearer
 * token, and the statistics the reports use. argv only, never a shell.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../../test/helpers/ports.js';

export { freePort };

export const ROOT = join(import.meta.dirname, '..', '..');

/** Node's flags for the compiled daemon: what `npm start` gives it (package.json), so benches run what users run. */
export function daemonNodeFlags(): string[] {
  const start = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
  ).scripts.start;
  const m = /\bnode((?:\s+--\S+)*)\s+dist\/main\.js\b/.exec(start);
  if (!m) throw new Error(`package.json's start script does not run node dist/main.js: ${start}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

export interface ShResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to the end (synchronously); never throws on a non-zero exit. */
export function sh(argv: readonly string[], input?: string): ShResult {
  const [cmd, ...rest] = argv as [string, ...string[]];
  const r = spawnSync(cmd, rest, {
    input,
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs a program and resolves with how long it took (ms); rejects on a non-zero exit. */
export function timed(argv: readonly string[], input?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const [cmd, ...rest] = argv as [string, ...string[]];
    const t0 = performance.now();
    const c = spawn(cmd, rest, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    c.on('error', reject);
    c.on('close', (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`${argv.join(' ')} exited ${code}: ${err.slice(0, 300)}`)),
    );
    if (input !== undefined) {
      c.stdin?.on('error', () => {});
      c.stdin?.end(input);
    }
  });
}

const live = new Set<string>();
let counter = 0;
let hooked = false;

function hookSignals(): void {
  if (hooked) return;
  hooked = true;
  const cleanup = () => {
    for (const ns of live) sh(['ip', 'netns', 'del', ns]);
    live.clear();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
}

/** A throwaway network namespace. Delete it with `drop()` (in finally); exit and signals delete it too. */
export class BenchNetns {
  readonly name: string;

  constructor() {
    if (process.getuid?.() !== 0) throw new Error('benchmarks need root: they create a network namespace');
    hookSignals();
    this.name = `pcl-bench-${process.pid}-${counter++}`;
    const r = sh(['ip', 'netns', 'add', this.name]);
    if (r.code !== 0) throw new Error(`ip netns add ${this.name} failed: ${r.stderr}`);
    live.add(this.name);
  }

  /** argv run inside the namespace. */
  argv(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...argv];
  }

  /** Runs a program in the namespace; throws unless it exits with 0. */
  run(argv: readonly string[], input?: string): ShResult {
    const r = sh(this.argv(argv), input);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr.slice(0, 500)}`);
    return r;
  }

  /** Loads restore text (a whole ruleset, flushing the tables it names); returns the ms it took. */
  load(text: string): number {
    const t0 = performance.now();
    this.run(['iptables-restore', '-w', '10'], text);
    return performance.now() - t0;
  }

  drop(): void {
    sh(['ip', 'netns', 'del', this.name]);
    live.delete(this.name);
  }
}

/** Resident memory of a process, in MB (VmRSS). */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** The one-minute load average, to print next to figures from a shared machine. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

export const median = (xs: readonly number[]): number => percentile(xs, 50);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Daemon {
  readonly child: ChildProcess;
  readonly restUrl: string;
  readonly grpcAddress: string;
  readonly token: string;
  /** Its state directory (temporary; the audit log is there). */
  readonly stateDir: string;
  /** Milliseconds from spawn until /readyz answered 200. */
  readonly readyMs: number;
  readonly log: () => string;
  stop(): Promise<void>;
}

export interface DaemonOptions {
  readonly netns: string;
  /** `dist`: the compiled daemon (npm start); `tsx`: the sources through tsx (npm run dev). */
  readonly build: 'dist' | 'tsx';
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

/**
 * Starts the daemon in the namespace on free loopback ports with a fresh write token and a
 * temporary state directory (no Unix socket), and waits until GET /readyz answers 200.
 */
export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  const main = o.build === 'dist' ? join(ROOT, 'dist', 'main.js') : join(ROOT, 'src', 'main.ts');
  if (!existsSync(main)) throw new Error(`${main} is missing (run npm run build)`);
  const state = mkdtempSync(join(tmpdir(), 'pcl-bench-state-'));
  const [rest, grpc] = [await freePort(), await freePort()];
  const token = randomBytes(18).toString('base64url');
  const hash = createHash('sha256').update(token).digest('hex');
  const argv = [
    ...(o.build === 'tsx' ? ['--import', 'tsx'] : daemonNodeFlags()),
    main,
    ...['--netns', o.netns, '--state-dir', state, '--socket', ''],
    ...['--rest-port', String(rest), '--grpc-port', String(grpc), '--log-level', 'warn'],
    ...(o.extraArgs ?? []),
  ];
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_CONFIG: '', PORTCULLIS_TOKENS: `bench:write:${hash}` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    log = (log + d).slice(-20_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    rmSync(state, { recursive: true, force: true });
  };
  const restUrl = `http://127.0.0.1:${rest}`;
  const deadline = o.readyTimeoutMs ?? 120_000;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the daemon exited before it was ready:\n${log}`);
      if (performance.now() - t0 > deadline)
        throw new Error(`the daemon was not ready within ${deadline} ms`);
      const ok = await fetch(`${restUrl}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      await sleep(10);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    child,
    restUrl,
    grpcAddress: `127.0.0.1:${grpc}`,
    token,
    stateDir: state,
    readyMs: performance.now() - t0,
    log: () => log,
    stop,
  };
}

/** A distinct ban-list rule per index (documentation range), as the 50k-rule benchmarks preload. */
export const banRule = (i: number): string =>
  `-s 198.51.100.${i % 256}/32 -p tcp -m tcp --dport ${Math.floor(i / 256) + 1} -j DROP`;

/** filter with `rules` bans in INPUT and a 100-rule user chain BENCH100 (restore text). */
export function banList(rules: number): string {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  lines.push(':BENCH100 - [0:0]');
  for (let i = 0; i < rules; i++) lines.push(`-A INPUT ${banRule(i)}`);
  for (let i = 0; i < 100; i++) lines.push(`-A BENCH100 -s 192.0.2.${i}/32 -j ACCEPT`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Formats a rate for tables: 1234.5 -> "1,235/s". */
export const rate = (perSecond: number): string => `${Math.round(perSecond).toLocaleString('en-US')}/s`;

/** Prints an aligned table. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]?.length ?? 0)));
  const line = (r: readonly string[]) => r.map((x, i) => x.padEnd(widths[i] ?? 0)).join(' | ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line(r));
}
