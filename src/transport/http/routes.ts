/**
 * The /v1 routes: decode the (already schema-validated) request, call the
 * service, encode the result. Writes share one path (`write`): If-Match ->
 * expectedRevision, Idempotency-Key -> the idempotency store, errors -> problem
 * replies (stored too, when final). No iptables knowledge here: the
 * text/plain ruleset is written by the codec from the model.
 */
import express, { type Request, type Response, type Router } from 'express';
import { invalid } from '../../domain/errors.js';
import type { Family, TableName } from '../../domain/family.js';
import type {
  ApplyOptions,
  ApplyResult,
  ChainView,
  FirewallApi,
  Operation,
  RuleInput,
} from '../../service/api.js';
import {
  type IdempotencyStore,
  idempotencyFingerprint,
  isIdempotencyKey,
} from '../../service/idempotency.js';
import { callerOf } from '../caller.js';
import {
  idempotencyKeyInUse,
  idempotencyKeyInvalid,
  idempotencyKeyReused,
  revisionMismatch,
  ruleNotFound,
} from '../errors.js';
import { EventBuffer, eventsHandler } from './events.js';
import { toProblem } from './problem.js';
import { mountSafetyRoutes } from './safety-routes.js';
import { mountStateRoutes } from './state-routes.js';
import {
  chainSummaryWire,
  chainWire,
  changeWire,
  confirmationWire,
  findingWire,
  jsonReplacer,
  lockoutWire,
  operationOf,
  opResultWire,
  ruleInputOf,
  ruleWire,
  type Schemas,
} from './wire.js';

/** A response, ready to send (and to store for idempotent replays). */
export interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Default application/json. */
  readonly type?: string;
}

export interface RoutesOptions {
  readonly service: FirewallApi;
  readonly log: (line: string) => void;
  readonly idempotency: IdempotencyStore<Reply>;
  readonly heartbeatMs: number;
}

export function sendReply(res: Response, reply: Reply): void {
  res.status(reply.status);
  if (reply.headers) res.set(reply.headers);
  const type = reply.type ?? 'application/json; charset=utf-8';
  res.set('Content-Type', type);
  res.send(typeof reply.body === 'string' ? reply.body : toJson(reply.body));
}

/**
 * JSON text of a reply body. Without a replacer first: V8's fast path, about a third of a REST
 * read's CPU less at 100 rules. Only counters are bigints (JSON has no bigint: V8 throws a
 * TypeError at the first one), and only their bodies pay for the replacer.
 */
function toJson(body: unknown): string {
  try {
    return JSON.stringify(body);
  } catch (e) {
    if (e instanceof TypeError && /BigInt/i.test(e.message)) return JSON.stringify(body, jsonReplacer);
    throw e;
  }
}

/**
 * The reply to a chain read: JSON.stringify of the ChainResponse { revision, family, table,
 * chain }, with the chain's part written once per view (an unchanged chain is read as the same
 * view). Also what fast-reads.ts answers.
 */
export function chainResponse(c: {
  revision: number;
  family: Family;
  table: TableName;
  counters: boolean;
  chain: ChainView;
}): Reply {
  const body = `{"revision":${JSON.stringify(c.revision)},"family":${JSON.stringify(c.family)},"table":${JSON.stringify(c.table)},"chain":${chainJson(c.chain)}}`;
  return {
    status: 200,
    body,
    headers: { ...etag(c.revision), ...(c.counters ? { 'Cache-Control': 'no-store' } : {}) },
  };
}

const chainJsons = new WeakMap<ChainView, string>();

/** The JSON text of a chain's wire form, kept with the view (ChainViewCache hands out the same one). */
function chainJson(view: ChainView): string {
  let json = chainJsons.get(view);
  if (json === undefined) {
    json = toJson(chainWire(view));
    chainJsons.set(view, json);
  }
  return json;
}

export function problemReply(error: unknown, log: (line: string) => void): Reply {
  const p = toProblem(error, log);
  return {
    status: p.status,
    body: p.body,
    headers: p.headers,
    type: 'application/problem+json; charset=utf-8',
  };
}

export const etag = (revision: number): { ETag: string } => ({ ETag: `"${revision}"` });

const CANONICAL_POSITION = /^[1-9][0-9]{0,9}$/;

export function familyOf(req: Request): Family {
  return (req.query.family as Family | undefined) ?? 'ipv4';
}

