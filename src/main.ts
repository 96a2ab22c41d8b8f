/**
 * The composition root: configuration -> preflight -> kernel adapters -> FirewallService ->
 * REST on TCP (tokens required) and on a Unix socket (local root, no tokens) -> gRPC on TCP
 * (tokens required). Nothing else lives here: no iptables knowledge, no request handling.
 *
 * Start-up fails fast with one sentence on stderr: exit code 2 for a configuration error
 * (before anything is started), 1 for anything else (no CAP_NET_ADMIN, iptables missing,
 * namespace missing, a port in use). The privilege check looks at the capability itself,
 * not at uid 0. Before listening, the open-file limit is raised to hold every allowed
 * connection, or the connection cap is lowered to what it holds (and the log says so). SIGINT/SIGTERM stop accepting, let in-flight requests and queued
 * changes finish, close the service, remove the socket and exit 0.
 *
 * Logs go to stderr, one line per event, as `level=info msg="..." key=value`. Tokens and
 * Authorization headers are never logged: only token names and counts.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { CAP_NET_ADMIN, hasCapability } from './capabilities.js';
import {
  type Config,
  ConfigError,
  helpText,
  LOG_LEVELS,
  type LogLevel,
  loadBaseline,
  loadConfig,
} from './config.js';
import { ExecError } from './exec/executor.js';
import { type KernelAdapters, openKernel } from './exec/kernel.js';
import { raiseFileLimit } from './file-limit.js';
import { FirewallService } from './service/firewall-service.js';
import { IdempotencyStore } from './service/idempotency.js';
import { Authenticator } from './transport/auth.js';
import type { ConnectionLimits } from './transport/connection-limits.js';
import type { Reply } from './transport/http/routes.js';

// ------------------------------------------------------------------ logging

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Field names whose values are never written. */
const SECRET_KEY = /^(authorization|token|bearer|password|secret|cookie)$/i;

function logValue(key: string, value: unknown): string {
  let text: string;
  if (SECRET_KEY.test(key)) text = '[redacted]';
  else if (value instanceof Error) text = value.message;
  else if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    text = String(value);
  else if (value === undefined) text = '';
  else text = JSON.stringify(value) ?? String(value);
  // A token may hide in free text (an error echoing a header): cut it out.
  text = text.replace(/\b(Bearer)\s+\S+/gi, '$1 [redacted]');
  return /^[^\s"=\\]+$/.test(text) ? text : JSON.stringify(text);
}

/** A logger writing `level=... msg=... key=value` lines, dropping levels below `level`. */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const emit =
    (lvl: LogLevel) =>
    (msg: string, fields: LogFields = {}) => {
      if (LOG_LEVELS.indexOf(lvl) < min) return;
      let line = `level=${lvl} msg=${logValue('msg', msg)}`;
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(k)) continue;
        line += ` ${k}=${logValue(k, v)}`;
      }
      write(`${line}\n`);
    };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

// ------------------------------------------------------------------ preflight

/** Start-up failed for a reason other than configuration: exit code 1, one sentence. */
class StartupError extends Error {
  override readonly name = 'StartupError';
}

const NOT_ROOT =
  'portcullis needs root (CAP_NET_ADMIN) to manage iptables: run it as root, or try it safely with --netns NAME as root.';

function netnsMissing(name: string): string {
  return `network namespace ${name} does not exist: create it with \`ip netns add ${name}\`, or fix --netns.`;
}

/** Checks CAP_NET_ADMIN and the namespace, then opens the kernel adapters (which runs `iptables --version`). */
async function preflight(config: Config): Promise<KernelAdapters> {
  if (!hasCapability(CAP_NET_ADMIN)) throw new StartupError(NOT_ROOT);
  if (config.netns !== undefined && !existsSync(`/run/netns/${config.netns}`)) {
    throw new StartupError(netnsMissing(config.netns));
  }
  try {
    return await openKernel(config.netns === undefined ? {} : { netns: config.netns });
  } catch (err) {
    if (err instanceof ExecError) {
      if (err.kind === 'binary_missing') {
        const what =
          /\bip\b/.test(err.argv[0] ?? '') && /iproute2/.test(err.message) ? 'iproute2' : 'iptables';
        throw new StartupError(
          `portcullis needs the iptables programs (iptables, iptables-save, iptables-restore), which are not installed: install the Debian package ${what} (apt-get install ${what}).`,
        );
      }
      if (err.kind === 'permission_denied') throw new StartupError(NOT_ROOT);
      if (config.netns !== undefined && /Cannot open network namespace/.test(err.stderr)) {
        throw new StartupError(netnsMissing(config.netns));
      }
      throw new StartupError(`portcullis cannot run iptables: ${err.message.replace(/\.$/, '')}.`);
    }
    throw err;
  }
}

