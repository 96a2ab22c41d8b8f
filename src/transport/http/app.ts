/**
 * The REST front door: an express app over the FirewallApi, described by
 * openapi/openapi.yaml. The app never listens (main.ts does; tests use
 * supertest). Request pipeline, in order:
 *   access log -> security headers -> open routes (/healthz, /readyz,
 *   /openapi.yaml, /docs) -> bearer auth (when required; exactly one
 *   Authorization header) -> ETag on every response from here on -> JSON
 *   body (content type, size) -> nesting limit -> OpenAPI request
 *   validation -> routes -> problem+json errors.
 * Authorization headers and tokens are never logged.
 *
 * ETag: every response past authentication (every /v1 response, problems
 * included, and 403/404/405/413/415 of unknown or refused requests) carries
 * `ETag: "<revision>"`: the revision a read or write reflects when the route
 * sets it, else the ruleset's revision when the response starts. Responses
 * before it (401, /healthz, /readyz, /openapi.yaml, /docs) carry none: they do
 * not depend on the ruleset, and a caller without a token learns nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Metrics } from '../../observe/metrics.js';
import { REQUEST_ID_HEADER, requestContext, requestIdFrom } from '../../observe/request-context.js';
import type { FirewallApi } from '../../service/api.js';
import { IdempotencyStore, type IdempotencyStoreOptions } from '../../service/idempotency.js';
import { Authenticator, certificateRefusal, type Scope } from '../auth.js';
import type { DaemonApi } from '../daemon-api.js';
import { duplicateAuthorization } from '../errors.js';
import { nestingExceeds, nestingTooDeep } from '../nesting.js';
import { peerCertificate } from '../tls.js';
import { daemonRouter } from './daemon-routes.js';
import { docsRouter } from './docs.js';
import { fastChainRead } from './fast-reads.js';
import { operationOf } from './operation-of.js';
import { ProblemError } from './problem.js';
import { requestValidation } from './request-validation.js';
import { problemReply, type Reply, sendReply, v1Router } from './routes.js';

export interface AppOptions {
  readonly service: FirewallApi;
  readonly auth: Authenticator;
  /** Require a bearer token on /v1 (TCP). False for the 0600 Unix socket. */
  readonly requireAuth: boolean;
  /**
   * Receives one line per request (with its fields: requestId, method, path, status, ms,
   * caller) and the details of internal errors. @default no logging
   */
  readonly logger?: (line: string, fields?: Readonly<Record<string, unknown>>) => void;
  /** Which door this app is, for the audit log and events: TCP (`rest`) or the Unix socket. @default 'rest' */
  readonly door?: 'rest' | 'socket';
  /** Who a caller without credentials is (the Unix socket): `unix:uid=N`. @default 'local' */
  readonly socketIdentity?: string;
  /** Saving the rules files and reading the audit log (POST /v1/save, GET /v1/audit). @default none (409) */
  readonly daemon?: DaemonApi;
  /**
   * Largest accepted request body, in bytes.
   * @default 1048576 (1 MiB)
   */
  readonly maxBodyBytes?: number;
  /** Idempotency-Key store; share one between apps of the same service. @default a new store */
  readonly idempotency?: IdempotencyStore<Reply> | IdempotencyStoreOptions;
  /**
   * Interval of heartbeat comments on the event stream, in milliseconds.
   * @default 15000
   */
  readonly heartbeatMs?: number;
  /**
   * Prometheus metrics (observe/metrics.ts): every request is counted by operation and status,
   * and GET /metrics serves them (read scope, like every read). @default no metrics
   */
  readonly metrics?: Pick<Metrics, 'request' | 'text' | 'contentType'>;
  /**
   * Answer plain chain reads before express (fast-reads.ts): the same answers, a fraction of
   * the CPU. Off only to compare the two paths in tests. @default true
   */
  readonly fastReads?: boolean;
}

const JSON_TYPES = ['application/json', 'application/*+json'];
const API_CSP = "default-src 'none'; frame-ancestors 'none'";
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': API_CSP,
  'Referrer-Policy': 'no-referrer',
};

/** Reads need a read token, changes a write token; a trace changes nothing (even of a proposed change). */
function neededScope(method: string, path: string): Scope {
  if (method === 'GET' || method === 'HEAD') return 'read';
  return method === 'POST' && path === '/v1/trace' ? 'read' : 'write';
}

/**
 * Sets `ETag: "<revision>"` when the response starts, unless the route set its own: then the
 * revision is the one at that moment, not at the start of a request that waited in the queue.
 */
