/**
 * Through the front doors, at 50,000 rules: what a client sees over REST (HTTP/1.1 keep-alive,
 * autocannon) and gRPC (one channel, a bounded client on @grpc/grpc-js), next to the service
 * called in-process and two peers, all in one run so the ratios are fair on a shared machine:
 *
 *   - appends to INPUT (50,000 rules), deletes by id (rules spread through the chain), reads of
 *     the 100-rule chain BENCH100: rate, p50 and p99 latency, 256 concurrent clients;
 *   - the serving process's CPU time per operation (the daemon's, from /proc/PID/stat; for the
 *     in-process service, this process's): what each door costs the host, apart from how fast
 *     this one client process can go (the gRPC client decoding 100-rule replies is the limit of
 *     its read rate: the reads are measured a second time with the replies counted, not decoded);
 *   - peers: one `iptables -A` / `-D <spec>` / `-S` process per request, and a naive REST
 *     wrapper (bench/peers/naive-rest.ts: express, one iptables process per request).
 *
 * The daemon runs as a child process, compiled and with npm start's node flags (what users run:
 * through tsx it was ~20% slower, measured) and its defaults (lockout guard, audit log,
 * metrics), REST and gRPC on 127.0.0.1 only, in a throwaway network namespace that is deleted
 * at the end. Its phases start once it has learned its rule handles, as the in-process ones do.
 * Every phase adds clients x per-client rules at the tail (8,192 by default: autocannon counts
 * whole seconds, so a phase of a few seconds would be read coarsely) and deletes as many others.
 *
 * Run as root, after `npm run build`: `node --import tsx bench/doors-bench.ts [--rules 50000] [--clients 256]
 * [--per-client 32] [--read-seconds 5] [--peer-seconds 10] [--out bench/results/doors.json]`.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import autocannon, { type Result as CannonResult } from 'autocannon';
import { openKernel } from '../src/exec/kernel.js';
import {
  GetChainRequestSchema,
  GetChainResponseSchema,
  FirewallService as GrpcService,
} from '../src/gen/portcullis/v1/firewall_service_pb.js';
import { Family } from '../src/gen/portcullis/v1/rule_pb.js';
import { FirewallService } from '../src/service/firewall-service.js';
import { createPromiseClient } from '../src/transport/grpc/client.js';
import {
  BenchNetns,
  banList,
  freePort,
  loadAverage,
  percentile,
  printTable,
  ROOT,
  rate,
  sleep,
  startDaemon,
  timed,
} from './lib/sandbox.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : Number(args[i + 1]) || fallback;
};
const RULES = opt('--rules', 50_000);
const CLIENTS = opt('--clients', 256);
const PER_CLIENT = opt('--per-client', 32);
const READ_SECONDS = opt('--read-seconds', 5);
const PEER_SECONDS = opt('--peer-seconds', 10);
const OUT = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;
const N = CLIENTS * PER_CLIENT;
/**
 * Connections for the naive wrapper's deletes and reads: each `iptables -D <spec>` or `-S` at
 * 50k rules reads the whole chain into a 50 MB process, so 256 at once would take 12 GB.
 */
const HEAVY_PEER_CLIENTS = Math.min(CLIENTS, 16);

/** One measured phase: completed operations, seconds, latency percentiles (ms). */
interface Figure {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU time of the serving process (the daemon, or this one in-process) per operation, ms. */
  readonly cpuMs?: number;
}

const figure = (ok: number, failed: number, seconds: number, lat: readonly number[]): Figure => ({
  ok,
  failed,
  seconds,
  rate: ok / seconds,
  p50: percentile(lat, 50),
  p99: percentile(lat, 99),
});

/** `clients` workers each calling `call(k)` for their share of `total` indexes (k = client + i*clients). */
async function closedLoop(
  clients: number,
  total: number,
  call: (k: number) => Promise<unknown>,
): Promise<Figure> {
  const lat: number[] = [];
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let k = c; k < total; k += clients) {
        const t = performance.now();
        try {
          await call(k);
          ok++;
          lat.push(performance.now() - t);
        } catch {
          failed++;
        }
      }
    }),
  );
  return figure(ok, failed, (performance.now() - t0) / 1000, lat);
}

