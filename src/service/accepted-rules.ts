/**
 * Rules a request's validation accepted: parsed from a spec (parseRuleSpec) or built from typed
 * JSON (normalizeRule and checkRuleLine), fully typed, with the family they were checked for.
 *
 * Such a rule reads back from its own canonical text as itself: `parseRuleSpec(ruleText(r))`
 * is `r` (lossless text, proven for generated hostile rules in test/iptables/lossless.test.ts,
 * step (c)). So a spec equal to the text of an accepted rule the model holds need not be parsed
 * again: a declarative replace that sends a whole table back, nearly all of it what the model
 * holds, validates by lookup instead of a parse per rule (issue 15: a 1% replace of a
 * 500,000-rule ruleset spent 3 of its 7.6 s parsing specs equal to the model's own texts).
 *
 * Rules read from the kernel are not accepted until a request's copy is adopted (state.ts): the
 * kernel may hold text a request may not send (control characters in a comment, an option we
 * do not type), and the save parser reads it leniently. Rules with an untyped part are never
 * accepted: the kernel gives them its own form (canonicalize.ts).
 */
import type { Family } from '../domain/family.js';
import { isRawMatch, isRawTarget, type Rule } from '../domain/model.js';

const accepted = new WeakMap<Rule, Family>();

/** Records that validation accepted `rule` for `family` (not when it has an untyped part). */
export function markAccepted(rule: Rule, family: Family): Rule {
  if (!rule.matches.some(isRawMatch) && !(rule.target !== undefined && isRawTarget(rule.target)))
    accepted.set(rule, family);
  return rule;
}

/** Whether validation accepted this very rule object for `family`. */
export function isAccepted(rule: Rule, family: Family): boolean {
  return accepted.get(rule) === family;
}
