/**
 * Wire forms: service results -> JSON bodies typed by the OpenAPI document
 * (src/gen/openapi.ts), and request bodies -> service operations. Counters
 * are bigint in the service and decimal strings on the wire. No validation
 * beyond what the schema already did: the service validates the rest.
 */
import type { Family, TableName } from '../../domain/family.js';
import type { Counters } from '../../domain/model.js';
import type { components } from '../../gen/openapi.js';
import type {
  ApplyResult,
  ChainSummary,
  ChainView,
  ChangeEventChange,
  ConfirmationRecord,
  Finding,
  Lockout,
  Operation,
  OpResult,
  PathStep,
  RuleDetail,
  RuleInput,
  RuleRef,
  TraceReport,
  TraceResult,
} from '../../service/api.js';

export type Schemas = components['schemas'];

export function countersWire(c: Counters): Schemas['Counters'] {
  return { packets: c.packets.toString(), bytes: c.bytes.toString() };
}

export function ruleWire(r: RuleDetail): Schemas['RuleView'] {
  return {
    id: r.id,
    position: r.position,
    text: r.text,
    // The model's typed rule is the wire's Rule (the schema leaves module and target options open).
    rule: r.rule as unknown as Schemas['Rule'],
    ...(r.counters ? { counters: countersWire(r.counters) } : {}),
    ...(r.expiresAt ? { expiresAt: r.expiresAt } : {}),
  };
}

export function chainWire(c: ChainView): Schemas['ChainView'] {
  return {
    name: c.name,
    builtin: c.builtin,
    ...(c.policy ? { policy: c.policy } : {}),
    ...(c.counters ? { counters: countersWire(c.counters) } : {}),
    rules: c.rules.map(ruleWire),
  };
}

export function chainSummaryWire(c: ChainSummary): Schemas['ChainSummary'] {
  return {
    name: c.name,
    builtin: c.builtin,
    ...(c.policy ? { policy: c.policy } : {}),
    rules: c.rules,
    references: c.references,
  };
}

export function changeWire(c: ChangeEventChange): Schemas['Change'] {
  return { ...c } as Schemas['Change'];
}

export function opResultWire(r: OpResult): Schemas['OpResult'] {
  return {
    op: r.op,
    ...(r.rule ? { rule: ruleWire(r.rule) } : {}),
    ...(r.existed !== undefined ? { existed: r.existed } : {}),
    ...(r.deleted ? { deleted: ruleWire(r.deleted) } : {}),
  };
}

/** `{ rule }` or `{ spec }` of a REST body -> the service's RuleInput. */
export function ruleInputOf(body: { rule?: Schemas['Rule']; spec?: string }): RuleInput {
  return body.spec !== undefined ? { spec: body.spec } : ((body.rule ?? {}) as RuleInput);
}

type WireOp =
  | Schemas['AppendOp']
  | Schemas['InsertOp']
  | Schemas['ReplaceOp']
  | Schemas['DeleteOp']
  | Schemas['EnsureOp']
  | Schemas['CreateChainOp']
  | Schemas['DeleteChainOp']
  | Schemas['FlushChainOp']
  | Schemas['RenameChainOp']
  | Schemas['SetPolicyOp']
  | Schemas['ZeroCountersOp']
  | Schemas['ReplaceChainOp']
  | Schemas['ReplaceTableOp']
  | Schemas['ResetOp'];

/** A loosely typed view of one wire operation (the schema has checked its shape per `op`). */
interface LooseOp {
  readonly op: WireOp['op'];
  readonly family?: Family;
  readonly table?: TableName;
  readonly chain?: string;
  readonly rule?: RuleInput;
  readonly rules?: readonly RuleInput[];
  readonly position?: number;
  readonly target?: RuleRef;
  readonly force?: boolean;
  readonly newName?: string;
  readonly policy?: 'ACCEPT' | 'DROP';
  readonly chains?: readonly { name: string; policy?: 'ACCEPT' | 'DROP'; rules: readonly RuleInput[] }[];
}

/**
 * A transaction operation from the wire -> a service Operation: `family` defaults to ipv4
 * and `table` to filter (except for reset, where absent means all).
 */
