/**
 * The /v1 routes that report the service's state as a whole: status, verify (model against a
 * fresh save of the kernel) and the whole ruleset of a family, as JSON or iptables-save text,
 * managed or the other backend's. Mounted by routes.ts, sharing its read path.
 */
import type { Request, Response, Router } from 'express';
import type { FirewallApi } from '../../service/api.js';
import { ProblemError } from './problem.js';
import type { Reply } from './routes.js';
import { etag, familyOf } from './routes.js';
import { chainWire, type Schemas } from './wire.js';

export interface StateRouteKit {
  readonly service: FirewallApi;
  readonly read: (
    run: (req: Request, res: Response) => Reply | Promise<Reply>,
  ) => (req: Request, res: Response) => Promise<void>;
}

export function mountStateRoutes(router: Router, kit: StateRouteKit): void {
  const { service, read } = kit;

  router.get(
    '/status',
    read(() => {
      const s = service.status();
      const body: Schemas['Status'] = {
        revision: s.revision,
        families: [...s.families],
        ...(s.backend ? { backend: { backend: s.backend.backend, version: s.backend.version } } : {}),
        watch: s.watch,
        queueDepth: s.queueDepth,
        batches: s.batches,
        ready: s.ready,
        ...(s.lastExternalChange ? { lastExternalChange: s.lastExternalChange } : {}),
        ...(s.feedLost ? { feedLost: s.feedLost } : {}),
        ...(s.unreadable ? { unreadable: s.unreadable } : {}),
        ...(s.otherBackend
          ? {
              otherBackend: {
                ...s.otherBackend,
                tables: s.otherBackend.tables.map((t) => ({ ...t, dropPolicies: [...t.dropPolicies] })),
              },
            }
          : {}),
        ...(s.lastVerify ? { lastVerify: { ...s.lastVerify } } : {}),
      };
      return { status: 200, body, headers: etag(s.revision) };
    }),
  );

  router.get(
    '/verify',
    read(async () => {
      const r = await service.verify();
      const body: Schemas['VerifyResult'] = {
        ...r,
        differences: r.differences.map(({ onlyInModel, onlyInKernel, ...d }) => ({
          ...d,
          ...(onlyInModel ? { onlyInModel: [...onlyInModel] } : {}),
          ...(onlyInKernel ? { onlyInKernel: [...onlyInKernel] } : {}),
        })),
      };
      return { status: 200, body, headers: etag(r.revision) };
    }),
  );

  router.get(
    '/ruleset',
    read((req) => {
      const family = familyOf(req);
      const { revision, ruleset } = service.getRuleset(family);
      const type = req.accepts(['application/json', 'text/plain']);
      if (type === false) {
        throw new ProblemError(
          406,
          'not_acceptable',
          'the ruleset is available as application/json or text/plain',
        );
      }
      if (req.query.backend === 'other') {
        const other = service.getOtherRulesetView(family);
        if (type === 'text/plain')
          return {
            status: 200,
            body: other.text,
            headers: { ...etag(revision), Vary: 'Accept' },
            type: 'text/plain; charset=utf-8',
          };
        const body: Schemas['Ruleset'] = {
          revision,
          family,
          tables: other.tables.map((t) => ({ name: t.name, chains: t.chains.map(chainWire) })),
        };
        return { status: 200, body, headers: { ...etag(revision), Vary: 'Accept' } };
      }
      if (type === 'text/plain') {
        return {
          status: 200,
          body: service.getRulesetText(family).text,
          headers: { ...etag(revision), Vary: 'Accept' },
          type: 'text/plain; charset=utf-8',
        };
      }
      const body: Schemas['Ruleset'] = {
        revision,
        family,
        tables: ruleset.tables.map((t) => ({
          name: t.name,
          chains: service.getTable(family, t.name).chains.map(chainWire),
        })),
      };
      return { status: 200, body, headers: { ...etag(revision), Vary: 'Accept' } };
    }),
  );
}
