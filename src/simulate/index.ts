/**
 * Packet simulator and ruleset linter: pure functions over the domain model.
 * A trace answers "what happens to this packet" three-valued (definite, or
 * every verdict still possible and why); lint finds rules that cannot work
 * as written. Nothing here does I/O, and nothing outside src/domain and the
 * rule writer (for rule text and ids) is imported.
 *
 *   trace(rulesets, untrustedJson, options?)  -> TraceResult   (validates with normalizePacket)
 *   tracePacket(rulesets, packet, options?)   -> TraceResult   (packet already validated)
 *   normalizePacket(untrustedJson)            -> Packet        (DomainError invalid_argument)
 *   lint(rulesets, { knownIpsets? })          -> Finding[]
 */
export {
  FINDING_CODES,
  type Finding,
  type FindingCode,
  type LintOptions,
  type Severity,
} from './lint/finding.js';
export { lint } from './lint/lint.js';
export { normalizePacket, PACKET_LIMITS } from './normalize-packet.js';
export type { Hook, Packet, PacketInput, RecentEntryInput } from './packet.js';
export { HOOKS } from './packet.js';
export type {
  DefiniteTrace,
  Matched,
  NatChange,
  NoteStep,
  Outcome,
  PathStep,
  PolicyStep,
  RuleRef,
  RuleStep,
  TableDecision,
  TraceResult,
  UncertainRule,
  UncertainTrace,
  Verdict,
} from './result.js';
export { type Rulesets, trace, tracePacket } from './simulate.js';
export { HOOK_TABLES, type TraceOptions } from './trace.js';
