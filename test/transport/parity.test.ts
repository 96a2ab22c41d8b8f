/**
 * REST and gRPC are two doors to one service: the same operations (operationId = RPC name),
 * the same validation, the same errors. This file pins that down.
 *
 * 1. The mapping table: every FirewallService RPC has a REST operation of the same name and
 *    vice versa, except the documented allow-list; a read on one side is a read on the other.
 * 2. One scripted sequence of operations (every RPC, every transaction operation kind, and
 *    the usual mistakes) runs through REST (supertest against createApp) and through gRPC (a
 *    grpc-js client on 127.0.0.1:0 against createGrpcServer), each door on its own service.
 *    After every step both outcomes must be identical: the same success (rule ids, texts,
 *    positions, typed rules, changes, revisions) or the same error (code, field, reason,
 *    message, gRPC status). At the end both kernels must hold the same ruleset and both
 *    event streams (SSE and Watch) must have carried the same events.
 * 3. The same sequence on real kernels, one network namespace per door.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import type { Family } from '../../src/domain/family.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService as Desc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import {
  Family as FamilyEnum,
  Policy as PolicyEnum,
  type Rule as RuleMsg,
} from '../../src/gen/portcullis/v1/rule_pb.js';
import { silentLogger } from '../../src/observe/logger.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { RulesPersistence } from '../../src/store/persistence.js';
import { Authenticator, hashToken } from '../../src/transport/auth.js';
import type { DaemonApi } from '../../src/transport/daemon-api.js';
import { createPromiseClient } from '../../src/transport/grpc/client.js';
import { ruleJson } from '../../src/transport/grpc/convert.js';
import { createGrpcServer, READ_METHODS } from '../../src/transport/grpc/server.js';
import { GRPC_CODE } from '../../src/transport/grpc/status.js';
import { createApp } from '../../src/transport/http/app.js';
import { openApiDocument } from '../../src/transport/http/docs.js';
import { MAX_NESTING_DEPTH } from '../../src/transport/nesting.js';
import { describeKernel } from '../helpers/kernel.js';
import { useKernelService } from '../helpers/kernel-service.js';
import { bind } from './grpc/helpers.js';
import { checked } from './http/helpers.js';

// ================================================================= 1. the mapping table

/** operationId (= RPC name) -> REST method and path. Every FirewallService RPC is here. */
const MAPPING: Readonly<Record<string, string>> = {
  GetRuleset: 'GET /v1/ruleset',
  GetTable: 'GET /v1/tables/{table}',
  GetChain: 'GET /v1/tables/{table}/chains/{chain}',
  GetRule: 'GET /v1/tables/{table}/chains/{chain}/rules/{id}',
  ListChains: 'GET /v1/tables/{table}/chains',
  GetStatus: 'GET /v1/status',
  Save: 'POST /v1/save',
  ListAuditEntries: 'GET /v1/audit',
  AppendRule: 'POST /v1/tables/{table}/chains/{chain}/rules',
  InsertRule: 'POST /v1/tables/{table}/chains/{chain}/rules/at/{position}',
  ReplaceRule: 'PUT /v1/tables/{table}/chains/{chain}/rules/{id}',
  DeleteRule: 'DELETE /v1/tables/{table}/chains/{chain}/rules/{id}',
  EnsureRule: 'POST /v1/tables/{table}/chains/{chain}/rules/ensure',
  CreateChain: 'POST /v1/tables/{table}/chains',
  DeleteChain: 'DELETE /v1/tables/{table}/chains/{chain}',
  FlushChain: 'POST /v1/tables/{table}/chains/{chain}/flush',
  RenameChain: 'POST /v1/tables/{table}/chains/{chain}/rename',
  SetPolicy: 'PUT /v1/tables/{table}/chains/{chain}/policy',
  ZeroCounters: 'POST /v1/tables/{table}/chains/{chain}/zero-counters',
  ReplaceChain: 'PUT /v1/tables/{table}/chains/{chain}/rules',
  ReplaceTable: 'PUT /v1/tables/{table}',
  Reset: 'POST /v1/reset',
  Apply: 'POST /v1/transactions',
  Reload: 'POST /v1/reload',
  Verify: 'GET /v1/verify',
  Watch: 'GET /v1/events',
  Trace: 'POST /v1/trace',
  Lint: 'GET /v1/lint',
  ListConfirmations: 'GET /v1/confirmations',
  Confirm: 'POST /v1/confirmations/{id}',
  ExtendConfirmation: 'PATCH /v1/confirmations/{id}',
  CancelConfirmation: 'DELETE /v1/confirmations/{id}',
  RateLimit: 'POST /v1/presets/rate-limit',
  Harden: 'POST /v1/presets/harden',
};

/** REST operations without an RPC of their name, and why. */
const REST_ONLY: Readonly<Record<string, string>> = {
  Health: 'GET /healthz: HTTP liveness probe (gRPC: grpc.health.v1.Health/Check)',
  Ready: 'GET /readyz: HTTP readiness probe (gRPC: grpc.health.v1.Health/Check)',
  GetOpenApi: 'GET /openapi.yaml: the REST contract (gRPC: server reflection)',
  GetApiReference: 'GET /docs/: the REST reference page (gRPC: server reflection)',
  GetMetrics: 'GET /metrics: Prometheus metrics of the daemon (scraped over HTTP; they count gRPC calls too)',
  ListRules: 'GET /v1/tables/{table}/chains/{chain}/rules: the rules of GetChain, as a collection',
  DeleteRuleAt: 'DELETE /v1/tables/{table}/chains/{chain}/rules/at/{position}: DeleteRule by position',
};

/** RPCs without a REST operation of their name, and why. None. */
const GRPC_ONLY: Readonly<Record<string, string>> = {};

type Doc = { paths: Record<string, Record<string, { operationId?: string }>> };
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function restOperations(): Map<string, string> {
  const doc = openApiDocument().document as unknown as Doc;
  const out = new Map<string, string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method) || !op.operationId) continue;
      expect(out.has(op.operationId), `operationId ${op.operationId} is used twice`).toBe(false);
      out.set(op.operationId, `${method.toUpperCase()} ${path}`);
    }
  }
  return out;
}

const RPCS = Desc.methods.map((m) => m.name);

describe('the REST <-> gRPC mapping', () => {
  it('every RPC has a REST operation of the same name and vice versa (except the allow-lists)', () => {
    const ops = restOperations();
    const rpcs = new Set(RPCS);
    expect(
      RPCS.filter((r) => !ops.has(r) && !(r in GRPC_ONLY)),
      'RPCs without a REST operation',
    ).toEqual([]);
    expect(
      [...ops.keys()].filter((o) => !rpcs.has(o) && !(o in REST_ONLY)),
      'REST operations without an RPC',
    ).toEqual([]);
    // The allow-lists hold no stale entries.
    for (const name of Object.keys(REST_ONLY)) {
      expect(ops.has(name), `${name} is allow-listed but not in the OpenAPI document`).toBe(true);
      expect(rpcs.has(name), `${name} is allow-listed but is an RPC now`).toBe(false);
    }
    for (const name of Object.keys(GRPC_ONLY)) expect(rpcs.has(name)).toBe(true);
  });

  it('the mapping table is exactly what the contracts say', () => {
    const ops = restOperations();
    expect(Object.keys(MAPPING).sort()).toEqual([...RPCS].sort());
    for (const [name, route] of Object.entries(MAPPING)) expect(ops.get(name), name).toBe(route);
    for (const [name, why] of Object.entries(REST_ONLY))
      expect(why.startsWith(`${ops.get(name)}:`)).toBe(true);
  });

  it('a read on one side is a read on the other (GET, and POST /v1/trace, <=> read scope)', () => {
    // A trace changes nothing, even of a proposed change: it is a read that needs a body.
    for (const [name, route] of Object.entries(MAPPING)) {
      const read = route.startsWith('GET ') || route === 'POST /v1/trace';
      expect(read, `${name}: ${route}`).toBe(READ_METHODS.has(name));
    }
  });
});

// ================================================================= 2. the doors