// ------------------------------------------------------------------ listeners

function hostPort(host: string, port: number): string {
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

function listenTcp(server: HttpServer, host: string, port: number): Promise<number> {
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
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
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

async function listenUnix(server: HttpServer, path: string): Promise<void> {
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

function bindGrpc(server: grpc.Server, host: string, port: number): Promise<number> {
  const where = hostPort(host, port);
  return new Promise((res, reject) => {
    server.bindAsync(where, grpc.ServerCredentials.createInsecure(), (err, bound) => {
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
function closeHttp(server: HttpServer, graceMs: number): Promise<void> {
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

function closeGrpc(server: grpc.Server, graceMs: number): Promise<void> {
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

function removeSocket(path: string | undefined): void {
  if (path === undefined) return;
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone (libuv unlinks it on close)
  }
}

// ------------------------------------------------------------------ file descriptors

/** Descriptors kept free for everything but connections (iptables pipes, files, the loop). */
const FD_RESERVE = 128;

/**
 * Raises the open-file limit to hold `limits.maxConnections` on each of `listeners`, or
 * lowers the connection cap to what the limit holds. Logs what was achieved.
 */
async function fitConnectionsToFileLimit(
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

// ------------------------------------------------------------------ main

/** How long open connections (event streams, slow requests) get to finish on shutdown. */
const GRACE_MS = 5000;
/** Past this, shutdown gives up waiting and exits 1. */
const SHUTDOWN_DEADLINE_MS = 30_000;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let loaded: ReturnType<typeof loadConfig>;
  let baseline: ReturnType<typeof loadBaseline>;
  try {
    loaded = loadConfig({ argv, env });
    if (loaded.help) {
      process.stdout.write(helpText('portcullis'));
      return 0;
    }
    baseline = loadBaseline(loaded.config, loaded.sources);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const log = createLogger(config.logLevel);
  // grpc-js writes its own "E ..." lines to stderr (e.g. a failed bind, which we report in
  // one sentence ourselves): route them through our logger, at debug.
  grpc.setLogger({
    error: (...args: unknown[]) => log.debug('grpc-js', { detail: args.map(String).join(' ') }),
  });
  for (const w of warnings) log.warn(w);

  let service: FirewallService | undefined;
  let restServer: HttpServer | undefined;
  let unixServer: HttpServer | undefined;
  let grpcServer: grpc.Server | undefined;
  let socketCreated = false;
  let readyFields: LogFields = {};

  const stopAll = async (): Promise<void> => {
    await Promise.all([
      restServer ? closeHttp(restServer, GRACE_MS) : undefined,
      unixServer ? closeHttp(unixServer, GRACE_MS) : undefined,
      grpcServer ? closeGrpc(grpcServer, GRACE_MS) : undefined,
    ]);
    await service?.close();
    if (socketCreated) removeSocket(config.socket);
  };

  try {
    const kernel = await preflight(config);
    log.info('kernel opened', {
      netns: config.netns ?? 'host',
      backend: kernel.backend.backend,
      version: kernel.backend.version,
    });
    const listeners = 2 + (config.socket === undefined ? 0 : 1);
    const { limits, nofile } = await fitConnectionsToFileLimit(config.limits, listeners, log);
    if (kernel.degraded) log.warn('change feed unavailable', { reason: kernel.degraded });

    service = new FirewallService({
      executor: kernel.executor,
      ...(kernel.feed ? { feed: kernel.feed } : {}),
      ...(kernel.handles ? { handles: kernel.handles } : {}),
      families: config.families,
      ...(baseline.size > 0 ? { baseline } : {}),
      queue: config.queue,
      pollIntervalMs: config.pollIntervalMs,
      stateDir: config.stateDir,
      verifyIntervalMs: config.verifyIntervalMs,
      ...(kernel.other ? { otherBackend: kernel.other } : {}),
    });
    await service.start();
    const other = service.status().otherBackend;
    if (other) {
      log.warn(`rules in the other iptables backend (${other.backend}) also filter packets`, {
        tables: other.tables.map((t) => `${t.family}/${t.table}:${t.rules}`).join(','),
        filtering: other.filtering,
        hint: `read them with ${other.backend === 'legacy' ? 'iptables-legacy-save' : 'iptables-nft-save'}, or GET /v1/ruleset?backend=other`,
      });
    }
    if (service.recovery && service.recovery.outcome !== 'none') {
      log.warn('a change in flight at the last stop was repaired', {
        outcome: service.recovery.outcome,
        id: service.recovery.id,
        undoneBlocks: service.recovery.undone,
      });
    }

    const auth = new Authenticator(config.tokens);
    if (auth.size === 0) {
      log.warn(
        'no tokens configured: every TCP request will be refused with 401 (the Unix socket still works)',
        {
          hint: 'add one: PORTCULLIS_TOKENS=admin:write:$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1), or tokens in the config file',
        },
      );
    } else {
      log.info('tokens configured', {
        count: auth.size,
        names: config.tokens.map((t) => `${t.name}(${t.scope})`).join(','),
      });
    }

    // Loaded only now, so that --help, configuration errors and preflight stay fast.
    const [{ createApp }, { createHttpServer }, { createGrpcServer }] = await Promise.all([
      import('./transport/http/app.js'),
      import('./transport/http/server.js'),
      import('./transport/grpc/server.js'),
    ]);
    // The transports log plain lines; they carry no tokens or headers, and errors are marked.
    const lineLogger =
      (transport: string) =>
      (line: string): void => {
        if (/\b(internal error|unavailable):/.test(line)) log.error(line, { transport });
        else log.info(line, { transport });
      };
    // One Idempotency-Key store for both REST listeners: a retry may come through either.
    const idempotency = new IdempotencyStore<Reply>();
    const restOptions = { service, auth, idempotency, maxBodyBytes: config.maxBodyBytes };
    restServer = createHttpServer(
      createApp({ ...restOptions, requireAuth: true, logger: lineLogger('rest') }),
      limits,
    );
    const restPort = await listenTcp(restServer, config.restHost, config.restPort);
    log.info('REST API listening', {
      transport: 'rest',
      address: hostPort(config.restHost, restPort),
      auth: 'bearer',
    });

    if (config.socket !== undefined) {
      unixServer = createHttpServer(
        createApp({ ...restOptions, requireAuth: false, logger: lineLogger('rest-unix') }),
        limits,
      );
      await listenUnix(unixServer, config.socket);
      socketCreated = true;
      log.info('REST API listening', {
        transport: 'rest-unix',
        socket: config.socket,
        auth: 'none',
        mode: '0600',
      });
    }

    grpcServer = createGrpcServer({
      service,
      auth,
      requireAuth: true,
      logger: lineLogger('grpc'),
      maxMessageBytes: config.maxBodyBytes,
      limits,
    });
    const grpcPort = await bindGrpc(grpcServer, config.grpcHost, config.grpcPort);
    log.info('gRPC API listening', {
      transport: 'grpc',
      address: hostPort(config.grpcHost, grpcPort),
      auth: 'bearer',
    });

    const status = service.status();
    readyFields = {
      revision: status.revision,
      families: config.families.join(','),
      watch: status.watch,
      maxConnections: limits.maxConnections,
      nofile,
    };
  } catch (err) {
    if (err instanceof StartupError) process.stderr.write(`portcullis: ${err.message}\n`);
    else {
      const text = err instanceof Error ? err.message : String(err);
      process.stderr.write(`portcullis: start-up failed: ${text.replace(/\s+/g, ' ').replace(/\.$/, '')}.\n`);
      if (err instanceof Error && err.stack) log.debug('start-up failure stack', { stack: err.stack });
    }
    await stopAll().catch(() => {});
    return 1;
  }

  // Running: wait for a signal or a fatal error.
  const code = await new Promise<number>((res) => {
    let stopping = false;
    const stop = (reason: string, exitCode: number) => {
      if (stopping) {
        log.warn('second stop request: exiting now', { reason });
        process.exit(1);
      }
      stopping = true;
      log.info('shutting down', { reason });
      const deadline = setTimeout(() => {
        log.error('shutdown took too long: exiting', { timeoutMs: SHUTDOWN_DEADLINE_MS });
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      stopAll().then(
        () => {
          clearTimeout(deadline);
          log.info('stopped');
          res(exitCode);
        },
        (err: unknown) => {
          clearTimeout(deadline);
          log.error('shutdown failed', { error: err instanceof Error ? err.message : String(err) });
          res(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT', 0));
    process.on('SIGTERM', () => stop('SIGTERM', 0));
    for (const s of [restServer, unixServer]) {
      s?.on('error', (err) => {
        log.error('listener failed', { error: err.message });
        stop('listener error', 1);
      });
    }
    // Only now: a supervisor may stop us the moment it reads this line.
    log.info('ready', readyFields);
  });
  return code;
}

const entry = process.argv[1];
if (entry !== undefined && resolve(entry) === fileURLToPath(import.meta.url)) {
  const fatal = createLogger('error');
  process.on('uncaughtException', (err) => {
    fatal.error('uncaught exception', { error: err });
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    fatal.error('unhandled rejection', { error: err });
    process.exit(1);
  });
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`portcullis: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
