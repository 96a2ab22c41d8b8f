/**
 * Writes a rule in canonical command-line form: the order and spelling
 * iptables-save uses (`-s -d -i -o -p -f`, then matches as `-m NAME opts`,
 * then `-j`/`-g`), so a rule we write and the rule the kernel prints back are
 * the same text. `ruleText` is that text, used for rule ids and display.
 * (rule-check.ts refuses a rule iptables would not read back as written.)
 */
import { formatExtension, type Token } from '../domain/extensions/define.js';
import { MATCH_SPECS, TARGET_SPECS } from '../domain/extensions/index.js';
import { isGoto, isJump, isRawMatch, isRawTarget, type Rule, type RuleField } from '../domain/model.js';
import { renderTokens, tokenValues } from './tokenize.js';

const RULE_FLAGS: ReadonlyArray<readonly [RuleField, string]> = [
  ['source', '-s'],
  ['destination', '-d'],
  ['inInterface', '-i'],
  ['outInterface', '-o'],
  ['protocol', '-p'],
  ['fragment', '-f'],
];

export function ruleTokens(rule: Rule): Token[] {
  const out: Token[] = [];
  const invert = rule.invert ?? [];
  for (const [key, flag] of RULE_FLAGS) {
    const v = rule[key];
    if (v === undefined) continue;
    if (invert.includes(key)) out.push({ text: '!' });
    out.push({ text: flag });
    if (v !== true) out.push({ text: v });
  }
  for (const m of rule.matches) {
    out.push({ text: '-m' }, { text: m.module });
    if (isRawMatch(m)) for (const t of m.raw) out.push({ text: t, written: true });
    else {
      const spec = MATCH_SPECS.get(m.module);
      if (spec) out.push(...formatExtension(spec, m as unknown as Record<string, unknown>));
    }
  }
  const t = rule.target;
  if (t) {
    if (isJump(t)) out.push({ text: '-j' }, { text: t.jump });
    else if (isGoto(t)) out.push({ text: '-g' }, { text: t.goto });
    else {
      out.push({ text: '-j' }, { text: t.target });
      if (isRawTarget(t)) for (const x of t.raw) out.push({ text: x, written: true });
      else {
        const spec = TARGET_SPECS.get(t.target);
        if (spec) out.push(...formatExtension(spec, t as unknown as Record<string, unknown>));
      }
    }
  }
  return out;
}

/** argv for `iptables -A CHAIN ...` (no quoting: each element is one argument). */
export function ruleArgv(rule: Rule): string[] {
  return tokenValues(ruleTokens(rule));
}

interface Rendered {
  readonly text: string;
  /** How many words (argv elements) the text has. */
  readonly words: number;
}

/**
 * A rule's rendering, remembered for frozen rules (every rule the parser, the validation and
 * the save reader build is frozen, so its text can never change): a change is validated,
 * planned, written into restore text and recorded, and each of those needs the text.
 */
const rendered = new WeakMap<Rule, Rendered>();

function render(rule: Rule): Rendered {
  let r = rendered.get(rule);
  if (r === undefined) {
    const tokens = ruleTokens(rule);
    r = { text: renderTokens(tokens), words: tokens.length };
    if (Object.isFrozen(rule)) rendered.set(rule, r);
  }
  return r;
}

/** The canonical one-line text of a rule, as iptables-save prints it after `-A CHAIN`. */
export function ruleText(rule: Rule): string {
  return render(rule).text;
}

/** How many words (arguments) the rule's text has. */
export function ruleWordCount(rule: Rule): number {
  return render(rule).words;
}

/**
 * The text without remembering it: for the rules of a whole ruleset read from the kernel,
 * whose entries keep their text themselves (a remembered text per rule would only cost memory).
 */
export function ruleTextOnce(rule: Rule): string {
  return rendered.get(rule)?.text ?? renderTokens(ruleTokens(rule));
}
