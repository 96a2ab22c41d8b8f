/**
 * Expiring rules at scale, on the real kernel in a throwaway namespace: INPUT holds 50,000 rules;
 * 10,000 bans are added with expiries spread evenly over 60 s (`expiresAt`, millisecond
 * precision), the way fail2ban would ban; the service deletes each when it falls due. Measured
 * in one run:
 *
 *   - lateness of every removal: the moment its `rule.deleted` event (client `expiry`) arrives
 *     minus its due time: median, p99, maximum;
 *   - what other callers get meanwhile: 32 callers appending to and deleting from a chain of
 *     their own, in operations/s and p50/p99 latency, before the bans (baseline) and while they
 *     expire.
 *
 * Run as root: `node --expose-gc --import tsx bench/ttl-bench.ts [--rules 50000] [--bans 10000]
 * [--spread-seconds 60]`. It never touches the machine's own firewall and deletes its
 * namespace (and state directory) at the end, also on failure.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openKernel } from '../src/exec/kernel.js';
import { FirewallService } from '../src/service/firewall-service.js';
import type { Operation } from '../src/service/operations.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  const v = i === -1 ? fallback : Number(args[i + 1]);
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
};
const RULES = opt('--rules', 50_000);
const BANS = opt('--bans', 10_000);
const SPREAD_MS = opt('--spread-seconds', 60) * 1000;
const CALLERS = 32;
const NS = `pttl-${process.pid}-${randomBytes(3).toString('hex')}`;

function inNs(argv: string[], input?: string): string {
  const r = spawnSync('ip', ['netns', 'exec', NS, ...argv], {
    input,
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const pct = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
};

/** A distinct ban per index, in 198.51.100.0/24 with a distinct port. */
const banSpec = (i: number) =>
  `-s 198.51.100.${i % 256}/32 -p udp -m udp --dport ${Math.floor(i / 256) + 1} -j DROP`;

/** `CALLERS` callers each appending to OTHER and deleting what they added, for `ms`: ops/s and latencies. */
async function otherCallers(service: FirewallService, ms: number, tag: number) {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + ms;
  const chain = { family: 'ipv4' as const, table: 'filter' as const, chain: 'OTHER' };
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, c) => {
      for (let i = 0; performance.now() < end && i < 100_000; i++) {
        const spec = `-s 192.0.2.${c + 1}/32 -p tcp -m tcp --dport ${((tag * 10_000 + i) % 65_000) + 1} -j ACCEPT`;
        let t0 = performance.now();
        try {
          const r = await service.apply([{ op: 'append', ...chain, rule: { spec } }]);
          latencies.push(performance.now() - t0);
          const id = r.results[0]?.rule?.id as string;
          t0 = performance.now();
          await service.apply([{ op: 'delete', ...chain, target: { id } }]);
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  return {
    opsPerSec: latencies.length / (ms / 1000),
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    errors,
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (it creates a network namespace)');
  const stateDir = mkdtempSync(join(tmpdir(), 'pcl-ttl-bench-'));
  spawnSync('ip', ['netns', 'add', NS]);
  let service: FirewallService | undefined;
  try {
    const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':OTHER - [0:0]'];
    for (let i = 0; i < RULES; i++)
      lines.push(
        `-A INPUT -s 192.0.2.${i % 256}/32 -p tcp -m tcp --dport ${Math.floor(i / 256) + 1} -j DROP`,
      );
    lines.push('COMMIT', '');
    inNs(['iptables-restore'], lines.join('\n'));
    const adapters = await openKernel({ netns: NS });
    if (adapters.degraded) console.log(`note: ${adapters.degraded}`);
    service = new FirewallService({
      executor: adapters.executor,
      ...(adapters.feed ? { feed: adapters.feed } : {}),
      ...(adapters.handles ? { handles: adapters.handles } : {}),
      families: ['ipv4'],
      stateDir,
    });
    await service.start();
    console.log(`INPUT preloaded with ${RULES} rules; service ready`);
    // Not measured: the start-up re-read that learns rule handles runs as a queue job after
    // ready (seconds at 50k); one append and delete by id waits for it.
    let t0 = performance.now();
    const warm = await service.apply([
      { op: 'append', family: 'ipv4', table: 'filter', chain: 'OTHER', rule: { spec: '-j RETURN' } },
    ]);
    await service.apply([
      {
        op: 'delete',
        family: 'ipv4',
        table: 'filter',
        chain: 'OTHER',
        target: { id: warm.results[0]?.rule?.id as string },
      },
    ]);
    console.log(
      `first append + delete by id after ready (waits for the handle re-read): ${(performance.now() - t0).toFixed(0)} ms`,
    );

    const baseline = await otherCallers(service, 10_000, 1);
    console.log(
      `other callers, baseline: ${baseline.opsPerSec.toFixed(0)} ops/s, p50 ${baseline.p50.toFixed(0)} ms, p99 ${baseline.p99.toFixed(0)} ms`,
    );

    // The bans: due evenly from 10 s after the first is added, over SPREAD_MS.
    const due = new Map<string, number>();
    const lateness: number[] = [];
    service.subscribe((e) => {
      if (e.client !== 'expiry') return;
      const now = Date.now();
      for (const ch of e.changes) {
        if (ch.type !== 'rule.deleted' || ch.text === undefined) continue;
        const at = due.get(ch.text);
        if (at !== undefined) {
          lateness.push(now - at);
          due.delete(ch.text);
        }
      }
    });
    const first = Date.now() + 10_000;
    t0 = performance.now();
    for (let b = 0; b < BANS; b += 500) {
      const ops: Operation[] = [];
      for (let i = b; i < Math.min(BANS, b + 500); i++) {
        const at = first + Math.floor((i * SPREAD_MS) / BANS);
        const spec = banSpec(i);
        due.set(spec, at);
        ops.push({
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec },
          expiresAt: new Date(at).toISOString(),
        });
      }
      await service.apply(ops);
    }
    const addMs = performance.now() - t0;
    console.log(
      `${BANS} bans added in ${addMs.toFixed(0)} ms (transactions of 500); INPUT ${RULES + BANS} rules`,
    );
    const wait = first - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    t0 = performance.now();
    const during = await otherCallers(service, SPREAD_MS, 2);
    // Let the last ones go (bounded).
    const deadline = Date.now() + 60_000;
    while (due.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const kernelInput = inNs(['iptables-save', '-t', 'filter'])
      .split('\n')
      .filter((l) => l.startsWith('-A INPUT ')).length;
    console.log(
      `other callers while bans expire: ${during.opsPerSec.toFixed(0)} ops/s (${((during.opsPerSec / baseline.opsPerSec) * 100).toFixed(0)}% of baseline), ` +
        `p50 ${during.p50.toFixed(0)} ms, p99 ${during.p99.toFixed(0)} ms, ${during.errors} errors`,
    );
    console.log(
      `removals: ${lateness.length}/${BANS} seen (${due.size} missing); lateness median ${pct(lateness, 50)} ms, ` +
        `p99 ${pct(lateness, 99)} ms, max ${Math.max(...lateness)} ms; INPUT back to ${kernelInput} rules`,
    );
    if (due.size > 0 || kernelInput !== RULES) process.exitCode = 1;
  } finally {
    await service?.close().catch(() => undefined);
    spawnSync('ip', ['netns', 'del', NS]);
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