function etagOnEveryResponse(res: Response, revision: () => number): void {
  const writeHead = res.writeHead as (...args: unknown[]) => Response;
  res.writeHead = function (this: Response, ...args: unknown[]) {
    if (!this.headersSent && !this.hasHeader('ETag')) this.setHeader('ETag', `"${revision()}"`);
    return writeHead.apply(this, args);
  } as typeof res.writeHead;
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export function createApp(options: AppOptions): express.Express {
  if (!options || typeof options.service !== 'object')
    throw new TypeError('Expected `service` to be a FirewallApi');
  if (!(options.auth instanceof Authenticator)) throw new TypeError('Expected `auth` to be an Authenticator');
  if (typeof options.requireAuth !== 'boolean') throw new TypeError('Expected `requireAuth` to be a boolean');
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)
    throw new TypeError(`Expected \`maxBodyBytes\` to be a whole number from 1, got ${String(maxBodyBytes)}`);
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  if (!(heartbeatMs > 0)) throw new TypeError('Expected `heartbeatMs` to be a positive number');
  const { service, auth, requireAuth } = options;
  const log = options.logger ?? (() => {});
  const idempotency =
    options.idempotency instanceof IdempotencyStore
      ? options.idempotency
      : new IdempotencyStore<Reply>(options.idempotency ?? {});

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Request id: the client's (X-Request-Id) when acceptable, else a new one; returned, and on
  // every log line, event and audit entry of the request (the whole request runs in its context).
  app.use((req: Request, res: Response, next: NextFunction) => {
    const requestId = requestIdFrom(req.get(REQUEST_ID_HEADER));
    res.locals.requestId = requestId;
    res.locals.door = options.door ?? 'rest';
    res.set('X-Request-Id', requestId);
    requestContext.run({ requestId }, next);
  });

  // Access log: method, path (no query), status, duration, caller's name. Never headers.
  // Metrics: every request by operation and status.
  const metrics = options.metrics;
  const door = requireAuth ? 'rest' : 'socket';
  const track = (req: IncomingMessage, res: ServerResponse, requestId: string, principal: () => string) => {
    const start = process.hrtime.bigint();
    const path = (req.url ?? '').split('?')[0] ?? '';
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      const who = principal();
      log(`${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms ${who}`, {
        requestId,
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        caller: who,
      });
    });
    if (metrics) {
      res.once('close', () => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        metrics.request(door, operationOf(req.method ?? '', path), res.statusCode, seconds);
      });
    }
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    track(req, res, res.locals.requestId as string, () =>
      typeof res.locals.principal === 'string' ? res.locals.principal : '-',
    );
    res.set(SECURITY_HEADERS);
    next();
  });

  // ---------------------------------------------------------------- open routes
  app.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = service.ready;
    const other = ready ? service.status().otherBackend : undefined;
    res
      .status(ready ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({
        status: ready ? 'ok' : 'unavailable',
        ...(other?.filtering
          ? {
              detail: `rules in the ${other.backend} iptables backend also filter packets (${other.tables.map((t) => `${t.family}/${t.table}`).join(', ')}): see GET /v1/ruleset?backend=other`,
            }
          : {}),
      });
  });
  app.use(docsRouter());

  // ---------------------------------------------------------------- authentication
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!requireAuth) {
      res.locals.principal = 'local';
      res.locals.identity = options.socketIdentity ?? 'local';
      etagOnEveryResponse(res, () => service.revision);
      next();
      return;
    }
    // Node keeps only the first of repeated Authorization headers: refuse, do not guess.
    const sent = req.headersDistinct.authorization?.length ?? 0;
    if (sent > 1) {
      throw new ProblemError(401, 'unauthenticated', duplicateAuthorization(sent, 'Authorization headers'), {
        headers: { 'WWW-Authenticate': 'Bearer realm="portcullis", error="invalid_request"' },
      });
    }
    const result = auth.authenticate({
      authorization: req.get('Authorization'),
      ...peerCertificate(req.socket),
    });
    if (!result.ok) {
      const challenge =
        result.reason === 'invalid'
          ? 'Bearer realm="portcullis", error="invalid_token"'
          : 'Bearer realm="portcullis"';
      throw new ProblemError(
        401,
        'unauthenticated',
        certificateRefusal(result, 'request') ??
          (result.reason === 'missing'
            ? 'this request needs a token: Authorization: Bearer <token>'
            : 'the token is not valid'),
        { headers: { 'WWW-Authenticate': challenge } },
      );
    }
    res.locals.principal = result.name;
    res.locals.identity = result.identity;
    etagOnEveryResponse(res, () => service.revision);
    const needed = neededScope(req.method, req.path);
    if (!Authenticator.allows(result.scope, needed)) {
      throw new ProblemError(
        403,
        'permission_denied',
        req.get('Authorization') === undefined
          ? `this request needs ${needed} scope; the client certificate ${result.name} has ${result.scope} scope`
          : `this request needs a ${needed} token; this token may only ${result.scope}`,
      );
    }
    next();
  });

  if (metrics) {
    app.get('/metrics', async (_req: Request, res: Response) => {
      res
        .set({ 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' })
        .send(await metrics.text());
    });
  }

  // ---------------------------------------------------------------- body
  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (hasBody(req) && !req.is(JSON_TYPES)) {
      throw new ProblemError(415, 'unsupported_media_type', 'the request body must be application/json', {
        headers: { 'Accept-Post': 'application/json' },
      });
    }
    next();
  });
  app.use(express.json({ limit: maxBodyBytes, strict: true, type: JSON_TYPES }));
  // Before anything walks the body recursively (the validator, fingerprints, the planner).
  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (nestingExceeds(req.body)) throw nestingTooDeep();
    next();
  });

  // Against the contract, with validators compiled at build time (request-validation.ts).
  app.use(requestValidation);

  // ---------------------------------------------------------------- routes
  app.use('/v1', daemonRouter(options.daemon));
  app.use('/v1', v1Router({ service, log, idempotency, heartbeatMs }));

  app.use((_req: Request, _res: Response) => {
    throw new ProblemError(404, 'not_found', 'no such resource: see /openapi.yaml for the routes');
  });

  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    sendReply(res, problemReply(error, log));
  });

  if (options.fastReads !== false) {
    // Express's own entry (app(req, res) calls app.handle; internal to express 4 and 5 alike).
    const inner = app as unknown as {
      handle: (req: Request, res: Response, callback?: NextFunction) => void;
    };
    const handle = inner.handle.bind(app);
    const fast = fastChainRead({
      service,
      auth,
      requireAuth,
      track,
      securityHeaders: SECURITY_HEADERS,
      fallback: (req, res) => handle(req as Request, res as Response),
    });
    inner.handle = (req: Request, res: Response, callback?: NextFunction) => {
      if (!fast(req, res)) handle(req, res, callback);
    };
  }

  return app;
}
