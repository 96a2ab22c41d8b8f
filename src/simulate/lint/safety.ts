/**
 * Lockout checks, answered by the simulator rather than by pattern matching:
 * a representative packet is traced through the real ruleset, so an accept
 * rule in a user chain, a goto or an earlier drop are all taken into account,
 * and the finding names the rule or policy that drops the packet.
 *
 * - ipv6 neighbour discovery: router/neighbour solicitations and
 *   advertisements (ICMPv6 133-136) are UNTRACKED by conntrack (the kernel
 *   never tracks them), arrive from link-local addresses with hop limit 255.
 *   A DROP policy that does not let them in cuts the host off its link.
 * - replies: with a DROP policy, a TCP packet of an ESTABLISHED connection
 *   (the answer to a connection the host opened) needs an ESTABLISHED accept.
 */
import type { Family } from '../../domain/family.js';
import type { Ruleset, Table } from '../../domain/model.js';
import { isGoto, isJump, isRawMatch } from '../../domain/model.js';
import type { Packet } from '../packet.js';
import type { Outcome, PathStep, RuleRef, TraceResult } from '../result.js';
import { tracePacket } from '../simulate.js';
import type { Finding } from './finding.js';

const ND_TYPES: readonly (readonly [number, string, string])[] = [
  [133, 'router solicitation', 'ff02::2'],
  [134, 'router advertisement', 'ff02::1'],
  [135, 'neighbour solicitation', 'ff02::1:ff00:1'],
  [136, 'neighbour advertisement', 'fe80::2'],
];

const isDrop = (o: Outcome) => o.verdict === 'DROP' || o.verdict === 'REJECT';

/** filter INPUT drops what nothing accepts: DROP policy or a final unconditional DROP/REJECT. */
function dropsByDefault(table: Table | undefined): boolean {
  const input = table?.chains.find((c) => c.name === 'INPUT');
  if (!input) return false;
  if (input.policy === 'DROP') return true;
  const last = input.rules[input.rules.length - 1];
  if (!last?.target || isJump(last.target) || isGoto(last.target)) return false;
  const bare =
    last.source === undefined &&
    last.destination === undefined &&
    last.inInterface === undefined &&
    last.protocol === undefined &&
    last.matches.every((m) => m.module === 'comment');
  return bare && (last.target.target === 'DROP' || last.target.target === 'REJECT');
}

function stepRef(step: PathStep | undefined): RuleRef | undefined {
  return step?.kind === 'rule' ? step : undefined;
}

function describe(step: PathStep | undefined): string {
  if (step?.kind === 'rule') return `rule ${step.position} of ${step.chain} (${step.ruleText})`;
  if (step?.kind === 'policy') return `the ${step.chain} policy ${step.policy}`;
  return 'the ruleset';
}

function droppers(results: readonly TraceResult[]): { refs: RuleRef[]; text: string } {
  const steps = results.flatMap((r) => r.outcomes.filter(isDrop).map((o) => o.decidedBy));
  const unique = [...new Map(steps.map((s) => [describe(s), s])).values()];
  return {
    refs: unique.flatMap((s) => stepRef(s) ?? []),
    text: unique.map(describe).join(', '),
  };
}

export function neighbourDiscoveryFinding(ruleset: Ruleset): Finding | undefined {
  if (ruleset.family !== 'ipv6') return undefined;
  const filter = ruleset.tables.find((t) => t.name === 'filter');
  if (!dropsByDefault(filter)) return undefined;
  const blocked: { name: string; result: TraceResult; sure: boolean }[] = [];
  for (const [type, name, destination] of ND_TYPES) {
    const packet: Packet = {
      family: 'ipv6',
      hook: 'INPUT',
      protocol: 58,
      icmpType: type,
      icmpCode: 0,
      ttl: 255,
      source: 'fe80::1',
      destination,
      ctState: 'UNTRACKED',
      fragment: false,
    };
    const result = tracePacket(ruleset, packet);
    if (result.outcomes.some(isDrop)) blocked.push({ name, result, sure: result.outcomes.every(isDrop) });
  }
  if (blocked.length === 0) return undefined;
  const sure = blocked.some((b) => b.sure);
  const by = droppers(blocked.map((b) => b.result));
  return {
    family: 'ipv6',
    table: 'filter',
    chain: 'INPUT',
    code: 'ipv6-nd-blocked',
    severity: sure ? 'error' : 'warning',
    rules: by.refs,
    message: `ICMPv6 ${blocked.map((b) => b.name).join(', ')} ${sure ? 'is' : 'may be'} dropped by ${by.text}, which cuts the host off its IPv6 neighbours.`,
    suggestion:
      'Accept neighbour discovery before the drop: -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT, and the same for types 133, 134 and 136.',
  };
}

/** Chains reachable from `start` through jumps and gotos. */
function reachable(table: Table, start: string): Set<string> {
  const byName = new Map(table.chains.map((c) => [c.name, c]));
  const seen = new Set<string>([start]);
  const todo = [start];
  for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
    for (const r of byName.get(name)?.rules ?? []) {
      const t = r.target;
      const next = t && isJump(t) ? t.jump : t && isGoto(t) ? t.goto : undefined;
      if (next !== undefined && !seen.has(next) && byName.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

function acceptsEstablished(table: Table): boolean {
  const chains = reachable(table, 'INPUT');
  return table.chains.some(
    (c) =>
      chains.has(c.name) &&
      c.rules.some(
        (r) =>
          r.target !== undefined &&
          'target' in r.target &&
          r.target.target === 'ACCEPT' &&
          r.matches.some((m) => {
            if (isRawMatch(m)) return false;
            if (m.module === 'state')
              return (
                m.state !== undefined &&
                m.state.includes('ESTABLISHED') !== (m.invert?.includes('state') ?? false)
              );
            if (m.module === 'conntrack')
              return (
                m.ctstate !== undefined &&
                m.ctstate.includes('ESTABLISHED') !== (m.invert?.includes('ctstate') ?? false)
              );
            return false;
          }),
      ),
  );
}

export function establishedFinding(ruleset: Ruleset): Finding | undefined {
  const filter = ruleset.tables.find((t) => t.name === 'filter');
  if (!filter || !dropsByDefault(filter) || acceptsEstablished(filter)) return undefined;
  const family: Family = ruleset.family;
  const packet: Packet = {
    family,
    hook: 'INPUT',
    protocol: 6,
    tcpFlags: ['ACK'],
    ctState: 'ESTABLISHED',
    ctDirection: 'REPLY',
    fragment: false,
  };
  const result = tracePacket(ruleset, packet);
  if (!result.outcomes.some(isDrop)) return undefined;
  const sure = result.outcomes.every(isDrop);
  const by = droppers([result]);
  return {
    family,
    table: 'filter',
    chain: 'INPUT',
    code: 'input-drop-without-established',
    severity: sure ? 'error' : 'warning',
    rules: by.refs,
    message: `INPUT drops by default but accepts no ESTABLISHED packets, so replies to connections this host opens ${sure ? 'are' : 'may be'} dropped (by ${by.text}).`,
    suggestion: 'Add -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT near the top of INPUT.',
  };
}