/** `clients` workers calling `call()` until `seconds` pass. */
async function forSeconds(clients: number, seconds: number, call: () => Promise<unknown>): Promise<Figure> {
  const lat: number[] = [];
  let ok = 0;
  let failed = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await call();
          ok++;
          lat.push(performance.now() - t);
        } catch {
          failed++;
        }
      }
    }),
  );
  return figure(ok, failed, (performance.now() - t0) / 1000, lat);
}

function fromAutocannon(r: CannonResult): Figure {
  const ok = r['2xx'];
  return {
    ok,
    failed: r.non2xx + r.errors,
    seconds: r.duration,
    rate: ok / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
  };
}

/** CPU seconds (user + system, not its children) of a process so far. */
function cpuSeconds(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  // Fields 14 and 15 of /proc/PID/stat, after the command in parentheses; clock ticks of 1/100 s.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Runs a phase and adds the serving process's CPU time per completed operation. */
async function withCpu(pid: number, phase: () => Promise<Figure>): Promise<Figure> {
  const c0 = cpuSeconds(pid);
  const f = await phase();
  return { ...f, cpuMs: f.ok > 0 ? ((cpuSeconds(pid) - c0) * 1000) / f.ok : Number.NaN };
}

/** Waits until the daemon's first re-read with handles is done (its metric says so). */
async function settled(url: string, token: string): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const r = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    if (/^portcullis_rereads_total\{reason="start"\} [1-9]/m.test(await r.text())) return;
    await sleep(100);
  }
  throw new Error('the daemon did not learn its handles within 120 s');
}

/** The spec of the k-th rule a phase appends (unique across phases through `base`). */
const added = (base: number, k: number) =>
  `-s 192.0.2.${k % 200}/32 -p udp -m udp --dport ${1 + ((base + k) % 65000)} -j DROP`;

async function peers(ns: BenchNetns): Promise<Record<string, Figure>> {
  const seq = async (n: number, argv: (i: number) => string[]) => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) ms.push(await timed(ns.argv(argv(i))));
    return figure(n, 0, ms.reduce((a, b) => a + b, 0) / 1000, ms);
  };
  const spec = (i: number) => ['-s', `192.0.2.${210 + i}/32`, '-j', 'DROP'];
  const append = await seq(10, (i) => ['iptables', '-w', '-A', 'INPUT', ...spec(i)]);
  const del = await seq(3, (i) => ['iptables', '-w', '-D', 'INPUT', ...spec(i)]);
  for (let i = 3; i < 10; i++) await timed(ns.argv(['iptables', '-w', '-D', 'INPUT', ...spec(i)]));
  const read = await seq(10, () => ['iptables', '-w', '-S', 'BENCH100']);
  return { append, delete: del, read };
}

async function inProcess(ns: BenchNetns, spread: () => string[]): Promise<Record<string, Figure>> {
  const adapters = await openKernel({ netns: ns.name });
  let startReread: () => void = () => undefined;
  const reread = new Promise<void>((r) => {
    startReread = r;
  });
  const service = new FirewallService({
    executor: adapters.executor,
    ...(adapters.feed ? { feed: adapters.feed } : {}),
    ...(adapters.handles ? { handles: adapters.handles } : {}),
    families: ['ipv4'],
    observer: { reread: (e) => e.reason === 'start' && startReread() },
  });
  try {
    await service.start();
    if (adapters.feed) await reread; // handles learned: deletes go by handle from here on
    const append = (base: number) => (k: number) =>
      service.apply([
        { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: added(base, k) } },
      ]);
    await closedLoop(CLIENTS, CLIENTS, append(60_000)); // warm-up, not timed
    const appends = await withCpu(process.pid, () => closedLoop(CLIENTS, N, append(0)));
    const ids = spread();
    const deletes = await withCpu(process.pid, () =>
      closedLoop(CLIENTS, N, (k) =>
        service.apply([
          { op: 'delete', family: 'ipv4', table: 'filter', chain: 'INPUT', target: { id: ids[k] as string } },
        ]),
      ),
    );
    const reads = await withCpu(process.pid, () =>
      forSeconds(CLIENTS, READ_SECONDS, () => service.getChain('ipv4', 'filter', 'BENCH100')),
    );
    return { append: appends, delete: deletes, read: reads };
  } finally {
    await service.close();
  }
}

