/**
 * The audit log (observe/audit.ts): one JSON line per committed change with who, which
 * door, the request id, the operations, the revisions and the restore text; the lines of a
 * batch written together; reopened after logrotate renamed the file; read back by time.
 * And through the service and both doors: the caller, the door and the request id of each
 * change reach the log, and GET /v1/audit / ListAuditEntries return it.
 */
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService as Desc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import { AuditLog } from '../../src/observe/audit.js';
import { silentLogger } from '../../src/observe/logger.js';
import type { CommitRecord } from '../../src/service/api.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { Authenticator, hashToken } from '../../src/transport/auth.js';
import type { DaemonApi } from '../../src/transport/daemon-api.js';
import { createPromiseClient } from '../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../src/transport/grpc/server.js';
import { createApp } from '../../src/transport/http/app.js';
import { bind } from '../transport/grpc/helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-audit-'));
  dirs.push(dir);
  return join(dir, 'audit.log');
}

function record(n: number, time = new Date().toISOString()): CommitRecord {
  return {
    time,
    revisionBefore: n,
    revisionAfter: n + 1,
    origin: 'rest',
    identity: 'admin',
    requestId: `req-${n}`,
    operations: ['append'],
    changes: [
      {
        type: 'rule.added',
        family: 'ipv4',
        table: 'filter',
        chain: 'INPUT',
        text: `-s 192.0.2.${n}/32 -j DROP`,
      },
    ],
    restore: [{ family: 'ipv4', text: `*filter\n-A INPUT -s 192.0.2.${n}/32 -j DROP\nCOMMIT\n` }],
  };
}

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('audit log', () => {
  it('writes one JSON line per change, one write per batch', async () => {
    const path = tempPath();
    const writes: number[] = [];
    const audit = new AuditLog({ path, log: silentLogger, onWrite: (e) => writes.push(e.entries) });
    await audit.open();
    audit.committed([record(1), record(2)]);
    audit.committed([record(3)]);
    await audit.close();
    expect(writes).toEqual([2, 1]);
    expect(lines(path)).toEqual(
      [1, 2, 3].map((n) => ({
        time: expect.any(String),
        identity: 'admin',
        door: 'rest',
        requestId: `req-${n}`,
        operations: ['append'],
        revisionBefore: n,
        revisionAfter: n + 1,
        restore: [{ family: 'ipv4', text: `*filter\n-A INPUT -s 192.0.2.${n}/32 -j DROP\nCOMMIT\n` }],
        changes: [expect.objectContaining({ type: 'rule.added' })],
      })),
    );
  });

  it('reopens the path after logrotate renamed the file', async () => {
    const path = tempPath();
    const audit = new AuditLog({ path, log: silentLogger });
    await audit.open();
    audit.committed([record(1)]);
    await audit.read({ limit: 10 });
    renameSync(path, `${path}.1`);
    audit.committed([record(2)]); // still into the renamed file until reopened
    await audit.reopen();
    audit.committed([record(3)]);
    await audit.close();
    expect(lines(`${path}.1`).map((l) => l.requestId)).toEqual(['req-1', 'req-2']);
    expect(lines(path).map((l) => l.requestId)).toEqual(['req-3']);
  });

  it('reads entries at or after a time, oldest first, up to a limit; skips a line cut by a crash', async () => {
    const path = tempPath();
    const audit = new AuditLog({ path, log: silentLogger });
    await audit.open();
    audit.committed([
      record(1, '2025-01-01T00:00:00.000Z'),
      record(2, '2025-01-02T00:00:00.000Z'),
      record(3, '2025-01-03T00:00:00.000Z'),
    ]);
    await audit.read({ limit: 1 });
    appendFileSync(path, '{"time":"2025-01-04T00:00:00.000Z","revisionBefore":4,"revis');
    const all = await audit.read({ limit: 100 });
    expect(all.entries.map((e) => e.requestId)).toEqual(['req-1', 'req-2', 'req-3']);
    const since = await audit.read({ since: new Date('2025-01-02T00:00:00Z'), limit: 100 });
    expect(since.entries.map((e) => e.requestId)).toEqual(['req-2', 'req-3']);
    const limited = await audit.read({ limit: 2 });
    expect(limited).toMatchObject({
      truncated: true,
      entries: [{ requestId: 'req-1' }, { requestId: 'req-2' }],
    });
    await audit.close();
  });
});

