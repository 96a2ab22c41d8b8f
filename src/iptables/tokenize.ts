/**
 * The one definition of iptables' quoting, shared by everything that reads or
 * writes a rule line: the spec parser (what an operator pastes), the save
 * parser (what the kernel prints), the restore-input parser of the fake, and
 * the writer of restore text.
 *
 * Reading follows iptables 1.8.9's `add_param_to_argv` (iptables/xshared.c)
 * exactly: words are separated by spaces and tabs; `"` opens a quoted part in
 * which a backslash takes the next character literally (`\'` is `'`, `\\` is
 * `\`, `\x` is `x`); the closing `"` ends the word (`"a"b` is two words, `""`
 * is one empty word); outside quotes a backslash and a single quote are plain
 * characters. There is no other quoting: no single-quote grouping, no shell.
 * A spec is read the same way, so text we print, text iptables-save prints and
 * text an operator pastes mean the same thing to us and to iptables-restore.
 * We only refuse what iptables would misread: control characters (a second
 * line), an unterminated quote (iptables runs on into the newline), and words
 * longer than its 1023-byte parameter buffer.
 *
 * Writing follows `xtables_save_string` (libxtables): a string value is bare
 * when it is only letters, digits, `_` and `-`, else it is put in double
 * quotes with `"`, `\` and `'` escaped by a backslash. Words of untyped
 * extensions are kept as written (`written`), so a rule the kernel printed is
 * printed back byte for byte.
 */
import { preview } from '../domain/address.js';
import { invalid } from '../domain/errors.js';
import type { Token } from '../domain/extensions/define.js';

/** Longest spec accepted, in characters (iptables reads lines of up to 10 kB). */
const MAX_SPEC = 10_000;
/** Longest word iptables' parser buffers (xt_param_buf is 1024 bytes with the NUL). */
export const MAX_WORD_BYTES = 1023;

/** One word of a line: what iptables passes to its option parser, and how it was written. */
export interface Word {
  /** The argument after quote removal. */
  readonly value: string;
  /** The word exactly as it appears on the line (quotes and escapes included). */
  readonly written: string;
  /** Part of it was in double quotes. */
  readonly quoted: boolean;
}

interface Scan {
  readonly words: Word[];
  /** A `"` was opened and not closed before the end. */
  readonly unterminated: boolean;
}

/** add_param_to_argv, on one line without its newline. */
function scan(text: string): Scan {
  const words: Word[] = [];
  let value = '';
  let start = -1;
  let quoteOpen = false;
  let escaped = false;
  let quoted = false;
  const emit = (end: number) => {
    words.push({ value, written: text.slice(start, end), quoted });
    value = '';
    start = -1;
    quoted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoteOpen) {
      if (escaped) {
        value += c;
        escaped = false;
        continue;
      }
      if (c === '\\') {
        escaped = true;
        continue;
      }
      if (c !== '"') {
        value += c;
        continue;
      }
      // The closing quote ends the word.
      quoteOpen = false;
      emit(i + 1);
      continue;
    }
    if (c === '"') {
      quoteOpen = true;
      quoted = true;
      if (start === -1) start = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n') {
      if (value.length > 0) emit(i);
      continue;
    }
    value += c;
    if (start === -1) start = i;
  }
  if (quoteOpen) return { words, unterminated: true };
  if (value.length > 0) emit(text.length);
  return { words, unterminated: false };
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
/** A UTF-16 surrogate without its partner: it has no UTF-8 form, so it cannot reach the kernel. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkLine(text: string, field: string): void {
  const control = CONTROL.exec(text.replace(/\t/g, ' '));
  if (control) {
    throw invalid(
      field,
      `${field} must be a single line without control characters (found \\u${control[0].charCodeAt(0).toString(16).padStart(4, '0')} at offset ${control.index})`,
    );
  }
  if (LONE_SURROGATE.test(text)) throw invalid(field, `${field} holds a lone UTF-16 surrogate`);
}

function checkWords(words: readonly Word[], field: string): void {
  for (const w of words) {
    if (utf8Length(w.value) > MAX_WORD_BYTES) {
      throw invalid(
        field,
        `${field}: the word "${preview(w.value)}" is longer than ${MAX_WORD_BYTES} bytes, which iptables cannot read`,
      );
    }
  }
}

/**
 * Words of an operator's rule spec (`-p tcp --dport 22 -m comment --comment "it\'s"`),
 * read exactly as iptables-restore reads a line.
 */
