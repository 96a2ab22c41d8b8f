/**
 * Building canonical rules from typed input (JSON from the APIs) and the
 * rule-level checks shared with the command-line parser.
 */
import { canonicalCidr, preview } from './address.js';
import { DomainError, invalid } from './errors.js';
import type { AnyExtension } from './extensions/define.js';
import { normalizeExtension } from './extensions/define.js';
import { MATCH_SPECS, TARGET_SPECS } from './extensions/index.js';
import { checkOptionDispatch } from './extensions/option-dispatch.js';
import { mergeRepeatedMatches } from './extensions/repeated-matches.js';
import type { Family } from './family.js';
import type { Match, Rule, RuleField, Target } from './model.js';
import { RULE_FIELDS } from './model.js';
import { canonicalProtocol } from './protocol.js';
import { checkChainName, checkInterface, checkRawToken, type ReservedChainNames } from './validate.js';

/** Canonical value of one rule-level field, or undefined when it means "any" (e.g. `-p all`, `-s 0.0.0.0/0`). */
export function canonicalRuleField(
  key: RuleField,
  value: unknown,
  family: Family,
  field: string,
): string | true | undefined {
  switch (key) {
    case 'protocol': {
      const p = canonicalProtocol(value, field);
      return p.number === 0 ? undefined : p.text;
    }
    case 'source':
    case 'destination': {
      if (typeof value !== 'string') throw invalid(field, `${field} must be an address or CIDR`);
      const c = canonicalCidr(family, value, field);
      return c.endsWith('/0') ? undefined : c;
    }
    case 'inInterface':
    case 'outInterface':
      return checkInterface(value, field);
    case 'fragment':
      if (family === 'ipv6') throw invalid(field, `${field}: fragment (-f) exists only for ipv4`);
      if (value !== true) throw invalid(field, `${field} is a flag: set it to true or leave it out`);
      return true;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkRaw(value: unknown, field: string): readonly string[] {
  if (!Array.isArray(value)) throw invalid(field, `${field} must be a list of tokens`);
  if (value.length > 64) throw invalid(field, `${field} holds at most 64 tokens`);
  return Object.freeze(value.map((t, i) => checkRawToken(t, `${field}[${i}]`)));
}

const EXT_NAME = /^[A-Za-z0-9_.-]{1,28}$/;

/**
 * An extension we have no typed form for (or given as raw words): its name, and its
 * options as validated raw tokens. `key` names the extension (`module` or `target`).
 */
function untypedExtension(
  input: Record<string, unknown>,
  key: 'module' | 'target',
  name: string,
  field: string,
): { readonly raw: readonly string[] } {
  const what = key === 'module' ? 'match' : 'target';
  if (!EXT_NAME.test(name))
    throw invalid(`${field}.${key}`, `${field}.${key} "${preview(name)}" is not a valid ${what} name`);
  const extra = Object.keys(input).find((k) => k !== key && k !== 'raw');
  if (extra !== undefined) {
    throw invalid(`${field}.${extra}`, `${what} "${name}" is not typed; give its options as "raw": [tokens]`);
  }
  return Object.freeze({ [key]: name, raw: checkRaw(input.raw ?? [], `${field}.raw`) });
}

export function normalizeMatch(input: unknown, family: Family, field: string): Match {
  if (!isRecord(input) || typeof input.module !== 'string') {
    throw invalid(field, `${field} must be an object with a "module" name`);
  }
  const spec = MATCH_SPECS.get(input.module);
  if (spec && input.raw === undefined)
    return normalizeExtension(spec, input, family, field, 'module') as Match;
  return untypedExtension(input, 'module', input.module, field) as Match;
}

/**
 * A typed target, or a jump/goto. A jump to one of `reserved` (a verdict or target name,
 * which no chain can have) is that target: `{ jump: "MASQUERADE" }` is `-j MASQUERADE`.
 */
export function normalizeTarget(
  input: unknown,
  family: Family,
  field: string,
  reserved: ReservedChainNames,
): Target {
  if (!isRecord(input)) throw invalid(field, `${field} must be an object`);
  if ('jump' in input || 'goto' in input) {
    const key = 'jump' in input ? 'jump' : 'goto';
    if (Object.keys(input).length !== 1) throw invalid(field, `${field}: "${key}" takes no other fields`);
    const chain = checkChainName(input[key], `${field}.${key}`);
    if (TARGET_SPECS.has(chain)) {
      if (key === 'goto')
        throw invalid(`${field}.goto`, `${field}.goto must name a user chain, not ${chain}`);
      return normalizeExtension(
        TARGET_SPECS.get(chain) as AnyExtension,
        { target: chain },
        family,
        field,
        'target',
      ) as Target;
    }
    if (reserved.has(chain)) {
      // No chain can be called MASQUERADE or SNAT: that jump is the untyped target.
      if (key === 'goto')
        throw invalid(`${field}.goto`, `${field}.goto must name a user chain, not ${chain}`);
      return Object.freeze({ target: chain, raw: Object.freeze([]) });
    }
    return Object.freeze(key === 'jump' ? { jump: chain } : { goto: chain });
  }
  if (typeof input.target !== 'string')
    throw invalid(field, `${field} needs "target" (e.g. "ACCEPT"), "jump" or "goto"`);
  const spec = TARGET_SPECS.get(input.target);
  if (spec && input.raw === undefined)
    return normalizeExtension(spec, input, family, field, 'target') as Target;
  return untypedExtension(input, 'target', input.target, field) as Target;
}

/**
 * Matches that only work with a given `-p` (not negated). iptables refuses the
 * rest ("TCP match requires '-p tcp'", "multiport needs `-p tcp', ..."), so we
 * refuse them before they reach the kernel. Matches with a `protocol` in their
 * spec (tcp, udp, icmp, icmp6) are checked from the spec.
 */
const PROTOCOL_NEEDS: Readonly<Record<string, readonly string[]>> = {
  multiport: ['tcp', 'udp', 'udplite', 'sctp', 'dccp'],
};

function checkProtocolNeeds(
  protocol: string | undefined,
  protocolInverted: boolean,
  matches: readonly Match[],
  target: Target | undefined,
  field: string,
): void {
  const p = protocolInverted ? undefined : protocol;
  matches.forEach((m, i) => {
    if ('raw' in m) return;
    const spec = MATCH_SPECS.get(m.module);
    const needs = spec?.protocol !== undefined ? [spec.protocol] : PROTOCOL_NEEDS[m.module];
    if (needs && (p === undefined || !needs.includes(p))) {
      throw invalid(
        `${field}.matches[${i}]`,
        `${field}.matches[${i}]: ${m.module} needs protocol ${needs.join(', ')} (not negated), found ${protocol === undefined ? 'none' : `${protocolInverted ? '! ' : ''}${protocol}`}`,
      );
    }
  });
  if (
    target &&
    'target' in target &&
    target.target === 'REJECT' &&
    (target as { rejectWith?: string }).rejectWith === 'tcp-reset' &&
    p !== 'tcp'
  ) {
    throw invalid(
      `${field}.target.rejectWith`,
      `${field}.target: --reject-with tcp-reset needs protocol tcp`,
    );
  }
}

/** Where merged match `k` was given: itself, or the first of the matches merged into it. */
function inputPosition(given: readonly Match[], merged: readonly Match[], k: number): number {
  const m = merged[k] as Match;
  const same = given.indexOf(m);
  return same >= 0 ? same : given.findIndex((g) => g.module === m.module);
}

/**
 * Assembles a frozen canonical rule in field order. `-i +` / `-o +` (any
 * interface) is left out unless negated, as iptables-save leaves it out.
 * Repeated tcp/udp matches are merged as the kernel merges them
 * (mergeRepeatedMatches); `lenient` (kernel output) leaves a conflict unmerged
 * instead of refusing it.
 */
export function buildRule(
  fields: Partial<Record<RuleField, string | true>>,
  inverted: ReadonlySet<RuleField>,
  matchList: readonly Match[],
  target: Target | undefined,
  field: string,
  lenient = false,
): Rule {
  const matches = mergeRepeatedMatches(matchList, field, lenient);
  // On what is written (merged), naming positions as given. Kernel output
  // (lenient) is kept whatever it is: refusing it would hide a kernel rule.
  if (!lenient) checkOptionDispatch(matches, field, (k) => inputPosition(matchList, matches, k));
  const out: Record<string, unknown> = {};
  const invert: RuleField[] = [];
  for (const key of RULE_FIELDS) {
    const v = fields[key];
    if (v === undefined) {
      if (inverted.has(key))
        throw invalid(`${field}.invert`, `${field}.invert names "${key}", which is not set`);
      continue;
    }
    if (v === '+' && !inverted.has(key)) continue;
    out[key] = v;
    if (inverted.has(key)) invert.push(key);
  }
  // Before merging changes the positions, so an error names the match as given.
  checkProtocolNeeds(
    fields.protocol as string | undefined,
    inverted.has('protocol'),
    matchList,
    target,
    field,
  );
  if (invert.length) out.invert = Object.freeze(invert);
  out.matches = Object.freeze([...matches]);
  if (target) out.target = target;
  return Object.freeze(out) as unknown as Rule;
}

const RULE_KEYS = new Set<string>([...RULE_FIELDS, 'invert', 'matches', 'target']);

/**
 * Validates a typed rule (as JSON) for `family` and returns its canonical
 * model. Unknown fields are refused; every error names the field. `reserved`
 * are the verdict and target names of the iptables in use (see normalizeTarget);
 * callers use src/iptables/catalogue.ts' normalizeRule, which passes them.
 */
export function normalizeRuleWith(
  reserved: ReservedChainNames,
  input: unknown,
  family: Family,
  field = 'rule',
): Rule {
  if (!isRecord(input)) throw invalid(field, `${field} must be an object`);
  for (const key of Object.keys(input)) {
    if (!RULE_KEYS.has(key)) throw invalid(`${field}.${key}`, `${field} has no field "${preview(key)}"`);
  }
  const fields: Partial<Record<RuleField, string | true>> = {};
  for (const key of RULE_FIELDS) {
    if (input[key] === undefined) continue;
    const v = canonicalRuleField(key, input[key], family, `${field}.${key}`);
    if (v !== undefined) fields[key] = v;
  }
  const inverted = new Set<RuleField>();
  if (input.invert !== undefined) {
    if (!Array.isArray(input.invert))
      throw invalid(`${field}.invert`, `${field}.invert must be a list of field names`);
    for (const k of input.invert) {
      if (!RULE_FIELDS.includes(k)) {
        throw invalid(
          `${field}.invert`,
          `${field}.invert: "${preview(String(k))}" is not one of ${RULE_FIELDS.join(', ')}`,
        );
      }
      inverted.add(k);
    }
  }
  const matchesInput = input.matches ?? [];
  if (!Array.isArray(matchesInput)) throw invalid(`${field}.matches`, `${field}.matches must be a list`);
  if (matchesInput.length > 32)
    throw invalid(`${field}.matches`, `${field}.matches holds at most 32 matches`);
  const matches = matchesInput.map((m, i) => normalizeMatch(m, family, `${field}.matches[${i}]`));
  const target =
    input.target === undefined
      ? undefined
      : normalizeTarget(input.target, family, `${field}.target`, reserved);
  try {
    return buildRule(fields, inverted, matches, target, field);
  } catch (e) {
    throw DomainError.from(e);
  }
}
