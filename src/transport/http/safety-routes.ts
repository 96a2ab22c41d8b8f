/**
 * The /v1 routes that reason about a change before or after it lands: trace and lint (what a
 * packet's fate would be; what is wrong in the ruleset), confirmations (changes that roll back
 * unless confirmed) and presets (the seed articles as one call). Mounted by routes.ts, sharing
 * its read and write paths (If-Match, Idempotency-Key, problem replies).
 */
import type { Request, Response, Router } from 'express';
import type { ApplyOptions, FirewallApi } from '../../service/api.js';
import type { Reply } from './routes.js';
import { etag, param } from './routes.js';
import {
  changeWire,
  confirmationWire,
  findingWire,
  lockoutWire,
  operationOf,
  operationWire,
  opResultWire,
  pendingWire,
  type Schemas,
  traceReportWire,
} from './wire.js';

type Handler = (req: Request, res: Response) => Promise<void>;

export interface SafetyRouteKit {
  readonly service: FirewallApi;
  readonly read: (run: (req: Request, res: Response) => Reply | Promise<Reply>) => Handler;
  readonly write: (run: (req: Request, ctx: ApplyOptions) => Promise<Reply>) => Handler;
}

export function mountSafetyRoutes(router: Router, kit: SafetyRouteKit): void {
  const { service, read, write } = kit;

  router.post(
    '/trace',
    read(async (req) => {
      const body = req.body as Schemas['TraceRequest'];
      const ops = body.operations?.map((o) => operationOf(o));
      const r = await service.trace(body.packet, ops);
      return { status: 200, body: traceReportWire(r), headers: etag(r.revision) };
    }),
  );

  router.get(
    '/lint',
    read(() => {
      const revision = service.revision;
      const body: Schemas['LintResult'] = { revision, findings: service.lint().map(findingWire) };
      return { status: 200, body, headers: etag(revision) };
    }),
  );

  // ------------------------------------------------------------ change safety

  router.get(
    '/confirmations',
    read(() => {
      const revision = service.revision;
      const body: Schemas['ConfirmationList'] = {
        revision,
        confirmations: service.listConfirmations().map(pendingWire),
      };
      return { status: 200, body, headers: etag(revision) };
    }),
  );
  router.post(
    '/confirmations/:id',
    write(async (req) => {
      const c = await service.confirm(param(req, 'id'));
      return { status: 200, body: pendingWire(c), headers: etag(service.revision) };
    }),
  );
  router.patch(
    '/confirmations/:id',
    write(async (req) => {
      const body = req.body as Schemas['ExtendConfirmationRequest'];
      const c = await service.extendConfirmation(param(req, 'id'), body.confirmWithin);
      return { status: 200, body: pendingWire(c), headers: etag(service.revision) };
    }),
  );
  router.delete(
    '/confirmations/:id',
    write(async (req) => {
      const r = await service.cancelConfirmation(param(req, 'id'));
      const body: Schemas['RollbackResult'] = {
        revision: service.revision,
        id: r.id,
        skipped: [...r.skipped],
      };
      return { status: 200, body, headers: etag(service.revision) };
    }),
  );

  // ------------------------------------------------------------ presets

  /** The options every preset body carries, as for a transaction. */
  const presetOptions = (
    ctx: ApplyOptions,
    b: {
      dryRun?: boolean | undefined;
      allowLockout?: boolean | undefined;
      confirmWithin?: number | undefined;
    },
  ): ApplyOptions => ({
    ...ctx,
    ...(b.dryRun === true ? { dryRun: true } : {}),
    ...(b.allowLockout === true ? { allowLockout: true } : {}),
    ...(b.confirmWithin !== undefined ? { confirmWithin: b.confirmWithin } : {}),
  });
  const preset = (run: (req: Request, ctx: ApplyOptions) => ReturnType<FirewallApi['preset']>) =>
    write(async (req, ctx) => {
      const r = await run(req, ctx);
      const body: Schemas['PresetResult'] = {
        revision: r.revision,
        results: r.results.map(opResultWire),
        changes: r.changes.map(changeWire),
        operations: r.operations.map(operationWire),
        ...(r.dryRun ? { dryRun: true as const } : {}),
        ...(r.restoreText ? { restoreText: { ...r.restoreText } } : {}),
        ...(r.lockouts ? { lockouts: r.lockouts.map(lockoutWire) } : {}),
        ...(r.findings ? { findings: r.findings.map(findingWire) } : {}),
        ...confirmationWire(r),
      };
      return { status: 200, body, headers: etag(r.revision) };
    });
  router.post(
    '/presets/rate-limit',
    preset((req, ctx) => {
      const { dryRun, allowLockout, confirmWithin, ...params } = req.body as Schemas['RateLimitRequest'];
      return service.preset(
        { kind: 'rateLimit', params },
        presetOptions(ctx, {
          dryRun,
          allowLockout,
          ...(confirmWithin !== undefined ? { confirmWithin } : {}),
        }),
      );
    }),
  );
  router.post(
    '/presets/harden',
    preset((req, ctx) => {
      const { dryRun, allowLockout, confirmWithin, ...params } = (req.body ?? {}) as Schemas['HardenRequest'];
      return service.preset(
        { kind: 'harden', params },
        presetOptions(ctx, {
          dryRun,
          allowLockout,
          ...(confirmWithin !== undefined ? { confirmWithin } : {}),
        }),
      );
    }),
  );
}
