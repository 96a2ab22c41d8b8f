/**
 * The read of one chain (GET /v1/tables/{table}/chains/{chain}[?family=]) answered before
 * express, for its plainest form: what a monitor or an orchestrator polls. Express's router and
 * middleware cost more than the read itself (about 0.25 of the 0.5 ms a read of a 100-rule
 * chain took in the daemon); this answers in one step with exactly what the whole pipeline
 * answers (app.ts): the same request id, access log line, metrics, security headers,
 * authentication, ETag, cache header, content type and body (routes.ts chainResponse).
 *
 * Anything else goes to express untouched: another method or path, any other query, a body,
 * a conditional header (express may answer 304), a missing, repeated, refused or too weak
 * credential (express writes the 401 or 403), and any error of the read itself (an unknown
 * chain, a service not started). Nothing is written to the response or registered on it
 * before the read succeeded, so express starts from a fresh request.
 * test/transport/http/fast-reads.test.ts holds both paths to the same answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isFamily, isTableName } from '../../domain/family.js';
import { isChainName } from '../../domain/validate.js';
import { requestContext, requestIdFrom } from '../../observe/request-context.js';
import type { FirewallApi } from '../../service/api.js';
import { Authenticator } from '../auth.js';
import { peerCertificate } from '../tls.js';
import { chainResponse } from './routes.js';

/** One chain's read, as the route names it: table, chain and at most a family. */
const CHAIN_READ = /^\/v1\/tables\/([^/?#]+)\/chains\/([^/?#]+)(?:\?family=([^&#]*))?$/;

const CONDITIONAL = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range'];

export interface FastReadOptions {
  readonly service: FirewallApi;
  readonly auth: Authenticator;
  readonly requireAuth: boolean;
  /** Registers the access log and metrics of a request, as app.ts does for every request. */
  readonly track: (
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    principal: () => string,
  ) => void;
  readonly securityHeaders: Readonly<Record<string, string>>;
  /** Express, for a read that failed after all (it answers the error as for any request). */
  readonly fallback: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * Answers a plain chain read and returns true, or returns false having touched nothing (the
 * request goes to express). Async only when it answers.
 */
export function fastChainRead(o: FastReadOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET') return false;
    // Names the domain takes as they are (no %-escapes to decode); the rest goes to express.
    const [, table, chain, family = 'ipv4'] = CHAIN_READ.exec(req.url ?? '') ?? [];
    if (!isTableName(table) || chain === undefined || !isChainName(chain) || !isFamily(family)) return false;
    const h = req.headers;
    if (
      h['transfer-encoding'] !== undefined ||
      (h['content-length'] !== undefined && h['content-length'] !== '0')
    )
      return false;
    for (const c of CONDITIONAL) if (h[c] !== undefined) return false;
    let principal = 'local';
    if (o.requireAuth) {
      if ((req.headersDistinct.authorization?.length ?? 0) > 1) return false;
      const result = o.auth.authenticate({ authorization: h.authorization, ...peerCertificate(req.socket) });
      if (!result.ok || !Authenticator.allows(result.scope, 'read')) return false;
      principal = result.name;
    }
    const sent = h['x-request-id'];
    o.service.getChain(family, table, chain).then(
      (c) => {
        const requestId = requestIdFrom(typeof sent === 'string' ? sent : undefined);
        requestContext.run({ requestId }, () => {
          res.setHeader('X-Request-Id', requestId);
          o.track(req, res, requestId, () => principal);
          for (const [k, v] of Object.entries(o.securityHeaders)) res.setHeader(k, v);
          const reply = chainResponse({ family, table, counters: false, ...c });
          res.setHeader('Cache-Control', 'no-cache');
          for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
          res.setHeader('Content-Type', 'application/json; charset=utf-8');
          res.setHeader('Content-Length', Buffer.byteLength(reply.body as string));
          res.statusCode = reply.status;
          res.end(reply.body as string);
        });
      },
      () => o.fallback(req, res),
    );
    return true;
  };
}
