/**
 * Trace and lint messages <-> the service's plain data. A TracePacket becomes
 * exactly the JSON packet the REST API hands the service (absent fields stay
 * absent: unknown to the simulator), so both doors are validated alike by the
 * service; results are built from the simulator's answers.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import type {
  FindingSchema,
  LockoutSchema,
  NumberList,
  StringList,
  TracePacket,
  TraceResponseSchema,
  TraceResultSchema,
  TraceStepSchema,
} from '../../gen/portcullis/v1/firewall_service_pb.js';
import type { Finding, Lockout, PathStep, TraceReport, TraceResult } from '../../service/api.js';
import { familyFrom, familyTo } from './convert.js';

const list = (l: StringList | NumberList | undefined) => (l === undefined ? undefined : [...l.values]);

/** A number written as digits goes to the simulator as a number (protocol, ICMP type, marks). */
function numberOrName(v: string | undefined): string | number | undefined {
  return v !== undefined && /^\d{1,10}$/.test(v) ? Number(v) : v;
}

/** The packet as the JSON object the service validates (REST's TracePacket). */
export function packetFrom(p: TracePacket | undefined): Record<string, unknown> | undefined {
  if (p === undefined) return undefined;
  const fields: Record<string, unknown> = {
    family: familyFrom(p.family),
    hook: p.hook,
    inInterface: p.inInterface,
    outInterface: p.outInterface,
    source: p.source,
    destination: p.destination,
    protocol: numberOrName(p.protocol),
    sourcePort: p.sourcePort,
    destinationPort: p.destinationPort,
    icmpType: numberOrName(p.icmpType),
    icmpCode: p.icmpCode,
    tcpFlags: list(p.tcpFlags),
    tcpOptions: list(p.tcpOptions),
    fragment: p.fragment || undefined,
    length: p.length,
    ttl: p.ttl,
    hopLimit: p.hopLimit,
    ctState: p.ctState,
    ctStatus: list(p.ctStatus),
    ctNat: list(p.ctNat),
    ctDirection: p.ctDirection,
    mark: numberOrName(p.mark),
    connmark: numberOrName(p.connmark),
    pktType: p.pktType,
    sourceMac: p.sourceMac,
    sourceAddressType: list(p.sourceAddressType),
    destinationAddressType: list(p.destinationAddressType),
    localAddresses: list(p.localAddresses),
    bridged: p.bridged,
    physdevIn: p.physdevIn,
    physdevOut: p.physdevOut,
    socketExists: p.socketExists,
    uid: p.uid,
    gid: p.gid,
    supplementaryGids: list(p.supplementaryGids),
    ipsets:
      Object.keys(p.ipsets).length === 0
        ? undefined
        : Object.fromEntries(Object.entries(p.ipsets).map(([k, v]) => [k, [...v.values]])),
    recent:
      Object.keys(p.recent).length === 0
        ? undefined
        : Object.fromEntries(
            Object.entries(p.recent).map(([k, v]) => [
              k,
              v.entries.map((e) => ({ address: e.address, hits: [...e.hits] })),
            ]),
          ),
  };
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

function stepTo(s: PathStep): MessageInitShape<typeof TraceStepSchema> {
  switch (s.kind) {
    case 'rule':
      return {
        kind: 'rule',
        table: s.table,
        chain: s.chain,
        position: s.position,
        ruleId: s.ruleId,
        ruleText: s.ruleText,
        matched: s.matched,
        assumed: s.assumed ?? '',
        reasons: [...(s.reasons ?? [])],
        note: s.note ?? '',
      };
    case 'policy':
      return { kind: 'policy', table: s.table, chain: s.chain, policy: s.policy };
    case 'note':
      return { kind: 'note', table: s.table, text: s.text };
  }
}

function resultTo(t: TraceResult): MessageInitShape<typeof TraceResultSchema> {
  return {
    family: familyTo(t.family),
    hook: t.hook,
    definite: t.definite,
    verdict: t.definite ? t.verdict : '',
    possibleVerdicts: [...t.possibleVerdicts],
    outcomes: t.outcomes.map((o) => ({
      verdict: o.verdict,
      ...(o.decidedBy ? { decidedBy: stepTo(o.decidedBy) } : {}),
      rejectWith: o.rejectWith ?? '',
      tables: o.tables.map((d) => ({ table: d.table, verdict: d.verdict, by: stepTo(d.by) })),
      path: o.path.map(stepTo),
      assumptions: o.assumptions.map(stepTo),
      nat: o.nat.map((n) => ({ ...n })),
      mark: o.mark,
    })),
    uncertain: t.uncertain.map((u) => ({ ...u, reasons: [...u.reasons] })),
    truncated: t.truncated,
  };
}

export function traceReportTo(r: TraceReport): MessageInitShape<typeof TraceResponseSchema> {
  return {
    revision: BigInt(r.revision),
    proposed: r.proposed,
    definite: r.definite,
    verdict: r.verdict ?? '',
    possibleVerdicts: [...r.possibleVerdicts],
    managed: resultTo(r.managed),
    ...(r.other ? { other: { backend: r.other.backend, result: resultTo(r.other.result) } } : {}),
  };
}

export function findingTo(f: Finding): MessageInitShape<typeof FindingSchema> {
  return {
    ...f,
    family: familyTo(f.family),
    rules: f.rules.map((r) => ({
      table: r.table,
      chain: r.chain,
      position: r.position,
      ruleId: r.ruleId,
      ruleText: r.ruleText,
    })),
  };
}

export function lockoutTo(l: Lockout): MessageInitShape<typeof LockoutSchema> {
  return { ...l, family: familyTo(l.family) };
}
