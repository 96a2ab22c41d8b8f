/**
 * POST /v1/save (write the rules files now) and GET /v1/audit (the audit log), served
 * from the DaemonApi port. `since` is an RFC 3339 time (entries at or after it), `limit`
 * at most 10,000 (default 1,000); anything else is a 400 naming the field.
 */
import express, { type Request, type Response, type Router } from 'express';
import { DomainError, invalid } from '../../domain/errors.js';
import { AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, auditLimitRefused, type DaemonApi } from '../daemon-api.js';
import { sendReply } from './routes.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/** The audit query of a request (`since`, `limit`), validated. */
export function auditQuery(since: unknown, limit: unknown): { since?: Date; limit: number } {
  let sinceDate: Date | undefined;
  if (since !== undefined && since !== '') {
    const text = String(since);
    const t = RFC3339.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(t))
      throw invalid(
        'since',
        `since must be an RFC 3339 time such as 2025-01-31T12:00:00Z, got ${JSON.stringify(text.slice(0, 40))}`,
      );
    sinceDate = new Date(t);
  }
  let n = AUDIT_DEFAULT_LIMIT;
  if (limit !== undefined && limit !== '') {
    const text = String(limit);
    n = /^[1-9]\d{0,5}$/.test(text) ? Number(text) : Number.NaN;
    if (!(n >= 1 && n <= AUDIT_MAX_LIMIT)) throw invalid('limit', auditLimitRefused(text));
  }
  return { ...(sinceDate ? { since: sinceDate } : {}), limit: n };
}

function unavailable(): DomainError {
  return new DomainError('failed_precondition', 'this service has no rules files or audit log', {
    field: 'persist',
  });
}

export function daemonRouter(daemon: DaemonApi | undefined): Router {
  const router = express.Router();
  router.post('/save', async (_req: Request, res: Response) => {
    if (!daemon) throw unavailable();
    const r = await daemon.save();
    sendReply(res, {
      status: 200,
      body: { revision: r.revision, time: r.time, files: r.files.map((f) => ({ ...f })) },
      headers: { 'Cache-Control': 'no-store' },
    });
  });
  router.get('/audit', async (req: Request, res: Response) => {
    const query = auditQuery(req.query.since, req.query.limit);
    if (!daemon) throw unavailable();
    const r = await daemon.audit(query);
    sendReply(res, {
      status: 200,
      body: { entries: r.entries, truncated: r.truncated },
      headers: { 'Cache-Control': 'no-store' },
    });
  });
  return router;
}
