/**
 * The composition root: configuration -> preflight -> the saved rules (--restore-on-start) ->
 * FirewallService with its observers (audit log, rules files) -> REST on TCP (tokens or client
 * certificates; TLS with --tls-cert) and on a Unix socket (local root, no tokens) -> gRPC on
 * TCP (the same). Nothing else lives here: no iptables knowledge, no request handling.
 *
 * Start-up fails fast with one sentence on stderr: exit code 2 for a configuration error
 * (before anything is started; TLS files that do not load count as one), 1 for anything else
 * (no CAP_NET_ADMIN, iptables missing, namespace missing, a rules file that fails its test, a
 * port in use). SIGINT/SIGTERM stop accepting, let in-flight requests and queued changes
 * finish, write what persistence and the audit log still hold, remove the socket and exit 0.
 * SIGHUP re-reads the TLS files (open connections keep theirs) and reopens the audit log.
 *
 * Logs go to stderr through pino (observe/logger.ts): JSON lines, or readable lines on a
 * terminal. Tokens, keys and certificates are never logged: only names and counts.
 */

import type { Server as HttpServer } from 'node:http';
import { join, resolve } from 'node:path';
import { Server as TlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { ConfigError, helpText, loadBaseline, loadConfig, readFailure } from './config.js';
import {
  bindGrpc,
  closeGrpc,
  closeHttp,
  fitConnectionsToFileLimit,
  hostPort,
  listenTcp,
  listenUnix,
  removeSocket,
} from './daemon/listen.js';
import { preflight, StartupError } from './daemon/startup.js';
import { DomainError } from './domain/errors.js';
import { AuditLog } from './observe/audit.js';
import { fanOut } from './observe/fan-out.js';
import { createLogger, type LogFields, type Logger } from './observe/logger.js';
import type { FirewallService } from './service/firewall-service.js';
import { IdempotencyStore } from './service/idempotency.js';
import { IdempotencyFile } from './store/idempotency-file.js';
import { RestoreOnStartError, RulesPersistence, restoreSaved } from './store/persistence.js';
import { lockStateDir, type StateDirLock, StateDirLockedError } from './store/state-lock.js';
import { Authenticator } from './transport/auth.js';
import type { DaemonApi } from './transport/daemon-api.js';
import type { StoredOutcome } from './transport/grpc/handlers.js';
import type { Reply } from './transport/http/routes.js';
import { httpsOptions, TlsError, TlsFiles } from './transport/tls.js';

// ------------------------------------------------------------------ main

/** How long open connections (event streams, slow requests) get to finish on shutdown. */
const GRACE_MS = 5000;
/** Past this, shutdown gives up waiting and exits 1. */
const SHUTDOWN_DEADLINE_MS = 30_000;

/** Who calls through the Unix socket: only its owner (the service's user) and root can open it. */
const SOCKET_IDENTITY = `unix:uid=${process.getuid?.() ?? 0}`;

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let loaded: ReturnType<typeof loadConfig>;
  let baseline: ReturnType<typeof loadBaseline>;
  let tlsFiles: TlsFiles | undefined;
  try {
    loaded = loadConfig({ argv, env });
    if (loaded.help) {
      process.stdout.write(helpText('portcullis'));
      return 0;
    }
    baseline = loadBaseline(loaded.config, loaded.sources);
    const tls = loaded.config.tls;
    tlsFiles = tls ? new TlsFiles(tls) : undefined;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof TlsError) {
      process.stderr.write(
        `portcullis: ${capitalized(err.message)}${err.message.endsWith('.') ? '' : '.'}\n`,
      );
      return 2;
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  // SIGHUP must not end the service while it starts (Node's default); it reloads once running.
  let onHangup: () => void = () => log.info('SIGHUP ignored: the service is still starting');
  const hangup = () => onHangup();
  process.on('SIGHUP', hangup);
  for (const w of warnings) log.warn(w);

  let service: FirewallService | undefined;
  let restServer: HttpServer | undefined;
  let unixServer: HttpServer | undefined;
  let grpcServer: grpc.Server | undefined;
  /** The service's start while the doors are built; settled before stopping after a failure. */
  let starting: Promise<void> | undefined;
  let socketCreated = false;
  let readyFields: LogFields = {};
  let audit: AuditLog | undefined;
  let persistence: RulesPersistence | undefined;
  let stateLock: StateDirLock | undefined;
  let idempotencyFile: IdempotencyFile | undefined;

  const stopAll = async (): Promise<void> => {
    await Promise.all([
      restServer ? closeHttp(restServer, GRACE_MS) : undefined,
      unixServer ? closeHttp(unixServer, GRACE_MS) : undefined,
      grpcServer ? closeGrpc(grpcServer, GRACE_MS) : undefined,
    ]);
    await service?.close();
    await persistence?.flush();
    await audit?.close();
    await idempotencyFile?.flush();
    await stateLock?.release();
    if (socketCreated) removeSocket(config.socket);
    process.off('SIGHUP', hangup);
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
    // One service per state directory: before anything in it (or the kernel) is touched.
    try {
      stateLock = await lockStateDir(config.stateDir);
    } catch (err) {
      if (err instanceof StateDirLockedError) throw new StartupError(err.message);
      throw err;
    }

    if (config.restoreOnStart) {
      try {
        for (const f of await restoreSaved(kernel.executor, config.families, config.rulesFiles, log))
          log.info('saved rules loaded', { family: f.family, path: f.path, lines: f.lines });
      } catch (err) {
        if (err instanceof RestoreOnStartError) throw new StartupError(err.message);
        throw err;
      }
    }
    if (config.auditLog !== undefined) {
      const path = config.auditLog;
      audit = new AuditLog({ path, log });
      await audit.open().catch((err: unknown) => {
        throw new StartupError(
          `the audit log ${path} cannot be opened for appending (${readFailure(err)}): fix its directory's permissions, choose another --audit-log, or turn it off with --audit-log ''.`,
        );
      });
    }
    // The model's first read begins here, before the service's own modules load (about 0.1 s of
    // CPU on the way to ready): iptables-save runs meanwhile. The service reads the model from
    // these saves unless it first repairs a change from its journal.
    const firstSaves = new Map(config.families.map((f) => [f, kernel.executor.save(f)] as const));
    for (const save of firstSaves.values()) save.catch(() => {});
    const [{ FirewallService }, { Metrics }] = await Promise.all([
      import('./service/firewall-service.js'),
      import('./observe/metrics.js'),
    ]);
    const metrics = new Metrics();
    persistence = new RulesPersistence({
      mode: config.persist,
      files: config.rulesFiles,
      log,
      onWrite: (e) => metrics.rulesFileWrite(e),
    });

    service = new FirewallService({
      executor: kernel.executor,
      backend: kernel.backend,
      firstSaves,
      ...(kernel.feed ? { feed: kernel.feed } : {}),
      ...(kernel.handles ? { handles: kernel.handles } : {}),
      families: config.families,
      ...(baseline.size > 0 ? { baseline } : {}),
      queue: config.queue,
      pollIntervalMs: config.pollIntervalMs,
      stateDir: config.stateDir,
      verifyIntervalMs: config.verifyIntervalMs,
      ...(config.guard ? { guard: config.guard } : {}),
      ...(kernel.other ? { otherBackend: kernel.other } : {}),
      observer: fanOut(audit, persistence, metrics.observer, {
        unreadable: (e) => log.error('rules in the kernel cannot be read by this version', e),
      }),
    });
    metrics.attach(service);
    // The doors' modules (express, grpc-js, protobuf, the OpenAPI contract: about a second of
    // CPU) load while the service waits for iptables-save; the doors are built meanwhile too,
    // and only listening waits for the model.
    const doors = Promise.all([
      import('./transport/http/app.js'),
      import('./transport/http/server.js'),
      import('./transport/grpc/server.js'),
      import('@grpc/grpc-js'),
    ]);
    starting = service.start();
    starting.catch(() => {});
    doors.catch(() => {});

    const auth = new Authenticator(config.tokens, config.clientCertificates);
    if (auth.certificates > 0) {
      log.info('client certificates configured', {
        count: auth.certificates,
        names: config.clientCertificates.map((c) => `${c.name}(${c.scope})`).join(','),
      });
    }
    if (auth.size === 0 && auth.certificates === 0) {
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

    // Loaded only once the service starts, so that --help, configuration errors and preflight stay fast.
    const [{ createApp }, { createHttpServer }, { createGrpcServer }, grpcJs] = await doors;
    // grpc-js writes its own "E ..." lines to stderr (e.g. a failed bind, which we report in
    // one sentence ourselves): route them through our logger, at debug.
    grpcJs.setLogger({
      error: (...args: unknown[]) => log.debug('grpc-js', { detail: args.map(String).join(' ') }),
    });
    // The transports log a line per request (and its fields); errors are marked.
    const lineLogger =
      (transport: string) =>
      (line: string, fields: LogFields = {}): void => {
        if (/\b(internal error|unavailable):/.test(line)) log.error(line, { transport, ...fields });
        else log.info(line, { transport, ...fields });
      };
    const daemon = daemonApi(persistence, audit);
    // One Idempotency-Key store for both REST listeners (a retry may come through either) and
    // one for gRPC, both kept in the state directory across restarts.
    const keys = new IdempotencyFile({
      path: join(config.stateDir, 'idempotency.json'),
      onError: (message) => log.warn('idempotency keys', { detail: message }),
    });
    idempotencyFile = keys;
    const idempotency = new IdempotencyStore<Reply>({ onChange: keys.changed });
    const grpcIdempotency = new IdempotencyStore<StoredOutcome>({ onChange: keys.changed });
    keys.add('rest', idempotency);
    keys.add('grpc', grpcIdempotency);
    const remembered = await keys.load();
    if (remembered > 0) log.info('idempotency keys loaded', { count: remembered });
    const restOptions = { service, auth, idempotency, maxBodyBytes: config.maxBodyBytes, daemon, metrics };
    const security = tlsFiles ? (tlsFiles.current.ca ? 'mtls' : 'tls') : 'none';
    const rest = createHttpServer(
      createApp({ ...restOptions, requireAuth: true, door: 'rest', logger: lineLogger('rest') }),
      limits,
      tlsFiles ? httpsOptions(tlsFiles.current) : undefined,
    );
    // New connections get the new certificates after SIGHUP; open ones keep theirs.
    if (rest instanceof TlsServer) tlsFiles?.onChange((m) => rest.setSecureContext({ ...httpsOptions(m) }));
    let unix: HttpServer | undefined;
    if (config.socket !== undefined) {
      unix = createHttpServer(
        createApp({
          ...restOptions,
          requireAuth: false,
          door: 'socket',
          socketIdentity: SOCKET_IDENTITY,
          logger: lineLogger('rest-unix'),
        }),
        limits,
      );
    }
    const grpcDoor = createGrpcServer({
      service,
      auth,
      requireAuth: true,
      logger: lineLogger('grpc'),
      maxMessageBytes: config.maxBodyBytes,
      limits,
      daemon,
      idempotency: grpcIdempotency,
      metrics,
    });

    await starting;
    starting = undefined;
    await persistence.attach(service);
    log.info('persistence', {
      persist: config.persist,
      ...(config.persist === 'off' ? {} : { ipv4: config.rulesFiles.ipv4, ipv6: config.rulesFiles.ipv6 }),
      audit: config.auditLog ?? 'off',
    });
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

    restServer = rest;
    const restPort = await listenTcp(rest, config.restHost, config.restPort);
    log.info('REST API listening', {
      transport: 'rest',
      address: hostPort(config.restHost, restPort),
      auth: auth.certificates > 0 ? 'bearer,certificate' : 'bearer',
      tls: security,
    });

    if (unix !== undefined && config.socket !== undefined) {
      unixServer = unix;
      await listenUnix(unixServer, config.socket);
      socketCreated = true;
      log.info('REST API listening', {
        transport: 'rest-unix',
        socket: config.socket,
        auth: 'none',
        mode: '0600',
      });
    }

    grpcServer = grpcDoor;
    const grpcPort = await bindGrpc(
      grpcDoor,
      config.grpcHost,
      config.grpcPort,
      tlsFiles ? tlsFiles.grpcCredentials() : grpcJs.ServerCredentials.createInsecure(),
    );
    log.info('gRPC API listening', {
      transport: 'grpc',
      address: hostPort(config.grpcHost, grpcPort),
      auth: auth.certificates > 0 ? 'bearer,certificate' : 'bearer',
      tls: security,
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
    await starting?.catch(() => {});
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
    onHangup = () => reload(log, tlsFiles, audit);
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

/** SIGHUP: the TLS files are read again (a failure keeps the old ones), the audit log reopened. */
function reload(log: Logger, tlsFiles: TlsFiles | undefined, audit: AuditLog | undefined): void {
  log.info('SIGHUP: reloading TLS files and reopening the audit log');
  if (tlsFiles) {
    try {
      tlsFiles.reload();
      log.info('TLS files reloaded: new connections use them', { cert: tlsFiles.paths.cert });
    } catch (err) {
      log.error('TLS files not reloaded: the previous ones stay in use', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  if (audit) void audit.reopen().then(() => log.info('audit log reopened', { path: audit.path }));
}

/** What the doors offer besides the firewall: saving the rules files and reading the audit log. */
function daemonApi(persistence: RulesPersistence, audit: AuditLog | undefined): DaemonApi {
  return {
    save: () => persistence.save(),
    audit: (query) =>
      audit
        ? audit.read(query)
        : Promise.reject(
            new DomainError(
              'failed_precondition',
              'the audit log is off on this service: start it with --audit-log PATH',
              { field: 'auditLog' },
            ),
          ),
  };
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const entry = process.argv[1];
if (entry !== undefined && resolve(entry) === fileURLToPath(import.meta.url)) {
  const fatal = createLogger({ level: 'error' });
  process.on('uncaughtException', (err) => {
    fatal.error('uncaught exception', { error: err });
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    fatal.error('unhandled rejection', { error: err });
    process.exit(1);
  });
  // The event loop running dry while main() is pending means something awaited a promise that
  // nothing can settle any more (once: an unref'd timer during shutdown): that is never a
  // success, whatever the exit code would have been.
  process.once('beforeExit', () => {
    fatal.error('internal error: nothing left to wait for while starting or stopping');
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
