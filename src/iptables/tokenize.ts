/**
 * Splitting command lines into tokens, without any shell.
 *
 * - `splitSpec` reads what an operator types: whitespace-separated words with
 *   shell-like quoting ('single', "double" with backslash escapes, and a
 *   backslash outside quotes). Nothing is expanded; control characters and
 *   unbalanced quotes are errors.
 * - `splitRestoreLine` reads a line of iptables-save output the way
 *   iptables-restore does: double quotes group, backslash escapes inside them.
 * - `renderTokens` writes tokens back so that iptables-restore reads exactly
 *   those tokens, quoting as iptables-save does (libxtables save_string).
 */
import { preview } from '../domain/address.js';
import { invalid } from '../domain/errors.js';
import type { Token } from '../domain/extensions/define.js';

const MAX_SPEC = 8192;

export function splitSpec(text: string, field = 'spec'): string[] {
  if (typeof text !== 'string') throw invalid(field, `${field} must be a string`);
  if (text.length > MAX_SPEC) throw invalid(field, `${field} is longer than ${MAX_SPEC} characters`);
  const control = /[\x00-\x08\x0a-\x1f\x7f]/.exec(text);
  if (control) {
    throw invalid(
      field,
      `${field} must be a single line without control characters (found \\u${control[0].charCodeAt(0).toString(16).padStart(4, '0')} at offset ${control.index})`,
    );
  }
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else current += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1] as string))
        current += text[++i];
      else current += c;
      continue;
    }
    if (c === ' ' || c === '\t') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
      continue;
    }
    inToken = true;
    if (c === "'" || c === '"') quote = c;
    else if (c === '\\') {
      if (i + 1 >= text.length) throw invalid(field, `${field} ends with a lone backslash`);
      current += text[++i];
    } else if (';|&<>`$'.includes(c)) {
      throw invalid(
        field,
        `${field}: unquoted "${c}" at offset ${i}: a rule spec is one rule's options, not a shell command (quote the value if it is meant literally)`,
      );
    } else current += c;
  }
  if (quote)
    throw invalid(field, `${field} has an unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inToken) tokens.push(current);
  return tokens;
}

/**
 * Tokens of one restore/save line; `line` is for error messages. As in
 * iptables' add_param_to_argv, a closing quote ends the token (`"a"b` is two
 * tokens, `""` is one empty token) and a backslash is literal outside quotes.
 */
export function splitRestoreLine(text: string, line: number): string[] {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inQuote) {
      if (c === '\\' && i + 1 < text.length) current += text[++i];
      else if (c === '"') {
        inQuote = false;
        tokens.push(current);
        current = '';
        inToken = false;
      } else current += c;
      continue;
    }
    if (c === ' ' || c === '\t') {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else if (c === '"') {
      inToken = true;
      inQuote = true;
    } else {
      inToken = true;
      current += c;
    }
  }
  if (inQuote) throw invalid(undefined, `line ${line}: unterminated quote in "${preview(text)}"`);
  if (inToken) tokens.push(current);
  return tokens;
}

const PLAIN = /^[A-Za-z0-9_-]+$/;
const SAFE_UNQUOTED = /^[^\s"'\\]+$/;

function quote(text: string): string {
  return `"${text.replace(/["'\\]/g, (c) => `\\${c}`)}"`;
}

const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * One line of restore text from tokens, quoted the way iptables-save quotes.
 * The model validates every value before it gets here; this is the last line
 * of defence: a token with a newline, NUL or other control byte is refused,
 * so restore text never gains a second line.
 */
export function renderTokens(tokens: readonly Token[]): string {
  return tokens
    .map((t, i) => {
      if (typeof t.text !== 'string') {
        throw invalid(
          undefined,
          `refusing to write restore text: token ${i + 1} is a ${typeof t.text}, not a string`,
        );
      }
      if (CONTROL.test(t.text)) {
        throw invalid(
          undefined,
          `refusing to write restore text: token ${i + 1} ("${preview(t.text)}") contains a control character such as newline or NUL`,
        );
      }
      if (t.quoted) return PLAIN.test(t.text) ? t.text : quote(t.text);
      return SAFE_UNQUOTED.test(t.text) ? t.text : quote(t.text);
    })
    .join(' ');
}
