/**
 * The auth matrix: every route with no token, a read token and a write token (and a wrong
 * one). Open routes need none; reads need read; writes need write. Tokens never reach the log.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { checked, problemOf, READ, READ_TOKEN, startApp, WRITE, WRITE_TOKEN } from './helpers.js';

const C = '/v1/tables/filter/chains';
const R = `${C}/INPUT/rules`;
// A rule id of the seed (INPUT rule 1, `-i lo -j ACCEPT`) is looked up per case.
type Route = { method: 'get' | 'post' | 'put' | 'delete'; path: string; body?: object; ok: number };

const routes: Route[] = [
  { method: 'get', path: '/v1/status', ok: 200 },
  { method: 'get', path: '/v1/ruleset', ok: 200 },
  { method: 'get', path: '/v1/tables/filter', ok: 200 },
  { method: 'get', path: C, ok: 200 },
  { method: 'get', path: `${C}/INPUT`, ok: 200 },
  { method: 'get', path: R, ok: 200 },
  { method: 'get', path: `${R}/{id}`, ok: 200 },
  { method: 'post', path: R, body: { spec: '-j DROP' }, ok: 201 },
  { method: 'post', path: `${R}/at/1`, body: { spec: '-j DROP' }, ok: 201 },
  { method: 'post', path: `${R}/ensure`, body: { spec: '-j DROP' }, ok: 201 },
  { method: 'put', path: R, body: { rules: [{ spec: '-j DROP' }] }, ok: 200 },
  { method: 'put', path: `${R}/{id}`, body: { spec: '-j DROP' }, ok: 200 },
  { method: 'delete', path: `${R}/{id}`, ok: 200 },
  { method: 'delete', path: `${R}/at/1`, ok: 200 },
  { method: 'post', path: C, body: { name: 'NEW' }, ok: 201 },
  { method: 'delete', path: `${C}/EMPTY`, ok: 200 },
  { method: 'post', path: `${C}/INPUT/flush`, ok: 200 },
  { method: 'post', path: `${C}/INPUT/zero-counters`, ok: 200 },
  { method: 'post', path: `${C}/EMPTY/rename`, body: { newName: 'FULL' }, ok: 200 },
  { method: 'put', path: `${C}/INPUT/policy`, body: { policy: 'DROP' }, ok: 200 },
  { method: 'put', path: '/v1/tables/filter', body: { chains: [] }, ok: 200 },
  {
    method: 'post',
    path: '/v1/transactions',
    body: { operations: [{ op: 'flushChain', chain: 'INPUT' }] },
    ok: 200,
  },
  {
    method: 'post',
    path: '/v1/transactions',
    body: { dryRun: true, operations: [{ op: 'reset' }] },
    ok: 200,
  },
  { method: 'post', path: '/v1/reset', ok: 200 },
  { method: 'post', path: '/v1/reload', ok: 200 },
];

const open: Route[] = [
  { method: 'get', path: '/healthz', ok: 200 },
  { method: 'get', path: '/readyz', ok: 200 },
  { method: 'get', path: '/openapi.yaml', ok: 200 },
  { method: 'get', path: '/docs/', ok: 200 },
];

async function send(app: Parameters<typeof request>[0], route: Route, id: string, authorization?: string) {
  let t = request(app)[route.method](route.path.replace('{id}', id));
  if (authorization !== undefined) t = t.set('Authorization', authorization);
  if (route.body) t = t.send(route.body);
  return checked(await t);
}

describe('auth matrix', () => {
  it.each(routes)('$method $path', async (route) => {
    const fx = await startApp({ requireAuth: true });
    const id = fx.service.getTable('ipv4', 'filter').chains[0]?.rules[0]?.id as string;
    const before = await fx.fake.save('ipv4');

    const none = await send(fx.app, route, id);
    expect(problemOf(none)).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(none.headers['www-authenticate']).toBe('Bearer realm="portcullis"');

    const wrong = await send(fx.app, route, id, 'Bearer not-a-token');
    expect(problemOf(wrong)).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(wrong.headers['www-authenticate']).toContain('error="invalid_token"');

    const basic = await send(fx.app, route, id, `Basic ${Buffer.from('a:b').toString('base64')}`);
    expect(basic.status).toBe(401);

    const read = await send(fx.app, route, id, READ);
    if (route.method === 'get') expect(read.status).toBe(route.ok);
    else expect(problemOf(read)).toMatchObject({ status: 403, code: 'permission_denied' });
    expect(await fx.fake.save('ipv4')).toBe(before);

    const write = await send(fx.app, route, id, WRITE);
    expect(write.status).toBe(route.ok);

    const log = fx.logs.join('\n');
    expect(log).not.toContain(READ_TOKEN);
    expect(log).not.toContain(WRITE_TOKEN);
    expect(log).toMatch(/ (reader|writer)$/m);
  });

  it.each(open)('$method $path is open', async (route) => {
    const fx = await startApp({ requireAuth: true });
    expect((await send(fx.app, route, '')).status).toBe(route.ok);
  });

  it('the Unix-socket app (requireAuth false) needs no token for writes', async () => {
    const fx = await startApp({ requireAuth: false });
    const r = checked(await request(fx.app).post(R).send({ spec: '-j DROP' }));
    expect(r.status).toBe(201);
    expect(fx.logs.some((l) => l.endsWith(' local'))).toBe(true);
  });

  it('unknown routes need a token too (no route discovery without one)', async () => {
    const fx = await startApp({ requireAuth: true });
    expect(checked(await request(fx.app).get('/v1/secret')).status).toBe(401);
    expect(checked(await request(fx.app).get('/v1/secret').set('Authorization', READ)).status).toBe(404);
  });
});