type Json = Record<string, unknown>;
type RuleIn = { spec: string } | Json;
interface At {
  readonly family?: Family;
  readonly table?: string;
  readonly chain: string;
}
interface Cond {
  readonly expectedRevision?: number;
  readonly idempotencyKey?: string;
}
interface TableAt {
  readonly family?: Family;
  readonly table?: string;
}
interface ChainIn {
  readonly name: string;
  readonly policy?: 'ACCEPT' | 'DROP';
  readonly rules: readonly RuleIn[];
}
/** A transaction operation in the REST wire form (the gRPC door converts it). */
type WireOp = Json & { op: string };

/** What a call came to: a normalized success value, or the error as a client sees it. */
type Outcome =
  | { readonly ok: true; readonly value: Json }
  | {
      readonly ok: false;
      readonly code: string;
      readonly field?: string;
      readonly reason?: string;
      readonly message: string;
      readonly grpcStatus: number;
    };

/** One method per RPC (lowerCamel of its name), except Watch, which `events()` covers. */
interface Door {
  getStatus(): Promise<Outcome>;
  getRuleset(family: Family): Promise<Outcome>;
  getTable(at: TableAt): Promise<Outcome>;
  getChain(at: At): Promise<Outcome>;
  getRule(at: At & { id: string }): Promise<Outcome>;
  listChains(at: TableAt): Promise<Outcome>;
  appendRule(at: At & { rule: RuleIn }, c?: Cond): Promise<Outcome>;
  insertRule(at: At & { position: number; rule: RuleIn }, c?: Cond): Promise<Outcome>;
  replaceRule(at: At & { id: string; rule: RuleIn }, c?: Cond): Promise<Outcome>;
  deleteRule(at: At & ({ id: string } | { position: number }), c?: Cond): Promise<Outcome>;
  ensureRule(at: At & { rule: RuleIn; position?: number }, c?: Cond): Promise<Outcome>;
  createChain(at: At, c?: Cond): Promise<Outcome>;
  deleteChain(at: At & { force?: boolean }, c?: Cond): Promise<Outcome>;
  flushChain(at: At, c?: Cond): Promise<Outcome>;
  renameChain(at: At & { newName: string }, c?: Cond): Promise<Outcome>;
  setPolicy(at: At & { policy: string }, c?: Cond): Promise<Outcome>;
  zeroCounters(at: At, c?: Cond): Promise<Outcome>;
  replaceChain(at: At & { rules: readonly RuleIn[] }, c?: Cond): Promise<Outcome>;
  replaceTable(at: TableAt & { chains: readonly ChainIn[] }, c?: Cond): Promise<Outcome>;
  reset(at: TableAt, c?: Cond): Promise<Outcome>;
  apply(tx: { operations: readonly WireOp[]; dryRun?: boolean }, c?: Cond): Promise<Outcome>;
  reload(): Promise<Outcome>;
  verify(): Promise<Outcome>;
  trace(t: { packet: Json; operations?: readonly WireOp[] }): Promise<Outcome>;
  lint(): Promise<Outcome>;
  /** A transaction applied with confirmWithin; the door keeps the confirmation id as `last`. */
  applyConfirmed(tx: { operations: readonly WireOp[]; confirmWithin: number }): Promise<Outcome>;
  listConfirmations(): Promise<Outcome>;
  /** `last`: the id of the door's last applyConfirmed; otherwise an id as given. */
  confirm(which: string): Promise<Outcome>;
  extendConfirmation(which: string, seconds: number): Promise<Outcome>;
  cancelConfirmation(which: string): Promise<Outcome>;
  rateLimit(params: Json): Promise<Outcome>;
  harden(params: Json): Promise<Outcome>;
  save(): Promise<Outcome>;
  listAuditEntries(q: { limit?: number }): Promise<Outcome>;
  /** The events received so far on the door's stream (SSE / Watch), normalized. */
  events(): Json[];
  close(): Promise<void>;
}

const TOKEN = 'parity-write-token';

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** Saving (rules files in a temporary folder); the audit log is off, so both doors refuse it alike. */
function daemonFor(service: FirewallService): DaemonApi {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-parity-'));
  tempDirs.push(dir);
  const files = { ipv4: join(dir, 'rules.v4'), ipv6: join(dir, 'rules.v6') };
  const persistence = new RulesPersistence({ mode: 'on-demand', files, log: silentLogger });
  const attached = persistence.attach(service);
  return {
    save: async () => {
      await attached;
      return persistence.save();
    },
    audit: () =>
      Promise.reject(
        new DomainError('failed_precondition', 'the audit log is off on this service', { field: 'auditLog' }),
      ),
  };
}
const auth = new Authenticator([{ name: 'parity', sha256: hashToken(TOKEN), scope: 'write' }]);

// ----------------------------------------------------------------- normalization

/** REST op names for gRPC's oneof cases. */
const OP_OF_CASE: Readonly<Record<string, string>> = {
  appendRule: 'append',
  insertRule: 'insert',
  ensureRule: 'ensure',
  createChain: 'createChain',
  flushChain: 'flushChain',
  setPolicy: 'setPolicy',
  replaceChain: 'replaceChain',
};

/** An operation a preset expanded into, as both doors can show it: kind, chain and rule specs. */
function presetOp(op: string, o: Json): string {
  const specs = [o.rule, ...((o.rules as Json[] | undefined) ?? [])]
    .filter((r): r is Json => r !== undefined)
    .map((r) => String(r.spec ?? ((r.kind as Json | undefined)?.value as string | undefined) ?? ''));
  return `${op} ${String(o.chain)} ${specs.join(' | ')}`;
}

/** A pending confirmation without what differs between runs (id, times). */
function pending(c: Json): Json {
  return { operations: c.operations, lockouts: c.lockouts };
}

/** A trace as both doors can report it: the answer and the rules on each outcome's path. */
function traceOutcome(b: Json): Json {
  const managed = b.managed as Json;
  return {
    revision: b.revision,
    proposed: b.proposed,
    definite: b.definite,
    verdict: b.verdict,
    possibleVerdicts: b.possibleVerdicts,
    paths: (managed.outcomes as Json[]).map((o) =>
      (o.path as Json[]).map(
        (st) => `${st.kind} ${st.table} ${st.chain || ''} ${st.ruleId || st.policy || ''}`,
      ),
    ),
  };
}

/** A change without the fields a door leaves empty ('' / 0 on gRPC, absent on REST). */
function change(c: Json): Json {
  return Object.fromEntries(
    Object.entries(c).filter(([k, v]) => k !== '$typeName' && v !== undefined && v !== '' && v !== 0),
  );
}

function ruleView(v: Json | undefined): Json | undefined {
  if (!v) return undefined;
  return { id: v.id, position: v.position, text: v.text, rule: v.rule };
}

function chainView(c: Json): Json {
  return {
    name: c.name,
    builtin: c.builtin,
    ...(c.policy ? { policy: c.policy } : {}),
    rules: (c.rules as Json[]).map(ruleView),
  };
}

function opResult(r: Json): Json {
  return {
    op: r.op,
    ...(r.rule ? { rule: ruleView(r.rule as Json) } : {}),
    ...(r.op === 'ensure' ? { existed: r.existed === true } : {}),
    ...(r.deleted ? { deleted: ruleView(r.deleted as Json) } : {}),
  };
}

// ----------------------------------------------------------------- REST

