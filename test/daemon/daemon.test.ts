/**
 * The daemon as an operator runs it, managing a throwaway network namespace: TLS with client
 * certificates, tokens, the rules files written after every change, the audit log, JSON logs
 * with request ids, SIGHUP (new certificates for new connections, the audit log reopened),
 * --restore-on-start (rules loaded before ready; a bad file stops the start with one
 * sentence naming the file and line), and SIGTERM (exit 0, ports released). Tokens, keys and
 * certificates never reach the log.
 */
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FirewallService as Desc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import { hashToken } from '../../src/transport/auth.js';
import { serviceDefinition } from '../../src/transport/grpc/adapter.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { makeCerts, type TestCerts } from './certs.js';
import { rest } from './https.js';
import { startDaemon } from './process.js';

const TOKEN = 'daemon-test-token-9f2c41';

function portOf(address: unknown): number {
  return Number(String(address).split(':').at(-1));
}

/** The first defined value of `probe`, polled for up to 10 s. */
async function eventually<T>(probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('not within 10 s');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

describeKernel('the daemon: TLS, rules files, audit log, logs, signals', () => {
  const ns = useNetns('pcl-daemon');
  let certs: TestCerts;
  let dir: string;
  beforeAll(() => {
    certs = makeCerts();
    dir = mkdtempSync(join(tmpdir(), 'pcl-daemon-'));
    copyFileSync(certs.server.certPath, join(dir, 'server.pem'));
    copyFileSync(certs.server.keyPath, join(dir, 'server.key'));
  });
  afterAll(() => {
    certs?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const args = () => [
    '--netns',
    ns().name,
    '--state-dir',
    join(dir, 'state'),
    '--rest-port',
    '0',
    '--grpc-port',
    '0',
    '--socket',
    '',
    '--families',
    'ipv4',
    '--tls-cert',
    join(dir, 'server.pem'),
    '--tls-key',
    join(dir, 'server.key'),
    '--tls-client-ca',
    certs.clientCa.certPath,
    '--persist',
    'after-change',
    '--rules-v4',
    join(dir, 'rules.v4'),
    '--audit-log',
    join(dir, 'audit.log'),
    '--restore-on-start',
  ];
  const env = () => ({
    PORTCULLIS_TOKENS: `automation:write:${hashToken(TOKEN)}`,
    PORTCULLIS_CLIENT_CERTIFICATES: JSON.stringify([
      { name: 'deploy', scope: 'write', subject: 'CN=deploy,O=Example' },
    ]),
  });

  it('serves both doors over mTLS, persists and audits each change with its request id, reloads on SIGHUP, stops on SIGTERM', async () => {
    const d = startDaemon(args(), env());
    await d.waitFor('ready');
    const restLine = await d.waitFor('REST API listening', { transport: 'rest' });
    expect(restLine).toMatchObject({ tls: 'mtls', auth: 'bearer,certificate', level: 'info' });
    const grpcLine = await d.waitFor('gRPC API listening', { transport: 'grpc' });
    expect(grpcLine).toMatchObject({ tls: 'mtls' });
    const restPort = portOf(restLine.address);
    const grpcPort = portOf(grpcLine.address);
    const ca = certs.serverCa.cert;

    // A change by client certificate, with the caller's request id.
    const created = await rest(restPort, ca, {
      method: 'POST',
      path: '/v1/tables/filter/chains/INPUT/rules',
      client: certs.deploy,
      headers: { 'X-Request-Id': 'change-4711' },
      body: { spec: '-s 198.51.100.23 -p tcp --dport 22 -j DROP' },
    });
    expect(created.status, JSON.stringify(created)).toBe(201);
    expect(created.headers?.['x-request-id']).toBe('change-4711');
    // Its log line carries the id; the audit log has who, door, id and the restore text.
    const line = await eventually(() =>
      d.records().find((r) => r.requestId === 'change-4711' && r.status === 201),
    );
    expect(line).toMatchObject({ requestId: 'change-4711', transport: 'rest', caller: 'deploy' });
    const audit = await rest(restPort, ca, { path: '/v1/audit', token: TOKEN });
    expect(audit.status).toBe(200);
    const entry = (audit.body as { entries: Record<string, unknown>[] }).entries.at(-1);
    expect(entry).toMatchObject({
      identity: 'O=Example,CN=deploy',
      door: 'rest',
      requestId: 'change-4711',
      operations: ['append'],
    });
    // after-change: the rules file follows, and iptables-restore --test accepts it.
    const deadline = Date.now() + 10_000;
    while (!readFileSync(join(dir, 'rules.v4'), { encoding: 'utf8', flag: 'a+' }).includes('198.51.100.23')) {
      if (Date.now() > deadline) throw new Error('rules.v4 was not written');
      await new Promise((r) => setTimeout(r, 50));
    }
    const saved = readFileSync(join(dir, 'rules.v4'), 'utf8');
    expect((await ns().exec(['iptables-restore', '--test'], saved)).code).toBe(0);

    // gRPC: the request id comes back in the response headers, and reaches the audit log.
    const ids: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const creds = grpc.credentials.createSsl(
        Buffer.from(ca),
        Buffer.from(certs.deploy.key),
        Buffer.from(certs.deploy.cert),
      );
      const client = new grpc.Client(`127.0.0.1:${grpcPort}`, creds);
      const method = serviceDefinition(Desc).createChain;
      if (!method) throw new Error('no CreateChain in the service definition');
      const md = new grpc.Metadata();
      md.set('x-request-id', 'grpc-99');
      const call = client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        { family: 1, table: 'filter', chain: 'FROM_GRPC' },
        md,
        (err) => {
          client.close();
          if (err) reject(err);
          else resolve();
        },
      );
      call.on('metadata', (m: grpc.Metadata) => ids.push(String(m.get('x-request-id')[0])));
    });
    expect(ids).toEqual(['grpc-99']);
    await eventually(() => d.records().find((r) => r.requestId === 'grpc-99' && r.transport === 'grpc'));

    // SIGHUP: new certificates for new connections; the audit log is reopened after a rotation.
    const renewed = certs.newServer('portcullis-renewed');
    copyFileSync(renewed.certPath, join(dir, 'server.pem'));
    copyFileSync(renewed.keyPath, join(dir, 'server.key'));
    renameSync(join(dir, 'audit.log'), join(dir, 'audit.log.1'));
    d.child.kill('SIGHUP');
    await d.waitFor('TLS files reloaded: new connections use them');
    await d.waitFor('audit log reopened');
    const after = await rest(restPort, ca, {
      method: 'POST',
      path: '/v1/tables/filter/chains',
      token: TOKEN,
      body: { name: 'AFTER_HUP' },
    });
    expect(after).toMatchObject({ status: 201, peerCn: 'portcullis-renewed' });
    // The line is written just after the change commits (the reply does not wait for it).
    await eventually(() =>
      readFileSync(join(dir, 'audit.log'), 'utf8').includes('AFTER_HUP') ? true : undefined,
    );
    expect(readFileSync(join(dir, 'audit.log.1'), 'utf8')).toContain('change-4711');

    // SIGTERM: a clean stop, both ports released at once.
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await listening(restPort)).toBe(false);
    expect(await listening(grpcPort)).toBe(false);
    expect(d.records().at(-1)).toMatchObject({ msg: 'stopped' });

    // Nothing secret in the log: no token, no token hash, no key or certificate.
    const log = d.log();
    for (const secret of [
      TOKEN,
      hashToken(TOKEN),
      'BEGIN',
      certs.server.key.split('\n')[1] ?? 'x',
      certs.deploy.cert.split('\n')[1] ?? 'x',
      certs.deploy.key.split('\n')[1] ?? 'x',
    ])
      expect(log).not.toContain(secret);
  });

  it('--restore-on-start loads the saved rules before ready; a bad file stops the start naming file and line', async () => {
    // As after a reboot: the namespace's firewall is empty, the files hold the ruleset.
    await ns().exec(['iptables', '-F', 'INPUT']);
    await ns().exec(['iptables', '-F', 'FROM_GRPC']);
    await ns().exec(['iptables', '-X', 'FROM_GRPC']);
    await ns().exec(['iptables', '-X', 'AFTER_HUP']);
    expect((await ns().exec(['iptables-save'])).stdout).not.toContain('198.51.100.23');
    const d = startDaemon(args(), env());
    await d.waitFor('saved rules loaded', { family: 'ipv4', path: join(dir, 'rules.v4') });
    const ready = await d.waitFor('ready');
    expect(ready).toBeDefined();
    expect((await ns().exec(['iptables-save'])).stdout).toContain(
      '-A INPUT -s 198.51.100.23/32 -p tcp -m tcp --dport 22 -j DROP',
    );
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);

    const bad = join(dir, 'bad.v4');
    writeFileSync(bad, '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n');
    const b = startDaemon([...args(), '--rules-v4', bad], env());
    const exit = await b.exited;
    expect(exit.code).toBe(1);
    const lines = b.log().trim().split('\n');
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^portcullis: the saved ipv4 rules in ${bad.replace(/[.]/g, '\\.')} fail iptables-restore --test at line 3 \\("-A INPUT -p tcp --dport 70000 -j ACCEPT"\\): .*; nothing was loaded: fix or remove the file, or start without --restore-on-start\\.$`,
      ),
    );
    expect(existsSync(bad)).toBe(true);
  });

  it('an audit log that cannot be opened stops the start with one sentence', async () => {
    writeFileSync(join(dir, 'a-file'), '');
    const d = startDaemon([...args(), '--audit-log', join(dir, 'a-file', 'audit.log')], env());
    expect((await d.exited).code).toBe(1);
    const last = d.log().trim().split('\n').at(-1) ?? '';
    expect(
      last.startsWith(`portcullis: the audit log ${join(dir, 'a-file', 'audit.log')} cannot be opened`),
    ).toBe(true);
    expect(last).toMatch(
      /cannot be opened for appending \((EEXIST|ENOTDIR)\): fix its directory's permissions, choose another --audit-log, or turn it off with --audit-log ''\.$/,
    );
  });
});
