/**
 * specFromWords is the inverse of the server's tokenizer: whatever words the shell hands
 * the CLI come back as exactly those words when the server reads the spec (property test
 * with hostile strings), and what iptables could not read is refused before sending.
 */
import { describe, expect, it } from 'vitest';
import { CliError } from '../../src/cli/errors.js';
import { checkedSpec, specFromWords } from '../../src/cli/spec.js';
import { MAX_WORD_BYTES, splitSpec } from '../../src/iptables/tokenize.js';
import { prng, type Rng } from '../helpers/rule-gen.js';

/** Characters that mean something to a shell, to iptables' tokenizer, or to nothing at all. */
const HOSTILE = [
  ' ',
  '\t',
  '"',
  "'",
  '\\',
  '\\"',
  '""',
  '$',
  '`',
  ';',
  '|',
  '&',
  '(',
  ')',
  '!',
  '-',
  '--',
  '#',
  '*',
  '?',
  '=',
  '{',
  '}',
  '<',
  '>',
  '%',
  'a',
  'Z',
  '0',
  'é',
  'ü',
  '✓',
  '日本',
  '😀',
  '\u00a0',
  '\u200b',
];
const LOOK_LIKE_OPTIONS = ['-j', '-A', '--comment', '-n', '!', '-', '--', '"', '\\', "'", ''];

function word(r: Rng): string {
  if (r.chance(0.15)) return r.pick(LOOK_LIKE_OPTIONS);
  const n = r.int(0, 12);
  let w = '';
  for (let i = 0; i < n; i++) w += r.pick(HOSTILE);
  return w;
}

describe('specFromWords is the inverse of iptables tokenizing', () => {
  it.each<[string[], string]>([
    [['-m', 'comment', '--comment', 'a b'], '-m comment --comment "a b"'],
    [['--comment', ''], '--comment ""'],
    [['--comment', `it's "x"`], `--comment "it\\'s \\"x\\""`],
    [['--comment', 'back\\slash'], '--comment "back\\\\slash"'],
    [['--comment', '-n'], '--comment -n'],
    [['!', '-s', '192.0.2.1'], '! -s 192.0.2.1'],
    [['--log-prefix', 'iptables deny: '], '--log-prefix "iptables deny: "'],
  ])('writes %j as %s', (words, spec) => {
    expect(specFromWords(words)).toBe(spec);
    expect(splitSpec(spec)).toEqual(words);
  });

  it('gives back the very words for 5,000 random lists of hostile words', () => {
    const r = prng(0x5eed14);
    for (let i = 0; i < 5000; i++) {
      const words = Array.from({ length: r.int(0, 8) }, () => word(r));
      const spec = checkedSpec(words);
      expect(splitSpec(spec), JSON.stringify(words)).toEqual(words);
    }
  });

  it('keeps a word of the longest length iptables reads, and refuses a longer one', () => {
    const longest = 'é'.repeat(MAX_WORD_BYTES >> 1);
    expect(splitSpec(checkedSpec(['--comment', longest]))).toEqual(['--comment', longest]);
    expect(() => checkedSpec(['--comment', `${longest}xx`])).toThrow(CliError);
  });

  it.each([['a\nb'], ['a\u0000b'], ['\r'], ['a\u007fb'], ['\ud800']])(
    'refuses %j before sending (exit 2)',
    (bad) => {
      try {
        checkedSpec(['--comment', bad]);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(CliError);
        if (err instanceof CliError) expect(err.exitCode).toBe(2);
      }
    },
  );
});