describe('audit log through the service and both doors', async () => {
  const path = tempPath();
  const audit = new AuditLog({ path, log: silentLogger });
  await audit.open();
  const service = new FirewallService({ executor: new FakeExecutor(), pollIntervalMs: 0, observer: audit });
  await service.start();
  const daemon: DaemonApi = {
    save: () => Promise.reject(new Error('not used')),
    audit: (q) => audit.read(q),
  };
  const auth = new Authenticator([
    { name: 'ops', sha256: hashToken('ops-token'), scope: 'write' },
    { name: 'viewer', sha256: hashToken('viewer-token'), scope: 'read' },
  ]);
  const app = createApp({ service, auth, requireAuth: true, daemon });
  const socketApp = createApp({
    service,
    auth,
    requireAuth: false,
    door: 'socket',
    socketIdentity: 'unix:uid=0',
    daemon,
  });
  const server = createGrpcServer({ service, auth, requireAuth: true, daemon });
  const client = createPromiseClient(Desc, `127.0.0.1:${await bind(server)}`);
  afterAll(async () => {
    client.close();
    server.forceShutdown();
    await service.close();
    await audit.close();
  });

  it('each change names its caller, door and request id; both doors read it back', async () => {
    const t0 = new Date(Date.now() - 1000).toISOString();
    const eventIds: (string | undefined)[] = [];
    const unsubscribe = service.subscribe((e) => eventIds.push(e.requestId));
    const r1 = await request(app)
      .post('/v1/tables/filter/chains')
      .set('Authorization', 'Bearer ops-token')
      .set('X-Request-Id', 'deploy-7')
      .send({ name: 'BANS' });
    expect(r1.status).toBe(201);
    expect(r1.headers['x-request-id']).toBe('deploy-7');
    const r2 = await request(socketApp)
      .post('/v1/tables/filter/chains/BANS/rules')
      .send({ spec: '-s 198.51.100.9 -j DROP' });
    expect(r2.status).toBe(201);
    expect(r2.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await client.createChain(
      { family: 1, table: 'filter', chain: 'VIA_GRPC' },
      {
        metadata: { authorization: 'Bearer ops-token', 'x-request-id': 'grpc-call-1' },
      },
    );

    const rest = await request(app)
      .get(`/v1/audit?since=${encodeURIComponent(t0)}`)
      .set('Authorization', 'Bearer viewer-token');
    expect(rest.status, JSON.stringify(rest.body)).toBe(200);
    expect(rest.body.truncated).toBe(false);
    expect(
      rest.body.entries.map((e: Record<string, unknown>) => [e.identity, e.door, e.requestId, e.operations]),
    ).toEqual([
      ['ops', 'rest', 'deploy-7', ['createChain']],
      ['unix:uid=0', 'socket', r2.headers['x-request-id'], ['append']],
      ['ops', 'grpc', 'grpc-call-1', ['createChain']],
    ]);
    expect(rest.body.entries[1].restore).toEqual([
      { family: 'ipv4', text: '*filter\n-A BANS -s 198.51.100.9/32 -j DROP\nCOMMIT\n' },
    ]);

    const viaGrpc = await client.listAuditEntries({}, { metadata: { authorization: 'Bearer viewer-token' } });
    expect(viaGrpc.entries.map((e) => [e.identity, e.door, e.requestId])).toEqual([
      ['ops', 'rest', 'deploy-7'],
      ['unix:uid=0', 'socket', r2.headers['x-request-id']],
      ['ops', 'grpc', 'grpc-call-1'],
    ]);
    expect(viaGrpc.entries[2]?.revisionAfter).toBe(BigInt(service.revision));

    // The change events carry the same request ids.
    unsubscribe();
    expect(eventIds).toEqual(['deploy-7', r2.headers['x-request-id'], 'grpc-call-1']);

    // A bad `since` is a 400 naming the field.
    const bad = await request(app)
      .get('/v1/audit?since=yesterday')
      .set('Authorization', 'Bearer viewer-token');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'invalid_argument' });
  });
});
