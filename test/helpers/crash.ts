/**
 * The crash loop of the model-never-lies issue, shared by test/service/kernel/crash.test.ts (a
 * few kills, in CI) and bench/crash-bench.ts (hundreds, reported).
 *
 * The daemon runs as a child process managing a throwaway namespace (both families, a state
 * directory for its change journal). Three clients send transactions through REST, each one a
 * seeded random request from the differential test's generator (test/helpers/op-gen.ts: every
 * operation kind, four tables, both families) framed by two marker rules: `ctx-N` appended to
 * the chain CRASH of the security table in ipv4 first and in ipv6 last (the generator never
 * touches the security table, so a marker is only ever added by its transaction). At a random
 * moment the daemon and every process it started get SIGKILL; then the kernel is read as the
 * kill left it (how many transactions were half applied there is counted: the work recovery
 * has to do), the daemon is started again, and once it says it is ready:
 *
 * - every acknowledged transaction (200) has both its markers in the kernel;
 * - every refused one (4xx) has none;
 * - every one whose answer the kill cut off has both or none: whole or absent;
 * - the model (the API's text read) equals `iptables-save` of each family;
 * - no request ever got a 5xx other than 503 (not ready, shutting down).
 *
 * Every loop is bounded (kills, requests per client, time per request).
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Family, TableName } from '../../src/domain/family.js';
import type { Operation } from '../../src/service/operations.js';
import { operationWire } from '../../src/transport/http/wire.js';
import { request, type Snapshot } from './op-gen.js';
import { type Daemon, startDaemon } from './persist-kill.js';
import { prng, type Rng } from './rule-gen.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];
const SAVE: Readonly<Record<Family, string>> = { ipv4: 'iptables-save', ipv6: 'ip6tables-save' };
const BUILTIN_NAMES = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);

export interface CrashLoopOptions {
  /** The namespace the daemon manages (created and deleted by the caller). */
  readonly netns: string;
  /** The state directory's parent (the caller removes it). */
  readonly dir: string;
  readonly kills: number;
  readonly seed: number;
  /** `tsx`: node --import tsx src/main.ts; `dist`: node dist/main.js (npm run build first). */
  readonly entry: 'tsx' | 'dist';
  /** Longest random wait after ready before the kill (ms). @default 1500 */
  readonly maxKillDelayMs?: number;
  readonly log?: (line: string) => void;
}

export interface CrashLoopResult {
  readonly kills: number;
  readonly requests: number;
  readonly acknowledged: number;
  readonly refused: number;
  /** Requests whose answer the kill cut off. */
  readonly cutOff: number;
  /** Kills after which the kernel held a transaction in one family only (recovery had to act). */
  readonly halfAppliedAtKill: number;
  /** Every broken promise found, with the seed and kill number. */
  readonly bad: readonly string[];
  readonly ms: number;
}

type Outcome = 'acknowledged' | 'refused' | 'cut-off';

