/**
 * What the linter reports. Codes are stable identifiers clients may key on;
 * messages and suggestions are for people and may be reworded.
 */
import type { Family, TableName } from '../../domain/family.js';
import type { RuleRef } from '../result.js';

export type Severity = 'error' | 'warning' | 'info';

export const FINDING_CODES = [
  'shadowed-rule',
  'redundant-rule',
  'unreachable-rule',
  'duplicate-rule',
  'jump-to-missing-chain',
  'jump-to-empty-chain',
  'recent-list-never-set',
  'unknown-ipset',
  'log-without-verdict',
  'ipv6-nd-blocked',
  'input-drop-without-established',
  'analysis-truncated',
] as const;
export type FindingCode = (typeof FINDING_CODES)[number];

export interface Finding {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  /** The rules involved, the one the finding is about first. Empty for a chain-level finding. */
  readonly rules: readonly RuleRef[];
  /** One sentence saying what is wrong. */
  readonly message: string;
  /** One sentence saying how to fix it. */
  readonly suggestion: string;
}

export interface LintOptions {
  /** Names of the ipsets that exist; without it, `set` matches are not checked. */
  readonly knownIpsets?: readonly string[];
  /** Most rule-pair comparisons for shadowing per chain. @default 2_000_000 */
  readonly maxComparisons?: number;
}

export const SEVERITY_ORDER: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 };
