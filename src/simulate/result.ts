/**
 * What a trace answers. A trace is either definite (every explored branch
 * reached the same verdict and the exploration was complete) or not; both
 * list every outcome with its full path, so a client can see which rules
 * made the answer uncertain and what each possibility would look like.
 */
import type { Family, TableName } from '../domain/family.js';
import type { Policy } from '../domain/model.js';
import type { Hook } from './packet.js';

export type Matched = 'yes' | 'no' | 'maybe';

/** Where a rule is: positions count from 1, as `iptables -L --line-numbers` does. */
export interface RuleRef {
  readonly table: TableName;
  readonly chain: string;
  readonly position: number;
  readonly ruleId: string;
  readonly ruleText: string;
}

export interface RuleStep extends RuleRef {
  readonly kind: 'rule';
  readonly matched: Matched;
  /** For `maybe`: what this branch assumed. */
  readonly assumed?: 'yes' | 'no';
  /** For `maybe`: why the match could not be decided. */
  readonly reasons?: readonly string[];
  /** What the rule's target did (mark set, NAT rewrite, ...). */
  readonly note?: string;
}

export interface PolicyStep {
  readonly kind: 'policy';
  readonly table: TableName;
  readonly chain: string;
  readonly policy: Policy;
}

/** A note that is not a rule: the nat table was skipped, an untyped target stopped the packet, ... */
export interface NoteStep {
  readonly kind: 'note';
  readonly table: TableName;
  readonly text: string;
}

export type PathStep = RuleStep | PolicyStep | NoteStep;

/** QUEUE covers QUEUE and NFQUEUE; UNKNOWN is an untyped target or an invalid ruleset. */
export type Verdict = 'ACCEPT' | 'DROP' | 'REJECT' | 'QUEUE' | 'UNKNOWN';

export interface TableDecision {
  readonly table: TableName;
  readonly verdict: Verdict;
  readonly by: PathStep;
}

export interface NatChange {
  readonly table: TableName;
  readonly chain: string;
  readonly position: number;
  readonly ruleId: string;
  readonly description: string;
}

export interface Outcome {
  readonly verdict: Verdict;
  /** The step that decided: the stopping rule, or for ACCEPT the filter table's (else the last table's) decision. */
  readonly decidedBy: PathStep | undefined;
  /** For REJECT: the answer sent (`icmp-port-unreachable`, `tcp-reset`, ...). */
  readonly rejectWith?: string;
  /** Each table the packet went through and how it left it. */
  readonly tables: readonly TableDecision[];
  readonly path: readonly PathStep[];
  /** The undecidable rules on this branch and what was assumed for each. */
  readonly assumptions: readonly RuleStep[];
  readonly nat: readonly NatChange[];
  /** The packet mark at the end (`0x1`, or partly known). */
  readonly mark: string;
}

export interface UncertainRule extends RuleRef {
  readonly reasons: readonly string[];
}

interface TraceBase {
  readonly family: Family;
  readonly hook: Hook;
  /** Every verdict some explored branch reached, in a fixed order. */
  readonly possibleVerdicts: readonly Verdict[];
  readonly outcomes: readonly Outcome[];
  /** Rules whose match could not be decided (each once), with the reasons. */
  readonly uncertain: readonly UncertainRule[];
  /** The exploration hit its bound: other verdicts may exist. */
  readonly truncated: boolean;
}

export interface DefiniteTrace extends TraceBase {
  readonly definite: true;
  readonly verdict: Verdict;
}

export interface UncertainTrace extends TraceBase {
  readonly definite: false;
}

export type TraceResult = DefiniteTrace | UncertainTrace;

export const VERDICT_ORDER: readonly Verdict[] = ['ACCEPT', 'DROP', 'REJECT', 'QUEUE', 'UNKNOWN'];
