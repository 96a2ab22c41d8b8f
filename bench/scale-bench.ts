/**
 * Scale: the compiled daemon (`node dist/main.js`, what `npm start` runs) on kube-proxy-shaped
 * rulesets (bench/lib/kube-ruleset.ts: chains of about 100 rules in filter and nat, 5,000 chains
 * at 500,000 rules), at 0, 10k, 50k, 200k and 500k rules. For each size, in a throwaway network
 * namespace:
 *
 *   - start-to-ready (spawn until GET /readyz answers 200) and resident memory then; the time
 *     until the first change is applied (after the start-up re-read that learns rule handles),
 *     and resident memory after it;
 *   - a whole-table read through REST (GET /v1/tables/filter), next to `iptables-save -t filter`;
 *   - a declarative ReplaceTable of filter (PUT /v1/tables/filter, every chain as specs) that
 *     changes 1% of its rules: end-to-end time and the restore text the service ran (from the
 *     audit log), next to a bare `iptables-restore --noflush` of that text in a twin namespace;
 *     then the next one (another 1%), as a client that keeps a table in sync sends it: the
 *     first replace after a start parses every spec, later ones find the rules the model
 *     accepted from the earlier (src/service/accepted-rules.ts); resident memory after both;
 *   - appends into a 100-rule chain from 256 REST clients while the tables hold the rest.
 *
 * Writes bench/results/scale.json and bench/results/growth.svg (the chart in the README).
 * Run as root after `npm run build`: `node --import tsx bench/scale-bench.ts
 * [--sizes 0,10000,50000,200000,500000] [--clients 256] [--no-chart]`; `--from-log FILE` re-renders
 * the table, scale.json and the chart from the row lines a run printed (nothing is measured).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { lineChart } from './lib/chart.js';
import { kubeRuleset, onePercentChange, tableChains } from './lib/kube-ruleset.js';
import { BenchNetns, loadAverage, printTable, ROOT, rate, rssMb, startDaemon, timed } from './lib/sandbox.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : (args[i + 1] ?? fallback);
};
const SIZES = arg('--sizes', '0,10000,50000,200000,500000').split(',').map(Number);
const CLIENTS = Number(arg('--clients', '256'));
const RESULTS = join(ROOT, 'bench', 'results');

interface Replace {
  readonly ms: number;
  readonly changed: number;
  readonly requestBytes: number;
  readonly restoreBytes: number;
  readonly restoreLines: number;
  readonly bareMs: number;
}

interface Row {
  readonly rules: number;
  readonly chains: number;
  readonly load: string;
  readonly preloadMs: number;
  readonly startMs: number;
  readonly rssReadyMb: number;
  readonly firstChangeMs: number;
  readonly rssMb: number;
  readonly saveMs: number;
  readonly tableReadMs: number;
  readonly tableBytes: number;
  readonly replace?: Replace;
  /** The next 1% replace (another 1%), after the first. */
  readonly nextReplace?: Replace;
  /** Resident memory after the replaces. */
  readonly rssReplacedMb?: number;
  readonly appends: {
    readonly rate: number;
    readonly p50: number;
    readonly p99: number;
    readonly failed: number;
  };
}

async function request(
  url: string,
  init: RequestInit & { token: string },
): Promise<{ status: number; text: string }> {
  const { token, ...rest } = init;
  const r = await fetch(url, {
    ...rest,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    signal: AbortSignal.timeout(600_000),
  });
  return { status: r.status, text: await r.text() };
}