function restDoor(service: FirewallService): Door {
  const app = createApp({ service, auth, requireAuth: true, daemon: daemonFor(service) });
  const q = (family?: Family) => (family && family !== 'ipv4' ? `?family=${family}` : '');
  const chainPath = (at: At) => `/v1/tables/${at.table ?? 'filter'}/chains/${encodeURIComponent(at.chain)}`;
  const body = (rule: RuleIn) => ('spec' in rule ? { spec: rule.spec } : { rule });

  async function call(
    method: 'get' | 'post' | 'put' | 'patch' | 'delete',
    path: string,
    options: { send?: object; cond?: Cond; accept?: string } = {},
  ): Promise<request.Response | Outcome> {
    let t = request(app)[method](path).set('Authorization', `Bearer ${TOKEN}`);
    if (options.cond?.expectedRevision !== undefined)
      t = t.set('If-Match', `"${options.cond.expectedRevision}"`);
    if (options.cond?.idempotencyKey !== undefined) t = t.set('Idempotency-Key', options.cond.idempotencyKey);
    if (options.accept) t = t.set('Accept', options.accept);
    if (options.send) t = t.send(options.send);
    const res = checked(await t);
    if (res.status < 400) return res;
    const p = res.body as { code: string; field?: string; reason?: string; detail?: string };
    return {
      ok: false,
      code: p.code,
      ...(p.field === undefined ? {} : { field: p.field }),
      ...(p.reason === undefined ? {} : { reason: p.reason }),
      message: p.detail ?? '',
      grpcStatus: GRPC_CODE[p.code as keyof typeof GRPC_CODE] ?? -1,
    };
  }
  const isOutcome = (r: request.Response | Outcome): r is Outcome => 'ok' in r && r.ok === false;
  let lastConfirmation: string | undefined;
  const confirmationId = (which: string) => (which === 'last' ? (lastConfirmation ?? 'none') : which);
  const presetResult = (b: Json) => ({
    revision: b.revision,
    changes: (b.changes as Json[]).map(change),
    operations: (b.operations as Json[]).map((o) => presetOp(String(o.op), o)),
    ...(b.dryRun ? { dryRun: true } : {}),
  });
  const ok = async (r: Promise<request.Response | Outcome>, value: (b: Json) => Json): Promise<Outcome> => {
    const res = await r;
    return isOutcome(res) ? res : { ok: true, value: value(res.body as Json) };
  };
  const written = (b: Json) => ({ revision: b.revision, changes: (b.changes as Json[]).map(change) });
  const ruleWritten = (b: Json) => ({
    revision: b.revision,
    rule: ruleView(b.rule as Json),
    ...(b.existed !== undefined ? { existed: b.existed } : {}),
    ...(b.replaced ? { replaced: ruleView(b.replaced as Json) } : {}),
    changes: (b.changes as Json[]).map(change),
  });

  // Watch: the SSE stream, on a listening server (supertest buffers whole responses).
  const server = http.createServer(app);
  const events: Json[] = [];
  let sse: http.ClientRequest | undefined;
  const ready = (async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    sse = http.get({
      host: '127.0.0.1',
      port,
      path: '/v1/events',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    const [res] = (await once(sse, 'response')) as [http.IncomingMessage];
    let buffer = '';
    res.setEncoding('utf8');
    res.on('error', () => {});
    res.on('data', (d: string) => {
      buffer += d;
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (data && /^event: (service|external)$/m.test(frame)) {
          const e = JSON.parse(data) as Json;
          events.push({ revision: e.revision, origin: e.origin, changes: (e.changes as Json[]).map(change) });
        }
        end = buffer.indexOf('\n\n');
      }
    });
  })();

  const door: Door = {
    getStatus: () =>
      ok(call('get', '/v1/status'), (b) => ({ revision: b.revision, ready: b.ready, families: b.families })),
    async getRuleset(family) {
      const json = await call('get', `/v1/ruleset${q(family)}`);
      if (isOutcome(json)) return json;
      const text = await call('get', `/v1/ruleset${q(family)}`, { accept: 'text/plain' });
      if (isOutcome(text)) return text;
      const b = json.body as Json;
      return {
        ok: true,
        value: {
          revision: b.revision,
          family: b.family,
          tables: (b.tables as Json[]).map((t) => ({
            name: t.name,
            chains: (t.chains as Json[]).map(chainView),
          })),
          text: text.text,
        },
      };
    },
    getTable: (at) =>
      ok(call('get', `/v1/tables/${at.table ?? 'filter'}${q(at.family)}`), (b) => ({
        revision: b.revision,
        chains: (b.chains as Json[]).map(chainView),
      })),
    getChain: (at) =>
      ok(call('get', `${chainPath(at)}${q(at.family)}`), (b) => ({
        revision: b.revision,
        chain: chainView(b.chain as Json),
      })),
    getRule: (at) =>
      ok(call('get', `${chainPath(at)}/rules/${at.id}${q(at.family)}`), (b) => ({
        revision: b.revision,
        rule: ruleView(b.rule as Json),
      })),
    listChains: (at) =>
      ok(call('get', `/v1/tables/${at.table ?? 'filter'}/chains${q(at.family)}`), (b) => ({
        revision: b.revision,
        chains: (b.chains as Json[]).map((c) => ({
          name: c.name,
          builtin: c.builtin,
          ...(c.policy ? { policy: c.policy } : {}),
          rules: c.rules,
          references: c.references,
        })),
      })),
    appendRule: (at, cond) =>
      ok(
        call('post', `${chainPath(at)}/rules${q(at.family)}`, {
          send: body(at.rule),
          ...(cond ? { cond } : {}),
        }),
        ruleWritten,
      ),
    insertRule: (at, cond) =>
      ok(
        call('post', `${chainPath(at)}/rules/at/${at.position}${q(at.family)}`, {
          send: body(at.rule),
          ...(cond ? { cond } : {}),
        }),
        ruleWritten,
      ),
    replaceRule: (at, cond) =>
      ok(
        call('put', `${chainPath(at)}/rules/${at.id}${q(at.family)}`, {
          send: body(at.rule),
          ...(cond ? { cond } : {}),
        }),
        ruleWritten,
      ),
    deleteRule: (at, cond) =>
      ok(
        call(
          'delete',
          `${chainPath(at)}/rules/${'id' in at ? at.id : `at/${at.position}`}${q(at.family)}`,
          cond ? { cond } : {},
        ),
        (b) => ({
          revision: b.revision,
          deleted: ruleView(b.deleted as Json),
          changes: (b.changes as Json[]).map(change),
        }),
      ),
    ensureRule: (at, cond) =>
      ok(
        call('post', `${chainPath(at)}/rules/ensure${q(at.family)}`, {
          send: { ...body(at.rule), ...(at.position === undefined ? {} : { position: at.position }) },
          ...(cond ? { cond } : {}),
        }),
        ruleWritten,
      ),
    createChain: (at, cond) =>
      ok(
        call('post', `/v1/tables/${at.table ?? 'filter'}/chains${q(at.family)}`, {
          send: { name: at.chain },
          ...(cond ? { cond } : {}),
        }),
        written,
      ),
    deleteChain: (at, cond) => {
      const query = [
        ...(at.family && at.family !== 'ipv4' ? [`family=${at.family}`] : []),
        ...(at.force ? ['force=true'] : []),
      ];
      return ok(
        call('delete', `${chainPath(at)}${query.length ? `?${query.join('&')}` : ''}`, cond ? { cond } : {}),
        written,
      );
    },
    flushChain: (at, cond) =>
      ok(call('post', `${chainPath(at)}/flush${q(at.family)}`, cond ? { cond } : {}), written),
    renameChain: (at, cond) =>
      ok(
        call('post', `${chainPath(at)}/rename${q(at.family)}`, {
          send: { newName: at.newName },
          ...(cond ? { cond } : {}),
        }),
        written,
      ),
    setPolicy: (at, cond) =>
      ok(
        call('put', `${chainPath(at)}/policy${q(at.family)}`, {
          send: { policy: at.policy },
          ...(cond ? { cond } : {}),
        }),
        written,
      ),
    zeroCounters: (at, cond) =>
      ok(call('post', `${chainPath(at)}/zero-counters${q(at.family)}`, cond ? { cond } : {}), written),
    replaceChain: (at, cond) =>
      ok(
        call('put', `${chainPath(at)}/rules${q(at.family)}`, {
          send: { rules: at.rules },
          ...(cond ? { cond } : {}),
        }),
        written,
      ),
    replaceTable: (at, cond) =>
      ok(
        call('put', `/v1/tables/${at.table ?? 'filter'}${q(at.family)}`, {
          send: { chains: at.chains },
          ...(cond ? { cond } : {}),
        }),
        written,
      ),
    reset: (at, cond) =>
      ok(call('post', '/v1/reset', { send: { ...at }, ...(cond ? { cond } : {}) }), written),
    apply: (tx, cond) =>
      ok(call('post', '/v1/transactions', { send: { ...tx }, ...(cond ? { cond } : {}) }), (b) => ({
        revision: b.revision,
        results: (b.results as Json[]).map(opResult),
        changes: (b.changes as Json[]).map(change),
        dryRun: b.dryRun === true,
        restoreText: b.restoreText ?? {},
      })),
    reload: () => ok(call('post', '/v1/reload'), (b) => ({ revision: b.revision, changed: b.changed })),
    verify: () =>
      ok(call('get', '/v1/verify'), (b) => ({
        revision: b.revision,
        consistent: b.consistent,
        differences: b.differences,
      })),
    trace: (t) => ok(call('post', '/v1/trace', { send: { ...t } }), traceOutcome),
    applyConfirmed: (tx) =>
      ok(call('post', '/v1/transactions', { send: { ...tx } }), (b) => {
        const c = b.confirmation as Json | undefined;
        lastConfirmation = typeof c?.id === 'string' ? c.id : undefined;
        return {
          revision: b.revision,
          changes: (b.changes as Json[]).map(change),
          confirmed: c !== undefined,
        };
      }),
    listConfirmations: () =>
      ok(call('get', '/v1/confirmations'), (b) => ({
        confirmations: (b.confirmations as Json[]).map(pending),
      })),
    confirm: (which) => ok(call('post', `/v1/confirmations/${confirmationId(which)}`), pending),
    extendConfirmation: (which, seconds) =>
      ok(
        call('patch', `/v1/confirmations/${confirmationId(which)}`, { send: { confirmWithin: seconds } }),
        pending,
      ),
    cancelConfirmation: (which) =>
      ok(call('delete', `/v1/confirmations/${confirmationId(which)}`), (b) => ({
        revision: b.revision,
        skipped: b.skipped,
      })),
    rateLimit: (params) => ok(call('post', '/v1/presets/rate-limit', { send: params }), presetResult),
    harden: (params) => ok(call('post', '/v1/presets/harden', { send: params }), presetResult),
    lint: () =>
      ok(call('get', '/v1/lint'), (b) => ({
        revision: b.revision,
        findings: (b.findings as Json[]).map((f) => ({
          code: f.code,
          chain: f.chain,
          rules: (f.rules as Json[]).map((r) => r.ruleId),
        })),
      })),
    save: () =>
      ok(call('post', '/v1/save'), (b) => ({
        revision: b.revision,
        files: (b.files as Json[]).map((f) => ({ family: f.family, bytes: f.bytes })),
      })),
    listAuditEntries: (a) =>
      ok(call('get', `/v1/audit${a.limit === undefined ? '' : `?limit=${a.limit}`}`), (b) => ({
        entries: b.entries,
      })),
    events: () => events,
    close: async () => {
      await ready.catch(() => {});
      sse?.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  return Object.assign(door, { ready });
}

// ----------------------------------------------------------------- gRPC

const FAMILY: Readonly<Record<Family, FamilyEnum>> = { ipv4: FamilyEnum.IPV4, ipv6: FamilyEnum.IPV6 };
const familyName = (f: FamilyEnum) => (f === FamilyEnum.IPV6 ? 'ipv6' : 'ipv4');
const POLICY: Readonly<Record<string, PolicyEnum>> = { ACCEPT: PolicyEnum.ACCEPT, DROP: PolicyEnum.DROP };
const policyName = (p: PolicyEnum) =>
  p === PolicyEnum.ACCEPT ? 'ACCEPT' : p === PolicyEnum.DROP ? 'DROP' : undefined;

/** A typed rule (the REST JSON shape) as a proto Rule: options of matches and targets as a Struct. */
function ruleMsg(r: Json): Json {
  const { matches = [], target, ...fields } = r as { matches?: Json[]; target?: Json };
  return {
    ...fields,
    matches: matches.map(({ module, raw, ...options }) => ({
      module,
      ...(raw ? { raw } : {}),
      ...(Object.keys(options).length > 0 ? { options } : {}),
    })),
    ...(target ? { target: targetMsg(target) } : {}),
  };
}

function targetMsg(t: Json): Json {
  if ('jump' in t) return { kind: { case: 'jump', value: t.jump } };
  if ('goto' in t) return { kind: { case: 'goto', value: t.goto } };
  const { target, raw, ...options } = t;
  return {
    kind: {
      case: 'extension',
      value: {
        name: target,
        ...(raw ? { raw } : {}),
        ...(Object.keys(options).length > 0 ? { options } : {}),
      },
    },
  };
}

function ruleInputMsg(r: RuleIn): Json {
  return 'spec' in r && typeof r.spec === 'string'
    ? { kind: { case: 'spec', value: r.spec } }
    : { kind: { case: 'rule', value: ruleMsg(r) } };
}

function refMsg(ref: Json): Json {
  if ('id' in ref) return { kind: { case: 'id', value: ref.id } };
  if ('position' in ref) return { kind: { case: 'position', value: ref.position } };
  return { kind: { case: 'rule', value: ruleInputMsg(ref.rule as RuleIn) } };
}

function addressMsg(a: { family?: Family; table?: string; chain?: string }): Json {
  return {
    ...(a.family ? { family: FAMILY[a.family] } : {}),
    ...(a.table ? { table: a.table } : {}),
    ...(a.chain !== undefined ? { chain: a.chain } : {}),
  };
}

function chainSpecMsg(c: ChainIn): Json {
  return {
    name: c.name,
    ...(c.policy ? { policy: POLICY[c.policy] } : {}),
    rules: c.rules.map(ruleInputMsg),
  };
}

/** A REST transaction operation as a proto Operation. */
function operationMsg(o: WireOp): Json {
  const at = addressMsg(o as { family?: Family; table?: string; chain?: string });
  const rule = o.rule ? { rule: ruleInputMsg(o.rule as RuleIn) } : {};
  const kind = (c: string, value: Json) => ({ kind: { case: c, value } });
  switch (o.op) {
    case 'append':
      return kind('appendRule', { ...at, ...rule });
    case 'insert':
      return kind('insertRule', { ...at, position: o.position, ...rule });
    case 'replace':
      return kind('replaceRule', { ...at, target: refMsg(o.target as Json), ...rule });
    case 'delete':
      return kind('deleteRule', { ...at, target: refMsg(o.target as Json) });
    case 'ensure':
      return kind('ensureRule', {
        ...at,
        ...rule,
        ...(o.position === undefined ? {} : { position: o.position }),
      });
    case 'createChain':
      return kind('createChain', at);
    case 'deleteChain':
      return kind('deleteChain', { ...at, force: o.force === true });
    case 'flushChain':
      return kind('flushChain', at);
    case 'renameChain':
      return kind('renameChain', { ...at, newName: o.newName });
    case 'setPolicy':
      return kind('setPolicy', { ...at, policy: POLICY[o.policy as string] });
    case 'zeroCounters':
      return kind('zeroCounters', at);
    case 'replaceChain':
      return kind('replaceChain', { ...at, rules: (o.rules as RuleIn[]).map(ruleInputMsg) });
    case 'replaceTable':
      return kind('replaceTable', { ...at, chains: (o.chains as ChainIn[]).map(chainSpecMsg) });
    case 'reset':
      return kind('reset', at);
    default:
      throw new Error(`no gRPC form for op ${o.op}`);
  }
}

async function grpcDoor(service: FirewallService): Promise<Door> {
  const server = createGrpcServer({ service, auth, requireAuth: true, daemon: daemonFor(service) });
  const client = createPromiseClient(Desc, `127.0.0.1:${await bind(server)}`);
  const options = { token: TOKEN };
  type Call = (request: Json, o: typeof options) => Promise<Json>;
  const rpc = (name: string) => (client as unknown as Record<string, Call>)[name] as Call;

  let lastConfirmation: string | undefined;
  const confirmationId = (which: string) => (which === 'last' ? (lastConfirmation ?? 'none') : which);
  const pendingMsg = (c: Json) =>
    pending({
      ...c,
      lockouts: (c.lockouts as Json[]).map((l) => ({
        ...l,
        family: String(l.family) === '2' ? 'ipv6' : 'ipv4',
        cutBy: l.cutBy,
      })),
    });
  const presetMsg = (params: Json): Json => {
    const { families, dryRun, ...rest } = params;
    return {
      ...rest,
      ...(Array.isArray(families) ? { families: families.map((f) => FAMILY[f as Family]) } : {}),
      dryRun: dryRun === true,
    };
  };
  const presetResult = (r: Json) => ({
    revision: Number(r.revision),
    changes: changes(r),
    operations: (r.operations as Json[]).map((o) => {
      const kind = o.kind as { case: string; value: Json };
      return presetOp(OP_OF_CASE[kind.case] ?? kind.case, kind.value);
    }),
    ...(r.dryRun ? { dryRun: true } : {}),
  });
  const ok = async (name: string, req: Json, value: (r: Json) => Json): Promise<Outcome> => {
    try {
      return { ok: true, value: value(await rpc(name)(req, options)) };
    } catch (e) {
      const err = e as grpc.ServiceError;
      if (typeof err.code !== 'number' || !err.metadata) throw e;
      const one = (key: string) => err.metadata.get(key)[0] as string | undefined;
      const field = one('portcullis-field');
      const reason = one('portcullis-reason');
      return {
        ok: false,
        code: one('portcullis-code') ?? `grpc_${err.code}`,
        ...(field === undefined ? {} : { field }),
        ...(reason === undefined ? {} : { reason }),
        message: err.details,
        grpcStatus: err.code,
      };
    }
  };
  const cond = (c?: Cond): Json => ({
    ...(c?.expectedRevision === undefined ? {} : { expectedRevision: BigInt(c.expectedRevision) }),
    ...(c?.idempotencyKey === undefined ? {} : { idempotencyKey: c.idempotencyKey }),
  });
  const rule = (v: Json | undefined): Json | undefined =>
    v ? { id: v.id, position: v.position, text: v.text, rule: ruleJson(v.rule as RuleMsg) } : undefined;
  const changeOf = (c: Json) =>
    change({ ...c, family: familyName(c.family as FamilyEnum), policy: policyName(c.policy as PolicyEnum) });
  const changes = (r: Json) => (r.changes as Json[]).map(changeOf);
  const chain = (c: Json): Json => ({
    name: c.name,
    builtin: c.builtin,
    ...(policyName(c.policy as PolicyEnum) ? { policy: policyName(c.policy as PolicyEnum) } : {}),
    rules: (c.rules as Json[]).map(rule),
  });
  const written = (r: Json) => ({ revision: Number(r.revision), changes: changes(r) });
  const ruleWritten = (r: Json) => ({
    revision: Number(r.revision),
    rule: rule(r.rule as Json),
    ...(r.existed !== undefined ? { existed: r.existed } : {}),
    ...(r.replaced ? { replaced: rule(r.replaced as Json) } : {}),
    changes: changes(r),
  });

  const events: Json[] = [];
  const watch = client.watch({}, options);
  watch.on('data', (m: { event?: Json }) => {
    const e = m.event as Json;
    events.push({
      revision: Number(e.revision),
      origin: e.origin === 2 ? 'external' : 'service',
      changes: (e.changes as Json[]).map(changeOf),
    });
  });
  watch.on('error', () => {});

  return {
    getStatus: () =>
      ok('getStatus', {}, (r) => ({
        revision: Number(r.revision),
        ready: r.ready,
        families: (r.families as FamilyEnum[]).map(familyName),
      })),
    getRuleset: (family) =>
      ok('getRuleset', { family: FAMILY[family], includeText: true }, (r) => ({
        revision: Number(r.revision),
        family: familyName(r.family as FamilyEnum),
        tables: (r.tables as Json[]).map((t) => ({ name: t.name, chains: (t.chains as Json[]).map(chain) })),
        text: r.text,
      })),
    getTable: (at) =>
      ok('getTable', addressMsg(at), (r) => ({
        revision: Number(r.revision),
        chains: (r.chains as Json[]).map(chain),
      })),
    getChain: (at) =>
      ok('getChain', addressMsg(at), (r) => ({
        revision: Number(r.revision),
        chain: chain(r.chain as Json),
      })),
    getRule: (at) =>
      ok('getRule', { ...addressMsg(at), id: at.id }, (r) => ({
        revision: Number(r.revision),
        rule: rule(r.rule as Json),
      })),
    listChains: (at) =>
      ok('listChains', addressMsg(at), (r) => ({
        revision: Number(r.revision),
        chains: (r.chains as Json[]).map((c) => ({
          name: c.name,
          builtin: c.builtin,
          ...(policyName(c.policy as PolicyEnum) ? { policy: policyName(c.policy as PolicyEnum) } : {}),
          rules: c.rules,
          references: c.references,
        })),
      })),
    appendRule: (at, c) =>
      ok('appendRule', { ...addressMsg(at), rule: ruleInputMsg(at.rule), ...cond(c) }, ruleWritten),
    insertRule: (at, c) =>
      ok(
        'insertRule',
        { ...addressMsg(at), position: at.position, rule: ruleInputMsg(at.rule), ...cond(c) },
        ruleWritten,
      ),
    replaceRule: (at, c) =>
      ok(
        'replaceRule',
        { ...addressMsg(at), target: refMsg({ id: at.id }), rule: ruleInputMsg(at.rule), ...cond(c) },
        ruleWritten,
      ),
    deleteRule: (at, c) =>
      ok(
        'deleteRule',
        {
          ...addressMsg(at),
          target: 'id' in at ? { case: 'id', value: at.id } : { case: 'position', value: at.position },
          ...cond(c),
        },
        (r) => ({ revision: Number(r.revision), deleted: rule(r.deleted as Json), changes: changes(r) }),
      ),
    ensureRule: (at, c) =>
      ok(
        'ensureRule',
        {
          ...addressMsg(at),
          rule: ruleInputMsg(at.rule),
          ...(at.position === undefined ? {} : { position: at.position }),
          ...cond(c),
        },
        ruleWritten,
      ),
    createChain: (at, c) => ok('createChain', { ...addressMsg(at), ...cond(c) }, written),
    deleteChain: (at, c) =>
      ok('deleteChain', { ...addressMsg(at), force: at.force === true, ...cond(c) }, written),
    flushChain: (at, c) => ok('flushChain', { ...addressMsg(at), ...cond(c) }, written),
    renameChain: (at, c) =>
      ok('renameChain', { ...addressMsg(at), newName: at.newName, ...cond(c) }, written),
    setPolicy: (at, c) =>
      ok(
        'setPolicy',
        { ...addressMsg(at), policy: POLICY[at.policy] ?? PolicyEnum.UNSPECIFIED, ...cond(c) },
        written,
      ),
    zeroCounters: (at, c) => ok('zeroCounters', { ...addressMsg(at), ...cond(c) }, written),
    replaceChain: (at, c) =>
      ok('replaceChain', { ...addressMsg(at), rules: at.rules.map(ruleInputMsg), ...cond(c) }, written),
    replaceTable: (at, c) =>
      ok('replaceTable', { ...addressMsg(at), chains: at.chains.map(chainSpecMsg), ...cond(c) }, written),
    reset: (at, c) => ok('reset', { ...addressMsg(at), ...cond(c) }, written),
    apply: (tx, c) =>
      ok(
        'apply',
        { operations: tx.operations.map(operationMsg), dryRun: tx.dryRun === true, ...cond(c) },
        (r) => ({
          revision: Number(r.revision),
          results: (r.results as Json[]).map((x) =>
            opResult({
              ...x,
              rule: rule(x.rule as Json | undefined),
              deleted: rule(x.deleted as Json | undefined),
            }),
          ),
          changes: changes(r),
          dryRun: r.dryRun,
          restoreText: r.restoreText,
        }),
      ),
    reload: () => ok('reload', {}, (r) => ({ revision: Number(r.revision), changed: r.changed })),
    applyConfirmed: (tx) =>
      ok('apply', { operations: tx.operations.map(operationMsg), confirmWithin: tx.confirmWithin }, (r) => {
        const c = r.confirmation as Json | undefined;
        lastConfirmation = typeof c?.id === 'string' ? c.id : undefined;
        return { revision: Number(r.revision), changes: changes(r), confirmed: c !== undefined };
      }),
    listConfirmations: () =>
      ok('listConfirmations', {}, (r) => ({ confirmations: (r.confirmations as Json[]).map(pendingMsg) })),
    confirm: (which) =>
      ok('confirm', { id: confirmationId(which) }, (r) => pendingMsg(r.confirmation as Json)),
    extendConfirmation: (which, seconds) =>
      ok('extendConfirmation', { id: confirmationId(which), confirmWithin: seconds }, (r) =>
        pendingMsg(r.confirmation as Json),
      ),
    cancelConfirmation: (which) =>
      ok('cancelConfirmation', { id: confirmationId(which) }, (r) => ({
        revision: Number(r.revision),
        skipped: r.skipped,
      })),
    rateLimit: (params) => ok('rateLimit', presetMsg(params), presetResult),
    harden: (params) => ok('harden', presetMsg(params), presetResult),
    trace: (t) =>
      ok(
        'trace',
        {
          packet: { ...t.packet, family: FAMILY[t.packet.family as Family] },
          operations: (t.operations ?? []).map(operationMsg),
        },
        (r) => traceOutcome({ ...r, revision: Number(r.revision), verdict: r.verdict || undefined }),
      ),
    save: () =>
      ok('save', {}, (r) => ({
        revision: Number(r.revision),
        files: (r.files as Json[]).map((f) => ({
          family: familyName(f.family as FamilyEnum),
          bytes: Number(f.bytes),
        })),
      })),
    listAuditEntries: (a) => ok('listAuditEntries', { limit: a.limit ?? 0 }, (r) => ({ entries: r.entries })),
    lint: () =>
      ok('lint', {}, (r) => ({
        revision: Number(r.revision),
        findings: (r.findings as Json[]).map((f) => ({
          code: f.code,
          chain: f.chain,
          rules: (f.rules as Json[]).map((x) => x.ruleId),
        })),
      })),
    verify: () =>
      ok('verify', {}, (r) => ({
        revision: Number(r.revision),
        consistent: r.consistent,
        differences: (r.differences as Json[]).map((d) => ({
          family: String(d.family).replace('FAMILY_', '').toLowerCase(),
          table: d.table,
          chain: d.chain,
          kind: d.kind,
        })),
      })),
    events: () => events,
    close: async () => {
      watch.cancel();
      client.close();
      server.forceShutdown();
    },
  };
}

// ================================================================= the script

const stateDirs: string[] = [];
afterAll(() => {
  for (const d of stateDirs) rmSync(d, { recursive: true, force: true });
});
/** A state directory per service (commit-confirmed needs one), removed after the file. */
function tempStateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-parity-'));
  stateDirs.push(d);
  return d;
}

/** What one step must come to (so that both doors failing alike by accident is caught). */
type Expect = 'ok' | { code: string; field?: string; reason?: string };

interface Step {
  readonly name: string;
  readonly expect: Expect;
  readonly run: (d: Door, s: ScriptState) => Promise<Outcome>;
}

/** Per door: the success values of earlier steps by name, and the last revision seen. */
class ScriptState {
  private readonly values = new Map<string, Json>();
  revision = 0;
  record(name: string, o: Outcome): void {
    if (!o.ok) return;
    this.values.set(name, o.value);
    if (typeof o.value.revision === 'number') this.revision = o.value.revision;
  }
  value(name: string): Json {
    const v = this.values.get(name);
    if (!v) throw new Error(`step "${name}" has no success value`);
    return v;
  }
  ruleId(name: string, key = 'rule'): string {
    return (this.value(name)[key] as { id: string }).id;
  }
}

const tcp = (port: string, target: Json = { target: 'ACCEPT' }) => ({
  protocol: 'tcp',
  matches: [{ module: 'tcp', dport: port }],
  target,
});
const LOG_LINE = '-j LOG --log-prefix "iptables deny: " --log-level 7';

/** `{"a":{"a":...}}` nesting `depth` objects. */
function nestedJson(depth: number): Json {
  let v: Json = { leaf: 'x' };
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

/** One transaction holding every kind of operation. */
const EVERY_KIND: readonly WireOp[] = [
  { op: 'createChain', chain: 'TMP' },
  { op: 'append', chain: 'TMP', rule: { spec: '-s 198.51.100.7 -j DROP' } },
  { op: 'insert', chain: 'INPUT', position: 1, rule: { matches: [], target: { jump: 'TMP' } } },
  { op: 'ensure', chain: 'TMP', rule: { spec: '-s 198.51.100.8 -j DROP' } },
  { op: 'replace', chain: 'TMP', target: { position: 1 }, rule: { spec: '-s 198.51.100.9 -j DROP' } },
  { op: 'delete', chain: 'INPUT', target: { rule: { spec: '-i lo -j ACCEPT' } } },
  { op: 'renameChain', chain: 'HTTPS', newName: 'WEB' },
  { op: 'flushChain', chain: 'WEB' },
  { op: 'deleteChain', chain: 'WEB' },
  { op: 'setPolicy', family: 'ipv6', chain: 'FORWARD', policy: 'DROP' },
  { op: 'zeroCounters' },
  { op: 'replaceChain', family: 'ipv6', chain: 'OUTPUT', rules: [{ spec: '-o lo -j ACCEPT' }] },
  {
    op: 'replaceTable',
    table: 'raw',
    chains: [{ name: 'PREROUTING', rules: [{ spec: '-s 198.51.100.0/24 -j ACCEPT' }] }],
  },
  { op: 'reset', family: 'ipv6', table: 'raw' },
];

const SCRIPT: readonly Step[] = [
  { name: 'status', expect: 'ok', run: (d) => d.getStatus() },
  {
    name: 'declare the filter table (ipv4)',
    expect: 'ok',
    run: (d) =>
      d.replaceTable({
        chains: [
          {
            name: 'INPUT',
            policy: 'ACCEPT',
            rules: [
              { spec: '-i lo -j ACCEPT' },
              tcp('22', { jump: 'LOG_AND_DROP' }),
              { spec: '-s 192.0.2.0/24 -j DROP' },
            ],
          },
          { name: 'LOG_AND_DROP', rules: [{ spec: LOG_LINE }, { matches: [], target: { target: 'DROP' } }] },
          { name: 'EMPTY', rules: [] },
        ],
      }),
  },
  {
    name: 'declare INPUT (ipv6)',
    expect: 'ok',
    run: (d) =>
      d.replaceChain({
        family: 'ipv6',
        chain: 'INPUT',
        rules: [{ spec: '-i lo -j ACCEPT' }, { spec: '-s 2001:db8::/32 -j DROP' }],
      }),
  },
  { name: 'ruleset', expect: 'ok', run: (d) => d.getRuleset('ipv4') },
  { name: 'chains', expect: 'ok', run: (d) => d.listChains({}) },
  {
    name: 'append spec',
    expect: 'ok',
    run: (d) => d.appendRule({ chain: 'INPUT', rule: { spec: '-p tcp --dport 80 -j ACCEPT' } }),
  },
  {
    name: 'append typed',
    expect: 'ok',
    run: (d) =>
      d.appendRule({
        chain: 'INPUT',
        rule: { protocol: 'udp', matches: [{ module: 'udp', dport: '53' }], target: { target: 'ACCEPT' } },
      }),
  },
  {
    name: 'bad spec',
    expect: { code: 'invalid_argument' },
    run: (d) => d.appendRule({ chain: 'INPUT', rule: { spec: '-p tcp --dport 80 --frobnicate -j ACCEPT' } }),
  },
  {
    name: 'unknown chain',
    expect: { code: 'not_found', field: 'chain' },
    run: (d) => d.appendRule({ chain: 'NOPE', rule: { spec: '-j DROP' } }),
  },
  {
    name: 'invalid typed field',
    expect: { code: 'invalid_argument', field: 'rule.matches[0].dport' },
    run: (d) => d.appendRule({ chain: 'INPUT', rule: tcp('99999') }),
  },
  {
    name: 'a typed rule nested deeper than the door allows',
    expect: { code: 'invalid_argument' },
    run: (d) =>
      d.appendRule({
        chain: 'INPUT',
        rule: {
          matches: [{ module: 'comment', comment: nestedJson(MAX_NESTING_DEPTH + 5) }],
          target: { target: 'ACCEPT' },
        },
      }),
  },
  {
    name: 'a chain name with a leading U+FEFF is not the chain without it',
    expect: { code: 'invalid_argument', field: 'chain' },
    run: (d) => d.appendRule({ chain: '\ufeffINPUT', rule: { spec: '-j ACCEPT' } }),
  },
  {
    name: 'jump to a missing chain',
    expect: { code: 'not_found', field: 'rule.target' },
    run: (d) => d.appendRule({ chain: 'INPUT', rule: { matches: [], target: { jump: 'MISSING' } } }),
  },
  {
    name: 'insert typed at 1',
    expect: 'ok',
    run: (d) =>
      d.insertRule({
        chain: 'INPUT',
        position: 1,
        rule: {
          matches: [{ module: 'conntrack', ctstate: ['RELATED', 'ESTABLISHED'] }],
          target: { target: 'ACCEPT' },
        },
      }),
  },
  {
    name: 'insert past the end',
    expect: { code: 'invalid_argument', field: 'position' },
    run: (d) => d.insertRule({ chain: 'INPUT', position: 99, rule: { spec: '-j DROP' } }),
  },
  {
    name: 'ensure an existing rule',
    expect: 'ok',
    run: (d) => d.ensureRule({ chain: 'INPUT', rule: tcp('80') }),
  },
  {
    name: 'ensure a new rule at 2',
    expect: 'ok',
    run: (d) => d.ensureRule({ chain: 'INPUT', rule: { spec: '-p tcp --dport 443 -j ACCEPT' }, position: 2 }),
  },
  { name: 'chain', expect: 'ok', run: (d) => d.getChain({ chain: 'INPUT' }) },
  {
    name: 'rule by id',
    expect: 'ok',
    run: (d, s) => d.getRule({ chain: 'INPUT', id: s.ruleId('ensure a new rule at 2') }),
  },
  {
    name: 'unknown rule id',
    expect: { code: 'not_found', field: 'id' },
    run: (d) => d.getRule({ chain: 'INPUT', id: '0123456789abcdef' }),
  },
  {
    name: 'replace by id',
    expect: 'ok',
    run: (d, s) =>
      d.replaceRule({
        chain: 'INPUT',
        id: s.ruleId('append typed'),
        rule: { spec: '-p udp --dport 5353 -j ACCEPT' },
      }),
  },
  {
    name: 'delete by id',
    expect: 'ok',
    run: (d, s) => d.deleteRule({ chain: 'INPUT', id: s.ruleId('append spec') }),
  },
  { name: 'delete by position', expect: 'ok', run: (d) => d.deleteRule({ chain: 'INPUT', position: 1 }) },
  { name: 'create WEB', expect: 'ok', run: (d) => d.createChain({ chain: 'WEB' }) },
  {
    name: 'duplicate chain',
    expect: { code: 'already_exists' },
    run: (d) => d.createChain({ chain: 'WEB' }),
  },
  {
    name: 'append with an idempotency key',
    expect: 'ok',
    run: (d) => d.appendRule({ chain: 'WEB', rule: tcp('8443') }, { idempotencyKey: 'parity-1' }),
  },
  {
    name: 'the retry is answered with the first result',
    expect: 'ok',
    run: (d) => d.appendRule({ chain: 'WEB', rule: tcp('8443') }, { idempotencyKey: 'parity-1' }),
  },
  {
    name: 'the key with another request',
    expect: { code: 'invalid_argument', field: 'idempotencyKey', reason: 'idempotency_key_reused' },
    run: (d) => d.appendRule({ chain: 'WEB', rule: tcp('8444') }, { idempotencyKey: 'parity-1' }),
  },
  { name: 'rename WEB', expect: 'ok', run: (d) => d.renameChain({ chain: 'WEB', newName: 'HTTPS' }) },
  {
    name: 'policy FORWARD DROP',
    expect: 'ok',
    run: (d) => d.setPolicy({ chain: 'FORWARD', policy: 'DROP' }),
  },
  {
    name: 'policy on a user chain',
    expect: { code: 'invalid_argument', field: 'chain' },
    run: (d) => d.setPolicy({ chain: 'HTTPS', policy: 'DROP' }),
  },
  { name: 'zero INPUT counters', expect: 'ok', run: (d) => d.zeroCounters({ chain: 'INPUT' }) },
  {
    name: 'stale revision',
    expect: { code: 'failed_precondition', field: 'expectedRevision', reason: 'revision_mismatch' },
    run: (d) => d.flushChain({ chain: 'HTTPS' }, { expectedRevision: 1 }),
  },
  {
    name: 'current revision',
    expect: 'ok',
    run: (d, s) => d.flushChain({ chain: 'HTTPS' }, { expectedRevision: s.revision }),
  },
  {
    name: 'delete a chain in use',
    expect: { code: 'failed_precondition', field: 'chain' },
    run: (d) => d.deleteChain({ chain: 'LOG_AND_DROP' }),
  },
  { name: 'delete EMPTY', expect: 'ok', run: (d) => d.deleteChain({ chain: 'EMPTY' }) },
  {
    name: 'dry run',
    expect: 'ok',
    run: (d) =>
      d.apply({
        dryRun: true,
        operations: [
          { op: 'append', chain: 'INPUT', rule: { spec: '-j REJECT' } },
          { op: 'setPolicy', chain: 'INPUT', policy: 'DROP' },
        ],
      }),
  },
  {
    name: 'transaction failing at its last operation',
    expect: { code: 'not_found', field: 'operations[2].chain' },
    run: (d) =>
      d.apply({
        operations: [
          { op: 'createChain', chain: 'TMP' },
          { op: 'append', chain: 'TMP', rule: { spec: '-j ACCEPT' } },
          { op: 'append', chain: 'NOPE', rule: { spec: '-j DROP' } },
        ],
      }),
  },
  {
    name: 'transaction of every operation kind',
    expect: 'ok',
    run: (d) => d.apply({ operations: EVERY_KIND }),
  },
  { name: 'reload', expect: 'ok', run: (d) => d.reload() },
  { name: 'verify', expect: 'ok', run: (d) => d.verify() },
  {
    name: 'trace ssh through the current ruleset',
    expect: 'ok',
    run: (d) => d.trace({ packet: { family: 'ipv4', hook: 'INPUT', protocol: 'tcp', destinationPort: 22 } }),
  },
  {
    name: 'trace through a proposed DROP policy',
    expect: 'ok',
    run: (d) =>
      d.trace({
        packet: {
          family: 'ipv4',
          hook: 'INPUT',
          protocol: 'udp',
          source: '198.51.100.7',
          destinationPort: 53,
        },
        operations: [{ op: 'setPolicy', chain: 'INPUT', policy: 'DROP' }],
      }),
  },
  {
    name: 'trace a packet with a bad hook',
    expect: { code: 'invalid_argument', field: 'packet.hook' },
    run: (d) => d.trace({ packet: { family: 'ipv4', hook: 'SIDEWAYS' } }),
  },
  { name: 'lint', expect: 'ok', run: (d) => d.lint() },
  {
    name: 'a change applied with confirmWithin',
    expect: 'ok',
    run: (d) =>
      d.applyConfirmed({
        operations: [
          { op: 'append', chain: 'INPUT', rule: { spec: '-p udp -m udp --dport 5353 -j ACCEPT' } },
        ],
        confirmWithin: 600,
      }),
  },
  { name: 'list pending confirmations', expect: 'ok', run: (d) => d.listConfirmations() },
  { name: 'extend it', expect: 'ok', run: (d) => d.extendConfirmation('last', 900) },
  { name: 'confirm it', expect: 'ok', run: (d) => d.confirm('last') },
  {
    name: 'confirm an id that is not pending',
    expect: { code: 'not_found', field: 'id' },
    run: (d) => d.confirm('0123456789abcdef'),
  },
  {
    name: 'another change applied with confirmWithin',
    expect: 'ok',
    run: (d) =>
      d.applyConfirmed({
        operations: [
          { op: 'append', chain: 'INPUT', rule: { spec: '-p udp -m udp --dport 5354 -j ACCEPT' } },
        ],
        confirmWithin: 600,
      }),
  },
  { name: 'cancel it: rolled back now', expect: 'ok', run: (d) => d.cancelConfirmation('last') },
  {
    name: 'confirm a malformed id',
    expect: { code: 'invalid_argument', field: 'id' },
    run: (d) => d.confirm('nothex'),
  },
  {
    name: 'rate-limit SSH (the secure-server article in one call)',
    expect: 'ok',
    run: (d) => d.rateLimit({ port: 22, families: ['ipv4'], chain: 'SSH_LIMIT' }),
  },
  {
    name: 'the same rate limit again changes nothing',
    expect: 'ok',
    run: (d) => d.rateLimit({ port: 22, families: ['ipv4'], chain: 'SSH_LIMIT' }),
  },
  {
    name: 'harden, as a dry run',
    expect: 'ok',
    run: (d) => d.harden({ families: ['ipv6'], dryRun: true }),
  },
  {
    name: 'a hashlimit rate limit over a window hashlimit cannot express',
    expect: { code: 'invalid_argument', field: 'seconds' },
    run: (d) => d.rateLimit({ port: 22, families: ['ipv4'], method: 'hashlimit', seconds: 45 }),
  },
  { name: 'reset ipv6', expect: 'ok', run: (d) => d.reset({ family: 'ipv6' }) },
  { name: 'ruleset ipv6', expect: 'ok', run: (d) => d.getRuleset('ipv6') },
  { name: 'table', expect: 'ok', run: (d) => d.getTable({ table: 'filter' }) },
  {
    name: 'delete LOG_AND_DROP with force',
    expect: 'ok',
    run: (d) => d.deleteChain({ chain: 'LOG_AND_DROP', force: true }),
  },
  { name: 'save the rules files', expect: 'ok', run: (d) => d.save() },
  {
    name: 'audit log with a limit past the maximum',
    expect: { code: 'invalid_argument', field: 'limit' },
    run: (d) => d.listAuditEntries({ limit: 10_001 }),
  },
  {
    name: 'audit log while it is off',
    expect: { code: 'failed_precondition', field: 'auditLog' },
    run: (d) => d.listAuditEntries({}),
  },
  { name: 'final ruleset', expect: 'ok', run: (d) => d.getRuleset('ipv4') },
];

/** Door methods a script run called (for the coverage check). */
function tracked(door: Door, called: Set<string>): Door {
  return new Proxy(door, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof v !== 'function' || typeof key !== 'string') return v;
      return (...args: unknown[]) => {
        called.add(key);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Runs the script on both doors step by step; every pair of outcomes must be identical. */
async function runBoth(rest: Door, rpc: Door, called?: Set<string>): Promise<void> {
  const states = { rest: new ScriptState(), rpc: new ScriptState() };
  const doors = called ? { rest: tracked(rest, called), rpc: tracked(rpc, called) } : { rest, rpc };
  for (const [i, step] of SCRIPT.entries()) {
    const where = `step ${i + 1} "${step.name}"`;
    const a = await step.run(doors.rest, states.rest);
    const b = await step.run(doors.rpc, states.rpc);
    expect(b, `${where}: gRPC and REST differ`).toEqual(a);
    if (step.expect === 'ok') {
      expect(a, `${where} should succeed`).toMatchObject({ ok: true });
    } else {
      expect(a, `${where} should fail`).toMatchObject({ ok: false, ...step.expect });
      if (!a.ok)
        expect(a.grpcStatus, `${where}: REST code and gRPC status agree`).toBe(
          GRPC_CODE[a.code as keyof typeof GRPC_CODE],
        );
    }
    states.rest.record(step.name, a);
    states.rpc.record(step.name, b);
  }
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Both event streams carried the same events, up to the service's revision. */
async function expectSameEvents(rest: Door, rpc: Door, revision: number): Promise<void> {
  const upTo = (d: Door) => () => (d.events().at(-1)?.revision as number | undefined) === revision;
  await until('SSE delivers every event', upTo(rest));
  await until('Watch delivers every event', upTo(rpc));
  expect(rpc.events()).toEqual(rest.events());
  const revisions = rest.events().map((e) => e.revision as number);
  expect(revisions, 'events in revision order').toEqual([...revisions].sort((x, y) => x - y));
}

// ================================================================= 3. the runs

describe('parity on the fake kernel: one script through REST and through gRPC', () => {
  const fakes = { rest: new FakeExecutor(), rpc: new FakeExecutor() };
  const services = {
    rest: new FirewallService({ executor: fakes.rest, pollIntervalMs: 0, stateDir: tempStateDir() }),
    rpc: new FirewallService({ executor: fakes.rpc, pollIntervalMs: 0, stateDir: tempStateDir() }),
  };
  let rest: Door & { ready?: Promise<void> };
  let rpc: Door;
  beforeAll(async () => {
    await services.rest.start();
    await services.rpc.start();
    rest = restDoor(services.rest);
    await rest.ready;
    rpc = await grpcDoor(services.rpc);
  });
  afterAll(async () => {
    await rest?.close();
    await rpc?.close();
    await services.rest.close();
    await services.rpc.close();
  });

  it('gives identical outcomes after every step, identical rulesets and identical events', async () => {
    const called = new Set<string>();
    await runBoth(rest, rpc, called);
    // The script exercises every RPC (Watch through events()) and every transaction operation kind.
    const unary = Desc.methods.filter((m) => m.methodKind === 'unary').map((m) => m.localName);
    expect(
      unary.filter((m) => !called.has(m)),
      'RPCs the script does not call',
    ).toEqual([]);
    const kinds = new Set(EVERY_KIND.map((o) => o.op));
    expect([...kinds].sort()).toEqual(
      [
        'append',
        'insert',
        'replace',
        'delete',
        'ensure',
        'createChain',
        'deleteChain',
        'flushChain',
        'renameChain',
        'setPolicy',
        'zeroCounters',
        'replaceChain',
        'replaceTable',
        'reset',
      ].sort(),
    );

    for (const family of ['ipv4', 'ipv6'] as const) {
      expect(await fakes.rpc.save(family), `${family} ruleset`).toBe(await fakes.rest.save(family));
    }
    expect(services.rpc.revision).toBe(services.rest.revision);
    await expectSameEvents(rest, rpc, services.rest.revision);
  });
});

describeKernel('parity on the kernel: the script in two network namespaces', () => {
  const kernels = {
    rest: useKernelService({ prefix: 'pparr', stateDir: tempStateDir() }),
    rpc: useKernelService({ prefix: 'pparg', stateDir: tempStateDir() }),
  };
  let rest: Door & { ready?: Promise<void> };
  let rpc: Door;
  beforeAll(async () => {
    rest = restDoor(kernels.rest().service);
    await rest.ready;
    rpc = await grpcDoor(kernels.rpc().service);
  });
  afterAll(async () => {
    await rest?.close();
    await rpc?.close();
  });

  it('gives identical outcomes and identical iptables-save output', async () => {
    await runBoth(rest, rpc);
    for (const family of ['ipv4', 'ipv6'] as const) {
      const a = await kernels.rest().save(family);
      const b = await kernels.rpc().save(family);
      expect(b, `${family}: iptables-save of the two namespaces`).toBe(a);
    }
    expect(await kernels.rest().save('ipv4')).toContain('-A INPUT -j TMP');
  }, 60_000);
});