async function rest(
  pid: number,
  url: string,
  token: string,
  spread: () => string[],
): Promise<Record<string, Figure>> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const rules = '/v1/tables/filter/chains/INPUT/rules';
  const appendOnce = async (base: number, amount: number) => {
    let k = 0;
    return fromAutocannon(
      await autocannon({
        url,
        connections: CLIENTS,
        amount,
        timeout: 60,
        requests: [
          {
            method: 'POST',
            path: rules,
            headers,
            setupRequest: (req) => ({ ...req, body: JSON.stringify({ spec: added(base, k++) }) }),
          },
        ],
      }),
    );
  };
  await appendOnce(61_000, CLIENTS); // warm-up
  const appends = await withCpu(pid, () => appendOnce(20_000, N));
  const ids = spread();
  let d = 0;
  const deletes = await withCpu(pid, async () =>
    fromAutocannon(
      await autocannon({
        url,
        connections: CLIENTS,
        amount: N,
        timeout: 60,
        requests: [
          { method: 'DELETE', headers, setupRequest: (req) => ({ ...req, path: `${rules}/${ids[d++]}` }) },
        ],
      }),
    ),
  );
  const reads = await withCpu(pid, async () =>
    fromAutocannon(
      await autocannon({
        url,
        connections: CLIENTS,
        duration: READ_SECONDS,
        headers,
        requests: [{ method: 'GET', path: '/v1/tables/filter/chains/BENCH100' }],
      }),
    ),
  );
  return { append: appends, delete: deletes, read: reads };
}

async function grpcDoor(
  pid: number,
  address: string,
  token: string,
  spread: () => string[],
): Promise<Record<string, Figure>> {
  const client = createPromiseClient(GrpcService, address, grpc.credentials.createInsecure());
  const o = { token };
  try {
    const append = (base: number) => (k: number) =>
      client.appendRule(
        {
          family: Family.IPV4,
          table: 'filter',
          chain: 'INPUT',
          rule: { kind: { case: 'spec', value: added(base, k) } },
        },
        o,
      );
    await closedLoop(CLIENTS, CLIENTS, append(62_000)); // warm-up
    const appends = await withCpu(pid, () => closedLoop(CLIENTS, N, append(40_000)));
    const ids = spread();
    const deletes = await withCpu(pid, () =>
      closedLoop(CLIENTS, N, (k) =>
        client.deleteRule(
          {
            family: Family.IPV4,
            table: 'filter',
            chain: 'INPUT',
            target: { case: 'id', value: ids[k] as string },
          },
          o,
        ),
      ),
    );
    const reads = await withCpu(pid, () =>
      forSeconds(CLIENTS, READ_SECONDS, () =>
        client.getChain({ family: Family.IPV4, table: 'filter', chain: 'BENCH100' }, o),
      ),
    );
    // The same reads with the replies counted, not decoded: this one client process decoding
    // 100-rule replies with protobuf-es limits the rate above, not the daemon.
    const path = `/${GrpcService.typeName}/GetChain`;
    const request = Buffer.from(
      toBinary(
        GetChainRequestSchema,
        create(GetChainRequestSchema, { family: Family.IPV4, table: 'filter', chain: 'BENCH100' }),
      ),
    );
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const same = (b: Buffer) => b;
    const rawRead = () =>
      new Promise<Buffer>((resolve, reject) =>
        (client.raw as grpc.Client).makeUnaryRequest(path, same, same, request, md, (e, r) =>
          e || !r ? reject(e ?? new Error('no reply')) : resolve(r),
        ),
      );
    const first = fromBinary(GetChainResponseSchema, await rawRead());
    if (first.chain?.rules.length !== 100)
      throw new Error(`BENCH100 read back ${first.chain?.rules.length} rules`);
    const readsRaw = await withCpu(pid, () => forSeconds(CLIENTS, READ_SECONDS, rawRead));
    return { append: appends, delete: deletes, read: reads, readRaw: readsRaw };
  } finally {
    client.close();
  }
}

