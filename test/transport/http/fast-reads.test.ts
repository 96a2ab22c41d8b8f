/**
 * Plain chain reads are answered before express (src/transport/http/fast-reads.ts). Both paths
 * must give the same answers: for a corpus of chain reads and near misses (other queries,
 * paths, methods, credentials, conditional headers, bodies, request ids, unknown chains), an
 * app with the fast path and one without answer with the same status, headers and body, write
 * the same access log line and count the same metrics. The plain reads must really take the
 * fast path (express never saw them) and the near misses must not, so the test cannot pass by
 * comparing express with itself.
 */
import { request as httpRequest, IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/transport/http/app.js';
import { createHttpServer } from '../../../src/transport/http/server.js';
import type { ServiceFixture } from '../../helpers/service.js';
import { startSeeded } from '../../helpers/service.js';
import { authenticator, READ, READ_TOKEN, WRITE } from './helpers.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  log: string[];
  metrics: string[];
  /** Whether express saw the request (it gives the request its own prototype). */
  express: boolean;
}

interface Door {
  server: Server;
  log: string[];
  metrics: string[];
  express: boolean[];
}

async function door(fx: ServiceFixture, fastReads: boolean): Promise<Door> {
  const log: string[] = [];
  const metrics: string[] = [];
  const express: boolean[] = [];
  const app = createApp({
    service: fx.service,
    auth: authenticator(),
    requireAuth: true,
    fastReads,
    logger: (line, fields) => {
      if (fields) log.push(JSON.stringify({ ...fields, ms: 0 }), line.replace(/ [\d.]+ms /, ' ?ms '));
    },
    metrics: {
      request: (d, op, code) => metrics.push(`${d} ${op} ${code}`),
      text: async () => '',
      contentType: 'text/plain',
    },
  });
  const server = createHttpServer(app);
  server.on('request', (req: IncomingMessage, res) =>
    res.on('finish', () => express.push(Object.getPrototypeOf(req) !== IncomingMessage.prototype)),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, log, metrics, express };
}

function send(
  d: Door,
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
  body?: string,
): Promise<Answer> {
  const marks = { log: d.log.length, metrics: d.metrics.length, express: d.express.length };
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: (d.server.address() as AddressInfo).port, method, path, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', async () => {
          // The log and metrics are written when the response ends on the server ('finish',
          // 'close'): wait for them (at most 2 s), then a little more for anything after.
          for (
            let i = 0;
            i < 200 && (d.express.length === marks.express || d.metrics.length === marks.metrics);
            i++
          )
            await new Promise((r) => setTimeout(r, 10));
          await new Promise((r) => setTimeout(r, 10));
          const { date: _, ...rest } = res.headers;
          resolve({
            status: res.statusCode ?? 0,
            headers: rest,
            body: text,
            log: d.log.slice(marks.log),
            metrics: d.metrics.slice(marks.metrics),
            express: d.express.slice(marks.express).every(Boolean),
          });
        });
      },
    );
    req.on('error', reject);
    for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
    req.end(body);
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Generated request ids differ between the two answers: the same form, then one value. */
function sameIds(a: Answer, b: Answer): void {
  const [x, y] = [a.headers['x-request-id'], b.headers['x-request-id']];
  if (x !== y) {
    expect(x).toMatch(UUID);
    expect(y).toMatch(UUID);
    for (const ans of [a, b]) {
      ans.headers['x-request-id'] = 'generated';
      ans.log = ans.log.map((l) => l.split(String(ans === a ? x : y)).join('generated'));
    }
  }
}

