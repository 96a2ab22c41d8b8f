/**
 * TLS and mTLS on both doors, with certificates made in the test (certs.ts): the REST door
 * (https) and the gRPC door on 127.0.0.1, one service on a fake executor behind both.
 * Each case gets the same answer on both doors: a valid client certificate writes (and is
 * the caller in the commit record), one from another CA or expired is refused
 * (401 / UNAUTHENTICATED), no certificate is refused unless a token is sent (tokens still
 * work over TLS), a read-scope certificate cannot write (403 / PERMISSION_DENIED), a valid
 * certificate nobody maps is refused. Reloading the files (what SIGHUP does) serves the
 * new certificate to new connections while open ones keep working; files that do not load
 * are refused and the old ones stay.
 */
import { copyFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService as FirewallServiceDesc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import type { CommitRecord } from '../../src/service/api.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { Authenticator, hashToken } from '../../src/transport/auth.js';
import { createPromiseClient } from '../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../src/transport/grpc/server.js';
import { createApp } from '../../src/transport/http/app.js';
import { createHttpServer } from '../../src/transport/http/server.js';
import { httpsOptions, TlsError, TlsFiles } from '../../src/transport/tls.js';
import { makeCerts, type Pem, type TestCerts } from './certs.js';
import { rest } from './https.js';

const TOKEN = 'tls-test-write-token';

describe('TLS and client certificates on both doors', () => {
  let certs: TestCerts;
  let service: FirewallService;
  let files: TlsFiles;
  let restServer: HttpServer;
  let grpcServer: grpc.Server;
  let restPort: number;
  let grpcAddress: string;
  const committed: CommitRecord[] = [];

  beforeAll(async () => {
    certs = makeCerts();
    // Files the reload test may replace.
    copyFileSync(certs.server.certPath, `${certs.dir}/live.pem`);
    copyFileSync(certs.server.keyPath, `${certs.dir}/live.key`);
    files = new TlsFiles({
      cert: `${certs.dir}/live.pem`,
      key: `${certs.dir}/live.key`,
      clientCa: certs.clientCa.certPath,
    });
    service = new FirewallService({
      executor: new FakeExecutor(),
      pollIntervalMs: 0,
      observer: { committed: (r) => committed.push(...r) },
    });
    await service.start();
    const auth = new Authenticator(
      [{ name: 'automation', sha256: hashToken(TOKEN), scope: 'write' }],
      [
        { name: 'deploy', scope: 'write', subject: 'CN=deploy,O=Example' },
        { name: 'viewer', scope: 'read', san: 'DNS:viewer.example' },
      ],
    );
    restServer = createHttpServer(
      createApp({ service, auth, requireAuth: true }),
      undefined,
      httpsOptions(files.current),
    );
    files.onChange((m) => {
      if ('setSecureContext' in restServer && typeof restServer.setSecureContext === 'function')
        restServer.setSecureContext(httpsOptions(m));
    });
    await new Promise<void>((res) => restServer.listen(0, '127.0.0.1', res));
    restPort = (restServer.address() as AddressInfo).port;
    grpcServer = createGrpcServer({ service, auth, requireAuth: true });
    const port = await new Promise<number>((res, rej) =>
      grpcServer.bindAsync('127.0.0.1:0', files.grpcCredentials(), (err, p) => (err ? rej(err) : res(p))),
    );
    grpcAddress = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    grpcServer?.forceShutdown();
    restServer?.closeAllConnections();
    await new Promise<void>((res) => (restServer ? restServer.close(() => res()) : res()));
    await service?.close();
    certs?.remove();
  });

  function grpcClient(client?: Pem, seen?: (cn: string) => void) {
    const creds = grpc.credentials.createSsl(
      Buffer.from(certs.serverCa.cert),
      client ? Buffer.from(client.key) : null,
      client ? Buffer.from(client.cert) : null,
      {
        checkServerIdentity: (_host, cert) => {
          seen?.(String(cert.subject.CN));
          return undefined;
        },
      },
    );
    return createPromiseClient(FirewallServiceDesc, grpcAddress, creds);
  }

  async function grpcCode(client: Pem | undefined, call: 'read' | 'write', token?: string): Promise<string> {
    const c = grpcClient(client);
    try {
      const md = token ? { metadata: { authorization: `Bearer ${token}` } } : undefined;
      if (call === 'read') await c.getStatus({}, md);
      else
        await c.createChain(
          { family: 1, table: 'filter', chain: `G${Math.random().toString(36).slice(2, 8).toUpperCase()}` },
          md,
        );
      return 'OK';
    } catch (err) {
      const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
      return typeof code === 'number' ? (grpc.status[code] ?? 'unknown') : String(err);
    } finally {
      c.close();
    }
  }

  const chainBody = () => ({ name: `R${Math.random().toString(36).slice(2, 8).toUpperCase()}` });
  const write = (client?: Pem, token?: string) =>
    rest(restPort, certs.serverCa.cert, {
      method: 'POST',
      path: '/v1/tables/filter/chains',
      body: chainBody(),
      ...(client ? { client } : {}),
      ...(token ? { token } : {}),
    });
  const read = (client?: Pem) => rest(restPort, certs.serverCa.cert, client ? { client } : {});

  it('a valid client certificate mapped to write scope writes, and is the caller of the change', async () => {
    const r = await write(certs.deploy);
    expect(r.status, JSON.stringify(r)).toBe(201);
    const last = committed.at(-1);
    expect(last?.identity).toBe('O=Example,CN=deploy');
    expect(await grpcCode(certs.deploy, 'write')).toBe('OK');
    expect(committed.at(-1)?.identity).toBe('O=Example,CN=deploy');
  });

  it('a certificate from another CA is refused: 401 / UNAUTHENTICATED', async () => {
    const r = await write(certs.wrongCa);
    expect(r.status).toBe(401);
    expect((r.body as { code: string; detail: string }).code).toBe('unauthenticated');
    expect((r.body as { detail: string }).detail).toMatch(/client certificate was not accepted/);
    expect(await grpcCode(certs.wrongCa, 'write')).toBe('UNAUTHENTICATED');
    expect(await grpcCode(certs.wrongCa, 'read')).toBe('UNAUTHENTICATED');
  });

  it('an expired certificate is refused: 401 (saying it expired) / UNAUTHENTICATED', async () => {
    const r = await read(certs.expired);
    expect(r.status).toBe(401);
    expect((r.body as { detail: string }).detail).toMatch(/CERT_HAS_EXPIRED/);
    expect(await grpcCode(certs.expired, 'read')).toBe('UNAUTHENTICATED');
  });

  it('no certificate: 401 / UNAUTHENTICATED, unless a token is sent (tokens still work over TLS)', async () => {
    expect((await read()).status).toBe(401);
    expect(await grpcCode(undefined, 'read')).toBe('UNAUTHENTICATED');
    expect((await write(undefined, TOKEN)).status).toBe(201);
    expect(await grpcCode(undefined, 'write', TOKEN)).toBe('OK');
    expect(committed.at(-1)?.identity).toBe('automation');
  });

  it('a read-scope certificate (mapped by SAN) reads but cannot write: 403 / PERMISSION_DENIED', async () => {
    expect((await read(certs.viewer)).status).toBe(200);
    expect(await grpcCode(certs.viewer, 'read')).toBe('OK');
    const r = await write(certs.viewer);
    expect(r.status).toBe(403);
    expect((r.body as { code: string }).code).toBe('permission_denied');
    expect(await grpcCode(certs.viewer, 'write')).toBe('PERMISSION_DENIED');
  });

  it('a valid certificate that no entry maps is refused: 401 / UNAUTHENTICATED', async () => {
    const r = await read(certs.stranger);
    expect(r.status).toBe(401);
    expect((r.body as { detail: string }).detail).toMatch(/no clientCertificates entry names/);
    expect(await grpcCode(certs.stranger, 'read')).toBe('UNAUTHENTICATED');
  });

  it('plain HTTP and plain gRPC do not get through', async () => {
    const plain = await fetch(`http://127.0.0.1:${restPort}/v1/status`).then(
      (r) => r.status,
      (e: Error) => e.message,
    );
    expect(plain).not.toBe(200);
    const c = createPromiseClient(FirewallServiceDesc, grpcAddress);
    const code = await c.getStatus({}, { metadata: { authorization: `Bearer ${TOKEN}` } }).then(
      () => 'OK',
      (e: grpc.ServiceError) => grpc.status[e.code],
    );
    c.close();
    expect(code).toBe('UNAVAILABLE');
  });

  it('reloaded files serve new connections, open connections keep going; bad files are refused', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const before = await rest(restPort, certs.serverCa.cert, { client: certs.viewer, agent });
    expect(before).toMatchObject({ status: 200, peerCn: 'portcullis-test-server' });
    const seen: string[] = [];
    const open = grpcClient(certs.viewer, (cn) => seen.push(cn));
    await open.getStatus({});

    const next = certs.newServer('portcullis-renewed');
    copyFileSync(next.certPath, `${certs.dir}/live.pem`);
    copyFileSync(next.keyPath, `${certs.dir}/live.key`);
    files.reload();

    // The kept-alive connection still works, with the certificate it started with.
    const same = await rest(restPort, certs.serverCa.cert, { client: certs.viewer, agent });
    expect(same).toMatchObject({ status: 200, peerCn: 'portcullis-test-server' });
    await open.getStatus({});
    expect(seen).toEqual(['portcullis-test-server']);
    open.close();
    agent.destroy();
    // New connections get the new certificate, on both doors.
    expect(await read(certs.viewer)).toMatchObject({ status: 200, peerCn: 'portcullis-renewed' });
    const fresh: string[] = [];
    const c = grpcClient(certs.viewer, (cn) => fresh.push(cn));
    await c.getStatus({});
    c.close();
    expect(fresh).toEqual(['portcullis-renewed']);

    // A key that does not belong to the certificate: refused, the renewed pair stays in use.
    copyFileSync(certs.deploy.keyPath, `${certs.dir}/live.key`);
    expect(() => files.reload()).toThrow(TlsError);
    expect(() => files.reload()).toThrow(/cannot be used together/);
    expect(await read(certs.viewer)).toMatchObject({ status: 200, peerCn: 'portcullis-renewed' });
  });
});
