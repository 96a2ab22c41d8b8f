/**
 * FirewallService RPC handlers: decode (convert.ts) -> call the service ->
 * encode. Writes go through `service.apply` as one operation (Apply: as a
 * transaction) with the request's expected revision, and through the shared
 * idempotency store when the request carries a key. No validation beyond the
 * wire schema happens here: the service refuses bad input with the same
 * errors REST reports.
 */
import { type DescMessage, type MessageInitShape, type MessageShape, toJson } from '@bufbuild/protobuf';
import { DomainError } from '../../domain/errors.js';
import { FAMILIES, type Family } from '../../domain/family.js';
import type { FirewallService } from '../../gen/portcullis/v1/firewall_service_pb.js';
import type {
  ApplyOptions,
  ApplyResult,
  Operation as ModelOperation,
  FirewallApi as Service,
} from '../../service/api.js';
import {
  type IdempotencyStore,
  idempotencyFingerprint,
  isIdempotencyKey,
} from '../../service/idempotency.js';
import { callerOfPeer } from '../caller.js';
import { idempotencyKeyInUse, idempotencyKeyInvalid, idempotencyKeyReused, ruleNotFound } from '../errors.js';
import type { CallContext, ServiceHandlers } from './adapter.js';
import {
  chainSummaryTo,
  chainViewTo,
  changeEventTo,
  changeTo,
  familyFrom,
  familyTo,
  operationFrom,
  opResultTo,
  ruleRefFrom,
  ruleViewTo,
  tableFrom,
} from './convert.js';
import { confirmationTo, pendingTo, presetTo, presetWord } from './convert-safety.js';
import { findingTo, lockoutTo, packetFrom, traceReportTo } from './convert-trace.js';
import { encodeGetChainResponse, encodeGetTableResponse } from './encode-views.js';

/** What the idempotency store remembers for a gRPC write: the response, or a final error. */
export type StoredOutcome =
  | { readonly ok: true; readonly response: unknown }
  | { readonly ok: false; readonly error: DomainError };

/** Errors that a retry with the same request would meet again: remembered under the key. */
const FINAL_CODES = new Set(['invalid_argument', 'not_found', 'already_exists', 'failed_precondition']);

/** Events a Watch client may fall behind by before the stream is ended with RESOURCE_EXHAUSTED. */
const WATCH_BACKLOG_LIMIT = 1000;

export interface HandlerDeps {
  readonly service: Service;
  readonly idempotency: IdempotencyStore<StoredOutcome>;
}

interface WriteRequest {
  readonly expectedRevision?: bigint | undefined;
  readonly idempotencyKey: string;
  readonly allowLockout: boolean;
  readonly confirmWithin?: number | undefined;
}

/** The port of an `:authority` (`host:port`, `[v6]:port`). */
function portOf(authority: string | undefined): number | undefined {
  const m = authority === undefined ? null : /:(\d{1,5})$/.exec(authority);
  return m ? Number(m[1]) : undefined;
}

