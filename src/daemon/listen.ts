/**
 * Binding and closing the listeners: REST on TCP (plain or TLS) and on a Unix socket,
 * gRPC on TCP. A bind failure is one {@link StartupError} sentence naming the option to
 * change. Closing stops accepting; idle connections close at once, busy ones get a grace
 * period. Before listening, the open-file limit is raised to hold every allowed
 * connection, or the connection cap is lowered to what it holds (and the log says so).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { raiseFileLimit } from '../file-limit.js';
import type { Logger } from '../observe/logger.js';
import type { ConnectionLimits } from '../transport/connection-limits.js';
import { StartupError } from './startup.js';

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function listenError(
  what: string,
  where: string,
  option: string,
  err: NodeJS.ErrnoException,
  hostOption = option,
): StartupError {
  switch (err.code) {
    case 'EADDRINUSE':
      return new StartupError(
        `${what} cannot listen on ${where}: it is already in use; stop the other program or choose another ${option}.`,
      );
    case 'EADDRNOTAVAIL':
      return new StartupError(
        `${what} cannot listen on ${where}: no interface of this machine has that address; fix ${hostOption}.`,
      );
    case 'EACCES':
    case 'EPERM':
      return new StartupError(
        `${what} cannot listen on ${where}: permission denied; choose another ${option}.`,
      );
    default:
      return new StartupError(`${what} cannot listen on ${where}: ${err.message}.`);
  }
}

/** Listens on TCP (an https server is an http server here); resolves with the bound port. */
export function listenTcp(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolveListen, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(listenError('The REST API', hostPort(host, port), '--rest-port', err, '--rest-host'));
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      const addr = server.address();
      resolveListen(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

/** Makes the socket's directory (0700 when we create it) and removes a stale socket file. */
async function prepareSocket(path: string): Promise<void> {
  const dir = dirname(path);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new StartupError(
      `${path} exists and is not a socket: remove it yourself, or choose another --socket path.`,
    );
  }
  const live = await new Promise<boolean>((res) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
  if (live) {
    throw new StartupError(
      `another process is listening on the socket ${path}: stop it, or choose another --socket path.`,
    );
  }
  unlinkSync(path);
}

export async function listenUnix(server: HttpServer, path: string): Promise<void> {
  await prepareSocket(path);
  // Create the socket 0600 from the first moment, then make sure of it.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((res, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(listenError('The REST API', `the Unix socket ${path}`, '--socket path', err));
      server.once('error', onError);
      server.listen({ path, exclusive: true }, () => {
        server.off('error', onError);
        res();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
}

export function bindGrpc(
  server: grpc.Server,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials,
): Promise<number> {
  const where = hostPort(host, port);
  return new Promise((res, reject) => {
    server.bindAsync(where, credentials, (err, bound) => {
      if (err) {
        const code = /EADDRINUSE|address already in use/i.test(err.message)
          ? 'EADDRINUSE'
          : /EADDRNOTAVAIL/i.test(err.message)
            ? 'EADDRNOTAVAIL'
            : undefined;
        reject(
          listenError(
            'The gRPC API',
            where,
            '--grpc-port',
            Object.assign(err, code ? { code } : {}),
            '--grpc-host',
          ),
        );
      } else res(bound);
    });
  });
}

/** Stops accepting; idle connections close at once, busy ones get `graceMs` to finish. */
export function closeHttp(server: HttpServer, graceMs: number): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((res) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(timer);
      res();
    });
    server.closeIdleConnections();
  });
}

export function closeGrpc(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((res) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      res();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      res();
    });
  });
}

export function removeSocket(path: string | undefined): void {
  if (path === undefined) return;
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone (libuv unlinks it on close)
  }
}

/** Descriptors kept free for everything but connections (iptables pipes, files, the loop). */
const FD_RESERVE = 128;

/**
 * Raises the open-file limit to hold `limits.maxConnections` on each of `listeners`, or
 * lowers the connection cap to what the limit holds. Logs what was achieved.
 */
export async function fitConnectionsToFileLimit(
  limits: ConnectionLimits,
  listeners: number,
  log: Logger,
): Promise<{ limits: ConnectionLimits; nofile: number }> {
  const wanted = listeners * limits.maxConnections + FD_RESERVE;
  const r = await raiseFileLimit(wanted);
  const soft = r.after.soft;
  if (!Number.isFinite(soft) && !Number.isNaN(soft)) return { limits, nofile: soft };
  if (Number.isNaN(soft)) {
    log.warn('open-file limit unknown: cannot check that it holds --max-connections', { reason: r.error });
    return { limits, nofile: soft };
  }
  if (soft > r.before.soft) {
    log.info('open-file limit raised', { from: r.before.soft, to: soft, hard: r.after.hard, wanted });
  } else {
    log.debug('open-file limit', { soft, hard: r.after.hard, wanted });
  }
  if (soft >= wanted) return { limits, nofile: soft };
  const fitted = Math.max(1, Math.floor((soft - FD_RESERVE) / listeners));
  log.warn('open-file limit too low for --max-connections: connection cap lowered', {
    nofile: soft,
    wanted,
    maxConnections: limits.maxConnections,
    loweredTo: fitted,
    reason: r.error,
    hint: 'raise it with LimitNOFILE= in the systemd unit (or ulimit -n), see the README',
  });
  return { limits: { ...limits, maxConnections: Math.min(limits.maxConnections, fitted) }, nofile: soft };
}
