/**
 * GET /v1/events over a real socket (port 0): events arrive in revision order with id/event/
 * data, heartbeats flow, Last-Event-ID catches up, and the subscription ends when the client
 * disconnects.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type AppFixture, checked, READ, startApp } from './helpers.js';

const RULES = '/v1/tables/filter/chains/INPUT/rules';

interface Stream {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Resolves once the text received so far satisfies `done` (bounded by a timeout). */
  until(done: (text: string) => boolean, ms?: number): Promise<string>;
  close(): void;
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen(fx: AppFixture): Promise<number> {
  const server = http.createServer(fx.app);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function open(port: number, headers: Record<string, string> = {}): Promise<Stream> {
  const req = http.get({ host: '127.0.0.1', port, path: '/v1/events', headers });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    text += d;
  });
  res.on('error', () => {});
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    until: async (done, ms = 3000) => {
      const deadline = Date.now() + ms;
      while (!done(text)) {
        if (Date.now() > deadline) throw new Error(`stream did not deliver in ${ms} ms; got:\n${text}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return text;
    },
    close: () => req.destroy(),
  };
}

function events(text: string): { id?: string; event?: string; data?: string }[] {
  return text
    .split('\n\n')
    .filter((b) => b.split('\n').some((l) => l.startsWith('data:')))
    .map((b) => {
      const e: Record<string, string> = {};
      for (const l of b.split('\n')) {
        const m = /^(id|event|data): (.*)$/.exec(l);
        if (m) e[m[1] as string] = m[2] as string;
      }
      return e;
    });
}

describe('GET /v1/events', () => {
  it('streams changes in revision order and unsubscribes when the client goes', async () => {
    const fx = await startApp({ heartbeatMs: 30 });
    let active = 0;
    const real = fx.service.subscribe.bind(fx.service);
    vi.spyOn(fx.service, 'subscribe').mockImplementation((l) => {
      active++;
      const off = real(l);
      return () => {
        active--;
        off();
      };
    });
    const port = await listen(fx);
    const s = await open(port);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(active).toBe(1);
    for (const port of [80, 81, 82]) {
      expect(
        checked(
          await request(fx.app)
            .post(RULES)
            .send({ spec: `-p tcp --dport ${port} -j ACCEPT` }),
        ).status,
      ).toBe(201);
    }
    const text = await s.until((t) => events(t).length >= 3 && t.includes(': heartbeat'));
    const got = events(text);
    expect(got.map((e) => e.id)).toEqual(['2', '3', '4']);
    expect(got.map((e) => e.event)).toEqual(['service', 'service', 'service']);
    const data = got.map((e) => JSON.parse(e.data as string));
    expect(data[0]).toMatchObject({
      revision: 2,
      origin: 'service',
      client: 'rest',
      changes: [{ type: 'rule.added', chain: 'INPUT', text: '-p tcp -m tcp --dport 80 -j ACCEPT' }],
    });
    s.close();
    const deadline = Date.now() + 3000;
    while (active !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(active).toBe(0);
  });

  it('catches up from Last-Event-ID, and asks to resync when it cannot', async () => {
    const fx = await startApp();
    const port = await listen(fx);
    for (const p of [80, 81])
      await request(fx.app)
        .post(RULES)
        .send({ spec: `-p tcp --dport ${p} -j ACCEPT` });
    const s = await open(port, { 'Last-Event-ID': '2' });
    const text = await s.until((t) => events(t).length >= 1);
    expect(events(text).map((e) => e.id)).toEqual(['3']);
    s.close();
    // Revision 1 is the initial read of the kernel, never an event: from 0 nothing can be replayed.
    const r = await open(port, { 'Last-Event-ID': '0' });
    const t2 = await r.until((t) => t.includes('event: resync'));
    expect(t2).toContain('data: {"revision":3}');
    expect(events(t2).filter((e) => e.event !== 'resync')).toEqual([]);
    r.close();
    // Up to date: nothing replayed.
    const u = await open(port, { 'Last-Event-ID': '3' });
    await request(fx.app).post(RULES).send({ spec: '-p tcp --dport 82 -j ACCEPT' });
    const t3 = await u.until((t) => events(t).length >= 1);
    expect(events(t3).map((e) => e.id)).toEqual(['4']);
    u.close();
  });

  it('needs a read token when auth is required', async () => {
    const fx = await startApp({ requireAuth: true });
    const port = await listen(fx);
    const none = await open(port);
    expect(none.status).toBe(401);
    none.close();
    const ok = await open(port, { Authorization: READ });
    expect(ok.status).toBe(200);
    ok.close();
  });
});
