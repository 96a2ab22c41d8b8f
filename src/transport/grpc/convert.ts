/**
 * Wire messages <-> the service's plain data. Requests become exactly the
 * typed JSON the REST API hands the service (a Match's Struct options are
 * spread next to its `module`, an Extension's next to its `target`), so the
 * service validates both transports alike; nothing is validated here beyond
 * what the wire schema says. Responses are built from the service's canonical
 * model.
 */
import type { JsonObject, MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { invalid } from '../../domain/errors.js';
import type { Family, TableName } from '../../domain/family.js';
import {
  type Counters,
  isGoto,
  isJump,
  isRawMatch,
  isRawTarget,
  type Match as ModelMatch,
  type Policy as ModelPolicy,
  type Rule as ModelRule,
  type Target as ModelTarget,
} from '../../domain/model.js';
import type {
  ChainSpec,
  Operation,
  OperationResultSchema,
  RuleRef,
} from '../../gen/portcullis/v1/firewall_service_pb.js';
import {
  type ChainSummarySchema,
  type ChainViewSchema,
  type ChangeEventSchema,
  type ChangeSchema,
  type CountersSchema,
  Family as FamilyEnum,
  type Match,
  type MatchSchema,
  Origin,
  Policy,
  type Rule,
  type RuleInput,
  type RuleSchema,
  type RuleViewSchema,
  type Target,
  type TargetSchema,
} from '../../gen/portcullis/v1/rule_pb.js';
import type {
  ChangeEventChange,
  ChainSummary as ModelChainSummary,
  ChainView as ModelChainView,
  ChangeEvent as ModelChangeEvent,
  Operation as ModelOperation,
  RuleInput as ModelRuleInput,
  RuleRef as ModelRuleRef,
  RuleView as ModelRuleView,
  OpResult,
  RuleDetail,
} from '../../service/api.js';

// ---------------------------------------------------------------- scalars

/** FAMILY_UNSPECIFIED means ipv4; an unknown value is passed on for the service to refuse. */
export function familyFrom(value: FamilyEnum): Family {
  switch (value) {
    case FamilyEnum.UNSPECIFIED:
    case FamilyEnum.IPV4:
      return 'ipv4';
    case FamilyEnum.IPV6:
      return 'ipv6';
    default:
      return `family ${String(value)}` as Family;
  }
}

export function familyTo(family: Family): FamilyEnum {
  return family === 'ipv6' ? FamilyEnum.IPV6 : FamilyEnum.IPV4;
}

/** An empty table means filter; anything else goes to the service as it is. */
export function tableFrom(value: string): TableName {
  return (value === '' ? 'filter' : value) as TableName;
}

/** POLICY_UNSPECIFIED (or an unknown value) goes on as a value the service refuses with its own message. */
export function policyFrom(value: Policy): ModelPolicy {
  if (value === Policy.ACCEPT) return 'ACCEPT';
  if (value === Policy.DROP) return 'DROP';
  return (value === Policy.UNSPECIFIED ? '' : `policy ${String(value)}`) as ModelPolicy;
}

export function policyTo(policy: string | undefined): Policy {
  if (policy === 'ACCEPT') return Policy.ACCEPT;
  if (policy === 'DROP') return Policy.DROP;
  return Policy.UNSPECIFIED;
}

function countersTo(c: Counters | undefined): MessageInitShape<typeof CountersSchema> | undefined {
  return c ? { packets: c.packets, bytes: c.bytes } : undefined;
}

// ---------------------------------------------------------------- rules in

function optionsFrom(options: JsonObject | undefined, reserved: string, field: string): JsonObject {
  const o = options ?? {};
  if (Object.hasOwn(o, reserved) || Object.hasOwn(o, 'raw')) {
    throw invalid(
      `${field}.options`,
      `${field}.options cannot hold "${Object.hasOwn(o, 'raw') ? 'raw' : reserved}": use the message field`,
    );
  }
  return o;
}

function matchFrom(m: Match, field: string): Record<string, unknown> {
  return {
    module: m.module,
    ...optionsFrom(m.options, 'module', field),
    ...(m.raw.length > 0 ? { raw: [...m.raw] } : {}),
  };
}

function targetFrom(t: Target, field: string): Record<string, unknown> | undefined {
  switch (t.kind.case) {
    case 'jump':
      return { jump: t.kind.value };
    case 'goto':
      return { goto: t.kind.value };
    case 'extension': {
      const e = t.kind.value;
      return {
        target: e.name,
        ...optionsFrom(e.options, 'target', field),
        ...(e.raw.length > 0 ? { raw: [...e.raw] } : {}),
      };
    }
    default:
      return undefined;
  }
}

/** A wire Rule as the typed JSON of domain/model.ts (unset fields left out). */
export function ruleJson(r: Rule, field = 'rule'): Record<string, unknown> {
  const target = r.target ? targetFrom(r.target, `${field}.target`) : undefined;
  return {
    ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
    ...(r.source !== undefined ? { source: r.source } : {}),
    ...(r.destination !== undefined ? { destination: r.destination } : {}),
    ...(r.inInterface !== undefined ? { inInterface: r.inInterface } : {}),
    ...(r.outInterface !== undefined ? { outInterface: r.outInterface } : {}),
    ...(r.fragment ? { fragment: true } : {}),
    ...(r.invert.length > 0 ? { invert: [...r.invert] } : {}),
    matches: r.matches.map((m, i) => matchFrom(m, `${field}.matches[${i}]`)),
    ...(target ? { target } : {}),
  };
}

/** A RuleInput as the service takes it; a missing one goes on as `undefined` for the service to refuse. */
export function ruleInputFrom(input: RuleInput | undefined, field = 'rule'): ModelRuleInput {
  switch (input?.kind.case) {
    case 'rule':
      return ruleJson(input.kind.value, field);
    case 'spec':
      return { spec: input.kind.value };
    default:
      return undefined as unknown as ModelRuleInput;
  }
}

/** A RuleRef (or DeleteRuleRequest's `target` oneof) as the service takes it. */
export function ruleRefFrom(ref: RuleRef['kind'] | undefined, field = 'target'): ModelRuleRef {
  switch (ref?.case) {
    case 'id':
      return { id: ref.value };
    case 'position':
      return { position: ref.value };
    case 'rule':
      return { rule: ruleInputFrom(ref.value, `${field}.rule`) };
    default:
      return undefined as unknown as ModelRuleRef;
  }
}

function chainSpecsFrom(chains: readonly ChainSpec[]) {
  return chains.map((c, i) => ({
    name: c.name,
    ...(c.policy === Policy.UNSPECIFIED ? {} : { policy: policyFrom(c.policy) }),
    rules: c.rules.map((r, k) => ruleInputFrom(r, `chains[${i}].rules[${k}]`)),
  }));
}

/** Fields shared by the single-operation requests and the transaction's operation messages. */
interface Addressed {
  readonly family: FamilyEnum;
  readonly table: string;
  readonly chain: string;
}

const at = (m: Addressed) => ({ family: familyFrom(m.family), table: tableFrom(m.table), chain: m.chain });

type OperationKind = Operation['kind'];
type Case = NonNullable<OperationKind['case']>;
/** An operation's oneof, structurally: a single-operation request (with its extra fields) fits too. */
export type OperationInput =
  | { [C in Case]: { case: C; value: Omit<Extract<OperationKind, { case: C }>['value'], '$typeName'> } }[Case]
  | { case: undefined; value?: undefined };

/** ttl_seconds / expires_at of an add, when set. */
function expiryFrom(v: { ttlSeconds?: number | undefined; expiresAt?: string | undefined }): {
  ttlSeconds?: number;
  expiresAt?: string;
} {
  return {
    ...(v.ttlSeconds !== undefined ? { ttlSeconds: v.ttlSeconds } : {}),
    ...(v.expiresAt !== undefined ? { expiresAt: v.expiresAt } : {}),
  };
}

/** One operation of a transaction (or the payload of a single-operation RPC) as the service takes it. */
export function operationFrom(o: OperationInput, field = 'operation'): ModelOperation {
  switch (o.case) {
    case 'appendRule':
      return { op: 'append', ...at(o.value), rule: ruleInputFrom(o.value.rule), ...expiryFrom(o.value) };
    case 'insertRule':
      return {
        op: 'insert',
        ...at(o.value),
        position: o.value.position,
        rule: ruleInputFrom(o.value.rule),
        ...expiryFrom(o.value),
      };
    case 'replaceRule':
      return {
        op: 'replace',
        ...at(o.value),
        target: ruleRefFrom(o.value.target?.kind),
        rule: ruleInputFrom(o.value.rule),
      };
    case 'deleteRule':
      return { op: 'delete', ...at(o.value), target: ruleRefFrom(o.value.target?.kind) };
    case 'ensureRule':
      return {
        op: 'ensure',
        ...at(o.value),
        rule: ruleInputFrom(o.value.rule),
        ...(o.value.position === undefined ? {} : { position: o.value.position }),
        ...expiryFrom(o.value),
      };
    case 'createChain':
      return { op: 'createChain', ...at(o.value) };
    case 'deleteChain':
      return { op: 'deleteChain', ...at(o.value), ...(o.value.force ? { force: true } : {}) };
    case 'flushChain':
      return { op: 'flushChain', ...at(o.value) };
    case 'renameChain':
      return { op: 'renameChain', ...at(o.value), newName: o.value.newName };
    case 'setPolicy':
      return { op: 'setPolicy', ...at(o.value), policy: policyFrom(o.value.policy) };
    case 'zeroCounters':
      return {
        op: 'zeroCounters',
        family: familyFrom(o.value.family),
        table: tableFrom(o.value.table),
        ...(o.value.chain === undefined ? {} : { chain: o.value.chain }),
      };
    case 'replaceChain':
      return {
        op: 'replaceChain',
        ...at(o.value),
        rules: o.value.rules.map((r, i) => ruleInputFrom(r, `rules[${i}]`)),
      };
    case 'replaceTable':
      return {
        op: 'replaceTable',
        family: familyFrom(o.value.family),
        table: tableFrom(o.value.table),
        chains: chainSpecsFrom(o.value.chains),
      };
    case 'reset':
      return {
        op: 'reset',
        ...(o.value.family === undefined ? {} : { family: familyFrom(o.value.family) }),
        ...(o.value.table === undefined ? {} : { table: tableFrom(o.value.table) }),
      };
    default:
      throw invalid(field, `${field} must set one operation (appendRule, insertRule, ...)`);
  }
}

// ---------------------------------------------------------------- model out

function matchTo(m: ModelMatch): MessageInitShape<typeof MatchSchema> {
  if (isRawMatch(m)) return { module: m.module, raw: [...m.raw] };
  const { module, ...options } = m as { module: string } & Record<string, unknown>;
  return { module, ...nonEmpty(options) };
}

function targetTo(t: ModelTarget): MessageInitShape<typeof TargetSchema> {
  if (isJump(t)) return { kind: { case: 'jump', value: t.jump } };
  if (isGoto(t)) return { kind: { case: 'goto', value: t.goto } };
  if (isRawTarget(t)) return { kind: { case: 'extension', value: { name: t.target, raw: [...t.raw] } } };
  const { target, ...options } = t as { target: string } & Record<string, unknown>;
  return { kind: { case: 'extension', value: { name: target, ...nonEmpty(options) } } };
}

/** Options as a Struct, left out when there are none (a verdict, a match without options). */
function nonEmpty(options: Record<string, unknown>): { options?: JsonObject } {
  return Object.keys(options).length > 0 ? { options: options as JsonObject } : {};
}

export function ruleTo(r: ModelRule): MessageInitShape<typeof RuleSchema> {
  return {
    ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
    ...(r.source !== undefined ? { source: r.source } : {}),
    ...(r.destination !== undefined ? { destination: r.destination } : {}),
    ...(r.inInterface !== undefined ? { inInterface: r.inInterface } : {}),
    ...(r.outInterface !== undefined ? { outInterface: r.outInterface } : {}),
    fragment: r.fragment === true,
    invert: [...(r.invert ?? [])],
    matches: r.matches.map(matchTo),
    ...(r.target ? { target: targetTo(r.target) } : {}),
  };
}

export function ruleViewTo(
  v: ModelRuleView | RuleDetail | undefined,
): MessageInitShape<typeof RuleViewSchema> | undefined {
  if (!v) return undefined;
  const counters = countersTo((v as RuleDetail).counters);
  return {
    id: v.id,
    position: v.position,
    text: v.text,
    rule: ruleTo(v.rule),
    ...(counters ? { counters } : {}),
    ...('expiresAt' in v && v.expiresAt ? { expiresAt: v.expiresAt } : {}),
  };
}

export function chainViewTo(c: ModelChainView): MessageInitShape<typeof ChainViewSchema> {
  const counters = countersTo(c.counters);
  return {
    name: c.name,
    builtin: c.builtin,
    policy: policyTo(c.policy),
    ...(counters ? { counters } : {}),
    rules: c.rules.map((r) => ruleViewTo(r) as MessageInitShape<typeof RuleViewSchema>),
  };
}

export function chainSummaryTo(c: ModelChainSummary): MessageInitShape<typeof ChainSummarySchema> {
  return {
    name: c.name,
    builtin: c.builtin,
    policy: policyTo(c.policy),
    rules: c.rules,
    references: c.references,
  };
}

export function changeTo(c: ChangeEventChange): MessageInitShape<typeof ChangeSchema> {
  return {
    type: c.type,
    family: familyTo(c.family),
    table: c.table ?? '',
    chain: c.chain ?? '',
    position: c.position ?? 0,
    id: c.id ?? '',
    text: c.text ?? '',
    newName: c.newName ?? '',
    policy: policyTo(c.policy),
    detail: c.detail ?? '',
  };
}

export function changeEventTo(e: ModelChangeEvent): MessageInitShape<typeof ChangeEventSchema> {
  const time = new Date(e.time);
  return {
    revision: BigInt(e.revision),
    origin: e.origin === 'external' ? Origin.EXTERNAL : Origin.SERVICE,
    client: e.client ?? '',
    ...(Number.isNaN(time.getTime()) ? {} : { time: timestampFromDate(time) }),
    changes: e.changes.map(changeTo),
    requestId: e.requestId ?? '',
  };
}

export function opResultTo(r: OpResult): MessageInitShape<typeof OperationResultSchema> {
  const rule = ruleViewTo(r.rule);
  const deleted = ruleViewTo(r.deleted);
  return {
    op: r.op,
    ...(rule ? { rule } : {}),
    existed: r.existed === true,
    ...(deleted ? { deleted } : {}),
  };
}
