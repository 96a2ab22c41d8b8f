/**
 * The kill -9 persistence loop, shared by test/store/persist-kill.test.ts (a few dozen kills,
 * in CI) and bench/persist-kill-bench.ts (hundreds, reported): the daemon runs as a child
 * process managing a throwaway namespace, writing its rules files after every committed
 * change (`--persist after-change`), while clients stream appends; at a random moment the
 * daemon and every process it started get SIGKILL. Then the ipv4 rules file must be the old
 * or the new complete ruleset:
 *
 * - `iptables-restore --test` (in the namespace) accepts it;
 * - its INPUT rules are a prefix of the kernel's INPUT rules (the stream only appends, so every
 *   ruleset the service ever committed is such a prefix): never empty when rules were saved
 *   before, never cut inside, never a rule the kernel does not have;
 * - it never goes back: each kill leaves at least the rules of the one before.
 *
 * A kill that lands while a write is under way leaves a temporary file next to the rules file
 * (counted, and cleaned by the next start). Every loop is bounded (kills, time, requests).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface KillLoopOptions {
  /** The namespace the daemon manages (created and deleted by the caller). */
  readonly netns: string;
  /** Where the state directory and the rules files go (the caller removes it). */
  readonly dir: string;
  readonly kills: number;
  /** `tsx`: node --import tsx src/main.ts; `dist`: node dist/main.js (npm run build first). */
  readonly entry: 'tsx' | 'dist';
  /** Longest random wait after ready before the kill (ms). @default 400 */
  readonly maxKillDelayMs?: number;
  readonly log?: (line: string) => void;
}

export interface KillLoopResult {
  readonly kills: number;
  /** Kills after which a temporary file was found: the kill landed during a write. */
  readonly duringWrite: number;
  /** Files that iptables-restore --test refused, or that were not a prefix of the kernel's rules. */
  readonly bad: readonly string[];
  /** Rules in the file after the last kill, and in the kernel. */
  readonly savedRules: number;
  readonly kernelRules: number;
  readonly appendsAcknowledged: number;
  readonly ms: number;
}

export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return { ...env, ...extra };
}

/** Every descendant of `pid` (children first found, then theirs). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  for (let guard = 0; queue.length > 0 && guard < 1000; guard++) {
    const p = queue.shift() as number;
    const r = spawnSync('pgrep', ['-P', String(p)], { encoding: 'utf8' });
    for (const line of r.stdout.split('\n')) {
      const c = Number(line.trim());
      if (Number.isSafeInteger(c) && c > 0) {
        out.push(c);
        queue.push(c);
      }
    }
  }
  return out;
}

export interface Daemon {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:PORT` of its REST door. */
  readonly base: string;
  /** What it wrote on stderr so far (bounded). */
  stderr(): string;
  /** SIGKILL to the daemon and every process it started (the nft monitor, an iptables-restore in flight), as a crash of its whole unit would; resolves once it is gone. */
  kill(): Promise<void>;
}

/**
 * Starts the daemon as a child process on a free loopback port (REST only, no socket, no gRPC,
 * logs at warn) with `args` added, and resolves once /readyz answers 200 (60 s at most).
 */