/** Every FirewallService RPC but the daemon's own (Save, ListAuditEntries: daemon-handlers.ts). */
export function firewallHandlers(
  deps: HandlerDeps,
): Omit<ServiceHandlers<typeof FirewallService>, 'save' | 'listAuditEntries'> {
  const { service, idempotency } = deps;

  /**
   * Applies `ops` (or runs `exec`, e.g. a preset) for a write RPC, once per idempotency key;
   * `respond` builds the response, which carries the confirmation of a commit-confirmed change.
   */
  async function write<O extends DescMessage, R extends ApplyResult = ApplyResult>(
    context: CallContext,
    request: MessageShape<DescMessage> & WriteRequest,
    ops: readonly ModelOperation[] | ((options: ApplyOptions) => Promise<R>),
    respond: (result: R) => MessageInitShape<O>,
    dryRun = false,
  ): Promise<MessageInitShape<O>> {
    const caller = callerOfPeer(context.peer, portOf(context.host));
    const exec = (options: ApplyOptions): Promise<R> =>
      typeof ops === 'function' ? ops(options) : (service.apply(ops, options) as Promise<R>);
    const withConfirmation = (r: R) => ({
      ...respond(r),
      ...(r.confirmation ? { confirmation: confirmationTo(r.confirmation) } : {}),
    });
    const run = async () =>
      withConfirmation(
        await exec({
          ...(request.allowLockout ? { allowLockout: true } : {}),
          ...(request.confirmWithin !== undefined ? { confirmWithin: request.confirmWithin } : {}),
          ...(caller ? { caller } : {}),
          // Beyond 2^53 the number is not safe: the service refuses it.
          ...(request.expectedRevision === undefined
            ? {}
            : { expectedRevision: Number(request.expectedRevision) }),
          ...(dryRun ? { dryRun: true } : {}),
          origin: 'grpc',
          ...(context.identity === undefined ? {} : { identity: context.identity }),
          requestId: context.requestId,
          signal: context.signal,
        }),
      );
    const key = request.idempotencyKey;
    if (key === '') return run();
    if (!isIdempotencyKey(key)) throw idempotencyKeyInvalid();
    const fingerprint = idempotencyFingerprint(
      'grpc',
      context.method.name,
      toJson(context.method.input, request),
    );
    const slot = idempotency.begin(context.principal ?? 'anonymous', key, fingerprint);
    switch (slot.kind) {
      case 'replay':
        if (slot.response.ok) return slot.response.response as MessageInitShape<O>;
        throw slot.response.error;
      case 'mismatch':
        throw idempotencyKeyReused();
      case 'in_progress':
        throw idempotencyKeyInUse();
      case 'new':
        try {
          const response = await run();
          slot.complete({ ok: true, response });
          return response;
        } catch (error) {
          const e = DomainError.from(error);
          if (FINAL_CODES.has(e.code)) slot.complete({ ok: false, error: e });
          else slot.abandon();
          throw e;
        }
    }
  }

  const changes = (r: ApplyResult) => r.changes.map(changeTo);
  const first = (r: ApplyResult) => r.results[0];

  return {
    getRuleset(req) {
      const family = familyFrom(req.family);
      if (req.otherBackend) {
        const other = service.getOtherRulesetView(family);
        return {
          revision: BigInt(service.revision),
          family: familyTo(family),
          tables: other.tables.map((t) => ({ name: t.name, chains: t.chains.map(chainViewTo) })),
          text: req.includeText ? other.text : '',
        };
      }
      const { revision, ruleset } = service.getRuleset(family);
      return {
        revision: BigInt(revision),
        family: familyTo(family),
        tables: ruleset.tables.map((t) => ({
          name: t.name,
          chains: service.getTable(family, t.name).chains.map(chainViewTo),
        })),
        text: req.includeText ? service.getRulesetText(family).text : '',
      };
    },

    getTable(req) {
      const { revision, chains } = service.getTable(familyFrom(req.family), tableFrom(req.table));
      return encodeGetTableResponse(revision, chains);
    },

    async getChain(req) {
      const { revision, chain } = await service.getChain(
        familyFrom(req.family),
        tableFrom(req.table),
        req.chain,
        {
          counters: req.counters,
        },
      );
      return encodeGetChainResponse(revision, chain);
    },

    getRule(req) {
      const family = familyFrom(req.family);
      const table = tableFrom(req.table);
      const revision = service.revision;
      const found = service.findRule(family, table, req.id);
      if (!found || found.chain !== req.chain) throw ruleNotFound(req.id, req.chain);
      return { revision: BigInt(revision), ...withRule(found.rule) };
    },

    listChains(req) {
      const { revision, chains } = service.listChains(familyFrom(req.family), tableFrom(req.table));
      return { revision: BigInt(revision), chains: chains.map(chainSummaryTo) };
    },

    getStatus() {
      const s = service.status();
      return {
        revision: BigInt(s.revision),
        families: s.families.map(familyTo),
        backend: s.backend?.backend ?? '',
        backendVersion: s.backend?.version ?? '',
        watch: s.watch,
        queueDepth: s.queueDepth,
        batches: BigInt(s.batches),
        ready: s.ready,
        lastExternalChange: s.lastExternalChange ?? '',
        feedLost: s.feedLost ?? '',
        unreadable: s.unreadable ?? '',
        ...(s.otherBackend
          ? {
              otherBackend: {
                backend: s.otherBackend.backend,
                filtering: s.otherBackend.filtering,
                tables: s.otherBackend.tables.map((t) => ({
                  family: familyTo(t.family),
                  table: t.table,
                  rules: t.rules,
                  dropPolicies: [...t.dropPolicies],
                })),
              },
            }
          : {}),
        ...(s.lastVerify ? { lastVerify: { ...s.lastVerify } } : {}),
      };
    },

    appendRule: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'appendRule', value: req })], (r) => ({
        revision: BigInt(r.revision),
        ...withRule(first(r)?.rule),
        changes: changes(r),
      })),

    insertRule: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'insertRule', value: req })], (r) => ({
        revision: BigInt(r.revision),
        ...withRule(first(r)?.rule),
        changes: changes(r),
      })),

    replaceRule: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'replaceRule', value: req })], (r) => {
        const replaced = ruleViewTo(first(r)?.deleted);
        return {
          revision: BigInt(r.revision),
          ...withRule(first(r)?.rule),
          ...(replaced ? { replaced } : {}),
          changes: changes(r),
        };
      }),

    deleteRule: (req, ctx) => {
      const op: ModelOperation = {
        op: 'delete',
        family: familyFrom(req.family),
        table: tableFrom(req.table),
        chain: req.chain,
        target: ruleRefFrom(req.target),
      };
      return write(ctx, req, [op], (r) => {
        const deleted = ruleViewTo(first(r)?.deleted);
        return { revision: BigInt(r.revision), ...(deleted ? { deleted } : {}), changes: changes(r) };
      });
    },

    ensureRule: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'ensureRule', value: req })], (r) => ({
        revision: BigInt(r.revision),
        ...withRule(first(r)?.rule),
        existed: first(r)?.existed === true,
        changes: changes(r),
      })),

    createChain: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'createChain', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    deleteChain: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'deleteChain', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    flushChain: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'flushChain', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    renameChain: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'renameChain', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    setPolicy: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'setPolicy', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    zeroCounters: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'zeroCounters', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    replaceChain: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'replaceChain', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    replaceTable: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'replaceTable', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    reset: (req, ctx) =>
      write(ctx, req, [operationFrom({ case: 'reset', value: req })], (r) => ({
        revision: BigInt(r.revision),
        changes: changes(r),
      })),

    apply: (req, ctx) => {
      const ops = req.operations.map((o, i) => {
        try {
          return operationFrom(o.kind, `operations[${i}]`);
        } catch (e) {
          throw DomainError.from(e);
        }
      });
      return write(
        ctx,
        req,
        ops,
        (r) => ({
          revision: BigInt(r.revision),
          results: r.results.map(opResultTo),
          changes: changes(r),
          dryRun: r.dryRun === true,
          restoreText: Object.fromEntries(
            FAMILIES.filter((f: Family) => r.restoreText?.[f] !== undefined).map((f) => [
              f,
              r.restoreText?.[f] as string,
            ]),
          ),
          lockouts: (r.lockouts ?? []).map(lockoutTo),
          findings: (r.findings ?? []).map(findingTo),
        }),
        req.dryRun,
      );
    },

    listConfirmations() {
      return {
        revision: BigInt(service.revision),
        confirmations: service.listConfirmations().map(pendingTo),
      };
    },

    async confirm(req) {
      return { confirmation: pendingTo(await service.confirm(req.id)) };
    },

    async extendConfirmation(req) {
      return { confirmation: pendingTo(await service.extendConfirmation(req.id, req.confirmWithin)) };
    },

    async cancelConfirmation(req) {
      const r = await service.cancelConfirmation(req.id);
      return { revision: BigInt(service.revision), id: r.id, skipped: [...r.skipped] };
    },

    rateLimit: (req, ctx) =>
      write(
        ctx,
        req,
        (options) =>
          service.preset(
            {
              kind: 'rateLimit',
              params: {
                ...(req.families.length ? { families: req.families.map(familyFrom) } : {}),
                port: req.port,
                ...(req.protocol
                  ? { protocol: presetWord(req.protocol, ['tcp', 'udp'] as const, 'protocol') }
                  : {}),
                ...(req.seconds !== undefined ? { seconds: req.seconds } : {}),
                ...(req.hitcount !== undefined ? { hitcount: req.hitcount } : {}),
                ...(req.chain ? { chain: req.chain } : {}),
                ...(req.inputChain ? { inputChain: req.inputChain } : {}),
                ...(req.logPrefix !== undefined ? { logPrefix: req.logPrefix } : {}),
                ...(req.logLevel !== undefined ? { logLevel: req.logLevel } : {}),
                ...(req.action
                  ? { action: presetWord(req.action, ['DROP', 'REJECT'] as const, 'action') }
                  : {}),
                ...(req.method
                  ? { method: presetWord(req.method, ['recent', 'hashlimit'] as const, 'method') }
                  : {}),
                ...(req.name ? { name: req.name } : {}),
              },
            },
            options,
          ),
        presetTo,
        req.dryRun,
      ),

    harden: (req, ctx) =>
      write(
        ctx,
        req,
        (options) =>
          service.preset(
            {
              kind: 'harden',
              params: {
                ...(req.families.length ? { families: req.families.map(familyFrom) } : {}),
                ...(req.sshPort !== undefined ? { sshPort: req.sshPort } : {}),
                allowSshFrom: [...req.allowSshFrom],
              },
            },
            options,
          ),
        presetTo,
        req.dryRun,
      ),

    async trace(req) {
      const ops = req.operations.map((o, i) => operationFrom(o.kind, `operations[${i}]`));
      return traceReportTo(await service.trace(packetFrom(req.packet), ops.length > 0 ? ops : undefined));
    },

    lint() {
      const revision = service.revision;
      return { revision: BigInt(revision), findings: service.lint().map(findingTo) };
    },

    async reload() {
      const r = await service.reload();
      return { revision: BigInt(r.revision), changed: r.changed };
    },

    async verify() {
      const r = await service.verify();
      return {
        revision: BigInt(r.revision),
        time: r.time,
        consistent: r.consistent,
        durationMs: r.durationMs,
        differences: r.differences.map((d) => ({
          family: familyTo(d.family),
          table: d.table,
          chain: d.chain,
          kind: d.kind,
          onlyInModel: [...(d.onlyInModel ?? [])],
          onlyInKernel: [...(d.onlyInKernel ?? [])],
          modelPolicy: d.modelPolicy ?? '',
          kernelPolicy: d.kernelPolicy ?? '',
        })),
      };
    },

    async watch(_req, send, ctx) {
      await new Promise<void>((resolve, reject) => {
        let unsubscribe: (() => void) | undefined;
        const stop = (error?: unknown) => {
          unsubscribe?.();
          unsubscribe = undefined;
          if (error === undefined) resolve();
          else reject(error);
        };
        if (ctx.signal.aborted) return stop();
        unsubscribe = service.subscribe((event) => {
          const backlog = send({ event: changeEventTo(event) });
          if (backlog > WATCH_BACKLOG_LIMIT) {
            stop(
              new DomainError(
                'resource_exhausted',
                `this Watch client fell more than ${WATCH_BACKLOG_LIMIT} events behind: reconnect and re-read the ruleset`,
              ),
            );
          }
        });
        ctx.signal.addEventListener('abort', () => stop(), { once: true });
      });
    },
  };
}

function withRule(rule: Parameters<typeof ruleViewTo>[0]) {
  const view = ruleViewTo(rule);
  return view ? { rule: view } : {};
}
