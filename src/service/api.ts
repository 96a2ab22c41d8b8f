/**
 * FirewallApi: the narrow port the front doors (REST, gRPC, and the CLI through
 * REST) depend on. Reads, changes and the event stream; nothing about how the
 * service is built. The doors import their types from here only, never from
 * the service's rooms.
 */
import type { Family, TableName } from '../domain/family.js';
import type { Ruleset } from '../domain/model.js';
import type { Finding } from '../simulate/index.js';
import type { RollbackReport } from './deferred.js';
import type { ChangeListener } from './events.js';
import type { PresetRequest, ServiceStatus, TraceReport } from './firewall-service.js';
import type { ApplyOptions, Operation } from './operations.js';
import type { ConfirmationRecord } from './pending.js';
import type { VerifyResult } from './verify.js';
import type { ApplyResult, ChainSummary, ChainView, RuleView } from './views.js';

export type { HardenParams, RateLimitParams } from '../presets/presets.js';
export type { Finding, PathStep, TraceResult } from '../simulate/index.js';
export type { RollbackReport } from './deferred.js';
export type { ChangeEvent, ChangeEventChange, ChangeListener } from './events.js';
export type { PresetRequest, ServiceStatus, TraceReport } from './firewall-service.js';
export type { Lockout } from './guard.js';
export type { OtherBackend } from './kernel-sync.js';
export type { CommitRecord, ServiceObserver } from './observer.js';
export type { ApplyOptions, Operation, OperationName, RuleInput, RuleRef } from './operations.js';
export type { ConfirmationRecord } from './pending.js';
export type { VerifyDifference, VerifyResult } from './verify.js';
export type { ApplyResult, ChainSummary, ChainView, OpResult, RuleDetail, RuleView } from './views.js';

export interface FirewallApi {
  /** Families this service manages. */
  readonly families: readonly Family[];
  /** The current revision: it advances with every change, ours or found in the kernel. */
  readonly revision: number;
  /** Started and not closing. */
  readonly ready: boolean;
  status(): ServiceStatus;
  /** Every change from now on, in revision order; returns the unsubscribe. */
  subscribe(listener: ChangeListener): () => void;

  getRuleset(family: Family): { revision: number; ruleset: Ruleset };
  /** The other iptables backend's ruleset (legacy next to nf_tables), read only, if it has tables. */
  getOtherRuleset(family: Family): Ruleset | undefined;
  /** The same as views (rules with ids and positions) and as iptables-save text; not_found when it has no tables. */
  getOtherRulesetView(family: Family): { tables: { name: TableName; chains: ChainView[] }[]; text: string };
  /** The ruleset as iptables-save prints it (comments and counters aside). */
  getRulesetText(family: Family): { revision: number; text: string };
  getTable(family: Family, table: TableName): { revision: number; chains: ChainView[] };
  /** One chain; with `counters`, read live from the kernel. */
  getChain(
    family: Family,
    table: TableName,
    chain: string,
    options?: { counters?: boolean },
  ): Promise<{ revision: number; chain: ChainView }>;
  listChains(family: Family, table: TableName): { revision: number; chains: ChainSummary[] };
  findRule(family: Family, table: TableName, id: string): { chain: string; rule: RuleView } | undefined;

  /** Operations as one all-or-nothing transaction; with `dryRun`, the plan without applying it. */
  apply(ops: readonly Operation[], options?: ApplyOptions): Promise<ApplyResult>;
  /** Re-reads the kernel now (after pending changes). */
  reload(): Promise<{ revision: number; changed: boolean }>;
  /** Compares the model with the kernel and reports every difference (then re-reads when they differ). */
  verify(): Promise<VerifyResult>;
  /** A packet through the current ruleset, or through the one a proposed transaction would leave. */
  trace(packet: unknown, operations?: readonly Operation[]): Promise<TraceReport>;
  /** Lint findings of the current ruleset. */
  lint(): Finding[];
  /** Commit-confirmed changes waiting for a confirmation. */
  listConfirmations(): ConfirmationRecord[];
  confirm(id: string): Promise<ConfirmationRecord>;
  extendConfirmation(id: string, seconds: number): Promise<ConfirmationRecord>;
  cancelConfirmation(id: string): Promise<RollbackReport>;
  /** A preset (rate limit, hardening) as one transaction; the result holds its operations. */
  preset(request: PresetRequest, options?: ApplyOptions): Promise<ApplyResult & { operations: Operation[] }>;
}
