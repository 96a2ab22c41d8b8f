/**
 * What the doors offer besides the firewall itself: writing the rules files now
 * (POST /v1/save, gRPC Save) and reading the audit log (GET /v1/audit, gRPC
 * ListAuditEntries). A narrow port like FirewallApi: the entry point implements it
 * with store/persistence.ts and observe/audit.ts; the doors know nothing else of them.
 */
import type { AuditEntry, AuditQuery } from '../observe/audit.js';
import type { SaveResult } from '../store/persistence.js';

export type { AuditEntry, AuditQuery } from '../observe/audit.js';
export type { SaveResult } from '../store/persistence.js';

export interface DaemonApi {
  /** Writes the rules files now; `failed_precondition` (field `persist`) when saving is off. */
  save(): Promise<SaveResult>;
  /** Audit entries at or after `since`, oldest first; `failed_precondition` (field `auditLog`) when off. */
  audit(query: AuditQuery): Promise<{ entries: readonly AuditEntry[]; truncated: boolean }>;
}

/** Most audit entries one request may return. */
export const AUDIT_MAX_LIMIT = 10_000;
/** Audit entries returned when the request names no limit. */
export const AUDIT_DEFAULT_LIMIT = 1000;

/** The refusal of an audit `limit` out of range (both doors say the same). */
export function auditLimitRefused(got: string): string {
  return `limit must be a whole number from 1 to ${AUDIT_MAX_LIMIT}, got ${got.slice(0, 20)}`;
}