async function measure(size: number): Promise<Row> {
  const kube = kubeRuleset(size);
  const ns = new BenchNetns();
  const twin = new BenchNetns();
  try {
    const preloadMs = ns.load(kube.text);
    twin.load(kube.text);
    const t = performance.now();
    const save = ns.run(['iptables-save', '-t', 'filter']).stdout;
    const saveMs = performance.now() - t;
    const daemon = await startDaemon({
      netns: ns.name,
      build: 'dist',
      extraArgs: ['--max-body-bytes', String(1024 * 1024 * 1024), '--request-timeout-ms', '600000'],
      readyTimeoutMs: 600_000,
    });
    try {
      const pid = daemon.child.pid as number;
      const rssReadyMb = rssMb(pid);
      const base = `${daemon.restUrl}/v1/tables/filter`;
      const rulesUrl = `${base}/chains/${kube.appendChain}/rules`;
      // The first change waits for the start-up re-read (rule handles) queued before it.
      let t0 = performance.now();
      const first = await request(rulesUrl, {
        method: 'POST',
        token: daemon.token,
        body: JSON.stringify({ spec: '-s 203.0.113.250/32 -j ACCEPT' }),
      });
      if (first.status !== 201) throw new Error(`first append: ${first.status} ${first.text.slice(0, 300)}`);
      const firstChangeMs = performance.now() - t0 + daemon.readyMs;
      const id = (JSON.parse(first.text) as { rule: { id: string } }).rule.id;
      await request(`${rulesUrl}/${id}`, { method: 'DELETE', token: daemon.token });
      await new Promise((r) => setTimeout(r, 1000));
      const rss = rssMb(pid);

      t0 = performance.now();
      const table = await request(base, { method: 'GET', token: daemon.token });
      const tableReadMs = performance.now() - t0;
      if (table.status !== 200) throw new Error(`table read: ${table.status}`);

      // A 1% replace, then the next 1% from the table the first left; each restore text the
      // service ran is replayed bare in the twin, which so follows the same states.
      const replaceOnce = async (
        chains: ReturnType<typeof tableChains>,
        changed: number,
      ): Promise<Replace> => {
        const body = JSON.stringify({ chains });
        const t1 = performance.now();
        const r = await request(base, { method: 'PUT', token: daemon.token, body });
        const ms = performance.now() - t1;
        if (r.status !== 200) throw new Error(`replace table: ${r.status} ${r.text.slice(0, 300)}`);
        const audit = readFileSync(join(daemon.stateDir, 'audit.log'), 'utf8').trim().split('\n');
        const last = JSON.parse(audit[audit.length - 1] as string) as { restore?: { text: string }[] };
        const text = (last.restore ?? []).map((x) => x.text).join('');
        const bareMs = await timed(twin.argv(['iptables-restore', '-w', '10', '--noflush']), text);
        return {
          ms,
          changed,
          requestBytes: body.length,
          restoreBytes: text.length,
          restoreLines: text.split('\n').length - 1,
          bareMs,
        };
      };
      let replace: Replace | undefined;
      let nextReplace: Replace | undefined;
      let rssReplacedMb: number | undefined;
      const once = onePercentChange(tableChains(save, 'filter'));
      if (once.changed > 0) {
        replace = await replaceOnce(once.chains, once.changed);
        const next = onePercentChange(once.chains, 1);
        if (next.changed > 0) nextReplace = await replaceOnce(next.chains, next.changed);
        await new Promise((r) => setTimeout(r, 1000));
        rssReplacedMb = rssMb(pid);
      }

      let k = 0;
      const a = await autocannon({
        url: daemon.restUrl,
        connections: CLIENTS,
        amount: CLIENTS * 8,
        timeout: 120,
        requests: [
          {
            method: 'POST',
            path: `/v1/tables/filter/chains/${kube.appendChain}/rules`,
            headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json' },
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({
                spec: `-s 198.51.100.${k % 250}/32 -p udp -m udp --dport ${1 + k++} -j DROP`,
              }),
            }),
          },
        ],
      });
      return {
        rules: kube.rules,
        chains: kube.chains,
        load: loadAverage(),
        preloadMs,
        startMs: daemon.readyMs,
        rssReadyMb,
        firstChangeMs,
        rssMb: rss,
        saveMs,
        tableReadMs,
        tableBytes: table.text.length,
        ...(replace ? { replace } : {}),
        ...(nextReplace ? { nextReplace } : {}),
        ...(rssReplacedMb !== undefined ? { rssReplacedMb } : {}),
        appends: {
          rate: a['2xx'] / a.duration,
          p50: a.latency.p50,
          p99: a.latency.p99,
          failed: a.non2xx + a.errors,
        },
      };
    } finally {
      await daemon.stop();
    }
  } finally {
    ns.drop();
    twin.drop();
  }
}

