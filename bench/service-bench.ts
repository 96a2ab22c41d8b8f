/**
 * Service benchmark on the real kernel, in a throwaway network namespace.
 *
 * INPUT is preloaded with 50,000 rules (a fail2ban-style ban list in one
 * chain, the worst case) and a user chain with 100 rules; the service runs
 * in-process against that namespace. Measured, in one run so the ratios are
 * fair on a shared, noisy machine:
 *   - appends from 256 concurrent callers, vs one `iptables -A` process per append;
 *   - deletes by id from 256 concurrent callers, vs one `iptables -D <spec>`;
 *   - reading the 100-rule chain and the whole 50k-rule table through the service;
 *   - resident memory of this process with 50k rules loaded.
 *
 * Run as root: `npm run bench` (or `npx tsx bench/service-bench.ts [--rules N] [--per-process-restore]`;
 * the flag turns off the long-lived iptables-restore of exec/restore-session.ts, for comparison).
 * It never touches the machine's own firewall and deletes its namespace at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { openKernel } from '../src/exec/kernel.js';
import { FirewallService } from '../src/service/firewall-service.js';

const args = process.argv.slice(2);
const RULES = Number(args[args.indexOf('--rules') + 1] ?? '') || 50_000;
const CALLERS = 256;
const PER_CALLER = 8;
const NS = `pbench-${process.pid}-${randomBytes(3).toString('hex')}`;

function sh(argv: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const [cmd, ...rest] = argv as [string, ...string[]];
  const r = spawnSync(cmd, rest, { input, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function inNs(argv: string[], input?: string) {
  const r = sh(['ip', 'netns', 'exec', NS, ...argv], input);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return r;
}

function run(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn('ip', ['netns', 'exec', NS, ...argv], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${argv.join(' ')} exited ${code}`)),
    );
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

/** A distinct address/port pair per index, inside the documentation range. */
const ban = (i: number) =>
  `-s 198.51.100.${i % 256}/32 -p tcp -m tcp --dport ${Math.floor(i / 256) + 1} -j DROP`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (it creates a network namespace)');
  sh(['ip', 'netns', 'add', NS]);
  const rows: [string, string, string, string][] = [];
  let service: FirewallService | undefined;
  try {
    // Preload with iptables-restore directly: this is the "existing" ruleset.
    const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':BENCH100 - [0:0]'];
    for (let i = 0; i < RULES; i++) lines.push(`-A INPUT ${ban(i)}`);
    for (let i = 0; i < 100; i++) lines.push(`-A BENCH100 -s 192.0.2.${i}/32 -j ACCEPT`);
    lines.push('COMMIT', '');
    let t0 = performance.now();
    inNs(['iptables-restore'], lines.join('\n'));
    console.log(
      `preloaded ${RULES} rules in INPUT + 100 in BENCH100 in ${(performance.now() - t0).toFixed(0)} ms`,
    );

    // Baselines: one process per change, as a script calling iptables would do.
    const appendMs: number[] = [];
    for (let i = 0; i < 10; i++)
      appendMs.push(await run(['iptables', '-A', 'INPUT', '-s', `192.0.2.${200 + i}/32`, '-j', 'DROP']));
    const deleteMs: number[] = [];
    for (let i = 0; i < 3; i++)
      deleteMs.push(await run(['iptables', '-D', 'INPUT', '-s', `192.0.2.${200 + i}/32`, '-j', 'DROP']));
    for (let i = 3; i < 10; i++)
      await run(['iptables', '-D', 'INPUT', '-s', `192.0.2.${200 + i}/32`, '-j', 'DROP']);
    const baseAppendRate = 1000 / median(appendMs);
    const baseDeleteRate = 1000 / median(deleteMs);
    const saveMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      t0 = performance.now();
      inNs(['iptables-save', '-t', 'filter']);
      saveMs.push(performance.now() - t0);
    }

    // The service.
    const adapters = await openKernel({
      netns: NS,
      ...(args.includes('--per-process-restore') ? { longLivedRestore: false } : {}),
    });
    if (adapters.degraded) console.log(`note: ${adapters.degraded}`);
    service = new FirewallService({
      executor: adapters.executor,
      ...(adapters.feed ? { feed: adapters.feed } : {}),
      ...(adapters.handles ? { handles: adapters.handles } : {}),
      families: ['ipv4'],
    });
    t0 = performance.now();
    await service.start();
    const startMs = performance.now() - t0;
    // Steady state with the rules loaded: collect, let the allocator settle, collect again.
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    await new Promise((r) => setTimeout(r, 1000));
    gc?.();
    const mem = process.memoryUsage();
    const rss = mem.rss / 1024 / 1024;
    const heap = mem.heapUsed / 1024 / 1024;

    // Warm-up (not timed): one round of 256 appends, so the measured rounds see a steady
    // state (JIT, the model's first per-chain index) rather than the first batch after start.
    const warm = await Promise.all(
      Array.from({ length: CALLERS }, (_, c) =>
        service?.apply([
          {
            op: 'append',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            rule: { spec: `-s 192.0.2.${c % 200}/32 -p udp --dport ${30000 + c} -j DROP` },
          },
        ]),
      ),
    );
    await Promise.all(
      warm.map((r) =>
        service?.apply([
          {
            op: 'delete',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            target: { id: r?.results[0]?.rule?.id as string },
          },
        ]),
      ),
    );
    const batchesBefore = service.status().batches;

    // Appends from 256 concurrent callers.
    const ids: string[] = [];
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, c) => {
        for (let k = 0; k < PER_CALLER; k++) {
          const n = c * PER_CALLER + k;
          const r = await service?.apply([
            {
              op: 'append',
              family: 'ipv4',
              table: 'filter',
              chain: 'INPUT',
              rule: { spec: `-s 192.0.2.${n % 200}/32 -p udp --dport ${1000 + n} -j DROP` },
            },
          ]);
          const id = r?.results[0]?.rule?.id;
          if (id) ids.push(id);
        }
      }),
    );
    const appendSec = (performance.now() - t0) / 1000;
    const appendRate = ids.length / appendSec;
    const appendBatches = service.status().batches - batchesBefore;

    // Deletes by id from 256 concurrent callers: (a) rules spread through the chain, as a
    // ban list expiring its oldest entries would; (b) the rules just appended at the tail, the
    // worst case (nf_tables finds a rule by handle with a walk from the head of its chain).
    const deleteAll = async (
      targets: readonly string[],
    ): Promise<{ rate: number; sec: number; n: number }> => {
      const t = performance.now();
      let n = 0;
      await Promise.all(
        Array.from({ length: CALLERS }, async (_, c) => {
          for (let k = c; k < targets.length; k += CALLERS) {
            await service?.apply([
              {
                op: 'delete',
                family: 'ipv4',
                table: 'filter',
                chain: 'INPUT',
                target: { id: targets[k] as string },
              },
            ]);
            n++;
          }
        }),
      );
      const sec = (performance.now() - t) / 1000;
      return { rate: n / sec, sec, n };
    };
    const all = (await service.getChain('ipv4', 'filter', 'INPUT')).chain.rules;
    const step = Math.floor((all.length - ids.length) / ids.length);
    const spread = Array.from({ length: ids.length }, (_, k) => all[k * step]?.id as string);
    const delSpread = await deleteAll(spread);
    const delTail = await deleteAll(ids);

    // Reads.
    const smallMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      t0 = performance.now();
      await service.getChain('ipv4', 'filter', 'BENCH100');
      smallMs.push(performance.now() - t0);
    }
    const tableMs: number[] = [];
    const tableJsonMs: number[] = [];
    for (let i = 0; i < 9; i++) {
      t0 = performance.now();
      const t = service.getTable('ipv4', 'filter');
      tableMs.push(performance.now() - t0);
      JSON.stringify(t);
      tableJsonMs.push(performance.now() - t0);
    }

    // Is the kernel still equal to the model?
    const kernelRules = inNs(['iptables-save', '-t', 'filter'])
      .stdout.split('\n')
      .filter((l) => l.startsWith('-A INPUT')).length;
    const modelRules = service.listChains('ipv4', 'filter').chains.find((c) => c.name === 'INPUT')?.rules;

    rows.push(
      [
        'appends, 256 concurrent callers',
        `${appendRate.toFixed(0)}/s (${ids.length} in ${appendSec.toFixed(2)} s, ${appendBatches} batches)`,
        `iptables -A per append: ${baseAppendRate.toFixed(1)}/s (${median(appendMs).toFixed(1)} ms each)`,
        `>= 3000/s and >= 50x: ${(appendRate / baseAppendRate).toFixed(0)}x`,
      ],
      [
        'deletes by id, 256 callers, spread',
        `${delSpread.rate.toFixed(0)}/s (${delSpread.n} in ${delSpread.sec.toFixed(2)} s)`,
        `iptables -D <spec>: ${baseDeleteRate.toFixed(2)}/s (${median(deleteMs).toFixed(0)} ms each)`,
        `>= 300/s: ${(delSpread.rate / baseDeleteRate).toFixed(0)}x`,
      ],
      [
        'deletes by id, 256 callers, tail',
        `${delTail.rate.toFixed(0)}/s (${delTail.n} in ${delTail.sec.toFixed(2)} s)`,
        `iptables -D <spec>: ${baseDeleteRate.toFixed(2)}/s`,
        `worst case: ${(delTail.rate / baseDeleteRate).toFixed(0)}x`,
      ],
      [
        'read 100-rule chain (median of 200)',
        `${median(smallMs).toFixed(3)} ms`,
        `iptables-save -t filter: ${median(saveMs).toFixed(0)} ms`,
        '< 5 ms',
      ],
      [
        'read whole table (median of 9)',
        `${median(tableMs).toFixed(1)} ms (${median(tableJsonMs).toFixed(1)} ms with JSON)`,
        `iptables-save -t filter: ${median(saveMs).toFixed(0)} ms`,
        '< 300 ms',
      ],
      [
        'resident memory, rules loaded',
        `${rss.toFixed(0)} MB (heap in use ${heap.toFixed(0)} MB)`,
        '',
        '< 250 MB',
      ],
      ['service start (read kernel + handles)', `${startMs.toFixed(0)} ms`, '', ''],
      [
        'model == kernel after the run',
        `${modelRules} == ${kernelRules}: ${modelRules === kernelRules}`,
        '',
        '',
      ],
    );
  } finally {
    await service?.close();
    sh(['ip', 'netns', 'del', NS]);
  }
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]?.length ?? 0), 8));
  const header: [string, string, string, string] = [
    'measure',
    `portcullis (${RULES} rules in INPUT)`,
    'baseline, same run',
    'target',
  ];
  for (const r of [header, ...rows]) console.log(r.map((x, i) => x.padEnd(widths[i] ?? 0)).join(' | '));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