export async function startDaemon(o: {
  readonly entry: 'tsx' | 'dist';
  /** PORTCULLIS_TOKENS. */
  readonly tokens: string;
  readonly args: readonly string[];
  /** Names this start in errors. */
  readonly label: string;
}): Promise<Daemon> {
  const entry =
    o.entry === 'dist' ? [join(ROOT, 'dist', 'main.js')] : ['--import', 'tsx', join(ROOT, 'src', 'main.ts')];
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...entry,
      ...o.args,
      '--rest-port',
      String(port),
      '--grpc-port',
      '0',
      '--socket',
      '',
      '--log-level',
      'warn',
    ],
    { cwd: ROOT, env: cleanEnv({ PORTCULLIS_TOKENS: o.tokens }), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const base = `http://127.0.0.1:${port}`;
  const kill = async () => {
    const tree = [child.pid as number, ...descendants(child.pid as number)];
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the daemon exited before it was ready (${o.label}):\n${stderr}`);
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`the daemon was not ready within 60 s (${o.label}):\n${stderr}`);
    }
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, base, stderr: () => stderr, kill };
}

function inputRules(text: string): string[] {
  let table = '';
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (table === 'filter' && line.startsWith('-A INPUT ')) out.push(line);
  }
  return out;
}

export async function runKillLoop(options: KillLoopOptions): Promise<KillLoopResult> {
  const { netns, dir, kills } = options;
  const log = options.log ?? (() => {});
  const token = randomBytes(18).toString('base64url');
  const tokens = `kill:write:${createHash('sha256').update(token).digest('hex')}`;
  const state = join(dir, 'state');
  const rulesDir = join(dir, 'iptables');
  mkdirSync(rulesDir, { recursive: true });
  const v4 = join(rulesDir, 'rules.v4');
  const v6 = join(rulesDir, 'rules.v6');
  const bad: string[] = [];
  let duringWrite = 0;
  let acknowledged = 0;
  let lastSaved = 0;
  let next = 0;
  const t0 = Date.now();

  for (let k = 0; k < kills; k++) {
    const daemon = await startDaemon({
      entry: options.entry,
      tokens,
      label: `kill ${k}`,
      args: [
        '--netns',
        netns,
        '--families',
        'ipv4',
        '--state-dir',
        state,
        '--rules-v4',
        v4,
        '--rules-v6',
        v6,
        '--persist',
        'after-change',
      ],
    });
    const { base } = daemon;
    // Four clients stream appends until the kill (each request bounded by a timeout).
    let killed = false;
    const appender = async () => {
      for (let i = 0; i < 10_000 && !killed; i++) {
        const n = next++;
        const spec = `-s 198.51.100.${n % 250}/32 -p tcp -m tcp --dport ${1 + (n % 60000)} -j DROP`;
        try {
          const r = await fetch(`${base}/v1/tables/filter/chains/INPUT/rules`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ spec }),
            signal: AbortSignal.timeout(5000),
          });
          if (r.status === 201) acknowledged++;
          await r.arrayBuffer();
        } catch {
          return;
        }
      }
    };
    const clients = [appender(), appender(), appender(), appender()];
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * (options.maxKillDelayMs ?? 400))));
    await daemon.kill();
    killed = true;
    await Promise.all(clients);

    if (readdirSync(rulesDir).some((f) => f.includes('.tmp-'))) duringWrite++;
    const kernel = spawnSync('ip', ['netns', 'exec', netns, 'iptables-save', '-t', 'filter'], {
      encoding: 'utf8',
    });
    const kernelInput = inputRules(kernel.stdout);
    if (existsSync(v4)) {
      const text = readFileSync(v4, 'utf8');
      const test = spawnSync('ip', ['netns', 'exec', netns, 'iptables-restore', '--test'], {
        input: text,
        encoding: 'utf8',
      });
      const saved = inputRules(text);
      const prefix = saved.every((line, i) => kernelInput[i] === line);
      if (test.status !== 0)
        bad.push(`kill ${k}: iptables-restore --test refused the file: ${test.stderr.trim()}`);
      else if (!text.endsWith('COMMIT\n')) bad.push(`kill ${k}: the file does not end with COMMIT`);
      else if (!prefix) bad.push(`kill ${k}: the file's INPUT rules are not a prefix of the kernel's`);
      else if (saved.length < lastSaved)
        bad.push(`kill ${k}: the file went back from ${lastSaved} to ${saved.length} rules`);
      lastSaved = Math.max(lastSaved, saved.length);
    } else if (lastSaved > 0) bad.push(`kill ${k}: the rules file is gone`);
    log(`kill ${k + 1}/${kills}: file ${lastSaved} rules, kernel ${kernelInput.length}`);
  }
  const kernel = spawnSync('ip', ['netns', 'exec', netns, 'iptables-save', '-t', 'filter'], {
    encoding: 'utf8',
  });
  return {
    kills,
    duringWrite,
    bad,
    savedRules: lastSaved,
    kernelRules: inputRules(kernel.stdout).length,
    appendsAcknowledged: acknowledged,
    ms: Date.now() - t0,
  };
}
