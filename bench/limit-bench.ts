/**
 * The physical limit, measured in the same run: how close the service's appends come to bare
 * `iptables-restore --noflush` processes carrying exactly the batch sizes the service used.
 *
 * Two namespaces get the same 50,000-rule INPUT: the service runs in-process against the first
 * (with the nft change feed and rule handles, as in production); the bare restores run in the
 * twin, where nothing else listens. For 256 and 1,024 concurrent callers, rounds alternate: the
 * service appends (every caller in a closed loop), then the twin gets one bare restore per batch
 * the service ran, of the same size. Both chains grow alike, so each pair is measured at the same
 * size. Then, in the twin, the same batches through one long-lived `iptables-restore` process
 * (fed batch after batch on stdin): written back to back (the most it could save), and waiting
 * for each batch's commit as the nft monitor reports it (what the service would have to do).
 *
 * Run as root: `node --import tsx bench/limit-bench.ts [--rules 50000] [--callers 256,1024]
 * [--rounds 3] [--per-caller 8]`.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { openKernel } from '../src/exec/kernel.js';
import { FirewallService } from '../src/service/firewall-service.js';
import { BenchNetns, banList, loadAverage, median, printTable, rate, sleep, timed } from './lib/sandbox.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : (args[i + 1] ?? fallback);
};
const RULES = Number(arg('--rules', '50000'));
const CALLERS = arg('--callers', '256,1024').split(',').map(Number);
const ROUNDS = Number(arg('--rounds', '3'));
const PER_CALLER = Number(arg('--per-caller', '8'));

let serial = 0;
/** A rule nobody appended before (unique across the run). */
const next = () => {
  const k = serial++;
  return `-s 192.0.2.${k % 200}/32 -p udp -m udp --dport ${1 + (k % 65000)} -j ${k % 2 ? 'DROP' : 'REJECT'}`;
};
const block = (size: number) => {
  const lines = ['*filter'];
  for (let i = 0; i < size; i++) lines.push(`-A INPUT ${next()}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
};

/** Bare restores of these batch sizes, one process each; seconds in total. */
async function bare(twin: BenchNetns, sizes: readonly number[]): Promise<number> {
  const texts = sizes.map(block);
  let ms = 0;
  for (const t of texts) ms += await timed(twin.argv(['iptables-restore', '-w', '10', '--noflush']), t);
  return ms / 1000;
}

/**
 * The same batches through one long-lived iptables-restore: back to back (`ack` false), or
 * each waiting until the nft monitor reports its commit. Seconds in total.
 */
async function longLived(twin: BenchNetns, sizes: readonly number[], ack: boolean): Promise<number> {
  const texts = sizes.map(block);
  const monitor = ack
    ? spawn('ip', ['netns', 'exec', twin.name, 'nft', 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] })
    : undefined;
  let generations = 0;
  let wake: (() => void) | undefined;
  let pending = '';
  monitor?.stdout?.setEncoding('utf8').on('data', (d: string) => {
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines)
      if (l.startsWith('# new generation')) {
        generations++;
        wake?.();
      }
  });
  if (monitor) await sleep(1500); // the monitor reads the ruleset before it reports
  const p = spawn('ip', ['netns', 'exec', twin.name, 'iptables-restore', '-w', '10', '--noflush'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const t0 = performance.now();
  try {
    for (const t of texts) {
      const want = generations + 1;
      p.stdin?.write(t);
      if (!ack) continue;
      while (generations < want) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 5000);
        });
        if (performance.now() - t0 > 120_000) throw new Error('no commit reported by the monitor');
      }
    }
    p.stdin?.end();
    const code = await exited;
    if (code !== 0) throw new Error(`long-lived iptables-restore exited ${code}`);
    return (performance.now() - t0) / 1000;
  } finally {
    monitor?.kill();
    if (p.exitCode === null) p.kill();
  }
}

interface Pair {
  readonly appends: number;
  readonly serviceSec: number;
  readonly batches: readonly number[];
  readonly bareSec: number;
}

async function measure(
  callers: number,
): Promise<{ pairs: Pair[]; perProcess: number; ll: number; llAck: number }> {
  const ns = new BenchNetns();
  const twin = new BenchNetns();
  try {
    ns.load(banList(RULES));
    twin.load(banList(RULES));
    const adapters = await openKernel({ netns: ns.name });
    const batches: number[] = [];
    let started: () => void = () => undefined;
    const reread = new Promise<void>((r) => {
      started = r;
    });
    const service = new FirewallService({
      executor: adapters.executor,
      ...(adapters.feed ? { feed: adapters.feed } : {}),
      ...(adapters.handles ? { handles: adapters.handles } : {}),
      families: ['ipv4'],
      observer: {
        batch: (e) => batches.push(e.jobs),
        reread: (e) => e.reason === 'start' && started(),
      },
    });
    const pairs: Pair[] = [];
    try {
      await service.start();
      if (adapters.feed) await reread;
      const round = async (perCaller: number) => {
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: callers }, async () => {
            for (let i = 0; i < perCaller; i++)
              await service.apply([
                { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: next() } },
              ]);
          }),
        );
        return (performance.now() - t0) / 1000;
      };
      await round(1); // warm-up
      await bare(twin, batches.splice(0));
      const per = Math.max(1, Math.round((PER_CALLER * 256) / callers));
      for (let r = 0; r < ROUNDS; r++) {
        const serviceSec = await round(per);
        const sizes = batches.splice(0);
        const bareSec = await bare(twin, sizes);
        pairs.push({ appends: callers * per, serviceSec, batches: sizes, bareSec });
        console.log(
          `${callers} callers, round ${r + 1}: service ${rate((callers * per) / serviceSec)} in ${sizes.length} batches ` +
            `(${sizes.join(',')}), bare ${rate((callers * per) / bareSec)} (load ${loadAverage()})`,
        );
      }
    } finally {
      await service.close();
    }
    // The long-lived process against one process per batch, each from the same 50k-rule start.
    const sizes = pairs.flatMap((p) => p.batches);
    const total = sizes.reduce((a, b) => a + b, 0);
    twin.load(banList(RULES));
    const perProcess = total / (await bare(twin, sizes));
    twin.load(banList(RULES));
    const ll = total / (await longLived(twin, sizes, false));
    twin.load(banList(RULES));
    const llAck = total / (await longLived(twin, sizes, true));
    return { pairs, perProcess, ll, llAck };
  } finally {
    ns.drop();
    twin.drop();
  }
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const callers of CALLERS) {
    const { pairs, perProcess, ll, llAck } = await measure(callers);
    const ratios = pairs.map((p) => p.bareSec / p.serviceSec);
    const svc = pairs.map((p) => p.appends / p.serviceSec);
    const lim = pairs.map((p) => p.appends / p.bareSec);
    const sizes = pairs.flatMap((p) => p.batches);
    rows.push([
      String(callers),
      `${median(sizes)} (${Math.min(...sizes)}-${Math.max(...sizes)})`,
      `${rate(median(svc))} (${svc.map((x) => Math.round(x)).join(', ')})`,
      `${rate(median(lim))} (${lim.map((x) => Math.round(x)).join(', ')})`,
      `${(median(ratios) * 100).toFixed(0)}% (${ratios.map((x) => `${(x * 100).toFixed(0)}%`).join(', ')})`,
      `${rate(perProcess)} / ${rate(ll)} / ${rate(llAck)}`,
    ]);
  }
  console.log(`\nINPUT at ${RULES.toLocaleString('en-US')} rules and growing alike in both namespaces\n`);
  printTable(
    [
      'callers',
      'batch size, median (range)',
      'service appends/s (rounds)',
      'bare restores, same batches',
      'service / bare',
      'same batches from 50k: a process each / one long-lived restore, back to back / commit by commit',
    ],
    rows,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
