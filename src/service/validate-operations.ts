/**
 * Validation of operations at the facade, before anything is queued: a request
 * that cannot be valid never waits in the queue or reaches the planner. Every
 * check that does not depend on the current ruleset happens here — names,
 * families, tables, positions as whole numbers, rules parsed into canonical
 * models (spec strings and typed JSON alike, and refused when iptables could
 * not read them back) — so the planner only plans. Errors name the field; in a
 * transaction the field is under `operations[i]`.
 */
import { DomainError, invalid } from '../domain/errors.js';
import {
  BUILTIN_CHAINS,
  type Family,
  isFamily,
  isTableName,
  TABLES,
  type TableName,
} from '../domain/family.js';
import { type Policy, type Rule, targetChain } from '../domain/model.js';
import { checkChainName, checkUint } from '../domain/validate.js';
import { checkUserChainName, normalizeRule } from '../iptables/catalogue.js';
import { checkRuleLine } from '../iptables/rule-check.js';
import { parseRuleSpec } from '../iptables/rule-parser.js';
import { ruleText } from '../iptables/rule-writer.js';
import { markAccepted } from './accepted-rules.js';
import type {
  Operation,
  RuleInput,
  RuleRef,
  ValidChainAddress,
  ValidChainSpec,
  ValidExpiry,
  ValidOp,
  ValidRuleRef,
} from './operations.js';

/** Most operations in one transaction. */
export const MAX_OPERATIONS = 10_000;

/**
 * The accepted rules the model holds in a table, by text (state.ts acceptedRules): a spec equal
 * to one of the texts is that rule, without a parse (accepted-rules.ts). Asked only by the
 * declarative replaces, which send most of a table back as the model holds it.
 */
export type KnownRules = (family: Family, table: TableName) => ReadonlyMap<string, Rule>;

/**
 * A rule as a client sends it (typed JSON or `{ spec }`) -> its canonical model. `known`: the
 * accepted rules of the table by text; a spec found there is not parsed again.
 */
export function toRule(
  input: RuleInput,
  family: Family,
  field: string,
  known?: ReadonlyMap<string, Rule>,
): Rule {
  if (typeof input !== 'object' || input === null)
    throw invalid(field, `${field} must be an object: a typed rule or { "spec": "..." }`);
  if ('spec' in input) {
    const keys = Object.keys(input);
    if (keys.length !== 1) throw invalid(field, `${field}: "spec" cannot be combined with other fields`);
    if (typeof input.spec !== 'string') throw invalid(`${field}.spec`, `${field}.spec must be a string`);
    return known?.get(input.spec) ?? markAccepted(parseRuleSpec(input.spec, family, `${field}.spec`), family);
  }
  const rule = normalizeRule(input, family, field);
  checkRuleLine(rule, family, field);
  return markAccepted(rule, family);
}

const f = (field: string, name: string): string => (field ? `${field}.${name}` : name);

/** Chain names starting with this are Portcullis' own (journal markers PCL-TX-, probes PCL-PROBE-). */
export const RESERVED_CHAIN_PREFIX = 'PCL-';

/** A name for a chain we create: a user chain name, and not one of Portcullis' own. */
function newChainName(value: unknown, field: string): string {
  const name = checkUserChainName(value, field);
  if (name.startsWith(RESERVED_CHAIN_PREFIX))
    throw invalid(
      field,
      `${field} "${name}": names starting with ${RESERVED_CHAIN_PREFIX} are reserved for Portcullis' own chains (change journal, probes)`,
    );
  return name;
}

/** A 1-based position: a whole number from 1 (whether it is past the end is the planner's to say). */
export function checkPositionValue(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalid(field, `${field} must be a whole number from 1`);
  }
  return value;
}

function address(op: { family: unknown; table: unknown; chain?: unknown }, field: string): ValidChainAddress {
  if (!isFamily(op.family)) throw invalid(f(field, 'family'), `${f(field, 'family')} must be ipv4 or ipv6`);
  if (!isTableName(op.table)) {
    throw invalid(f(field, 'table'), `${f(field, 'table')} must be one of ${TABLES.join(', ')}`);
  }
  const chain = op.chain === undefined ? '' : checkChainName(op.chain, f(field, 'chain'));
  return { family: op.family, table: op.table, chain };
}

function ruleRef(ref: RuleRef, family: Family, field: string): ValidRuleRef {
  if (typeof ref !== 'object' || ref === null)
    throw invalid(field, `${field} must be { id }, { position } or { rule }`);
  if ('id' in ref) return { id: typeof ref.id === 'string' ? ref.id : String(ref.id) };
  if ('position' in ref) return { position: checkPositionValue(ref.position, `${field}.position`) };
  if ('rule' in ref) {
    const rule = toRule(ref.rule, family, `${field}.rule`);
    return { rule, text: ruleText(rule) };
  }
  throw invalid(field, `${field} must be { id }, { position } or { rule }`);
}

function builtin(table: TableName, chain: string): boolean {
  return BUILTIN_CHAINS[table].includes(chain);
}

