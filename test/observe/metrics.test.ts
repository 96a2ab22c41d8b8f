/**
 * Metrics (src/observe/metrics.ts): the service's observer hooks and both doors feed one
 * Prometheus registry, served at GET /metrics with a read token; label sets stay bounded.
 *
 * The last suite scrapes it with a real Prometheus (Debian's `prometheus` package), started on
 * a loopback port with a temporary config and storage, and reads a metric back through
 * Prometheus' HTTP API. Without the program it is skipped with the reason, and in CI
 * (CI=true or PORTCULLIS_REQUIRE_KERNEL=1, like the kernel tests) it fails instead.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService as Desc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import { Metrics } from '../../src/observe/metrics.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { Authenticator, hashToken } from '../../src/transport/auth.js';
import { createPromiseClient } from '../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../src/transport/grpc/server.js';
import { createApp } from '../../src/transport/http/app.js';
import { kernelRequired } from '../helpers/kernel.js';
import { freePort } from '../helpers/ports.js';

const READ = 'metrics-read-token';
const WRITE = 'metrics-write-token';
const auth = new Authenticator([
  { name: 'prom', scope: 'read', sha256: hashToken(READ) },
  { name: 'ops', scope: 'write', sha256: hashToken(WRITE) },
]);

/** The value of one series in exposition text, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('metrics of the service and the doors', () => {
  let service: FirewallService;
  let metrics: Metrics;
  let app: ReturnType<typeof createApp>;
  let grpcServer: grpc.Server;
  let grpcPort = 0;

  beforeAll(async () => {
    metrics = new Metrics();
    service = new FirewallService({
      executor: new FakeExecutor(),
      pollIntervalMs: 0,
      observer: metrics.observer,
    });
    metrics.attach(service);
    await service.start();
    app = createApp({ service, auth, requireAuth: true, metrics });
    grpcServer = createGrpcServer({ service, auth, requireAuth: true, metrics });
    grpcPort = await new Promise<number>((res, rej) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? rej(e) : res(p),
      ),
    );
  });
  afterAll(async () => {
    grpcServer?.forceShutdown();
    await service?.close();
  });

  it('needs a read token over TCP, and serves the exposition format', async () => {
    await request(app).get('/metrics').expect(401);
    const r = await request(app).get('/metrics').set('Authorization', `Bearer ${READ}`).expect(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.text).toContain('# TYPE portcullis_iptables_restore_duration_seconds histogram');
    expect(r.text).toContain('process_resident_memory_bytes');
  });

  it('counts kernel transactions, batches, jobs, rules per table and requests by operation and code', async () => {
    const A = { Authorization: `Bearer ${WRITE}` };
    for (let i = 0; i < 3; i++) {
      await request(app)
        .post('/v1/tables/filter/chains/INPUT/rules')
        .set(A)
        .send({ spec: `-s 192.0.2.${i + 1} -j DROP` })
        .expect(201);
    }
    await request(app)
      .post('/v1/tables/filter/chains/NOPE/rules')
      .set(A)
      .send({ spec: '-j DROP' })
      .expect(404);
    await request(app).get('/v1/status').expect(401);
    await request(app).get('/no/such/route').set(A).expect(404);
    const client = createPromiseClient(Desc, `127.0.0.1:${grpcPort}`);
    await client.getStatus({}, { token: READ });
    client.close();

    const text = (await request(app).get('/metrics').set('Authorization', `Bearer ${READ}`)).text;
    expect(sample(text, 'portcullis_requests_total{door="rest",operation="AppendRule",code="201"}')).toBe(3);
    expect(sample(text, 'portcullis_requests_total{door="rest",operation="AppendRule",code="404"}')).toBe(1);
    expect(sample(text, 'portcullis_requests_total{door="rest",operation="GetStatus",code="401"}')).toBe(1);
    expect(sample(text, 'portcullis_requests_total{door="rest",operation="unknown",code="404"}')).toBe(1);
    expect(sample(text, 'portcullis_requests_total{door="grpc",operation="GetStatus",code="OK"}')).toBe(1);
    expect(sample(text, 'portcullis_iptables_rules{family="ipv4",table="filter"}')).toBe(3);
    expect(sample(text, 'portcullis_iptables_rules{family="ipv6",table="nat"}')).toBe(0);
    expect(sample(text, 'portcullis_jobs_total{outcome="ok"}')).toBe(3);
    expect(sample(text, 'portcullis_jobs_total{outcome="not_found"}')).toBe(1);
    expect(sample(text, 'portcullis_batch_size_count')).toBeGreaterThanOrEqual(1);
    expect(
      sample(
        text,
        'portcullis_iptables_restore_duration_seconds_count{family="ipv4",table="filter",kind="restore"}',
      ),
    ).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'portcullis_committed_changes_total{door="rest"}')).toBe(3);
    expect(sample(text, 'portcullis_queue_depth')).toBe(0);
    expect(sample(text, 'portcullis_revision')).toBe(service.revision);
    expect(sample(text, 'portcullis_watch_mode{mode="none"}')).toBe(1);
  });

  it('keeps label sets bounded: new rules, chains and callers add no series', async () => {
    const count = async () =>
      (await request(app).get('/metrics').set('Authorization', `Bearer ${READ}`)).text
        .split('\n')
        .filter((l) => l.startsWith('portcullis_') && !l.startsWith('#')).length;
    const A = { Authorization: `Bearer ${WRITE}` };
    // One round first: every operation and code used below has its series after it.
    const round = async (i: number) => {
      await request(app)
        .post('/v1/tables/filter/chains')
        .set(A)
        .send({ name: `SEEN${i}` })
        .expect(201);
      await request(app)
        .post(`/v1/tables/filter/chains/SEEN${i}/rules`)
        .set(A)
        .send({ spec: `-s 198.51.100.${i} -j DROP` })
        .expect(201);
      await request(app).get(`/v1/tables/filter/chains/SEEN${i}`).set(A).expect(200);
    };
    await round(0);
    const before = await count();
    for (let i = 1; i <= 20; i++) {
      await request(app)
        .post('/v1/tables/filter/chains')
        .set(A)
        .send({ name: `SEEN${i}` })
        .expect(201);
      await request(app)
        .post(`/v1/tables/filter/chains/SEEN${i}/rules`)
        .set(A)
        .send({ spec: `-s 198.51.100.${i} -j DROP` });
      await request(app).get(`/v1/tables/filter/chains/SEEN${i}`).set(A);
    }
    expect(await count()).toBe(before);
  });
});

// ------------------------------------------------------------------ a real Prometheus

function prometheusProbe(): { available: boolean; reason?: string } {
  const r = spawnSync('prometheus', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0)
    return { available: false, reason: 'prometheus is not installed (Debian package prometheus)' };
  return { available: true };
}
const prom = prometheusProbe();

function describePrometheus(name: string, fn: () => void): void {
  if (prom.available) describe(name, fn);
  else if (kernelRequired)
    describe(name, () => {
      it('needs prometheus', () => {
        throw new Error(`the Prometheus scrape test is required in CI but cannot run: ${prom.reason}`);
      });
    });
  else {
    console.warn(`[prometheus] skipping "${name}": ${prom.reason}`);
    describe.skip(name, fn);
  }
}

describePrometheus('scraped by a real Prometheus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-prom-'));
  let service: FirewallService;
  let server: Server;
  let promProcess: ChildProcess | undefined;
  let promLog = '';
  let promPort = 0;

  beforeAll(async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', '*filter\n-A INPUT -s 192.0.2.9/32 -j DROP\nCOMMIT\n');
    const metrics = new Metrics();
    service = new FirewallService({ executor: fake, pollIntervalMs: 0, observer: metrics.observer });
    metrics.attach(service);
    await service.start();
    server = createServer(createApp({ service, auth, requireAuth: true, metrics }));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    promPort = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: portcullis',
        '    authorization:',
        '      type: Bearer',
        `      credentials: ${READ}`,
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    promProcess = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    promProcess.stderr?.setEncoding('utf8').on('data', (d: string) => {
      if (promLog.length < 20_000) promLog += d;
    });
  }, 60_000);

  afterAll(async () => {
    const p = promProcess;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await service?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes /metrics with a read token and answers a query for the rules gauge', async () => {
    const query = encodeURIComponent(
      'portcullis_iptables_rules{family="ipv4",table="filter",job="portcullis"}',
    );
    let last = '';
    for (let i = 0; i < 120; i++) {
      if (promProcess?.exitCode !== null) throw new Error(`prometheus exited: ${promLog}`);
      try {
        const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${query}`);
        last = await r.text();
        const body = JSON.parse(last) as {
          status: string;
          data?: { result?: { value: [number, string] }[] };
        };
        const value = body.data?.result?.[0]?.value?.[1];
        if (body.status === 'success' && value !== undefined) {
          expect(value).toBe('1');
          const up = (await (
            await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=up{job="portcullis"}`)
          ).json()) as { data: { result: { value: [number, string] }[] } };
          expect(up.data.result[0]?.value[1]).toBe('1');
          return;
        }
      } catch {
        // Prometheus is still starting.
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`Prometheus never had the metric: ${last}\n${promLog}`);
  }, 90_000);
});