function tableOf(req: Request): TableName {
  return req.params.table as TableName;
}

export function param(req: Request, name: string): string {
  return String(req.params[name]);
}

function flag(req: Request, name: string): boolean {
  const v = req.query[name] as unknown;
  return v === true || v === 'true';
}

/** `If-Match` -> expected revision; undefined for none or `*`. An unusable tag can never match: 412. */
function expectedRevision(req: Request, service: FirewallApi): number | undefined {
  const header = req.get('If-Match');
  if (header === undefined || header.trim() === '' || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (!m) {
    throw revisionMismatch(
      service.revision,
      `If-Match must be one revision as received in ETag ("<revision>"); the ruleset is at revision ${service.revision}`,
    );
  }
  return Number(m[1]);
}

/** What a write request says beyond its operations: If-Match, allowLockout, and who is calling. */
function writeOptions(req: Request, service: FirewallApi): ApplyOptions {
  const expected = expectedRevision(req, service);
  const caller = callerOf(req.socket.remoteAddress, req.socket.localPort);
  // Set by the app for every request: which door, who, and the request id (audit log, events).
  const locals = req.res?.locals;
  return {
    origin: locals?.door === 'socket' ? 'socket' : 'rest',
    ...(typeof locals?.identity === 'string' ? { identity: locals.identity } : {}),
    ...(typeof locals?.requestId === 'string' ? { requestId: locals.requestId } : {}),
    ...(expected === undefined ? {} : { expectedRevision: expected }),
    ...(flag(req, 'allowLockout') ? { allowLockout: true } : {}),
    ...(req.query.confirmWithin !== undefined ? { confirmWithin: Number(req.query.confirmWithin) } : {}),
    ...(caller ? { caller } : {}),
  };
}

/** The expiry fields of an add (`ttlSeconds`, `expiresAt`), as given. */
function expiryOf(body: { ttlSeconds?: number; expiresAt?: string }): {
  ttlSeconds?: number;
  expiresAt?: string;
} {
  return {
    ...(body.ttlSeconds !== undefined ? { ttlSeconds: body.ttlSeconds } : {}),
    ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}),
  };
}

function query(family: Family): string {
  return family === 'ipv4' ? '' : `?family=${family}`;
}

function chainUrl(family: Family, table: TableName, chain: string): string {
  return `/v1/tables/${table}/chains/${encodeURIComponent(chain)}${query(family)}`;
}

function ruleUrl(family: Family, table: TableName, chain: string, id: string): string {
  return `/v1/tables/${table}/chains/${encodeURIComponent(chain)}/rules/${id}${query(family)}`;
}

/** Where a rule operation applies. */
interface RuleAt {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
}

