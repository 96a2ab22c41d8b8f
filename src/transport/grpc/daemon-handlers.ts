/**
 * Save and ListAuditEntries: the gRPC side of the DaemonApi port (POST /v1/save and
 * GET /v1/audit on REST), with the same validation and errors.
 */
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { DomainError, invalid } from '../../domain/errors.js';
import type { FirewallService } from '../../gen/portcullis/v1/firewall_service_pb.js';
import { AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, auditLimitRefused, type DaemonApi } from '../daemon-api.js';
import type { ServiceHandlers } from './adapter.js';
import { changeTo, familyTo } from './convert.js';

type DaemonHandlers = Pick<ServiceHandlers<typeof FirewallService>, 'save' | 'listAuditEntries'>;

function required(daemon: DaemonApi | undefined): DaemonApi {
  if (!daemon)
    throw new DomainError('failed_precondition', 'this service has no rules files or audit log', {
      field: 'persist',
    });
  return daemon;
}

const family = (f: string) => familyTo(f === 'ipv6' ? 'ipv6' : 'ipv4');

export function daemonHandlers(daemon: DaemonApi | undefined): DaemonHandlers {
  return {
    async save() {
      const r = await required(daemon).save();
      return {
        revision: BigInt(r.revision),
        time: timestampFromDate(new Date(r.time)),
        files: r.files.map((f) => ({ family: familyTo(f.family), path: f.path, bytes: BigInt(f.bytes) })),
      };
    },
    async listAuditEntries(req) {
      if (req.limit > AUDIT_MAX_LIMIT) throw invalid('limit', auditLimitRefused(String(req.limit)));
      const since = req.since ? timestampDate(req.since) : undefined;
      if (since !== undefined && Number.isNaN(since.getTime()))
        throw invalid('since', 'since must be a valid time');
      const r = await required(daemon).audit({
        ...(since ? { since } : {}),
        limit: req.limit === 0 ? AUDIT_DEFAULT_LIMIT : req.limit,
      });
      return {
        entries: r.entries.map((e) => ({
          time: timestampFromDate(new Date(e.time)),
          identity: e.identity ?? '',
          door: e.door ?? '',
          requestId: e.requestId ?? '',
          operations: [...e.operations],
          revisionBefore: BigInt(e.revisionBefore),
          revisionAfter: BigInt(e.revisionAfter),
          restore: e.restore.map((x) => ({ family: family(x.family), text: x.text })),
          changes: e.changes.map(changeTo),
        })),
        truncated: r.truncated,
      };
    },
  };
}