function rulesList(
  value: unknown,
  family: Family,
  field: string,
  known: ReadonlyMap<string, Rule> | undefined,
): Rule[] {
  if (!Array.isArray(value)) throw invalid(field, `${field} must be a list`);
  return value.map((r, i) => toRule(r as RuleInput, family, `${field}[${i}]`, known));
}

/**
 * The chains of a declarative table, checked as a whole (names once, jumps inside the table).
 * A rule found in `known` keeps its text (the spec) for the planner, which compares texts.
 */
function tableChains(
  value: unknown,
  family: Family,
  table: TableName,
  field: string,
  known: ReadonlyMap<string, Rule> | undefined,
): ValidChainSpec[] {
  if (!Array.isArray(value)) throw invalid(f(field, 'chains'), `${f(field, 'chains')} must be a list`);
  const chains = value.map((c: unknown, i): ValidChainSpec => {
    const cf = f(field, `chains[${i}]`);
    if (typeof c !== 'object' || c === null) throw invalid(cf, `${cf} must be an object`);
    const input = c as { name?: unknown; policy?: unknown; rules?: unknown };
    const name = checkChainName(input.name, `${cf}.name`);
    const isBuiltin = builtin(table, name);
    if (!isBuiltin) newChainName(name, `${cf}.name`);
    if (
      input.policy !== undefined &&
      (!isBuiltin || (input.policy !== 'ACCEPT' && input.policy !== 'DROP'))
    ) {
      throw invalid(
        `${cf}.policy`,
        isBuiltin ? `${cf}.policy must be ACCEPT or DROP` : `${cf}: user chain ${name} has no policy`,
      );
    }
    if (!Array.isArray(input.rules)) throw invalid(`${cf}.rules`, `${cf}.rules must be a list`);
    let texts: (string | undefined)[] | undefined;
    const rules = input.rules.map((r: unknown, j) => {
      const rule = toRule(r as RuleInput, family, `${cf}.rules[${j}]`, known);
      const spec = (r as { spec?: unknown }).spec;
      if (typeof spec === 'string' && known?.get(spec) === rule) {
        texts ??= [];
        texts[j] = spec;
      }
      return rule;
    });
    const policy = input.policy as Policy | undefined;
    return { name, builtin: isBuiltin, policy, rules, ...(texts ? { texts } : {}), field: cf };
  });
  return checkTableChains(chains);
}

/** Chains listed once, and every jump to a chain the table has. */
export function checkTableChains(chains: ValidChainSpec[]): ValidChainSpec[] {
  const names = new Set<string>();
  for (const d of chains) {
    if (names.has(d.name)) throw invalid(`${d.field}.name`, `chain ${d.name} is listed twice`);
    names.add(d.name);
  }
  for (const d of chains) {
    for (const [j, r] of d.rules.entries()) {
      const t = targetChain(r);
      if (t !== undefined && !names.has(t)) {
        throw new DomainError('not_found', `rule jumps to chain ${t}, which the new table does not have`, {
          field: `${d.field}.rules[${j}]`,
        });
      }
    }
  }
  return chains;
}

/** Longest time-to-live of a rule: one year. */
export const MAX_TTL_SECONDS = 31_536_000;

/** `ttlSeconds` or `expiresAt` -> the absolute expiry; at most one of them, in the future, within a year. */
function expiryOf(op: { ttlSeconds?: unknown; expiresAt?: unknown }, field: string): ValidExpiry {
  const { ttlSeconds, expiresAt } = op;
  if (ttlSeconds === undefined && expiresAt === undefined) return {};
  if (ttlSeconds !== undefined && expiresAt !== undefined)
    throw invalid(f(field, 'expiresAt'), 'give ttlSeconds or expiresAt, not both');
  const now = Date.now();
  let at: number;
  if (ttlSeconds !== undefined) {
    at = now + checkUint(ttlSeconds, f(field, 'ttlSeconds'), 1, MAX_TTL_SECONDS) * 1000;
  } else {
    const text = typeof expiresAt === 'string' ? expiresAt : '';
    at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text)
      ? Date.parse(text)
      : Number.NaN;
    if (Number.isNaN(at))
      throw invalid(
        f(field, 'expiresAt'),
        'expiresAt must be an ISO 8601 time with a zone, such as 2026-12-01T10:00:00Z',
      );
    if (at <= now) throw invalid(f(field, 'expiresAt'), 'expiresAt must be in the future');
    if (at > now + MAX_TTL_SECONDS * 1000)
      throw invalid(f(field, 'expiresAt'), 'expiresAt must be within a year');
  }
  return { expiresAt: new Date(at).toISOString() };
}

