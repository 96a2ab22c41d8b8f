/**
 * The rules inside a validated operation, with the field each came from, and
 * the operation with some of its rules replaced: for steps that work on rules
 * across operation kinds (canonicalising untyped rules before planning).
 */
import type { Rule } from '../domain/model.js';
import { ruleText } from '../iptables/rule-writer.js';
import type { ValidOp, ValidRuleRef } from './operations.js';

const at = (field: string, name: string) => (field ? `${field}.${name}` : name);

export function rulesOf(op: ValidOp): { rule: Rule; field: string }[] {
  switch (op.op) {
    case 'append':
    case 'insert':
    case 'ensure':
      return [{ rule: op.rule, field: at(op.field, 'rule') }];
    case 'replace':
      return [
        ...('rule' in op.target ? [{ rule: op.target.rule, field: at(op.field, 'target.rule') }] : []),
        { rule: op.rule, field: at(op.field, 'rule') },
      ];
    case 'delete':
      return 'rule' in op.target ? [{ rule: op.target.rule, field: at(op.field, 'target.rule') }] : [];
    case 'replaceChain':
      return op.rules.map((rule, i) => ({ rule, field: at(op.field, `rules[${i}]`) }));
    case 'replaceTable':
      return op.chains.flatMap((c) => c.rules.map((rule, j) => ({ rule, field: `${c.field}.rules[${j}]` })));
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
