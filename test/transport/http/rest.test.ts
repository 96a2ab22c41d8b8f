import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
/**
 * Every REST route on the FakeExecutor: success, each error class, ETag/If-Match,
 * Idempotency-Key, and the request validator refusing bad input with nothing changed in the
 * kernel. Every response is validated against the OpenAPI document (`checked`).
 */
import request from 'supertest';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { DomainError } from '../../../src/domain/errors.js';
import { IdempotencyStore } from '../../../src/service/idempotency.js';
import type { Reply } from '../../../src/transport/http/routes.js';
import { kernelRules, seedInput } from '../../helpers/service.js';
import { type AppFixture, checked, problemOf, startApp } from './helpers.js';

const RULES = '/v1/tables/filter/chains/INPUT/rules';
const CHAIN = '/v1/tables/filter/chains';

let fx: AppFixture;
beforeEach(async () => {
  fx = await startApp();
});

const api = () => request(fx.app);

describe('reads', () => {
  it('GET /healthz and /readyz', async () => {
    expect(checked(await api().get('/healthz')).body).toEqual({ status: 'ok' });
    expect(checked(await api().get('/readyz')).body).toEqual({ status: 'ok' });
    await fx.service.close();
    const r = checked(await api().get('/readyz'));
    expect(r.status).toBe(503);
  });

  it('GET /v1/status', async () => {
    const r = checked(await api().get('/v1/status'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ revision: 1, families: ['ipv4', 'ipv6'], ready: true, watch: 'none' });
    expect(r.headers.etag).toBe('"1"');
  });

  it('GET rules (ipv4 default, ipv6 by query) with ids, positions and canonical texts', async () => {
    const r = checked(await api().get(RULES));
    expect(r.body.rules.map((x: { text: string }) => x.text)).toEqual(seedInput('ipv4'));
    expect(r.body.rules.map((x: { position: number }) => x.position)).toEqual([1, 2, 3]);
    expect(r.headers.etag).toBe('"1"');
    const v6 = checked(await api().get(`${RULES}?family=ipv6`));
    expect(v6.body.rules.map((x: { text: string }) => x.text)).toEqual(seedInput('ipv6'));
    expect(v6.body.family).toBe('ipv6');
  });

  it("GET rules with counters gives decimal strings, the rules' ETag and no caching", async () => {
    const r = checked(await api().get(`${RULES}?counters=true`));
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe('"1"');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.body.rules[0].counters).toEqual({ packets: '0', bytes: '0' });
  });

  it('GET one rule by id; 404 for an unknown id or another chain', async () => {
    const list = checked(await api().get(RULES));
    const id = list.body.rules[1].id as string;
    const r = checked(await api().get(`${RULES}/${id}`));
    expect(r.body.rule).toMatchObject({ id, position: 2, text: '-p tcp -m tcp --dport 22 -j LOG_AND_DROP' });
    expect(problemOf(checked(await api().get(`${RULES}/0000000000000000`)))).toMatchObject({
      status: 404,
      code: 'not_found',
    });
    expect(checked(await api().get(`${CHAIN}/LOG_AND_DROP/rules/${id}`)).status).toBe(404);
  });

  it('GET chains, one chain, the table', async () => {
    const chains = checked(await api().get(CHAIN));
    expect(chains.body.chains).toContainEqual({
      name: 'LOG_AND_DROP',
      builtin: false,
      rules: 1,
      references: 1,
    });
    const one = checked(await api().get(`${CHAIN}/INPUT`));
    expect(one.body.chain).toMatchObject({ name: 'INPUT', builtin: true, policy: 'ACCEPT' });
    const table = checked(await api().get('/v1/tables/filter'));
    const names = table.body.chains.map((c: { name: string }) => c.name);
    expect(names.slice(0, 3)).toEqual(['INPUT', 'FORWARD', 'OUTPUT']);
    expect([...names.slice(3)].sort()).toEqual(['EMPTY', 'LOG_AND_DROP']);
    expect(problemOf(checked(await api().get(`${CHAIN}/NOPE`)))).toMatchObject({
      status: 404,
      code: 'not_found',
    });
    expect(problemOf(checked(await api().get('/v1/tables/nosuch')))).toMatchObject({
      status: 400,
      code: 'invalid_argument',
      field: 'table',
    });
  });

  it('GET /v1/ruleset as JSON and as iptables-save text built by the codec', async () => {
    const json = checked(await api().get('/v1/ruleset'));
    expect(json.body.tables.map((t: { name: string }) => t.name)).toEqual(['filter']);
    const text = checked(await api().get('/v1/ruleset').set('Accept', 'text/plain'));
    expect(text.headers['content-type']).toMatch(/^text\/plain/);
    expect(text.text).toContain('-A INPUT -p tcp -m tcp --dport 22 -j LOG_AND_DROP\n');
    expect(text.text).toContain(':LOG_AND_DROP - [0:0]');
    expect(text.headers.etag).toBe('"1"');
    const none = checked(await api().get('/v1/ruleset').set('Accept', 'image/png'));
    expect(problemOf(none)).toMatchObject({ status: 406, code: 'not_acceptable' });
  });

  it('answers unknown routes and methods with problem documents', async () => {
    expect(problemOf(checked(await api().get('/v1/nope')))).toMatchObject({ status: 404, code: 'not_found' });
    expect(problemOf(checked(await api().patch('/v1/tables/filter')))).toMatchObject({
      status: 405,
      code: 'method_not_allowed',
    });
  });

  it('a 405 says in Allow which methods the resource takes (RFC 9110 15.5.6)', async () => {
    const table = checked(await api().patch('/v1/tables/filter'));
    expect(table.status).toBe(405);
    expect(table.headers.allow).toBe('GET, HEAD, PUT');
    const rules = checked(await api().delete(RULES));
    expect(rules.status).toBe(405);
    expect(rules.headers.allow).toBe('GET, HEAD, POST, PUT');
    // HEAD goes wherever GET does: the same status and headers, no body.
    const get = await api().get('/v1/tables/filter');
    const head = await api().head('/v1/tables/filter');
    expect(head.status).toBe(200);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
    expect(head.text ?? '').toBe('');
  });

  it('HEAD of the event stream ends its response (the connection serves the next request)', async () => {
    const server = fx.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    // One kept-alive socket: the second request waits on it until the first response has ended.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (method: string, path: string) =>
      new Promise<{ status: number | undefined; type: string | undefined }>((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port, method, path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'] }));
        });
        r.on('error', reject);
        r.setTimeout(3000, () => r.destroy(new Error(`${method} ${path}: no answer within 3 s`)));
        r.end();
      });
    try {
      const head = await ask('HEAD', '/v1/events');
      expect(head.status).toBe(200);
      expect(head.type).toMatch(/^text\/event-stream/);
      expect((await ask('GET', '/v1/status')).status).toBe(200);
    } finally {
      agent.destroy();
      server.close();
    }
  });
});

