/**
 * Connection limits of both doors, with small values: idle sockets (silent ones and idle
 * keep-alive connections) are closed after the idle timeout, a client dribbling its headers
 * (slowloris) is cut at the header timeout, a request that is not fully sent in time is cut
 * at the request timeout, a request in flight is never cut for being quiet, and the
 * connection cap refuses extra connections while normal requests work again once they go.
 * Everything listens on 127.0.0.1 only.
 */
import { once } from 'node:events';
import http, { type Server } from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { FirewallService as Desc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import type { ConnectionLimits } from '../../src/transport/connection-limits.js';
import { createPromiseClient } from '../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../src/transport/grpc/server.js';
import { createHttpServer } from '../../src/transport/http/server.js';
import { authenticator, bind, type GrpcFixture, READ_TOKEN, startGrpc } from './grpc/helpers.js';
import { type AppFixture, READ, startApp } from './http/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Opens a raw TCP connection; resolves when connected. Records when it was closed by the peer. */
async function rawSocket(port: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume();
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - t0)));
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  return { socket, closed };
}

/** Writes `text` one byte every `ms` until the socket closes (bounded by the text's length). */
function dribble(socket: net.Socket, text: string | Buffer, ms: number): void {
  const bytes = Buffer.from(text);
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= bytes.length) {
      clearInterval(timer);
      return;
    }
    socket.write(bytes.subarray(i, i + 1));
    i++;
  }, ms);
  cleanups.push(() => clearInterval(timer));
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
  ]);
}

function get(port: number, path: string, agent: http.Agent | false = false): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent, headers: { authorization: READ } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

