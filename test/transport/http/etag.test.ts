/**
 * The README's and the contract's ETag claim, checked over every route of the OpenAPI
 * document: every response to an authenticated /v1 request carries `ETag: "<revision>"`
 * (successes, dry runs, counter reads, problems, unknown /v1 routes and methods, 403s),
 * equal to the body's revision where the body has one and otherwise the ruleset's revision
 * when the response was sent; 401s and the open routes (/healthz, /readyz, /openapi.yaml,
 * /docs/) carry none.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../../src/transport/http/docs.js';
import { READ, startApp, WRITE } from './helpers.js';

type Doc = { paths: Record<string, Record<string, unknown>> };
const METHODS = ['get', 'put', 'post', 'delete'] as const;

/** Bodies that the operation accepts (by path and method); others get none. */
const BODIES: Record<string, unknown> = {
  'post /v1/transactions': { operations: [{ op: 'flushChain', chain: 'EMPTY' }] },
  'post /v1/reset': {},
  'put /v1/tables/{table}': { chains: [] },
  'post /v1/tables/{table}/chains': { name: 'NEW' },
  'post /v1/tables/{table}/chains/{chain}/rename': { newName: 'RENAMED' },
  'put /v1/tables/{table}/chains/{chain}/policy': { policy: 'ACCEPT' },
  'put /v1/tables/{table}/chains/{chain}/rules': { rules: [] },
  'post /v1/tables/{table}/chains/{chain}/rules': { spec: '-j ACCEPT' },
  'post /v1/tables/{table}/chains/{chain}/rules/ensure': { spec: '-j ACCEPT' },
  'put /v1/tables/{table}/chains/{chain}/rules/{id}': { spec: '-j ACCEPT' },
  'post /v1/tables/{table}/chains/{chain}/rules/at/{position}': { spec: '-j ACCEPT' },
};

const OPEN = ['/healthz', '/readyz', '/openapi.yaml', '/docs/'];

function operations(): { method: (typeof METHODS)[number]; template: string }[] {
  const doc = openApiDocument().document as unknown as Doc;
  const out: { method: (typeof METHODS)[number]; template: string }[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) if (item[method]) out.push({ method, template });
  }
  return out;
}

function fill(template: string, id: string, good: boolean): string {
  return template
    .replace('{table}', 'filter')
    .replace('{chain}', good ? 'EMPTY' : 'NO_SUCH_CHAIN')
    .replace('{id}', good ? id : '0123456789abcdef')
    .replace('{position}', '1');
}

function expectEtag(
  res: { headers: Record<string, unknown>; body: unknown },
  where: string,
  current: number,
) {
  const tag = res.headers.etag;
  expect(tag, `${where}: ETag`).toMatch(/^"\d+"$/);
  const revision = (res.body as { revision?: unknown } | undefined)?.revision;
  if (typeof revision === 'number')
    expect(tag, `${where}: ETag equals the body's revision`).toBe(`"${revision}"`);
  else
    expect(Number(String(tag).slice(1, -1)), `${where}: ETag is a revision seen`).toBeLessThanOrEqual(
      current,
    );
}

describe('ETag on every /v1 response', () => {
  it('covers every operation of the contract, on success and on error, and no open route', async () => {
    const ops = operations();
    const v1 = ops.filter((o) => o.template.startsWith('/v1/') && o.template !== '/v1/events');
    expect(v1.length).toBeGreaterThanOrEqual(20);
    // Outside /v1: the open routes, and /metrics (read scope; about the daemon, not the ruleset).
    expect(ops.filter((o) => !o.template.startsWith('/v1/')).map((o) => o.template)).toEqual([
      ...OPEN.slice(0, 4),
      '/metrics',
    ]);
    let answered = 0;
    for (const { method, template } of v1) {
      for (const good of [true, false]) {
        const fx = await startApp({ requireAuth: true });
        const id =
          fx.service.listChains('ipv4', 'filter').chains.length > 0
            ? ((await request(fx.app).get('/v1/tables/filter/chains/INPUT/rules').set('Authorization', READ))
                .body.rules[0].id as string)
            : '';
        const path = fill(template, id, good).replace(
          '/EMPTY/rules/',
          good ? '/INPUT/rules/' : '/NO_SUCH_CHAIN/rules/',
        );
        const body = BODIES[`${method} ${template}`];
        let req = request(fx.app)[method](path).set('Authorization', WRITE);
        if (body !== undefined) req = req.send(body as object);
        const res = await req;
        expectEtag(res, `${method.toUpperCase()} ${path} -> ${res.status}`, fx.service.revision);
        answered++;
        await fx.service.close();
      }
    }
    expect(answered).toBe(v1.length * 2);

    const fx = await startApp({ requireAuth: true });
    const api = () => request(fx.app);
    // Counter reads, dry runs, unknown routes and methods, a read token writing, bad bodies.
    for (const [where, res] of [
      [
        'counters',
        await api().get('/v1/tables/filter/chains/INPUT/rules?counters=true').set('Authorization', READ),
      ],
      [
        'dry run',
        await api()
          .post('/v1/transactions')
          .set('Authorization', WRITE)
          .send({ dryRun: true, operations: [{ op: 'flushChain', chain: 'INPUT' }] }),
      ],
      ['unknown /v1 route', await api().get('/v1/nope').set('Authorization', READ)],
      ['unknown method', await api().patch('/v1/status').set('Authorization', WRITE)],
      ['403', await api().post('/v1/reset').set('Authorization', READ)],
      ['malformed JSON', await api().post('/v1/reset').set('Authorization', WRITE).type('json').send('{')],
      ['415', await api().post('/v1/reset').set('Authorization', WRITE).type('text').send('x')],
    ] as const) {
      expectEtag(res, where, fx.service.revision);
    }
    // No ETag before authentication, nor on the open routes.
    expect((await api().get('/v1/status')).headers.etag).toBeUndefined();
    expect((await api().get('/v1/status').set('Authorization', 'Bearer wrong')).headers.etag).toBeUndefined();
    for (const path of OPEN) {
      const r = await api().get(path);
      expect(r.status, path).toBeLessThan(400);
      expect(r.headers.etag, path).toBeUndefined();
    }
    await fx.service.close();
  });

  it('the event stream carries the revision it starts from', async () => {
    const fx = await startApp({ requireAuth: true, heartbeatMs: 60_000 });
    const server = http.createServer(fx.app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/v1/events', headers: { authorization: READ } }, resolve)
        .on('error', reject);
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe(`"${fx.service.revision}"`);
    res.destroy();
    server.closeAllConnections();
    server.close();
    await fx.service.close();
  });
});