describe('writes', () => {
  it('POST rules appends, POST rules/at/{position} inserts, POST rules/ensure ensures', async () => {
    const a = checked(await api().post(RULES).send({ spec: '-p tcp --dport 80 -j ACCEPT' }));
    expect(a.status).toBe(201);
    expect(a.body.rule).toMatchObject({ position: 4, text: '-p tcp -m tcp --dport 80 -j ACCEPT' });
    expect(a.headers.location).toBe(`${RULES}/${a.body.rule.id}`);
    expect(a.headers.etag).toBe('"2"');
    const t = checked(
      await api()
        .post(`${RULES}/at/1`)
        .send({
          rule: { protocol: 'udp', matches: [{ module: 'udp', dport: '53' }], target: { target: 'ACCEPT' } },
        }),
    );
    expect(t.status).toBe(201);
    expect(t.body.rule).toMatchObject({ position: 1, text: '-p udp -m udp --dport 53 -j ACCEPT' });
    expect(t.body).not.toHaveProperty('existed');
    const e1 = checked(await api().post(`${RULES}/ensure`).send({ spec: '-p tcp --dport 80 -j ACCEPT' }));
    expect(e1.status).toBe(200);
    expect(e1.body).toMatchObject({ existed: true, revision: 3, changes: [] });
    const e2 = checked(
      await api().post(`${RULES}/ensure`).send({ spec: '-p tcp --dport 81 -j ACCEPT', position: 2 }),
    );
    expect(e2.status).toBe(201);
    expect(e2.body.existed).toBe(false);
    expect(e2.body.rule.position).toBe(2);
    const past = checked(await api().post(`${RULES}/at/99`).send({ spec: '-j DROP' }));
    expect(problemOf(past)).toMatchObject({ status: 400, code: 'invalid_argument', field: 'position' });
    const appendAt = checked(await api().post(RULES).send({ spec: '-j DROP', position: 1 }));
    expect(problemOf(appendAt)).toMatchObject({ status: 400, code: 'invalid_argument', field: 'position' });
    expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual([
      '-p udp -m udp --dport 53 -j ACCEPT',
      '-p tcp -m tcp --dport 81 -j ACCEPT',
      ...seedInput('ipv4'),
      '-p tcp -m tcp --dport 80 -j ACCEPT',
    ]);
  });

  it('PUT a rule by id replaces it in place (new id, Location)', async () => {
    const id = checked(await api().get(RULES)).body.rules[2].id as string;
    const r = checked(await api().put(`${RULES}/${id}`).send({ spec: '-s 198.51.100.0/24 -j DROP' }));
    expect(r.status).toBe(200);
    expect(r.body.rule).toMatchObject({ position: 3, text: '-s 198.51.100.0/24 -j DROP' });
    expect(r.headers.location).toBe(`${RULES}/${r.body.rule.id}`);
    expect((await kernelRules(fx.fake, 'ipv4', 'INPUT'))[2]).toBe('-s 198.51.100.0/24 -j DROP');
    expect(problemOf(checked(await api().put(`${RULES}/${id}`).send({ spec: '-j DROP' })))).toMatchObject({
      status: 404,
      code: 'not_found',
    });
  });

  it('DELETE a rule by id and by position', async () => {
    const id = checked(await api().get(RULES)).body.rules[0].id as string;
    const d = checked(await api().delete(`${RULES}/${id}`));
    expect(d.body.deleted).toMatchObject({ id, text: '-i lo -j ACCEPT' });
    const p = checked(await api().delete(`${RULES}/at/2`));
    expect(p.body.deleted.text).toBe('-s 192.0.2.0/24 -j DROP');
    expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual(['-p tcp -m tcp --dport 22 -j LOG_AND_DROP']);
    expect(problemOf(checked(await api().delete(`${RULES}/at/9`)))).toMatchObject({
      status: 404,
      code: 'not_found',
    });
    expect(problemOf(checked(await api().delete(`${RULES}/at/0`)))).toMatchObject({
      status: 400,
      code: 'invalid_argument',
      field: 'position',
    });
  });

  it('PUT rules replaces the chain declaratively', async () => {
    const r = checked(
      await api()
        .put(RULES)
        .send({ rules: [{ spec: '-i lo -j ACCEPT' }, { matches: [], target: { target: 'DROP' } }] }),
    );
    expect(r.status).toBe(200);
    expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual(['-i lo -j ACCEPT', '-j DROP']);
  });

  it('chains: create, rename, policy, flush, zero counters, delete (force)', async () => {
    const c = checked(await api().post(CHAIN).send({ name: 'WEB' }));
    expect(c.status).toBe(201);
    expect(c.headers.location).toBe(`${CHAIN}/WEB`);
    expect(problemOf(checked(await api().post(CHAIN).send({ name: 'WEB' })))).toMatchObject({
      status: 409,
      code: 'already_exists',
    });
    checked(await api().post(`${CHAIN}/WEB/rules`).send({ spec: '-p tcp --dport 443 -j ACCEPT' }));
    const rn = checked(await api().post(`${CHAIN}/WEB/rename`).send({ newName: 'HTTPS' }));
    expect(rn.status).toBe(200);
    expect(rn.body.changes[0]).toMatchObject({ type: 'chain.renamed', chain: 'WEB', newName: 'HTTPS' });
    const pol = checked(await api().put(`${CHAIN}/FORWARD/policy`).send({ policy: 'DROP' }));
    expect(pol.body.changes).toEqual([
      { type: 'policy.set', family: 'ipv4', table: 'filter', chain: 'FORWARD', policy: 'DROP' },
    ]);
    expect(checked(await api().post(`${CHAIN}/HTTPS/zero-counters`)).status).toBe(200);
    expect(problemOf(checked(await api().delete(`${CHAIN}/LOG_AND_DROP`)))).toMatchObject({
      status: 409,
      code: 'failed_precondition',
    });
    expect(checked(await api().delete(`${CHAIN}/LOG_AND_DROP?force=true`)).status).toBe(200);
    expect(checked(await api().post(`${CHAIN}/HTTPS/flush`)).status).toBe(200);
    expect(checked(await api().delete(`${CHAIN}/HTTPS`)).status).toBe(200);
    const save = await fx.fake.save('ipv4');
    expect(save).toContain(':FORWARD DROP');
    expect(save).not.toMatch(/LOG_AND_DROP|HTTPS|WEB/);
  });

  it('PUT a table replaces it declaratively', async () => {
    const r = checked(
      await api()
        .put('/v1/tables/filter?family=ipv6')
        .send({
          chains: [
            { name: 'INPUT', policy: 'DROP', rules: [{ spec: '-i lo -j ACCEPT' }] },
            { name: 'SSH', rules: [{ spec: '-p tcp --dport 22 -j ACCEPT' }] },
          ],
        }),
    );
    expect(r.status).toBe(200);
    const save = await fx.fake.save('ipv6');
    expect(save).toContain(':INPUT DROP');
    expect(save).toContain('-A SSH -p tcp -m tcp --dport 22 -j ACCEPT');
    expect(save).not.toContain('LOG_AND_DROP');
  });

  it('POST /v1/transactions applies all or nothing; dryRun changes nothing', async () => {
    const before = await fx.fake.save('ipv4');
    const dry = checked(
      await api()
        .post('/v1/transactions')
        .send({ dryRun: true, operations: [{ op: 'append', chain: 'INPUT', rule: { spec: '-j DROP' } }] }),
    );
    expect(dry.body).toMatchObject({ dryRun: true, revision: 2 });
    expect(dry.body.restoreText.ipv4).toContain('-A INPUT -j DROP');
    expect(await fx.fake.save('ipv4')).toBe(before);
    const bad = checked(
      await api()
        .post('/v1/transactions')
        .send({
          operations: [
            { op: 'append', chain: 'INPUT', rule: { spec: '-j DROP' } },
            { op: 'append', chain: 'NOPE', rule: { spec: '-j DROP' } },
          ],
        }),
    );
    expect(problemOf(bad)).toMatchObject({ status: 404, code: 'not_found' });
    expect(await fx.fake.save('ipv4')).toBe(before);
    const ok = checked(
      await api()
        .post('/v1/transactions')
        .send({
          operations: [
            { op: 'createChain', chain: 'X' },
            { op: 'append', chain: 'X', rule: { spec: '-j RETURN' } },
            { op: 'insert', chain: 'INPUT', position: 1, rule: { target: { jump: 'X' } } },
            { op: 'setPolicy', family: 'ipv6', chain: 'INPUT', policy: 'DROP' },
            { op: 'delete', chain: 'INPUT', target: { rule: { spec: '-i lo -j ACCEPT' } } },
          ],
        }),
    );
    expect(ok.status).toBe(200);
    expect(ok.body.results.map((r: { op: string }) => r.op)).toEqual([
      'createChain',
      'append',
      'insert',
      'setPolicy',
      'delete',
    ]);
    expect(await kernelRules(fx.fake, 'ipv4', 'INPUT')).toEqual(['-j X', ...seedInput('ipv4').slice(1)]);
    expect(await fx.fake.save('ipv6')).toContain(':INPUT DROP');
  });

  it('POST /v1/reset without a body resets everything, with one only that family', async () => {
    const one = checked(await api().post('/v1/reset').send({ family: 'ipv6' }));
    expect(one.status).toBe(200);
    expect(await fx.fake.save('ipv6')).not.toContain('LOG_AND_DROP');
    expect(await fx.fake.save('ipv4')).toContain('LOG_AND_DROP');
    const all = checked(await api().post('/v1/reset'));
    expect(all.status).toBe(200);
    expect(await fx.fake.save('ipv4')).not.toContain('LOG_AND_DROP');
  });

  it('maps invalid_argument to 400 with the field of a spec body (rule.spec, as on gRPC)', async () => {
    const r = checked(await api().post(RULES).send({ spec: '-p tcp --dport 99999 -j ACCEPT' }));
    const p = problemOf(r);
    expect(p).toMatchObject({ status: 400, code: 'invalid_argument' });
    expect(p.field).toMatch(/^rule\.spec/);
    const typed = checked(
      await api()
        .post(RULES)
        .send({ rule: { protocol: 'tcp', matches: [{ module: 'tcp', dport: 'x' }] } }),
    );
    expect(problemOf(typed)).toMatchObject({
      status: 400,
      code: 'invalid_argument',
      field: 'rule.matches[0].dport',
    });
  });
});

