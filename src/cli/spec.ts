/**
 * A rule from the command line as the API's `spec` string.
 *
 * The shell has already split the command line into words (argv), so a comment typed as
 * `--comment "a b"` arrives as the one word `a b`. The server reads a spec with iptables'
 * own tokenizer (src/iptables/tokenize.ts, iptables-restore's `add_param_to_argv`), so the
 * words must be written in that syntax: {@link specFromWords} is the inverse of its
 * `splitSpec`. A word is written bare when it has no blank, quote or backslash, else in
 * double quotes with `"`, `\` and `'` escaped (`writeValue`, what iptables-save does), so
 * `splitSpec(specFromWords(words))` gives back exactly `words` — the property
 * test/cli/spec.test.ts checks with hostile strings. What iptables itself cannot read
 * (control characters such as a newline, words over 1023 bytes) is refused here, before
 * anything is sent.
 */
import { DomainError } from '../domain/errors.js';
import { splitSpec, writeValue } from '../iptables/tokenize.js';
import { usage } from './errors.js';

/** The spec string that iptables' tokenizer reads back as exactly `words`. */
export function specFromWords(words: readonly string[]): string {
  return words.map(writeValue).join(' ');
}

/** {@link specFromWords}, checked: a usage error when iptables could not read the words back. */
export function checkedSpec(words: readonly string[]): string {
  const spec = specFromWords(words);
  let back: string[];
  try {
    back = splitSpec(spec, 'rule');
  } catch (err) {
    if (err instanceof DomainError) throw usage(err.message);
    throw err;
  }
  if (back.length !== words.length || back.some((w, i) => w !== words[i]))
    throw usage('the rule cannot be written as one iptables line');
  return spec;
}
