/**
 * Refuses, before anything reaches the kernel, a rule that iptables could not
 * read back as the same rule from the line we would write:
 * - a word of an untyped extension that is not one word, or that is a
 *   rule-level option (`-j DROP` hidden among a match's words would make the
 *   kernel drop while the model shows no target);
 * - a rule whose options iptables would hand to another extension (a second
 *   `-m connmark` after `-m mark`: iptables gives its `--mark` to mark); this is
 *   found by reading our own line back exactly as iptables does;
 * - a line with more words or bytes than iptables-restore reads.
 * Together with the tokenizer this makes "the text of a rule is a spec of the
 * same rule" hold for every rule we accept.
 */
import { invalid, isDomainError } from '../domain/errors.js';
import type { Family } from '../domain/family.js';
import { isRawMatch, isRawTarget, type Rule } from '../domain/model.js';
import { parseRuleArgs } from './rule-parser.js';
import { ruleText, ruleWordCount } from './rule-writer.js';
import { checkWord, splitSpecWords, wordValue } from './tokenize.js';

/**
 * Options that start a new part of a rule. Inside the words of an untyped match or
 * target they would be read by iptables as that new part.
 */
export const BOUNDARY_OPTIONS: ReadonlySet<string> = new Set([
  '-p',
  '--protocol',
  '-s',
  '--source',
  '--src',
  '-d',
  '--destination',
  '--dst',
  '-i',
  '--in-interface',
  '-o',
  '--out-interface',
  '-f',
  '--fragment',
  '-m',
  '--match',
  '-j',
  '--jump',
  '-g',
  '--goto',
]);

/**
 * Most arguments iptables-restore takes on one line (its argv store holds 255 slots,
 * three of which it uses itself; measured: 248 words pass, 252 fail), and the longest
 * line it reads whole (a 10240-byte buffer).
 */
export const MAX_LINE_WORDS = 240;
export const MAX_LINE_BYTES = 10_000;

function checkRawWords(words: readonly string[], field: string): void {
  words.forEach((w, i) => {
    const f = `${field}.raw[${i}]`;
    checkWord(w, f);
    const value = wordValue(w);
    if (BOUNDARY_OPTIONS.has(value)) {
      throw invalid(
        f,
        `${f} is "${value}", which iptables would read as the rule's own option, not as part of this extension; give it as a field of the rule`,
      );
    }
  });
}

/** Refuses a rule iptables could not read back as the same rule (see the module comment). */
export function checkRuleLine(rule: Rule, family: Family, field: string): void {
  rule.matches.forEach((m, i) => {
    if (isRawMatch(m)) checkRawWords(m.raw, `${field}.matches[${i}]`);
  });
  if (rule.target && isRawTarget(rule.target)) checkRawWords(rule.target.raw, `${field}.target`);
  const words = ruleWordCount(rule);
  // `-I CHAIN N` plus the rule; a chain name is at most 28 characters.
  if (words + 3 > MAX_LINE_WORDS) {
    throw invalid(
      field,
      `${field} has ${words} words; iptables-restore reads at most ${MAX_LINE_WORDS - 3} per rule`,
    );
  }
  const text = ruleText(rule);
  const bytes = Buffer.byteLength(text, 'utf8') + 40;
  if (bytes > MAX_LINE_BYTES) {
    throw invalid(
      field,
      `${field} is ${bytes - 40} bytes long as a line; iptables-restore reads lines of at most ${MAX_LINE_BYTES - 40} bytes`,
    );
  }
  // Options can only change hands when an extension is loaded twice.
  const names = rule.matches.map((m) => m.module);
  if (new Set(names).size === names.length) return;
  let back: Rule;
  try {
    back = parseRuleArgs(splitSpecWords(text, field), family, { mode: 'spec', field });
  } catch (e) {
    if (!isDomainError(e)) throw e;
    throw invalid(field, `${field} cannot be written so that iptables reads it back: ${e.message}`);
  }
  if (JSON.stringify(back) !== JSON.stringify(rule)) {
    throw invalid(
      field,
      `${field} cannot be written so that iptables reads it back: iptables would read "${text.slice(0, 200)}" as another rule (an extension loaded twice with another one between them that shares its options)`,
    );
  }
}