export function operationOf(wire: Schemas['Operation']): Operation {
  const o = wire as unknown as LooseOp;
  if (o.op === 'reset') {
    return { op: 'reset', ...(o.family ? { family: o.family } : {}), ...(o.table ? { table: o.table } : {}) };
  }
  const family: Family = o.family ?? 'ipv4';
  const table: TableName = o.table ?? 'filter';
  if (o.op === 'replaceTable') return { op: 'replaceTable', family, table, chains: o.chains ?? [] };
  if (o.op === 'zeroCounters')
    return { op: 'zeroCounters', family, table, ...(o.chain !== undefined ? { chain: o.chain } : {}) };
  const at = { family, table, chain: o.chain as string };
  const rule = o.rule as RuleInput;
  switch (o.op) {
    case 'append':
      return { op: 'append', ...at, rule };
    case 'insert':
      return { op: 'insert', ...at, position: o.position as number, rule };
    case 'replace':
      return { op: 'replace', ...at, target: o.target as RuleRef, rule };
    case 'delete':
      return { op: 'delete', ...at, target: o.target as RuleRef };
    case 'ensure':
      return { op: 'ensure', ...at, rule, ...(o.position !== undefined ? { position: o.position } : {}) };
    case 'createChain':
      return { op: 'createChain', ...at };
    case 'deleteChain':
      return { op: 'deleteChain', ...at, ...(o.force !== undefined ? { force: o.force } : {}) };
    case 'flushChain':
      return { op: 'flushChain', ...at };
    case 'renameChain':
      return { op: 'renameChain', ...at, newName: o.newName as string };
    case 'setPolicy':
      return { op: 'setPolicy', ...at, policy: o.policy as 'ACCEPT' | 'DROP' };
    case 'replaceChain':
      return { op: 'replaceChain', ...at, rules: o.rules ?? [] };
  }
}

/** JSON.stringify replacer: bigint as a decimal string. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

function traceStepWire(s: PathStep): Schemas['TraceStep'] {
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
        ...(s.assumed ? { assumed: s.assumed } : {}),
        ...(s.reasons ? { reasons: [...s.reasons] } : {}),
        ...(s.note !== undefined ? { note: s.note } : {}),
      };
    case 'policy':
      return { kind: 'policy', table: s.table, chain: s.chain, policy: s.policy };
    case 'note':
      return { kind: 'note', table: s.table, text: s.text };
  }
}

function traceResultWire(t: TraceResult): Schemas['TraceResult'] {
  return {
    family: t.family,
    hook: t.hook,
    definite: t.definite,
    ...(t.definite ? { verdict: t.verdict } : {}),
    possibleVerdicts: [...t.possibleVerdicts],
    outcomes: t.outcomes.map((o) => ({
      verdict: o.verdict,
      ...(o.decidedBy ? { decidedBy: traceStepWire(o.decidedBy) } : {}),
      ...(o.rejectWith !== undefined ? { rejectWith: o.rejectWith } : {}),
      tables: o.tables.map((d) => ({ table: d.table, verdict: d.verdict, by: traceStepWire(d.by) })),
      path: o.path.map(traceStepWire),
      assumptions: o.assumptions.map(traceStepWire),
      nat: o.nat.map((n) => ({ ...n })),
      mark: o.mark,
    })),
    uncertain: t.uncertain.map((u) => ({ ...u, reasons: [...u.reasons] })),
    truncated: t.truncated,
  };
}

export function traceReportWire(r: TraceReport): Schemas['TraceReport'] {
  return {
    revision: r.revision,
    proposed: r.proposed,
    definite: r.definite,
    ...(r.verdict ? { verdict: r.verdict } : {}),
    possibleVerdicts: [...r.possibleVerdicts],
    managed: traceResultWire(r.managed),
    ...(r.other ? { other: { backend: r.other.backend, result: traceResultWire(r.other.result) } } : {}),
  };
}

export function findingWire(f: Finding): Schemas['Finding'] {
  return {
    ...f,
    rules: f.rules.map((r) => ({
      table: r.table,
      chain: r.chain,
      position: r.position,
      ruleId: r.ruleId,
      ruleText: r.ruleText,
    })),
  };
}

export function lockoutWire(l: Lockout): Schemas['Lockout'] {
  return { ...l };
}

/** The confirmation of a commit-confirmed change, for a write result (nothing otherwise). */
export function confirmationWire(r: ApplyResult): { confirmation?: Schemas['Confirmation'] } {
  const c = r.confirmation;
  return c ? { confirmation: { id: c.id, deadline: c.deadline, lockouts: c.lockouts.map(lockoutWire) } } : {};
}

export function pendingWire(c: ConfirmationRecord): Schemas['PendingConfirmation'] {
  return {
    id: c.id,
    createdAt: c.createdAt,
    deadline: c.deadline,
    ...(c.origin ? { origin: c.origin } : {}),
    ...(c.identity ? { identity: c.identity } : {}),
    ...(c.requestId ? { requestId: c.requestId } : {}),
    operations: [...c.operations],
    lockouts: c.lockouts.map(lockoutWire),
  };
}

/** A service operation as the wire's Operation (what a preset expanded into). */
export function operationWire(op: Operation): Schemas['Operation'] {
  return JSON.parse(JSON.stringify(op));
}
