/**
 * Shared helpers for the simulator tests: rulesets written as iptables-save
 * text (readable, and parsed by the production parser), and short summaries
 * of trace results to assert on.
 */
import type { Family } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import type { Outcome, PathStep, TraceResult } from '../../src/simulate/index.js';
import { trace } from '../../src/simulate/index.js';

/** `*filter` table text from rule lines; `policy` for INPUT, user chains declared by `chains`. */
export function filter(
  lines: readonly string[],
  opts: { policy?: string; chains?: readonly string[] } = {},
): string {
  return [
    '*filter',
    `:INPUT ${opts.policy ?? 'ACCEPT'} [0:0]`,
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...(opts.chains ?? []).map((c) => `:${c} - [0:0]`),
    ...lines,
    'COMMIT',
    '',
  ].join('\n');
}

export function rs(text: string, family: Family = 'ipv4'): Ruleset {
  return parseSave(text, family);
}

/** A filter ruleset of INPUT rules. */
export function input(
  lines: readonly string[],
  opts: { policy?: string; chains?: readonly string[]; family?: Family } = {},
): Ruleset {
  return rs(filter(lines, opts), opts.family ?? 'ipv4');
}

export const tcpSyn = {
  family: 'ipv4',
  hook: 'INPUT',
  inInterface: 'eth0',
  source: '198.51.100.7',
  destination: '192.0.2.1',
  protocol: 'tcp',
  sourcePort: 40000,
  destinationPort: 22,
  tcpFlags: ['SYN'],
  ctState: 'NEW',
  length: 60,
  ttl: 64,
} as const;

export function run(
  ruleset: Ruleset | ReadonlyMap<Family, Ruleset>,
  packet: Record<string, unknown>,
): TraceResult {
  return trace(ruleset, packet);
}

/** `CHAIN#pos:yes|no|maybe(assumed)`, `policy:CHAIN:DROP`, `note` for each step. */
export function steps(path: readonly PathStep[]): string[] {
  return path.map((s) => {
    if (s.kind === 'rule') return `${s.chain}#${s.position}:${s.matched}${s.assumed ? `(${s.assumed})` : ''}`;
    if (s.kind === 'policy') return `policy:${s.chain}:${s.policy}`;
    return 'note';
  });
}

/** The single outcome of a definite, unbranched trace. */
export function only(r: TraceResult): Outcome {
  if (r.outcomes.length !== 1)
    throw new Error(`expected one outcome, got ${r.outcomes.length}: ${r.possibleVerdicts.join(',')}`);
  return r.outcomes[0] as Outcome;
}

/** The verdict of a definite trace, or `maybe:V1,V2` listing the possible ones. */
export function verdict(r: TraceResult): string {
  return r.definite ? r.verdict : `maybe:${r.possibleVerdicts.join(',')}`;
}
