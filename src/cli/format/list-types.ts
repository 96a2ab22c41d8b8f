/**
 * What the `-L` and `-S` renderers take: a chain as the API describes it (ChainView with
 * ChainSummary's reference count), in the order iptables lists chains (built-ins first, then
 * user chains sorted by name; the caller orders them), and how to print it. Plain data so the
 * renderers are pure and testable against the kernel without a service.
 */
import type { Family } from '../../domain/family.js';
import type { Names } from './names.js';

/** Packet and byte counters as the API sends them: decimal strings (they can exceed 2^53). */
export interface ListCounters {
  readonly packets: string;
  readonly bytes: string;
}

export interface ListRule {
  /** The canonical rule text (iptables-save's form after `-A CHAIN`). */
  readonly text: string;
  readonly counters?: ListCounters;
}

export interface ListChain {
  readonly name: string;
  readonly builtin: boolean;
  readonly policy?: string;
  /** Policy counters (built-ins), with `-v`. */
  readonly counters?: ListCounters;
  /** Rules that jump or go to it (user chains: `Chain X (N references)`). */
  readonly references: number;
  readonly rules: readonly ListRule[];
}

export interface ListFormat {
  readonly family: Family;
  /** `-n`: numbers for addresses, ports, protocols. */
  readonly numeric: boolean;
  /** `-v`: counters and interfaces. */
  readonly verbose: boolean;
  /** `-x`: exact counters instead of K/M/G/T. */
  readonly exact: boolean;
  /** `--line-numbers`. */
  readonly lineNumbers: boolean;
  /** `-L CHAIN RULENUM`: only that rule's line, without headers. */
  readonly position?: number;
  /** Names for non-numeric output; the host's files by default. */
  readonly names?: Names;
}
