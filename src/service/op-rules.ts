/**
 * The rules inside a validated operation, with the field each came from, and
 * the operation with some of its rules replaced: for steps that work on rules
 * across operation kinds (canonicalising untyped rules before planning).
 */
import type { Rule } from '../domain/model.js';
import { ruleText } from '../iptables/rule-writer.js';
import type { ValidOp, ValidRuleRef } from './operations.js';

const at = (field: string, name: string) => (field ? `${field}.${name}` : name);

/** The rules of an operation that `which` picks, with the field each came from. */
export function rulesOf(op: ValidOp, which: (rule: Rule) => boolean): { rule: Rule; field: string }[] {
  const one = (rule: Rule, field: () => string) => (which(rule) ? [{ rule, field: field() }] : []);
  switch (op.op) {
    case 'append':
    case 'insert':
    case 'ensure':
      return one(op.rule, () => at(op.field, 'rule'));
    case 'replace':
      return [
        ...('rule' in op.target ? one(op.target.rule, () => at(op.field, 'target.rule')) : []),
        ...one(op.rule, () => at(op.field, 'rule')),
      ];
    case 'delete':
      return 'rule' in op.target ? one(op.target.rule, () => at(op.field, 'target.rule')) : [];
    case 'replaceChain':
      return op.rules.flatMap((rule, i) => one(rule, () => at(op.field, `rules[${i}]`)));
    case 'replaceTable':
      // A table of 250,000 rules: no field is written for a rule that is not asked for.
      return op.chains.flatMap((c) => {
        const out: { rule: Rule; field: string }[] = [];
        c.rules.forEach((rule, j) => {
          if (which(rule)) out.push({ rule, field: `${c.field}.rules[${j}]` });
        });
        return out;
      });
    default:
      return [];
  }
}

/** The operation with each rule replaced by `map.get(rule)` when present. */
export function withRules(op: ValidOp, map: ReadonlyMap<Rule, Rule>): ValidOp {
  const r = (rule: Rule) => map.get(rule) ?? rule;
  const ref = (target: ValidRuleRef): ValidRuleRef => {
    if (!('rule' in target)) return target;
    const rule = r(target.rule);
    return rule === target.rule ? target : { rule, text: ruleText(rule) };
  };
  switch (op.op) {
    case 'append':
    case 'insert':
    case 'ensure':
      return { ...op, rule: r(op.rule) };
    case 'replace':
      return { ...op, target: ref(op.target), rule: r(op.rule) };
    case 'delete':
      return { ...op, target: ref(op.target) };
    case 'replaceChain':
      return { ...op, rules: op.rules.map(r) };
    case 'replaceTable':
      return { ...op, chains: op.chains.map((c) => ({ ...c, rules: c.rules.map(r) })) };
    default:
      return op;
  }
}