describe('REST door limits', () => {
  const limits: ConnectionLimits = {
    requestTimeoutMs: 3000,
    headerTimeoutMs: 400,
    idleTimeoutMs: 500,
    maxConnections: 4,
  };
  let fx: AppFixture;
  let server: Server;
  let port: number;

  async function listen(
    handler?: http.RequestListener,
    custom: Partial<ConnectionLimits> = {},
  ): Promise<void> {
    fx = await startApp({ requireAuth: true });
    server = createHttpServer(handler ?? fx.app, { ...limits, ...custom });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    cleanups.push(async () => {
      server.closeAllConnections();
      server.close();
      await fx.service.close();
    });
  }

  it('closes sockets that never send a byte, and idle keep-alive connections, after the idle timeout', async () => {
    // Node also counts the wait for a keep-alive connection's next request as header time:
    // a header timeout longer than the idle one shows the idle timeout at work.
    await listen(undefined, { headerTimeoutMs: 2000 });
    const silent = await Promise.all([rawSocket(port), rawSocket(port)]);
    // A keep-alive connection: one whole request and its answer, then nothing.
    const kept = await rawSocket(port);
    let answer = '';
    kept.socket.setEncoding('utf8').on('data', (d: string) => {
      answer += d;
    });
    kept.socket.write(`GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: ${READ}\r\n\r\n`);
    for (const s of [...silent, kept]) {
      const ms = await bounded(s.closed, 3000, 'idle socket closed');
      expect(ms).toBeGreaterThanOrEqual(limits.idleTimeoutMs - 50);
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('Keep-Alive: timeout=');
  });

  it('cuts a client that dribbles its headers at the header timeout (408)', async () => {
    await listen();
    const { socket, closed } = await rawSocket(port);
    let answer = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      answer += d;
    });
    dribble(socket, `GET /v1/status HTTP/1.1\r\nHost: x\r\n${'X-Slow: y\r\n'.repeat(50)}\r\n`, 20);
    const ms = await bounded(closed, 2500, 'slowloris closed');
    expect(ms).toBeGreaterThanOrEqual(limits.headerTimeoutMs - 50);
    expect(ms).toBeLessThan(limits.requestTimeoutMs);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('never cuts a request in flight for being quiet longer than the idle timeout', async () => {
    await listen((_req, res) => {
      setTimeout(() => res.end('late'), limits.idleTimeoutMs * 2);
    });
    expect(await get(port, '/')).toBe(200);
  });

  it('refuses connections over the cap; normal requests work again once they go', async () => {
    await listen();
    const held = await Promise.all(Array.from({ length: limits.maxConnections }, () => rawSocket(port)));
    // Keep them busy-looking but within the header timeout: a request line in progress.
    for (const h of held) h.socket.write('GET /v1/status HTTP/1.1\r\n');
    await expect(get(port, '/v1/status')).rejects.toThrow();
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await new Promise((r) => setTimeout(r, 50));
    expect(await get(port, '/v1/status')).toBe(200);
  });
});

describe('gRPC door limits', () => {
  const limits: ConnectionLimits = {
    requestTimeoutMs: 800,
    headerTimeoutMs: 400,
    idleTimeoutMs: 700,
    maxConnections: 3,
  };
  let f: GrpcFixture;
  let port: number;

  async function listen(custom: Partial<ConnectionLimits> = {}): Promise<void> {
    f = await startGrpc();
    const server = createGrpcServer({
      service: f.service,
      auth: authenticator,
      requireAuth: true,
      limits: { ...limits, ...custom },
    });
    port = await bind(server);
    cleanups.push(async () => {
      server.forceShutdown();
      await f.close();
    });
  }

  const client = () => {
    const c = createPromiseClient(Desc, `127.0.0.1:${port}`);
    cleanups.push(() => c.close());
    return c;
  };

  it('closes a socket that never sends a byte at the header timeout', async () => {
    await listen();
    const { closed } = await rawSocket(port);
    const ms = await bounded(closed, 3000, 'silent socket closed');
    expect(ms).toBeGreaterThanOrEqual(limits.headerTimeoutMs - 50);
  });

  it('cuts a client that dribbles the HTTP/2 preface at the header timeout', async () => {
    await listen();
    const { socket, closed } = await rawSocket(port);
    dribble(socket, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 30);
    const ms = await bounded(closed, 3000, 'slowloris closed');
    expect(ms).toBeGreaterThanOrEqual(limits.headerTimeoutMs - 50);
    expect(ms).toBeLessThan(limits.headerTimeoutMs + 1000);
  });

  it('closes a connection without calls after the idle timeout (the client sees it go)', async () => {
    await listen();
    const c = client();
    await c.getStatus({}, { token: READ_TOKEN });
    const channel = c.raw.getChannel();
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.READY);
    const t0 = Date.now();
    await bounded(
      new Promise<void>((resolve) => {
        const watch = () =>
          channel.watchConnectivityState(grpc.connectivityState.READY, Date.now() + 5000, () => {
            if (channel.getConnectivityState(false) === grpc.connectivityState.READY) watch();
            else resolve();
          });
        watch();
      }),
      5000,
      'connection closed by the server',
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(limits.idleTimeoutMs - 100);
    // The client reconnects for the next call.
    expect((await c.getStatus({}, { token: READ_TOKEN })).ready).toBe(true);
  });

  it('resets a call whose request is not complete within the request timeout', async () => {
    await listen();
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    cleanups.push(() => session.destroy());
    const stream = session.request({
      ':method': 'POST',
      ':path': '/portcullis.v1.FirewallService/GetStatus',
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${READ_TOKEN}`,
    });
    stream.on('error', () => {});
    stream.resume();
    const t0 = Date.now();
    // Half a message frame, then nothing.
    stream.write(Buffer.from([0, 0, 0, 0, 10, 1]));
    await bounded(once(stream, 'close'), 4000, 'stream reset');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(limits.requestTimeoutMs - 100);
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it('never resets a Watch that outlives the request timeout (its request was complete)', async () => {
    await listen();
    const stream = client().watch({}, { token: READ_TOKEN });
    const events: unknown[] = [];
    stream.on('data', (e) => events.push(e));
    stream.on('error', () => {});
    await new Promise((r) => setTimeout(r, limits.requestTimeoutMs + 700));
    await f.service.apply([{ op: 'createChain', family: 'ipv4', table: 'filter', chain: 'LATE' }], {
      origin: 'rest',
    });
    await bounded(
      new Promise<void>((resolve) => {
        const check = () => (events.length > 0 ? resolve() : setTimeout(check, 20));
        check();
      }),
      3000,
      'event after the request timeout',
    );
    stream.cancel();
  });

  it('refuses connections over the cap; calls work again once they go', async () => {
    await listen({ headerTimeoutMs: 10_000, idleTimeoutMs: 10_000 });
    const held = await Promise.all(Array.from({ length: limits.maxConnections }, () => rawSocket(port)));
    const refused = await rawSocket(port);
    expect(await bounded(refused.closed, 2000, 'extra connection refused')).toBeLessThan(1000);
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await new Promise((r) => setTimeout(r, 50));
    expect((await client().getStatus({}, { token: READ_TOKEN })).ready).toBe(true);
  });
});