function validateOne(op: Operation, field: string, known: KnownRules | undefined): ValidOp {
  if (typeof op !== 'object' || op === null) throw invalid(field || undefined, 'operation must be an object');
  switch (op.op) {
    case 'append':
    case 'insert':
    case 'ensure': {
      const at = address(op, field);
      const rule = toRule(op.rule, at.family, f(field, 'rule'));
      const expiry = expiryOf(op, field);
      if (op.op === 'append') return { op: 'append', ...at, rule, ...expiry, field };
      if (op.op === 'insert')
        return {
          op: 'insert',
          ...at,
          rule,
          position: checkPositionValue(op.position, f(field, 'position')),
          ...expiry,
          field,
        };
      const position =
        op.position === undefined ? undefined : checkPositionValue(op.position, f(field, 'position'));
      return { op: 'ensure', ...at, rule, position, ...expiry, field };
    }
    case 'replace': {
      const at = address(op, field);
      const target = ruleRef(op.target, at.family, f(field, 'target'));
      const rule = toRule(op.rule, at.family, f(field, 'rule'));
      return { op: 'replace', ...at, target, rule, field };
    }
    case 'delete': {
      const at = address(op, field);
      return { op: 'delete', ...at, target: ruleRef(op.target, at.family, f(field, 'target')), field };
    }
    case 'createChain': {
      const at = address(op, field);
      newChainName(at.chain, f(field, 'chain'));
      if (builtin(at.table, at.chain)) {
        throw new DomainError('already_exists', `${at.chain} is a built-in chain of table ${at.table}`, {
          field: f(field, 'chain'),
        });
      }
      return { op: 'createChain', ...at, field };
    }
    case 'deleteChain': {
      const at = address(op, field);
      if (builtin(at.table, at.chain))
        throw invalid(f(field, 'chain'), `${at.chain} is a built-in chain and cannot be deleted`);
      return { op: 'deleteChain', ...at, force: op.force === true, field };
    }
    case 'flushChain':
      return { op: 'flushChain', ...address(op, field), field };
    case 'renameChain': {
      const at = address(op, field);
      if (builtin(at.table, at.chain))
        throw invalid(f(field, 'chain'), `${at.chain} is a built-in chain and cannot be renamed`);
      const newName = newChainName(op.newName, f(field, 'newName'));
      return { op: 'renameChain', ...at, newName, field };
    }
    case 'setPolicy': {
      const at = address(op, field);
      if (!builtin(at.table, at.chain)) {
        throw invalid(
          f(field, 'chain'),
          `only built-in chains have a policy; ${at.chain} is not one of ${BUILTIN_CHAINS[at.table].join(', ')}`,
        );
      }
      if (op.policy !== 'ACCEPT' && op.policy !== 'DROP')
        throw invalid(f(field, 'policy'), `${f(field, 'policy')} must be ACCEPT or DROP`);
      return { op: 'setPolicy', ...at, policy: op.policy, field };
    }
    case 'zeroCounters': {
      const at = address(op, field);
      return { op: 'zeroCounters', family: at.family, table: at.table, chain: op.chain, field };
    }
    case 'replaceChain': {
      const at = address(op, field);
      if (!builtin(at.table, at.chain)) newChainName(at.chain, f(field, 'chain'));
      const rules = rulesList(op.rules, at.family, f(field, 'rules'), known?.(at.family, at.table));
      return { op: 'replaceChain', ...at, rules, field };
    }
    case 'replaceTable': {
      const at = address({ family: op.family, table: op.table }, field);
      return {
        op: 'replaceTable',
        family: at.family,
        table: at.table,
        chains: tableChains(op.chains, at.family, at.table, field, known?.(at.family, at.table)),
        field,
      };
    }
    case 'reset': {
      if (op.family !== undefined && !isFamily(op.family))
        throw invalid(f(field, 'family'), 'family must be ipv4 or ipv6');
      if (op.table !== undefined && !isTableName(op.table))
        throw invalid(f(field, 'table'), `table must be one of ${TABLES.join(', ')}`);
      return { op: 'reset', family: op.family, table: op.table, field };
    }
    default:
      throw invalid(f(field, 'op'), `unknown operation "${String((op as { op: unknown }).op).slice(0, 40)}"`);
  }
}

/**
 * Validates a transaction (a single operation is a transaction of one). `managed` are the
 * families the service manages: an operation on another is refused. `known`: the model's
 * accepted rules by text, for declarative replaces (see KnownRules).
 */
export function validateOperations(
  ops: readonly Operation[],
  managed: readonly Family[],
  known?: KnownRules,
): ValidOp[] {
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new DomainError('invalid_argument', 'a transaction needs at least one operation', {
      field: 'operations',
    });
  }
  if (ops.length > MAX_OPERATIONS)
    throw new DomainError('invalid_argument', `a transaction holds at most ${MAX_OPERATIONS} operations`, {
      field: 'operations',
    });
  ops.forEach((op, i) => {
    const family = (op as { family?: unknown } | null)?.family;
    if (isFamily(family) && !managed.includes(family)) {
      const field = ops.length > 1 ? `operations[${i}].family` : 'family';
      throw new DomainError('invalid_argument', `family ${family} is not managed by this service`, { field });
    }
  });
  return ops.map((op, i) => {
    const field = ops.length > 1 ? `operations[${i}]` : '';
    try {
      return validateOne(op, field, known);
    } catch (e) {
      throw e instanceof DomainError && ops.length > 1 && e.field === undefined
        ? e.withFieldPrefix(field)
        : e;
    }
  });
}