function save(netns: string, family: Family, table?: TableName): string {
  const args = ['netns', 'exec', netns, SAVE[family], ...(table ? ['-t', table] : [])];
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${SAVE[family]} failed: ${r.stderr}`);
  return r.stdout;
}

/** iptables-save text without comment lines and counters. */
function comparable(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#') && l !== '')
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ' [0:0]'))
    .join('\n');
}

/** How many times each marker number appears in the family's CRASH chain. */
function markers(netns: string, family: Family): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of save(netns, family, 'security').split('\n')) {
    const m = /^-A CRASH .*--comment "?ctx-(\d+)"?/.exec(line);
    if (m) out.set(Number(m[1]), (out.get(Number(m[1])) ?? 0) + 1);
  }
  return out;
}

interface WireRuleset {
  tables: {
    name: TableName;
    chains: { name: string; builtin: boolean; rules: { id: string; text: string }[] }[];
  }[];
}

async function snapshot(base: string, auth: string): Promise<Snapshot> {
  const chains = new Map<string, { ids: readonly string[]; builtin: boolean; texts: readonly string[] }>();
  for (const family of FAMILIES) {
    const r = await fetch(`${base}/v1/ruleset?family=${family}`, {
      headers: { authorization: auth },
      signal: AbortSignal.timeout(10_000),
    });
    if (r.status !== 200) throw new Error(`GET /v1/ruleset?family=${family}: ${r.status} ${await r.text()}`);
    const rs = (await r.json()) as WireRuleset;
    for (const t of rs.tables)
      for (const c of t.chains)
        chains.set(`${family}/${t.name}/${c.name}`, {
          ids: c.rules.map((x) => x.id),
          builtin: c.builtin || BUILTIN_NAMES.has(c.name),
          texts: c.rules.map((x) => x.text),
        });
  }
  return { chains };
}

function marker(n: number, family: Family): Operation {
  return {
    op: 'append',
    family,
    table: 'security',
    chain: 'CRASH',
    rule: { spec: `-m comment --comment ctx-${n}` },
  };
}

export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopResult> {
  const { netns, kills, seed } = options;
  const log = options.log ?? (() => {});
  const token = randomBytes(18).toString('base64url');
  const auth = `Bearer ${token}`;
  const tokens = `crash:write:${createHash('sha256').update(token).digest('hex')}`;
  const args = ['--netns', netns, '--families', 'ipv4,ipv6', '--state-dir', join(options.dir, 'state')];
  const rng: Rng = prng(seed);
  const outcomes = new Map<number, Outcome>();
  const bad: string[] = [];
  let halfAppliedAtKill = 0;
  let nextTx = 0;
  const t0 = Date.now();

  for (const family of FAMILIES) {
    const r = spawnSync('ip', [
      'netns',
      'exec',
      netns,
      family === 'ipv4' ? 'iptables' : 'ip6tables',
      '-t',
      'security',
      '-N',
      'CRASH',
    ]);
    if (r.status !== 0) throw new Error(`could not create the CRASH chain: ${r.stderr}`);
  }

  /** The checks after a (re)start, before any new traffic. */
  const check = async (daemon: Daemon, k: number) => {
    const where = `seed ${seed}, after kill ${k}`;
    for (const family of FAMILIES) {
      const r = await fetch(`${daemon.base}/v1/ruleset?family=${family}`, {
        headers: { authorization: auth, accept: 'text/plain' },
        signal: AbortSignal.timeout(10_000),
      });
      const model = comparable(await r.text());
      const kernel = comparable(save(netns, family));
      if (model !== kernel) {
        const m = model.split('\n');
        const kl = kernel.split('\n');
        const i = m.findIndex((l, j) => l !== kl[j]);
        bad.push(
          `${where}: ${family} model differs from the kernel at line ${i + 1}: model ${m[i]} / kernel ${kl[i]}`,
        );
      }
    }
    const seen = FAMILIES.map((f) => markers(netns, f));
    for (const [n, outcome] of outcomes) {
      const counts = seen.map((m) => m.get(n) ?? 0);
      const present = counts.filter((c) => c > 0).length;
      if (counts.some((c) => c > 1))
        bad.push(`${where}: transaction ${n} applied twice (${counts.join('/')})`);
      if (outcome === 'acknowledged' && present !== 2)
        bad.push(`${where}: acknowledged transaction ${n} is not whole in the kernel (${counts.join('/')})`);
      if (outcome === 'refused' && present !== 0)
        bad.push(`${where}: refused transaction ${n} left a trace in the kernel (${counts.join('/')})`);
      if (outcome === 'cut-off' && present === 1)
        bad.push(`${where}: transaction ${n}, cut off by the kill, is half applied (${counts.join('/')})`);
    }
  };

  for (let k = 0; k <= kills; k++) {
    const daemon = await startDaemon({
      entry: options.entry,
      tokens,
      args,
      label: `seed ${seed}, start ${k}`,
    });
    try {
      await check(daemon, k);
      if (k === kills) break;
      let killed = false;
      let snap = await snapshot(daemon.base, auth);
      const client = async (c: number) => {
        for (let i = 0; i < 500 && !killed; i++) {
          if (i > 0 && i % 5 === c % 5) snap = await snapshot(daemon.base, auth).catch(() => snap);
          const n = nextTx++;
          const ops = [marker(n, 'ipv4'), ...request(rng, snap, FAMILIES), marker(n, 'ipv6')];
          outcomes.set(n, 'cut-off');
          try {
            const r = await fetch(`${daemon.base}/v1/transactions`, {
              method: 'POST',
              headers: { authorization: auth, 'content-type': 'application/json' },
              body: JSON.stringify({ operations: ops.map(operationWire) }),
              signal: AbortSignal.timeout(20_000),
            });
            const body = await r.text();
            if (r.status === 200) outcomes.set(n, 'acknowledged');
            else if (r.status >= 400 && r.status < 500) outcomes.set(n, 'refused');
            else if (r.status !== 503)
              bad.push(`seed ${seed}, kill ${k}: transaction ${n} got ${r.status}: ${body.slice(0, 300)}`);
          } catch {
            return; // the kill cut the connection: the outcome stays 'cut-off'
          }
        }
      };
      const clients = [client(0), client(1), client(2)];
      await new Promise((r) => setTimeout(r, 50 + Math.floor(rng.next() * (options.maxKillDelayMs ?? 1500))));
      await daemon.kill();
      killed = true;
      await Promise.all(clients);
      const seen = FAMILIES.map((f) => markers(netns, f));
      let half = false;
      for (const n of outcomes.keys()) if (seen.filter((m) => m.has(n)).length === 1) half = true;
      if (half) halfAppliedAtKill++;
      log(
        `kill ${k + 1}/${kills}: ${nextTx} transactions so far${half ? ', one half applied at the kill' : ''}`,
      );
    } finally {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.kill();
    }
  }
  const values = [...outcomes.values()];
  return {
    kills,
    requests: values.length,
    acknowledged: values.filter((v) => v === 'acknowledged').length,
    refused: values.filter((v) => v === 'refused').length,
    cutOff: values.filter((v) => v === 'cut-off').length,
    halfAppliedAtKill,
    bad,
    ms: Date.now() - t0,
  };
}
