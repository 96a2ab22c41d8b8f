/**
 * The entry points of the simulator: pick the ruleset of the packet's
 * family, compile it (cached), and walk. `trace` validates untrusted input;
 * `tracePacket` takes an already validated Packet (the linter and benchmarks
 * use it). In a Map or list, a family without a ruleset is an empty
 * firewall (everything accepted by the default ACCEPT policies); a single
 * Ruleset of the other family is an error, not a silent "accept".
 */
import { invalid } from '../domain/errors.js';
import type { Family } from '../domain/family.js';
import type { Ruleset } from '../domain/model.js';
import { compileRuleset } from './compile.js';
import { normalizePacket } from './normalize-packet.js';
import type { Packet } from './packet.js';
import type { TraceResult } from './result.js';
import { SimState } from './state.js';
import { type TraceOptions, Walker } from './trace.js';

export type Rulesets = ReadonlyMap<Family, Ruleset> | Ruleset | readonly Ruleset[];

const EMPTY: Record<Family, Ruleset> = {
  ipv4: Object.freeze({ family: 'ipv4', tables: Object.freeze([]) }),
  ipv6: Object.freeze({ family: 'ipv6', tables: Object.freeze([]) }),
};

/** The ruleset for `family` out of any of the accepted shapes. */
export function rulesetFor(rulesets: Rulesets, family: Family): Ruleset {
  if (rulesets instanceof Map) {
    const r = (rulesets as ReadonlyMap<Family, Ruleset>).get(family);
    if (r && r.family !== family)
      throw invalid('rulesets', `the ${family} entry holds a ${r.family} ruleset`);
    return r ?? EMPTY[family];
  }
  if (Array.isArray(rulesets))
    return (rulesets as readonly Ruleset[]).find((r) => r.family === family) ?? EMPTY[family];
  const one = rulesets as Ruleset;
  if (one.family !== family)
    throw invalid(
      'family',
      `the packet is ${family} but the ruleset is ${one.family}; pass both families in a Map`,
    );
  return one;
}

/** Traces a validated packet. */
export function tracePacket(rulesets: Rulesets, packet: Packet, options?: TraceOptions): TraceResult {
  const compiled = compileRuleset(rulesetFor(rulesets, packet.family));
  return new Walker(compiled, packet.hook, options).run(SimState.from(packet));
}

/**
 * Traces a packet described by untrusted input (validated with normalizePacket:
 * throws DomainError `invalid_argument` naming the field).
 */
export function trace(rulesets: Rulesets, packet: unknown, options?: TraceOptions): TraceResult {
  return tracePacket(rulesets, normalizePacket(packet), options);
}