async function naive(ns: BenchNetns): Promise<Record<string, Figure>> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', `${ROOT}/bench/peers/naive-rest.ts`, ns.name, String(port)],
    // Its own process group: the iptables processes it has running when it is stopped go too
    // (they were left waiting for the xtables lock in the deleted namespace for minutes).
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached: true },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stopGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM'); // the group this bench started
    } catch {
      child.kill('SIGTERM');
    }
  };
  process.once('exit', stopGroup); // also when a signal ends the bench (sandbox.ts exits then)
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', () => reject(new Error('the naive wrapper exited')));
    });
    const url = `http://127.0.0.1:${port}`;
    const headers = { 'content-type': 'application/json' };
    let k = 0;
    const appends = fromAutocannon(
      await autocannon({
        url,
        connections: CLIENTS,
        duration: PEER_SECONDS,
        timeout: 120,
        requests: [
          {
            method: 'POST',
            path: '/rules/INPUT',
            headers,
            setupRequest: (req) => ({ ...req, body: JSON.stringify({ spec: added(80_000, k++) }) }),
          },
        ],
      }),
    );
    let d = 0;
    const deletes = fromAutocannon(
      await autocannon({
        url,
        connections: HEAVY_PEER_CLIENTS,
        duration: PEER_SECONDS,
        timeout: 120,
        requests: [
          {
            method: 'DELETE',
            path: '/rules/INPUT',
            headers,
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({ spec: added(80_000, d++ % Math.max(1, k)) }),
            }),
          },
        ],
      }),
    );
    const reads = fromAutocannon(
      await autocannon({
        url,
        connections: HEAVY_PEER_CLIENTS,
        duration: PEER_SECONDS,
        timeout: 120,
        requests: [{ method: 'GET', path: '/rules/BENCH100' }],
      }),
    );
    return { append: appends, delete: deletes, read: reads };
  } finally {
    process.off('exit', stopGroup);
    stopGroup();
    await exited;
  }
}

/** One line per finished phase, so a long run shows its figures as it goes. */
function report(door: string, figures: Record<string, Figure>): Record<string, Figure> {
  for (const [k, f] of Object.entries(figures))
    console.log(
      `  ${door} ${k}: ${rate(f.rate)} (${f.ok} in ${f.seconds.toFixed(2)} s, ${f.failed} failed), p50 ${f.p50.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms${f.cpuMs === undefined ? '' : `, server CPU ${f.cpuMs.toFixed(3)} ms/op`}`,
    );
  return figures;
}

