/**
 * Start-to-ready benchmark of the compiled daemon (`node dist/main.js`, no tsx): how long from
 * spawning the process until GET /readyz answers 200, its resident memory right after, and how
 * long an append sent at that moment takes (the first change may wait for the start-up work left:
 * the nft monitor's own read of the ruleset, the re-read that learns rule handles), with 0,
 * 10,000 and 50,000 rules already in the kernel. The goal (issue 11): ready in under
 * 2 s at 50,000 rules, under 120 MB resident.
 *
 * Each size gets a throwaway network namespace (preloaded with iptables-restore: a ban list in
 * INPUT, as in service-bench.ts), a temporary state directory, REST on a free loopback port,
 * no Unix socket; `--runs N` starts the daemon N times per size (the median is reported).
 * Run as root after `npm run build`: `node --import tsx bench/start-bench.ts [--sizes 0,10000,50000] [--runs 3]`
 * (`--main PATH` starts another build, to compare two in one run).
 * It never touches the machine's own firewall and deletes its namespaces at the end.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../test/helpers/ports.js';
import { daemonNodeFlags } from './lib/sandbox.js';

const ROOT = join(import.meta.dirname, '..');

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : (args[i + 1] ?? fallback);
};
const SIZES = arg('--sizes', '0,10000,50000').split(',').map(Number);
const MAIN = arg('--main', join(ROOT, 'dist', 'main.js'));
const RUNS = Math.max(1, Math.min(20, Number(arg('--runs', '3')) || 3));
const READY_TIMEOUT_MS = 60_000;

function sh(argv: string[], input?: string): void {
  const [cmd, ...rest] = argv as [string, ...string[]];
  const r = spawnSync(cmd, rest, { input, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
}

/** A distinct address/port pair per index, inside the documentation range. */
const ban = (i: number) =>
  `-s 198.51.100.${i % 256}/32 -p tcp -m tcp --dport ${Math.floor(i / 256) + 1} -j DROP`;

function preload(ns: string, rules: number): void {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]'];
  for (let i = 0; i < rules; i++) lines.push(`-A INPUT ${ban(i)}`);
  lines.push('COMMIT', '');
  sh(['ip', 'netns', 'exec', ns, 'iptables-restore'], lines.join('\n'));
}

async function readyz(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) the process has used so far (clock ticks of /proc/PID/stat). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface Run {
  readonly ms: number;
  readonly rss: number;
  readonly cpu: number;
  /** The first append, sent the moment /readyz answered 200: milliseconds until it was applied. */
  readonly firstChangeMs: number;
}

const TOKEN = randomBytes(24).toString('hex');

async function startOnce(ns: string, index: number): Promise<Run> {
  const state = mkdtempSync(join(tmpdir(), 'pcl-start-bench-'));
  const port = await freePort();
  const argv = [
    ...daemonNodeFlags(),
    MAIN,
    ...['--netns', ns, '--state-dir', state, '--rest-port', String(port), '--grpc-port', '0'],
  ];
  argv.push('--socket', '', '--log-level', 'warn');
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, argv, {
    env: {
      ...process.env,
      PORTCULLIS_CONFIG: '',
      PORTCULLIS_TOKENS: `bench:write:${createHash('sha256').update(TOKEN).digest('hex')}`,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    log += d;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the daemon exited before it was ready:\n${log}`);
      if (performance.now() - t0 > READY_TIMEOUT_MS)
        throw new Error(`not ready within ${READY_TIMEOUT_MS} ms`);
      if (await readyz(port)) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - t0;
    const rss = rssMb(child.pid as number);
    const cpu = cpuSeconds(child.pid as number);
    const t1 = performance.now();
    const r = await fetch(`http://127.0.0.1:${port}/v1/tables/filter/chains/INPUT/rules`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ spec: `-s 192.0.2.${(index % 250) + 1}/32 -j ACCEPT` }),
      signal: AbortSignal.timeout(READY_TIMEOUT_MS),
    });
    if (r.status !== 201)
      throw new Error(`the first append failed: ${r.status} ${(await r.text()).slice(0, 300)}`);
    await r.arrayBuffer();
    return { ms, rss, cpu, firstChangeMs: performance.now() - t1 };
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    rmSync(state, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (it creates network namespaces)');
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run npm run build first');
  const rows: string[] = [];
  for (const size of SIZES) {
    const ns = `pstart-${process.pid}-${randomBytes(3).toString('hex')}`;
    sh(['ip', 'netns', 'add', ns]);
    try {
      preload(ns, size);
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await startOnce(ns, i));
      const line = `${String(size).padStart(6)} rules: start-to-ready ${median(runs.map((r) => r.ms)).toFixed(0)} ms (runs: ${runs.map((r) => r.ms.toFixed(0)).join(', ')}), daemon CPU ${median(runs.map((r) => r.cpu)).toFixed(2)} s, first change after ready ${median(runs.map((r) => r.firstChangeMs)).toFixed(0)} ms, RSS ${median(runs.map((r) => r.rss)).toFixed(0)} MB (load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?'})`;
      console.log(line);
      rows.push(line);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
