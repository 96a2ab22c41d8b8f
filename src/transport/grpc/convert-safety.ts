/**
 * Commit-confirmed and preset messages: confirmations, pending confirmations,
 * and a preset's result with the operations it expanded into (which are
 * always rules as spec strings and chain operations; see src/presets).
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { invalid } from '../../domain/errors.js';
import { FAMILIES, type Family } from '../../domain/family.js';
import type {
  ConfirmationSchema,
  HardenResponseSchema,
  OperationSchema,
  PendingConfirmationSchema,
} from '../../gen/portcullis/v1/firewall_service_pb.js';
import type { RuleInputSchema } from '../../gen/portcullis/v1/rule_pb.js';
import type {
  ApplyResult,
  ConfirmationRecord,
  Operation as ModelOperation,
  RuleInput as ModelRuleInput,
} from '../../service/api.js';
import { changeTo, familyTo, opResultTo, policyTo } from './convert.js';
import { findingTo, lockoutTo } from './convert-trace.js';

export function confirmationTo(
  c: NonNullable<ApplyResult['confirmation']>,
): MessageInitShape<typeof ConfirmationSchema> {
  return { id: c.id, deadline: c.deadline, lockouts: c.lockouts.map(lockoutTo) };
}

export function pendingTo(c: ConfirmationRecord): MessageInitShape<typeof PendingConfirmationSchema> {
  return {
    id: c.id,
    createdAt: c.createdAt,
    deadline: c.deadline,
    origin: c.origin ?? '',
    identity: c.identity ?? '',
    requestId: c.requestId ?? '',
    operations: [...c.operations],
    lockouts: c.lockouts.map(lockoutTo),
  };
}

/** A word of a preset request (protocol, action, method), or invalid_argument naming the field. */
export function presetWord<const W extends string>(value: string, words: readonly W[], field: string): W {
  const found = words.find((w) => w === value);
  if (found === undefined) throw invalid(field, `${field} must be one of ${words.join(', ')}`);
  return found;
}

function ruleInputTo(r: ModelRuleInput): MessageInitShape<typeof RuleInputSchema> {
  // Presets write their rules as specs; a typed input is shown by its spec when it has one.
  return { kind: { case: 'spec', value: 'spec' in r && typeof r.spec === 'string' ? r.spec : '' } };
}

/** A service operation as the wire's Operation (what a preset expanded into). */
export function operationTo(op: ModelOperation): MessageInitShape<typeof OperationSchema> {
  const at = (o: { family: Family; table: string; chain: string }) => ({
    family: familyTo(o.family),
    table: o.table,
    chain: o.chain,
  });
  switch (op.op) {
    case 'append':
      return { kind: { case: 'appendRule', value: { ...at(op), rule: ruleInputTo(op.rule) } } };
    case 'insert':
      return {
        kind: { case: 'insertRule', value: { ...at(op), position: op.position, rule: ruleInputTo(op.rule) } },
      };
    case 'ensure':
      return {
        kind: {
          case: 'ensureRule',
          value: {
            ...at(op),
            rule: ruleInputTo(op.rule),
            ...(op.position !== undefined ? { position: op.position } : {}),
          },
        },
      };
    case 'createChain':
      return { kind: { case: 'createChain', value: at(op) } };
    case 'flushChain':
      return { kind: { case: 'flushChain', value: at(op) } };
    case 'setPolicy':
      return { kind: { case: 'setPolicy', value: { ...at(op), policy: policyTo(op.policy) } } };
    case 'replaceChain':
      return { kind: { case: 'replaceChain', value: { ...at(op), rules: op.rules.map(ruleInputTo) } } };
    default:
      throw new Error(`a preset expanded into an operation the wire form does not cover: ${op.op}`);
  }
}

/** The response of RateLimit and Harden (same fields). */
export function presetTo(
  r: ApplyResult & { operations: readonly ModelOperation[] },
): MessageInitShape<typeof HardenResponseSchema> {
  return {
    revision: BigInt(r.revision),
    results: r.results.map(opResultTo),
    changes: r.changes.map(changeTo),
    operations: r.operations.map(operationTo),
    dryRun: r.dryRun === true,
    restoreText: Object.fromEntries(
      FAMILIES.flatMap((f) => {
        const text = r.restoreText?.[f];
        return text === undefined ? [] : [[f, text]];
      }),
    ),
    lockouts: (r.lockouts ?? []).map(lockoutTo),
    findings: (r.findings ?? []).map(findingTo),
  };
}