export function splitSpecWords(text: string, field = 'spec'): Word[] {
  if (typeof text !== 'string') throw invalid(field, `${field} must be a string`);
  if (text.length > MAX_SPEC) throw invalid(field, `${field} is longer than ${MAX_SPEC} characters`);
  checkLine(text, field);
  const { words, unterminated } = scan(text);
  if (unterminated) {
    throw invalid(
      field,
      `${field} has an unterminated double quote (inside "...", write \\" for a quote and \\\\ for a backslash)`,
    );
  }
  checkWords(words, field);
  return words;
}

/** The argument values of a spec. */
export function splitSpec(text: string, field = 'spec'): string[] {
  return splitSpecWords(text, field).map((w) => w.value);
}

/** Words of one line of restore input or iptables-save output; `line` is for error messages. */
export function splitRestoreWords(text: string, line: number): Word[] {
  const { words, unterminated } = scan(text);
  if (unterminated) throw invalid(undefined, `line ${line}: unterminated quote in "${preview(text)}"`);
  return words;
}

/** The argument values of one restore/save line. */
export function splitRestoreLine(text: string, line: number): string[] {
  return splitRestoreWords(text, line).map((w) => w.value);
}

const PLAIN = /^[A-Za-z0-9_-]+$/;
/** Values that need no quotes to be read back as one word with the same value. */
const SAFE_UNQUOTED = /^[^\s"'\\]+$/;

/** A string as xtables_save_string prints it: bare when plain, else double-quoted with `"`, `\`, `'` escaped. */
export function quoteString(value: string): string {
  if (PLAIN.test(value)) return value;
  return `"${value.replace(/["'\\]/g, (c) => `\\${c}`)}"`;
}

/** Whether `written` is one well-formed word of a line (as kept for untyped extensions). */
export function isWord(written: string): boolean {
  if (written.length === 0 || CONTROL.test(written) || LONE_SURROGATE.test(written)) return false;
  const { words, unterminated } = scan(written);
  return !unterminated && words.length === 1 && words[0]?.written === written;
}

/** The value of one written word (`"a b"` -> `a b`). */
export function wordValue(written: string): string {
  return scan(written).words[0]?.value ?? '';
}

/**
 * Checks a word of an untyped match or target as written on a line: exactly one word,
 * quotes balanced, at most {@link MAX_WORD_BYTES} bytes of value.
 */
export function checkWord(written: unknown, field: string): string {
  if (typeof written !== 'string') throw invalid(field, `${field} must be a string`);
  if (CONTROL.test(written) || LONE_SURROGATE.test(written))
    throw invalid(field, `${field} must not contain control characters such as newline or NUL`);
  if (!isWord(written)) {
    throw invalid(
      field,
      `${field} "${preview(written)}" is not one word of an iptables line: write a value with spaces or quotes in double quotes, as iptables-save does ("a b", "it\\'s")`,
    );
  }
  if (utf8Length(wordValue(written)) > MAX_WORD_BYTES)
    throw invalid(field, `${field} is longer than ${MAX_WORD_BYTES} bytes, which iptables cannot read`);
  return written;
}

/** A value as one word: bare when it needs no quotes, else as xtables_save_string quotes it. */
export function writeValue(value: string): string {
  return SAFE_UNQUOTED.test(value) ? value : quoteString(value);
}

/**
 * One word of restore text for a token. A written word is printed as it is; a string
 * value (`quoted`) as xtables_save_string prints it; any other value bare when it
 * needs no quotes. The model validates every value before it gets here; this is the
 * last line of defence: a control byte is refused, so restore text never gains a
 * second line.
 */
function renderToken(t: Token, i: number): string {
  if (typeof t.text !== 'string') {
    throw invalid(
      undefined,
      `refusing to write restore text: token ${i + 1} is a ${typeof t.text}, not a string`,
    );
  }
  if (CONTROL.test(t.text) || LONE_SURROGATE.test(t.text)) {
    throw invalid(
      undefined,
      `refusing to write restore text: token ${i + 1} ("${preview(t.text)}") contains a control character such as newline or NUL`,
    );
  }
  if (t.written) {
    if (!isWord(t.text))
      throw invalid(undefined, `refusing to write restore text: "${preview(t.text)}" is not one word`);
    return t.text;
  }
  return t.quoted ? quoteString(t.text) : writeValue(t.text);
}

/** One line of restore text from tokens. */
export function renderTokens(tokens: readonly Token[]): string {
  return tokens.map(renderToken).join(' ');
}

/** Argument values of tokens (what `iptables -A` would receive as argv). */
export function tokenValues(tokens: readonly Token[]): string[] {
  return tokens.map((t) => (t.written ? wordValue(t.text) : t.text));
}