export function v1Router(options: RoutesOptions): Router {
  const { service, log, idempotency } = options;
  const router = express.Router();
  const buffer = new EventBuffer(service);

  // The schema coerces "0x1", "1.0", "+1", " 1" and "1e0" to 1; a position is written in
  // canonical decimal digits only (the schema has already checked the range).
  router.param('position', (_req, _res, next, value: unknown) => {
    if (typeof value !== 'string' || !CANONICAL_POSITION.test(value)) {
      throw invalid(
        'position',
        `position must be a whole number from 1 to 2147483647 in decimal digits without sign, leading zeros or spaces, got ${JSON.stringify(String(value).slice(0, 32))}`,
      );
    }
    next();
  });

  /** One change: If-Match, Idempotency-Key, apply, encode; errors become (stored) problem replies. */
  const write =
    (run: (req: Request, ctx: ApplyOptions) => Promise<Reply>) =>
    async (req: Request, res: Response): Promise<void> => {
      const key = req.get('Idempotency-Key');
      const principal = String(res.locals.principal ?? 'anonymous');
      let slot: ReturnType<IdempotencyStore<Reply>['begin']> | undefined;
      if (key !== undefined) {
        if (!isIdempotencyKey(key)) {
          sendReply(res, problemReply(idempotencyKeyInvalid(), log));
          return;
        }
        const path = req.originalUrl.split('?')[0];
        slot = idempotency.begin(
          principal,
          key,
          idempotencyFingerprint(req.method, path, req.query, req.body ?? null),
        );
        if (slot.kind === 'replay') {
          sendReply(res, {
            ...slot.response,
            headers: { ...slot.response.headers, 'Idempotency-Replayed': 'true' },
          });
          return;
        }
        if (slot.kind === 'mismatch') {
          sendReply(res, problemReply(idempotencyKeyReused(), log));
          return;
        }
        if (slot.kind === 'in_progress') {
          sendReply(res, problemReply(idempotencyKeyInUse(), log));
          return;
        }
      }
      let reply: Reply;
      let final = true;
      try {
        reply = await run(req, writeOptions(req, service));
      } catch (error) {
        reply = problemReply(error, log);
        const code = (reply.body as { code?: string }).code;
        // Transient failures are not remembered: a retry with the same key runs again.
        final = reply.status < 500 && reply.status !== 429 && code !== 'aborted';
      }
      if (slot?.kind === 'new') {
        if (final) slot.complete(reply);
        else slot.abandon();
      }
      sendReply(res, reply);
    };

  const apply = (ops: Operation[], ctx: ApplyOptions, dryRun = false): Promise<ApplyResult> =>
    service.apply(ops, { ...ctx, ...(dryRun ? { dryRun: true } : {}) });

  const written = (r: ApplyResult, status = 200, headers: Record<string, string> = {}): Reply => {
    const body: Schemas['WriteResult'] = {
      revision: r.revision,
      changes: r.changes.map(changeWire),
      ...confirmationWire(r),
    };
    return { status, body, headers: { ...etag(r.revision), ...headers } };
  };

  const read = (run: (req: Request, res: Response) => Reply | Promise<Reply>) => {
    return async (req: Request, res: Response): Promise<void> => {
      const reply = await run(req, res);
      res.set('Cache-Control', 'no-cache');
      sendReply(res, reply);
    };
  };

  // ------------------------------------------------------------ service

  mountStateRoutes(router, { service, read });

  router.get('/events', eventsHandler(service, buffer, options.heartbeatMs));

  router.post(
    '/transactions',
    write(async (req, ctx) => {
      const body = req.body as Schemas['TransactionRequest'];
      const ops = body.operations.map((o) => operationOf(o));
      const r = await apply(
        ops,
        {
          ...ctx,
          ...(body.allowLockout === true ? { allowLockout: true } : {}),
          ...(body.confirmWithin !== undefined ? { confirmWithin: body.confirmWithin } : {}),
        },
        body.dryRun === true,
      );
      const result: Schemas['TransactionResult'] = {
        revision: r.revision,
        results: r.results.map(opResultWire),
        changes: r.changes.map(changeWire),
        ...(r.dryRun ? { dryRun: true as const } : {}),
        ...(r.restoreText ? { restoreText: { ...r.restoreText } } : {}),
        ...(r.lockouts ? { lockouts: r.lockouts.map(lockoutWire) } : {}),
        ...(r.findings ? { findings: r.findings.map(findingWire) } : {}),
        ...confirmationWire(r),
      };
      // A dry run changes nothing: its ETag is the revision it was planned against.
      return { status: 200, body: result, headers: etag(r.revision) };
    }),
  );

  mountSafetyRoutes(router, { service, read, write });

  router.post('/reload', async (_req: Request, res: Response) => {
    const r = await service.reload();
    const body: Schemas['ReloadResult'] = { revision: r.revision, changed: r.changed };
    sendReply(res, { status: 200, body, headers: etag(r.revision) });
  });

  router.post(
    '/reset',
    write(async (req, ctx) => {
      const body = (req.body ?? {}) as Schemas['ResetRequest'];
      const r = await apply(
        [
          {
            op: 'reset',
            ...(body.family ? { family: body.family } : {}),
            ...(body.table ? { table: body.table } : {}),
          },
        ],
        ctx,
      );
      return written(r);
    }),
  );

  // ------------------------------------------------------------ tables

  router.get(
    '/tables/:table',
    read((req) => {
      const family = familyOf(req);
      const table = tableOf(req);
      const t = service.getTable(family, table);
      const body: Schemas['TableView'] = {
        revision: t.revision,
        family,
        table,
        chains: t.chains.map(chainWire),
      };
      return { status: 200, body, headers: etag(t.revision) };
    }),
  );

  router.put(
    '/tables/:table',
    write(async (req, ctx) => {
      const body = req.body as Schemas['ReplaceTableRequest'];
      const r = await apply(
        [
          {
            op: 'replaceTable',
            family: familyOf(req),
            table: tableOf(req),
            chains: body.chains.map((c) => ({
              name: c.name,
              ...(c.policy ? { policy: c.policy } : {}),
              rules: c.rules as RuleInput[],
            })),
          },
        ],
        ctx,
      );
      return written(r);
    }),
  );

  // ------------------------------------------------------------ chains

  router.get(
    '/tables/:table/chains',
    read((req) => {
      const family = familyOf(req);
      const table = tableOf(req);
      const l = service.listChains(family, table);
      const body: Schemas['ChainList'] = {
        revision: l.revision,
        family,
        table,
        chains: l.chains.map(chainSummaryWire),
      };
      return { status: 200, body, headers: etag(l.revision) };
    }),
  );

  router.post(
    '/tables/:table/chains',
    write(async (req, ctx) => {
      const family = familyOf(req);
      const table = tableOf(req);
      const { name } = req.body as Schemas['CreateChainRequest'];
      const r = await apply([{ op: 'createChain', family, table, chain: name }], ctx);
      return written(r, 201, { Location: chainUrl(family, table, name) });
    }),
  );

  const chainRead = (req: Request) => {
    const family = familyOf(req);
    const table = tableOf(req);
    const counters = flag(req, 'counters');
    return service
      .getChain(family, table, param(req, 'chain'), { counters })
      .then((c) => ({ family, table, counters, ...c }));
  };

  router.get(
    '/tables/:table/chains/:chain',
    read(async (req) => chainResponse(await chainRead(req))),
  );

  router.delete(
    '/tables/:table/chains/:chain',
    write(async (req, ctx) => {
      const force = flag(req, 'force');
      const r = await apply(
        [
          {
            op: 'deleteChain',
            family: familyOf(req),
            table: tableOf(req),
            chain: param(req, 'chain'),
            ...(force ? { force } : {}),
          },
        ],
        ctx,
      );
      return written(r);
    }),
  );

  const chainOp = (op: 'flushChain' | 'zeroCounters') =>
    write(async (req, ctx) => {
      const r = await apply(
        [{ op, family: familyOf(req), table: tableOf(req), chain: param(req, 'chain') }],
        ctx,
      );
      return written(r);
    });
  router.post('/tables/:table/chains/:chain/flush', chainOp('flushChain'));
  router.post('/tables/:table/chains/:chain/zero-counters', chainOp('zeroCounters'));

  router.post(
    '/tables/:table/chains/:chain/rename',
    write(async (req, ctx) => {
      const family = familyOf(req);
      const table = tableOf(req);
      const { newName } = req.body as Schemas['RenameChainRequest'];
      const r = await apply([{ op: 'renameChain', family, table, chain: param(req, 'chain'), newName }], ctx);
      return written(r, 200, { Location: chainUrl(family, table, newName) });
    }),
  );

  router.put(
    '/tables/:table/chains/:chain/policy',
    write(async (req, ctx) => {
      const { policy } = req.body as Schemas['SetPolicyRequest'];
      const r = await apply(
        [{ op: 'setPolicy', family: familyOf(req), table: tableOf(req), chain: param(req, 'chain'), policy }],
        ctx,
      );
      return written(r);
    }),
  );

  // ------------------------------------------------------------ rules

  router.get(
    '/tables/:table/chains/:chain/rules',
    read(async (req) => {
      const c = await chainRead(req);
      const body: Schemas['RuleList'] = {
        revision: c.revision,
        family: c.family,
        table: c.table,
        chain: c.chain.name,
        rules: c.chain.rules.map(ruleWire),
      };
      return {
        status: 200,
        body,
        headers: { ...etag(c.revision), ...(c.counters ? { 'Cache-Control': 'no-store' } : {}) },
      };
    }),
  );

  /** AppendRule, InsertRule and EnsureRule: one rule added (or, ensure, found); 201 when added. */
  const addRule = (op: (req: Request, at: RuleAt, rule: RuleInput) => Operation) =>
    write(async (req, ctx) => {
      const at: RuleAt = { family: familyOf(req), table: tableOf(req), chain: param(req, 'chain') };
      const request = op(req, at, ruleInputOf(req.body as Schemas['AddRuleBody']));
      const r = await apply([request], ctx);
      const result = r.results[0];
      if (!result?.rule) throw new Error('the service returned no rule for an add');
      const existed = result.existed === true;
      const body: Schemas['RuleWriteResult'] = {
        revision: r.revision,
        rule: ruleWire(result.rule),
        ...(request.op === 'ensure' ? { existed } : {}),
        changes: r.changes.map(changeWire),
        ...confirmationWire(r),
      };
      return {
        status: existed ? 200 : 201,
        body,
        headers: { ...etag(r.revision), Location: ruleUrl(at.family, at.table, at.chain, result.rule.id) },
      };
    });

  router.post(
    '/tables/:table/chains/:chain/rules',
    addRule((req, at, rule) => ({
      op: 'append',
      ...at,
      rule,
      ...expiryOf(req.body as Schemas['AddRuleBody']),
    })),
  );
  router.post(
    '/tables/:table/chains/:chain/rules/ensure',
    addRule((req, at, rule) => {
      const body = req.body as Schemas['EnsureRuleRequest'];
      const { position } = body;
      return {
        op: 'ensure',
        ...at,
        rule,
        ...(position !== undefined ? { position } : {}),
        ...expiryOf(body),
      };
    }),
  );
  router.post(
    '/tables/:table/chains/:chain/rules/at/:position',
    addRule((req, at, rule) => ({
      op: 'insert',
      ...at,
      position: Number(req.params.position),
      rule,
      ...expiryOf(req.body as Schemas['AddRuleBody']),
    })),
  );

  router.put(
    '/tables/:table/chains/:chain/rules',
    write(async (req, ctx) => {
      const body = req.body as Schemas['ReplaceChainRequest'];
      const r = await apply(
        [
          {
            op: 'replaceChain',
            family: familyOf(req),
            table: tableOf(req),
            chain: param(req, 'chain'),
            rules: body.rules as RuleInput[],
          },
        ],
        ctx,
      );
      return written(r);
    }),
  );

  router.get(
    '/tables/:table/chains/:chain/rules/:id',
    read((req) => {
      const family = familyOf(req);
      const table = tableOf(req);
      const chain = param(req, 'chain');
      const revision = service.revision;
      const found = service.findRule(family, table, param(req, 'id'));
      if (!found || found.chain !== chain) {
        throw ruleNotFound(param(req, 'id'), chain);
      }
      const body: Schemas['RuleResponse'] = { revision, family, table, chain, rule: ruleWire(found.rule) };
      return { status: 200, body, headers: etag(revision) };
    }),
  );

  router.put(
    '/tables/:table/chains/:chain/rules/:id',
    write(async (req, ctx) => {
      const family = familyOf(req);
      const table = tableOf(req);
      const chain = param(req, 'chain');
      const body = req.body as Schemas['RuleBody'];
      const r = await apply(
        [{ op: 'replace', family, table, chain, target: { id: param(req, 'id') }, rule: ruleInputOf(body) }],
        ctx,
      );
      const result = r.results[0];
      if (!result?.rule) throw new Error('the service returned no rule for a replace');
      const reply: Schemas['RuleWriteResult'] = {
        revision: r.revision,
        rule: ruleWire(result.rule),
        ...(result.deleted ? { replaced: ruleWire(result.deleted) } : {}),
        changes: r.changes.map(changeWire),
        ...confirmationWire(r),
      };
      return {
        status: 200,
        body: reply,
        headers: { ...etag(r.revision), Location: ruleUrl(family, table, chain, result.rule.id) },
      };
    }),
  );

  const deleteRule = (target: (req: Request) => { id: string } | { position: number }) =>
    write(async (req, ctx) => {
      const r = await apply(
        [
          {
            op: 'delete',
            family: familyOf(req),
            table: tableOf(req),
            chain: param(req, 'chain'),
            target: target(req),
          },
        ],
        ctx,
      );
      const deleted = r.results[0]?.deleted;
      if (!deleted) throw new Error('the service returned no rule for a delete');
      const body: Schemas['RuleDeleteResult'] = {
        revision: r.revision,
        deleted: ruleWire(deleted),
        changes: r.changes.map(changeWire),
        ...confirmationWire(r),
      };
      return { status: 200, body, headers: etag(r.revision) };
    });
  router.delete(
    '/tables/:table/chains/:chain/rules/:id',
    deleteRule((req) => ({ id: param(req, 'id') })),
  );
  router.delete(
    '/tables/:table/chains/:chain/rules/at/:position',
    deleteRule((req) => ({ position: Number(req.params.position) })),
  );

  return router;
}
