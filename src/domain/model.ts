/**
 * The rule model: what a firewall *is*, independent of how it is spelled.
 * Values are immutable and canonical: two rules that iptables treats as the
 * same have equal models (and equal `ruleText`). A match or target we do not
 * type is kept as its exact, validated tokens, so a round trip through the
 * model never loses or changes a rule of a real ruleset.
 */
import type { TypedMatch } from './extensions/matches.js';
import type { TypedTarget } from './extensions/targets.js';
import type { Family, TableName } from './family.js';

export type { TypedMatch } from './extensions/matches.js';
export type { TypedTarget } from './extensions/targets.js';
export type { Family, TableName } from './family.js';

/**
 * A match we do not type: `-m NAME` followed by these words, kept exactly as
 * written on an iptables line (a value with spaces or quotes is one word in
 * double quotes, `"a b"`, as iptables-save prints it).
 */
export interface RawMatch {
  readonly module: string;
  readonly raw: readonly string[];
}
export type Match = TypedMatch | RawMatch;

/** `-j CHAIN`: continue in a user chain, come back on RETURN. */
export interface JumpTarget {
  readonly jump: string;
}
/** `-g CHAIN`: continue in a user chain, do not come back here. */
export interface GotoTarget {
  readonly goto: string;
}
/** A target we do not type: `-j NAME` followed by these words, kept exactly as written (see RawMatch). */
export interface RawTarget {
  readonly target: string;
  readonly raw: readonly string[];
}
export type Target = TypedTarget | JumpTarget | GotoTarget | RawTarget;

/** Rule-level fields that `!` can negate. */
export type RuleField = 'protocol' | 'source' | 'destination' | 'inInterface' | 'outInterface' | 'fragment';
export const RULE_FIELDS: readonly RuleField[] = [
  'source',
  'destination',
  'inInterface',
  'outInterface',
  'protocol',
  'fragment',
];

export interface Counters {
  readonly packets: bigint;
  readonly bytes: bigint;
}

export interface Rule {
  /** `-p`: canonical name (`tcp`, `ipv6-icmp`) or number; absent means all. */
  readonly protocol?: string;
  /** `-s`: canonical CIDR (`192.0.2.0/24`, hosts as `/32` or `/128`). */
  readonly source?: string;
  /** `-d`: canonical CIDR. */
  readonly destination?: string;
  /** `-i`: interface name, `+` suffix as wildcard. */
  readonly inInterface?: string;
  /** `-o`: interface name, `+` suffix as wildcard. */
  readonly outInterface?: string;
  /** `-f`: second and later fragments only (IPv4). */
  readonly fragment?: true;
  /** Fields negated with `!`. */
  readonly invert?: readonly RuleField[];
  /** Matches in the order they are evaluated. */
  readonly matches: readonly Match[];
  /** What happens on a match; absent for a rule that only counts. */
  readonly target?: Target;
  /** Packet and byte counters, when read with counters. Not part of the rule's identity. */
  readonly counters?: Counters;
}

export type Policy = 'ACCEPT' | 'DROP';

export interface Chain {
  readonly name: string;
  /** Built-in chains have a policy; user chains do not. */
  readonly policy?: Policy;
  /** The built-in chain's policy counters, when read with counters. */
  readonly counters?: Counters;
  readonly rules: readonly Rule[];
}

export interface Table {
  readonly name: TableName;
  /** Built-in chains first in iptables' order, then user chains in the order iptables-save lists them. */
  readonly chains: readonly Chain[];
}

export interface Ruleset {
  readonly family: Family;
  readonly tables: readonly Table[];
}

export function isRawMatch(m: Match): m is RawMatch {
  return 'raw' in m;
}
export function isJump(t: Target): t is JumpTarget {
  return 'jump' in t;
}
export function isGoto(t: Target): t is GotoTarget {
  return 'goto' in t;
}
export function isRawTarget(t: Target): t is RawTarget {
  return 'raw' in t;
}

/** The user chain a rule jumps or goes to, if any. */
export function targetChain(rule: Rule): string | undefined {
  const t = rule.target;
  if (!t) return undefined;
  if (isJump(t)) return t.jump;
  if (isGoto(t)) return t.goto;
  return undefined;
}