describe('errors the service raises map to statuses (problem+json)', () => {
  const cases: { code: DomainError['code']; status: number; retryAfter?: boolean }[] = [
    { code: 'invalid_argument', status: 400 },
    { code: 'not_found', status: 404 },
    { code: 'already_exists', status: 409 },
    { code: 'failed_precondition', status: 409 },
    { code: 'aborted', status: 409 },
    { code: 'resource_exhausted', status: 429, retryAfter: true },
    { code: 'unavailable', status: 503, retryAfter: true },
    { code: 'internal', status: 500 },
  ];
  it.each(cases)('$code -> $status', async ({ code, status, retryAfter }) => {
    vi.spyOn(fx.service, 'apply').mockRejectedValue(
      new DomainError(code, `secret kernel detail /usr/sbin/x for ${code}`, {
        field: 'rule',
        details: { kernel: 'secret' },
      }),
    );
    const r = checked(await api().post(RULES).send({ spec: '-j DROP' }));
    expect(problemOf(r)).toMatchObject({ status, code });
    expect(r.body.type).toBe(`https://portcullis.dev/problems/${code}`);
    if (retryAfter) expect(r.headers['retry-after']).toBe('1');
    if (status >= 500) {
      expect(JSON.stringify(r.body)).not.toContain('secret');
      expect(fx.logs.some((l) => l.includes('secret kernel detail'))).toBe(true);
    } else {
      expect(r.body.field).toBe('rule');
      expect(r.body.details).toEqual({ kernel: 'secret' });
    }
  });

  it('an unexpected exception is a generic 500', async () => {
    vi.spyOn(fx.service, 'getTable').mockImplementation(() => {
      throw new TypeError('boom at /home/x');
    });
    const r = checked(await api().get('/v1/tables/filter'));
    expect(problemOf(r)).toMatchObject({ status: 500, code: 'internal' });
    expect(JSON.stringify(r.body)).not.toContain('boom');
    expect(fx.logs.join('\n')).toContain('boom at /home/x');
  });
});