async function main(): Promise<void> {
  const ns = new BenchNetns();
  const results: Record<string, Record<string, Figure>> = {};
  const load: string[] = [loadAverage()];
  try {
    console.log(
      `preloaded ${RULES} rules in INPUT + 100 in BENCH100 in ${ns.load(banList(RULES)).toFixed(0)} ms`,
    );
    // The original rules, spread through the chain: each door deletes its own slice of them.
    // Ids are derived from the rule's text and occurrence, so every process computes the same.
    const ids: string[] = [];
    const spread = (slice: number) => () => {
      const step = Math.floor(RULES / N / 4);
      return Array.from({ length: N }, (_, k) => ids[k * step * 4 + slice] as string);
    };
    results.peer = report('iptables per request', await peers(ns));
    console.log('peers done (one iptables process per request)');
    {
      const adapters = await openKernel({ netns: ns.name });
      const s = new FirewallService({ executor: adapters.executor, families: ['ipv4'] });
      await s.start();
      for (const r of (await s.getChain('ipv4', 'filter', 'INPUT')).chain.rules) ids.push(r.id);
      await s.close();
    }
    results.inProcess = report('in-process', await inProcess(ns, spread(0)));
    load.push(loadAverage());
    console.log('in-process done');
    const daemon = await startDaemon({ netns: ns.name, build: 'dist' });
    console.log(`daemon ready in ${daemon.readyMs.toFixed(0)} ms`);
    // Like the in-process service above: measured once the handles are learned (the re-read
    // after ready, seconds at 50k rules), not while the daemon is still settling.
    const t0 = performance.now();
    await settled(daemon.restUrl, daemon.token);
    console.log(`daemon settled (handles learned) ${(performance.now() - t0).toFixed(0)} ms later`);
    try {
      results.rest = report('REST', await rest(daemon.child.pid!, daemon.restUrl, daemon.token, spread(1)));
      load.push(loadAverage());
      console.log('REST done');
      results.grpc = report(
        'gRPC',
        await grpcDoor(daemon.child.pid!, daemon.grpcAddress, daemon.token, spread(2)),
      );
      load.push(loadAverage());
      console.log('gRPC done');
    } finally {
      await daemon.stop();
    }
    results.naive = report('naive wrapper', await naive(ns));
    load.push(loadAverage());
    console.log('naive wrapper done');
    const kernelRules = ns
      .run(['iptables-save', '-t', 'filter'])
      .stdout.split('\n')
      .filter((l) => l.startsWith('-A INPUT ')).length;
    console.log(`INPUT holds ${kernelRules} rules at the end`);
  } finally {
    ns.drop();
  }
  const cell = (f: Figure | undefined, ref?: Figure) =>
    f === undefined
      ? ''
      : `${rate(f.rate)} p50 ${f.p50.toFixed(1)} p99 ${f.p99.toFixed(1)} ms${
          f.cpuMs === undefined ? '' : `, CPU ${f.cpuMs.toFixed(2)} ms/op`
        }${
          ref ? ` (${((f.rate / ref.rate) * 100).toFixed(0)}%)` : ''
        }${f.failed ? ` ${f.failed} failed` : ''}`;
  const rows = (['append', 'delete', 'read', 'readRaw'] as const).map((k) => {
    const ip = k === 'readRaw' ? undefined : results.inProcess?.[k];
    return [
      {
        append: `appends to INPUT (${RULES})`,
        delete: 'deletes by id (spread)',
        read: 'reads of BENCH100',
        readRaw: 'reads of BENCH100, replies not decoded',
      }[k],
      cell(ip),
      cell(results.rest?.[k], ip),
      cell(results.grpc?.[k], ip),
      results.naive?.[k]
        ? cell(results.naive[k]) + (k === 'append' ? '' : ` (${HEAVY_PEER_CLIENTS} clients)`)
        : '',
      cell(results.peer?.[k]),
    ];
  });
  console.log(`\n${CLIENTS} concurrent clients; load average during the run: ${load.join(', ')}\n`);
  printTable(
    [
      'measure',
      'in-process',
      'REST (of in-process)',
      'gRPC (of in-process)',
      'naive REST wrapper',
      'iptables per request (sequential)',
    ],
    rows,
  );
  // A peer that completed nothing in its window (the naive wrapper, still working off the
  // appends queued behind the xtables lock) has no ratio: say so instead of "Infinity".
  const ratio = (a?: Figure, b?: Figure) =>
    a && b
      ? b.rate > 0
        ? (a.rate / b.rate).toFixed(0)
        : `n/a (the peer completed none in ${b.seconds.toFixed(0)} s) `
      : '?';
  console.log(
    `\nappends: REST ${ratio(results.rest?.append, results.naive?.append)}x the naive wrapper, ` +
      `in-process ${ratio(results.inProcess?.append, results.peer?.append)}x one iptables -A per request; ` +
      `deletes: REST ${ratio(results.rest?.delete, results.naive?.delete)}x the naive wrapper`,
  );
  if (OUT)
    writeFileSync(OUT, `${JSON.stringify({ rules: RULES, clients: CLIENTS, load, results }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
