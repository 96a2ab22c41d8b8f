/**
 * The HTTP listener of the REST door, with the connection limits applied (see
 * ../connection-limits.ts): Node's header and request timeouts (a client dribbling its
 * headers gets 408 and is closed), the keep-alive timeout, a socket idle timeout for
 * connections with nothing in flight (including sockets that never send a byte, which
 * Node's own timeouts do not see), and a cap on simultaneous connections (more are closed
 * on arrival). A connection with a request in flight is never cut for being quiet: a write
 * may wait in the queue, and the event stream sends heartbeats.
 *
 * With `tls` the listener speaks HTTPS (../tls.ts); its certificates can be replaced while
 * it runs (`setSecureContext`), and open connections keep theirs.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { Socket } from 'node:net';
import {
  type ConnectionLimits,
  checkConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
} from '../connection-limits.js';

export function createHttpServer(
  handler: RequestListener,
  limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  tls?: HttpsOptions,
): Server {
  checkConnectionLimits(limits);
  // Node refuses a header timeout longer than the request timeout.
  const headersTimeout = Math.min(limits.headerTimeoutMs, limits.requestTimeoutMs);
  const options = {
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // How often Node checks the two timeouts above: often enough to keep them precise.
    connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(headersTimeout / 4))),
  };
  const server: Server = tls
    ? createHttpsServer({ ...tls, ...options }, handler)
    : createServer(options, handler);
  server.maxConnections = limits.maxConnections;

  const inFlight = new WeakMap<Socket, number>();
  server.on('request', (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once('close', () => inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1));
  });
  // With a 'timeout' listener Node leaves the decision to us: close only idle sockets.
  server.setTimeout(limits.idleTimeoutMs);
  server.on('timeout', (socket: Socket) => {
    if ((inFlight.get(socket) ?? 0) === 0) socket.destroy();
  });
  return server;
}