describe('the request validator refuses bad input and nothing changes in the kernel', () => {
  const cases: {
    name: string;
    send: (t: request.Test) => request.Test;
    status: number;
    code: string;
    field?: string;
  }[] = [
    {
      name: 'unknown field',
      send: (t) => t.send({ spec: '-j DROP', bogus: true }),
      status: 400,
      code: 'invalid_argument',
      field: 'bogus',
    },
    {
      name: 'unknown field in a typed rule',
      send: (t) => t.send({ rule: { protocol: 'tcp', sauce: 1 } }),
      status: 400,
      code: 'invalid_argument',
      field: 'rule.sauce',
    },
    {
      name: 'wrong type',
      send: (t) => t.send({ spec: 42 }),
      status: 400,
      code: 'invalid_argument',
      field: 'spec',
    },
    {
      name: 'both rule and spec',
      send: (t) => t.send({ spec: '-j DROP', rule: { matches: [] } }),
      status: 400,
      code: 'invalid_argument',
    },
    {
      name: 'a position on append (InsertRule takes it in the path)',
      send: (t) => t.send({ spec: '-j DROP', position: 'first' }),
      status: 400,
      code: 'invalid_argument',
      field: 'position',
    },
    {
      name: 'wrong content type',
      send: (t) => t.set('Content-Type', 'text/plain').send('-j DROP'),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'form encoding',
      send: (t) => t.type('form').send('spec=-j+DROP'),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'malformed JSON',
      send: (t) => t.set('Content-Type', 'application/json').send('{"spec": '),
      status: 400,
      code: 'malformed_json',
    },
    {
      name: 'a JSON scalar',
      send: (t) => t.set('Content-Type', 'application/json').send('"-j DROP"'),
      status: 400,
      code: 'malformed_json',
    },
    {
      name: 'oversized body',
      send: (t) => t.send({ spec: `-m comment --comment "${'x'.repeat(2 * 1024 * 1024)}" -j DROP` }),
      status: 413,
      code: 'payload_too_large',
    },
    {
      name: 'bad family',
      send: (t) => t.query({ family: 'ipv5' }).send({ spec: '-j DROP' }),
      status: 400,
      code: 'invalid_argument',
      field: 'family',
    },
  ];
  it.each(cases)('$name -> $status $code', async ({ send, status, code, field }) => {
    const before = { v4: await fx.fake.save('ipv4'), v6: await fx.fake.save('ipv6') };
    const r = checked(await send(api().post(RULES)));
    expect(problemOf(r)).toMatchObject({ status, code, ...(field ? { field } : {}) });
    expect({ v4: await fx.fake.save('ipv4'), v6: await fx.fake.save('ipv6') }).toEqual(before);
    expect(fx.fake.calls.restore).toBe(0);
    expect(fx.service.revision).toBe(1);
  });

  it('reports every schema error of a transaction with its path', async () => {
    const r = checked(
      await api()
        .post('/v1/transactions')
        .send({
          operations: [
            { op: 'append', chain: 'INPUT', rule: { protocol: 'tcp', bogus: 1 } },
            { op: 'frob' },
            { op: 'setPolicy', chain: 'INPUT', policy: 'MAYBE' },
          ],
        }),
    );
    expect(problemOf(r)).toMatchObject({
      status: 400,
      code: 'invalid_argument',
      field: 'operations[0].rule.bogus',
    });
    const fields = (r.body.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(
      expect.arrayContaining(['operations[0].rule.bogus', 'operations[1].op', 'operations[2].policy']),
    );
    expect(fx.fake.calls.restore).toBe(0);
  });
});

describe('ETag and If-Match', () => {
  it('applies with the current revision and refuses a stale one with 412 and the current ETag', async () => {
    const etag = checked(await api().get(RULES)).headers.etag as string;
    expect(etag).toBe('"1"');
    const ok = checked(await api().post(RULES).set('If-Match', etag).send({ spec: '-j DROP' }));
    expect(ok.status).toBe(201);
    expect(ok.headers.etag).toBe('"2"');
    const before = await fx.fake.save('ipv4');
    const stale = checked(await api().post(RULES).set('If-Match', etag).send({ spec: '-j ACCEPT' }));
    expect(problemOf(stale)).toMatchObject({
      status: 412,
      code: 'failed_precondition',
      field: 'expectedRevision',
    });
    expect(stale.body.reason).toBe('revision_mismatch');
    expect(stale.body.revision).toBe(2);
    expect(stale.headers.etag).toBe('"2"');
    expect(await fx.fake.save('ipv4')).toBe(before);
    const garbage = checked(await api().delete(`${RULES}/at/1`).set('If-Match', '"abc"'));
    expect(problemOf(garbage)).toMatchObject({
      status: 412,
      code: 'failed_precondition',
      field: 'expectedRevision',
    });
    expect(garbage.body.reason).toBe('revision_mismatch');
    expect(garbage.headers.etag).toBe('"2"');
    expect(checked(await api().delete(`${RULES}/at/1`).set('If-Match', '*')).status).toBe(200);
    expect(checked(await api().delete(`${RULES}/at/1`).set('If-Match', 'W/"3"')).status).toBe(200);
  });

  it('a conditional GET with the current ETag is 304', async () => {
    const r = await api().get(RULES).set('If-None-Match', '"1"');
    expect(r.status).toBe(304);
  });
});

describe('Idempotency-Key', () => {
  it('a retry with the same key and body replays the response without applying again', async () => {
    const first = checked(await api().post(RULES).set('Idempotency-Key', 'k-1').send({ spec: '-j DROP' }));
    expect(first.status).toBe(201);
    expect(first.headers['idempotency-replayed']).toBeUndefined();
    const restores = fx.fake.calls.restore;
    const again = checked(await api().post(RULES).set('Idempotency-Key', 'k-1').send({ spec: '-j DROP' }));
    expect(again.status).toBe(201);
    expect(again.headers['idempotency-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(fx.fake.calls.restore).toBe(restores);
    expect((await kernelRules(fx.fake, 'ipv4', 'INPUT')).filter((t) => t === '-j DROP')).toHaveLength(1);
  });

  it('the same key with another body is 422; another key applies', async () => {
    checked(await api().post(RULES).set('Idempotency-Key', 'k-2').send({ spec: '-j DROP' }));
    const other = checked(await api().post(RULES).set('Idempotency-Key', 'k-2').send({ spec: '-j ACCEPT' }));
    expect(problemOf(other)).toMatchObject({
      status: 422,
      code: 'invalid_argument',
      field: 'idempotencyKey',
    });
    expect(other.body.reason).toBe('idempotency_key_reused');
    const path = checked(await api().delete(`${RULES}/at/1`).set('Idempotency-Key', 'k-2'));
    expect(path.status).toBe(422);
    expect(
      checked(await api().post(RULES).set('Idempotency-Key', 'k-3').send({ spec: '-j ACCEPT' })).status,
    ).toBe(201);
  });

  it('a concurrent retry while the first is in flight is 409', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const real = fx.service.apply.bind(fx.service);
    vi.spyOn(fx.service, 'apply').mockImplementation(async (ops, o) => {
      await gate;
      return real(ops, o);
    });
    const first = api().post(RULES).set('Idempotency-Key', 'k-4').send({ spec: '-j DROP' }).then(checked);
    await new Promise((r) => setTimeout(r, 50));
    const second = checked(await api().post(RULES).set('Idempotency-Key', 'k-4').send({ spec: '-j DROP' }));
    expect(problemOf(second)).toMatchObject({ status: 409, code: 'aborted', field: 'idempotencyKey' });
    expect(second.body.reason).toBe('idempotency_key_in_use');
    release();
    expect((await first).status).toBe(201);
  });

  it('final errors are replayed; transient ones are not remembered', async () => {
    const e1 = checked(
      await api().post(`${CHAIN}/NOPE/rules`).set('Idempotency-Key', 'k-5').send({ spec: '-j DROP' }),
    );
    expect(e1.status).toBe(404);
    const e2 = checked(
      await api().post(`${CHAIN}/NOPE/rules`).set('Idempotency-Key', 'k-5').send({ spec: '-j DROP' }),
    );
    expect(e2.status).toBe(404);
    expect(e2.headers['idempotency-replayed']).toBe('true');
    const spy = vi
      .spyOn(fx.service, 'apply')
      .mockRejectedValueOnce(new DomainError('unavailable', 'xtables lock held'));
    expect(
      checked(await api().post(RULES).set('Idempotency-Key', 'k-6').send({ spec: '-j DROP' })).status,
    ).toBe(503);
    spy.mockRestore();
    const retry = checked(await api().post(RULES).set('Idempotency-Key', 'k-6').send({ spec: '-j DROP' }));
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotency-replayed']).toBeUndefined();
  });

  it('keys are per caller and a malformed key is refused', async () => {
    const store = new IdempotencyStore<Reply>();
    const a = (await startApp({ idempotency: store })).app;
    checked(await request(a).post(RULES).set('Idempotency-Key', 'shared').send({ spec: '-j DROP' }));
    expect(store.size).toBe(1);
    const bad = checked(
      await request(a).post(RULES).set('Idempotency-Key', 'has space').send({ spec: '-j DROP' }),
    );
    expect(problemOf(bad)).toMatchObject({ status: 400, code: 'invalid_argument', field: 'idempotencyKey' });
  });
});

describe('the SSH brute-force seed, pasted as spec strings', () => {
  it('builds the chain exactly as iptables-save prints it', async () => {
    const f = await startApp({ empty: true });
    const post = (path: string, body: object) => request(f.app).post(path).send(body).then(checked);
    expect((await post(CHAIN, { name: 'LOG_AND_DROP' })).status).toBe(201);
    for (const spec of [
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource',
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ])
      expect((await post(RULES, { spec })).status).toBe(201);
    for (const spec of ['-j LOG --log-prefix "iptables deny: " --log-level 7', '-j DROP'])
      expect((await post(`${CHAIN}/LOG_AND_DROP/rules`, { spec })).status).toBe(201);
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toEqual([
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
      '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ]);
    expect(await kernelRules(f.fake, 'ipv4', 'LOG_AND_DROP')).toEqual([
      '-j LOG --log-prefix "iptables deny: " --log-level 7',
      '-j DROP',
    ]);
    const text = await request(f.app).get('/v1/ruleset').set('Accept', 'text/plain');
    expect(text.text).toContain('-A LOG_AND_DROP -j LOG --log-prefix "iptables deny: " --log-level 7\n');
  });
});