function chart(rows: readonly Row[]): string {
  const xs = rows.map((r) => r.rules);
  const at = (f: (r: Row) => number | undefined) => rows.map(f);
  const seconds = (pick: (r: Row) => Replace | undefined, ms: (x: Replace) => number) =>
    at((r) => {
      const x = pick(r);
      return x ? ms(x) / 1000 : undefined;
    });
  const replacePanel = (which: string, pick: (r: Row) => Replace | undefined) => ({
    title: `ReplaceTable changing 1%, ${which} (REST)`,
    unit: 's',
    values: seconds(pick, (x) => x.ms),
    reference: { label: 'bare iptables-restore', values: seconds(pick, (x) => x.bareMs) },
    target: { at: 3, label: 'target at 500k: 3 s' },
  });
  return lineChart({
    title: 'Portcullis at scale: kube-proxy-shaped rulesets (100-rule chains in filter and nat)',
    subtitle: `compiled daemon in a network namespace, 2-core machine; ${new Date().toISOString().slice(0, 10)}`,
    xs,
    xLabel: 'rules in the kernel',
    columns: 3,
    panels: [
      {
        title: 'start to ready',
        unit: 's',
        values: at((r) => r.startMs / 1000),
        reference: { label: 'iptables-save', values: at((r) => r.saveMs / 1000) },
        target: { at: 15, label: 'target at 500k: 15 s' },
      },
      {
        title: 'resident memory',
        unit: 'MB',
        values: at((r) => r.rssMb),
        target: { at: 600, label: 'target at 500k: 600 MB' },
      },
      {
        title: 'whole filter table read (REST)',
        unit: 's',
        values: at((r) => r.tableReadMs / 1000),
        reference: { label: 'iptables-save -t filter', values: at((r) => r.saveMs / 1000) },
      },
      replacePanel('the first after start', (r) => r.replace),
      replacePanel('the next ones', (r) => r.nextReplace),
      {
        title: `appends into a 100-rule chain, ${CLIENTS} REST clients`,
        unit: 'per s',
        values: at((r) => r.appends.rate),
      },
      {
        title: 'first change applied after start',
        unit: 's',
        values: at((r) => r.firstChangeMs / 1000),
      },
    ],
  });
}

function replaceCell(r: Replace | undefined): string {
  if (!r) return 'n/a';
  return `${r.ms.toFixed(0)} ms, ${r.changed} rules, ${r.restoreLines} lines / ${(r.restoreBytes / 1024).toFixed(0)} KiB (${r.bareMs.toFixed(0)} ms)`;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const fromLog = args.indexOf('--from-log');
  if (fromLog !== -1) {
    // Re-render the table, scale.json and the chart from the row lines a run printed.
    const text = readFileSync(args[fromLog + 1] ?? '', 'utf8');
    for (const line of text.split('\n')) if (line.startsWith('{"rules":')) rows.push(JSON.parse(line) as Row);
  } else {
    for (const size of SIZES) {
      const row = await measure(size);
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
  printTable(
    [
      'rules',
      'start',
      'RSS ready/settled',
      'first change',
      'table read (save)',
      'ReplaceTable 1% (bare)',
      'next 1% (bare)',
      'RSS after replaces',
      'appends, 100-rule chain',
    ],
    rows.map((r) => [
      `${r.rules.toLocaleString('en-US')} (${r.chains} chains)`,
      `${(r.startMs / 1000).toFixed(2)} s`,
      `${r.rssReadyMb.toFixed(0)} / ${r.rssMb.toFixed(0)} MB`,
      `${(r.firstChangeMs / 1000).toFixed(2)} s`,
      `${r.tableReadMs.toFixed(0)} ms, ${(r.tableBytes / 1e6).toFixed(1)} MB (${r.saveMs.toFixed(0)} ms)`,
      replaceCell(r.replace),
      replaceCell(r.nextReplace),
      r.rssReplacedMb === undefined ? 'n/a' : `${r.rssReplacedMb.toFixed(0)} MB`,
      `${rate(r.appends.rate)} p50 ${r.appends.p50} p99 ${r.appends.p99} ms`,
    ]),
  );
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'scale.json'), `${JSON.stringify({ clients: CLIENTS, rows }, null, 2)}\n`);
  if (!args.includes('--no-chart')) writeFileSync(join(RESULTS, 'growth.svg'), chart(rows));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