describe('chain reads before express answer as express does', () => {
  let fx: ServiceFixture;
  let fast: Door;
  let slow: Door;
  beforeAll(async () => {
    fx = await startSeeded(['ipv4', 'ipv6']);
    await fx.service.apply([{ op: 'createChain', family: 'ipv4', table: 'filter', chain: 'a.b+c_9' }]);
    fast = await door(fx, true);
    slow = await door(fx, false);
  });
  afterAll(async () => {
    for (const d of [fast, slow]) await new Promise((r) => d.server.close(r));
    await fx.service.close();
  });

  const plain: [string, Record<string, string | string[]>][] = [
    ['/v1/tables/filter/chains/INPUT', { authorization: READ }],
    ['/v1/tables/filter/chains/INPUT?family=ipv4', { authorization: READ }],
    ['/v1/tables/filter/chains/INPUT?family=ipv6', { authorization: WRITE }],
    ['/v1/tables/filter/chains/a.b+c_9', { authorization: READ, 'x-request-id': 'client-id-1' }],
    ['/v1/tables/filter/chains/OUTPUT', { authorization: READ, 'x-request-id': 'not a valid id!' }],
    ['/v1/tables/nat/chains/PREROUTING', { authorization: `  bearer ${READ_TOKEN}  ` }],
    ['/v1/tables/filter/chains/INPUT', { authorization: READ, 'content-length': '0', accept: 'text/html' }],
  ];
  const missed: [string, string, Record<string, string | string[]>, string?][] = [
    ['GET', '/v1/tables/filter/chains/NOPE', { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/INPUT', {}],
    ['GET', '/v1/tables/filter/chains/INPUT', { authorization: 'Bearer wrong-token-000000' }],
    ['GET', '/v1/tables/filter/chains/INPUT', { authorization: 'Basic abc' }],
    ['GET', '/v1/tables/filter/chains/INPUT', { authorization: [READ, READ] }],
    ['GET', '/v1/tables/filter/chains/INPUT', { authorization: READ, 'if-none-match': `"${0}"` }],
    ['GET', '/v1/tables/filter/chains/INPUT', { authorization: READ, 'if-match': '"1"' }],
    ['HEAD', '/v1/tables/filter/chains/INPUT', { authorization: READ }],
    ['DELETE', '/v1/tables/filter/chains/NOPE', { authorization: WRITE }],
    ['GET', '/v1/tables/filter/chains/INPUT/', { authorization: READ }],
    ['GET', '/V1/tables/filter/chains/INPUT', { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/IN%50UT', { authorization: READ }],
    ['GET', '/v1/tables/bogus/chains/INPUT', { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/INPUT?family=ipv9', { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/INPUT?counters=false', { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/INPUT?family=ipv4&family=ipv6', { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/INPUT?family=ipv4#x', { authorization: READ }],
    ['GET', `/v1/tables/filter/chains/${'A'.repeat(29)}`, { authorization: READ }],
    ['GET', '/v1/tables/filter/chains/-X', { authorization: READ }],
    [
      'GET',
      '/v1/tables/filter/chains/INPUT',
      { authorization: READ, 'content-type': 'application/json', 'content-length': '2' },
      '{}',
    ],
  ];

  it.each(plain)('%s: the same answer, before express', async (path, headers) => {
    const a = await send(fast, 'GET', path, headers);
    const b = await send(slow, 'GET', path, headers);
    sameIds(a, b);
    expect(a.express).toBe(false);
    expect(b.express).toBe(true);
    expect(a.status).toBe(200);
    expect({ ...a, express: undefined }).toEqual({ ...b, express: undefined });
    expect(a.log).toHaveLength(2);
    expect(a.metrics).toHaveLength(1);
  });

  it.each(missed)('%s %s: left to express', async (method, path, headers, body) => {
    const revision = fx.service.revision;
    const h = { ...headers };
    if (h['if-none-match']) h['if-none-match'] = `"${revision}"`;
    const a = await send(fast, method, path, h, body);
    const b = await send(slow, method, path, h, body);
    sameIds(a, b);
    expect(a.express).toBe(true);
    expect(a).toEqual(b);
  });

  it('after a change, both answer with the changed chain', async () => {
    const before = await send(fast, 'GET', '/v1/tables/filter/chains/INPUT', { authorization: READ });
    await fx.service.apply([
      {
        op: 'append',
        family: 'ipv4',
        table: 'filter',
        chain: 'INPUT',
        rule: { spec: '-s 192.0.2.99/32 -j DROP' },
      },
    ]);
    const a = await send(fast, 'GET', '/v1/tables/filter/chains/INPUT', { authorization: READ });
    const b = await send(slow, 'GET', '/v1/tables/filter/chains/INPUT', { authorization: READ });
    sameIds(a, b);
    expect(a.body).not.toBe(before.body);
    expect(a.body).toContain('192.0.2.99/32');
    expect({ ...a, express: undefined }).toEqual({ ...b, express: undefined });
  });
});
