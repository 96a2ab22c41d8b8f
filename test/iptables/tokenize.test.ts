import { describe, expect, it } from 'vitest';
import {
  checkWord,
  isWord,
  renderTokens,
  splitRestoreLine,
  splitSpec,
  splitSpecWords,
  wordValue,
} from '../../src/iptables/tokenize.js';
import { invalidArgument } from '../helpers/errors.js';

describe('splitSpec reads a spec exactly as iptables-restore reads a line', () => {
  it.each<[string, string[]]>([
    ['', []],
    ['   ', []],
    ['-p tcp --dport 22', ['-p', 'tcp', '--dport', '22']],
    ['  -p\ttcp   -j  ACCEPT  ', ['-p', 'tcp', '-j', 'ACCEPT']],
    [`--comment "hello world"`, ['--comment', 'hello world']],
    [`--log-prefix "iptables deny: "`, ['--log-prefix', 'iptables deny: ']],
    [`--comment ""`, ['--comment', '']],
    [`--comment "say \\"hi\\""`, ['--comment', 'say "hi"']],
    [`--comment "back\\\\slash"`, ['--comment', 'back\\slash']],
    // Inside double quotes a backslash takes any next character literally (ufw writes \').
    [`--comment "\\'dapp_SSH\\'"`, ['--comment', "'dapp_SSH'"]],
    [`--comment "keep \\n as n"`, ['--comment', 'keep n as n']],
    [`--comment "it's"`, ['--comment', "it's"]],
    // Single quotes and backslashes outside double quotes are plain characters.
    [`--comment 'hello world'`, ['--comment', "'hello", "world'"]],
    [`--comment ''`, ['--comment', "''"]],
    [`--comment a\\ b`, ['--comment', 'a\\', 'b']],
    [`--comment \\;`, ['--comment', '\\;']],
    // A closing quote ends the word; a quote opening mid-word joins what came before.
    [`--comment ab"cd ef"gh`, ['--comment', 'abcd ef', 'gh']],
    [`"a"b`, ['a', 'b']],
    [`--comment "a;b|c&d$e\`f<g>h"`, ['--comment', 'a;b|c&d$e`f<g>h']],
    // Shell operators mean nothing to iptables: they are characters of a word.
    ['-j ACCEPT;', ['-j', 'ACCEPT;']],
    ['-s $(hostname)', ['-s', '$(hostname)']],
    ['--comment "ünïcødé ✓"', ['--comment', 'ünïcødé ✓']],
  ])('splits %j', (text, tokens) => {
    expect(splitSpec(text)).toEqual(tokens);
  });

  it('keeps how each word was written, for untyped extensions', () => {
    expect(splitSpecWords('-m string --string "abc" --algo bm')).toEqual([
      { value: '-m', written: '-m', quoted: false },
      { value: 'string', written: 'string', quoted: false },
      { value: '--string', written: '--string', quoted: false },
      { value: 'abc', written: '"abc"', quoted: true },
      { value: '--algo', written: '--algo', quoted: false },
      { value: 'bm', written: 'bm', quoted: false },
    ]);
  });

  it.each([
    ['-j ACCEPT\n-F', '\\u000a'],
    ['-j ACCEPT\r', '\\u000d'],
    ['-j AC\u0000CEPT', '\\u0000'],
    ['--comment "a\nb"', '\\u000a'],
    ["--comment 'a\u0007b'", '\\u0007'],
    ['-j ACCEPT\u007f', '\\u007f'],
    ['-j ACCEPT\u0085', '\\u0085'],
  ])('refuses control characters, even quoted: %j', (text, code) => {
    const e = invalidArgument(() => splitSpec(text));
    expect(e.message).toContain('single line');
    expect(e.message).toContain(code);
  });

  it.each([
    ['--comment "open', 'unterminated double quote'],
    ['--comment "a\\"', 'unterminated double quote'],
    ['--comment "\ud800"', 'lone UTF-16 surrogate'],
  ])('refuses %j', (text, message) => {
    expect(invalidArgument(() => splitSpec(text)).message).toContain(message);
  });

  it('uses the field name given', () => {
    expect(invalidArgument(() => splitSpec('"a', 'rule.spec')).field).toBe('rule.spec');
  });

  it('refuses a non-string', () => {
    expect(invalidArgument(() => splitSpec(42 as unknown as string)).message).toContain('must be a string');
  });

  it('accepts 8 kB, refuses 10 kB and words iptables cannot buffer, with short messages', () => {
    const long = `--comment ${'a'.repeat(1000)} ${'b'.repeat(1000)}`.repeat(4);
    expect(splitSpec(long)[1]).toHaveLength(1000);
    const e = invalidArgument(() => splitSpec(`--comment ${'a'.repeat(10_240)}`));
    expect(e.message).toContain('longer than');
    expect(e.message.length).toBeLessThan(200);
    const w = invalidArgument(() => splitSpec(`--comment ${'a'.repeat(1024)}`));
    expect(w.message).toContain('longer than 1023 bytes');
    expect(w.message.length).toBeLessThan(200);
  });
});

describe('words as written', () => {
  it.each(['abc', '"a b"', '""', '"\\\'x\\\'"', "a'b", 'a\\b', '"ü"', '192.0.2.0/24'])(
    '%j is one word',
    (w) => {
      expect(isWord(w)).toBe(true);
      expect(checkWord(w, 'raw[0]')).toBe(w);
    },
  );

  it.each(['', 'a b', '"a', '"a"b', ' a', 'a '])('%j is not one word', (w) => {
    expect(isWord(w)).toBe(false);
    expect(invalidArgument(() => checkWord(w, 'raw[0]')).message).toContain('not one word');
  });

  it.each(['a\n', '"a"\t', 'a\u0000'])('%j holds a control character', (w) => {
    expect(isWord(w)).toBe(false);
    expect(invalidArgument(() => checkWord(w, 'raw[0]')).message).toContain('control characters');
  });

  it('gives the value of a word', () => {
    expect(wordValue('"a \\"b\\""')).toBe('a "b"');
    expect(wordValue('plain')).toBe('plain');
  });
});

describe('splitRestoreLine', () => {
  it.each<[string, string[]]>([
    ['-A INPUT -j ACCEPT', ['-A', 'INPUT', '-j', 'ACCEPT']],
    ['-A  INPUT\t-j ACCEPT ', ['-A', 'INPUT', '-j', 'ACCEPT']],
    ['--comment "a b"', ['--comment', 'a b']],
    ['--comment ""', ['--comment', '']],
    ['--comment "a\\"b\\\'c\\\\d e"', ['--comment', 'a"b\'c\\d e']],
    // Outside quotes a backslash and a single quote are ordinary characters.
    ["--comment a\\b'c", ['--comment', "a\\b'c"]],
    // As in iptables' add_param_to_argv: a closing quote ends the token.
    ['"a"b', ['a', 'b']],
    ['ab"c d"', ['abc d']],
    ['"" ""', ['', '']],
  ])('splits %j', (text, tokens) => {
    expect(splitRestoreLine(text, 1)).toEqual(tokens);
  });

  it('names the line of an unterminated quote', () => {
    const e = invalidArgument(() => splitRestoreLine('-A INPUT -m comment --comment "open', 7));
    expect(e.message).toMatch(/^line 7: unterminated quote/);
  });
});

describe('renderTokens', () => {
  it.each<[string, string]>([
    ['abc', 'abc'],
    ['ABC_xyz-019', 'ABC_xyz-019'],
    ['', '""'],
    ['a b', '"a b"'],
    ['iptables deny: ', '"iptables deny: "'],
    ['a.b', '"a.b"'],
    ['a/b', '"a/b"'],
    ['a:b', '"a:b"'],
    ['!', '"!"'],
    ['a"b', '"a\\"b"'],
    ["it's", '"it\\\'s"'],
    ['back\\slash', '"back\\\\slash"'],
    ['ünï', '"ünï"'],
  ])('quotes %j like xtables_save_string', (text, out) => {
    expect(renderTokens([{ text, quoted: true }])).toBe(out);
  });

  it.each<[string, string]>([
    ['192.0.2.0/24', '192.0.2.0/24'],
    ['RELATED,ESTABLISHED', 'RELATED,ESTABLISHED'],
    ['0x10/0xff', '0x10/0xff'],
    ['a b', '"a b"'],
    ['', '""'],
    ['a"b', '"a\\"b"'],
  ])('leaves safe unquoted-kind tokens bare: %j', (text, out) => {
    expect(renderTokens([{ text }])).toBe(out);
  });

  it('joins tokens with single spaces', () => {
    expect(renderTokens([{ text: '-A' }, { text: 'INPUT' }, { text: 'x y', quoted: true }])).toBe(
      '-A INPUT "x y"',
    );
  });

  it('prints written words as they are, and refuses one that is not one word', () => {
    expect(
      renderTokens([
        { text: '"abc"', written: true },
        { text: 'a\\b', written: true },
      ]),
    ).toBe('"abc" a\\b');
    expect(invalidArgument(() => renderTokens([{ text: 'a b', written: true }])).message).toContain(
      'not one word',
    );
  });

  it.each(['a\nb', 'a\rb', 'a\u0000b', '\t', 'a\u007f'])(
    'refuses a control character rather than write a second line: %j',
    (text) => {
      for (const quoted of [true, false]) {
        const e = invalidArgument(() => renderTokens([{ text: '-A' }, { text, quoted }]));
        expect(e.message).toContain('token 2');
      }
    },
  );

  it('is read back exactly by splitRestoreLine', () => {
    const samples = [
      '',
      ' ',
      'a b',
      '"',
      "'",
      '\\',
      '\\"',
      'a"b\'c\\d',
      '!',
      '-j',
      '#x',
      'ü ✓',
      ' lead',
      'trail ',
    ];
    const tokens = samples.map((text, i) => ({ text, quoted: i % 2 === 0 }));
    expect(splitRestoreLine(renderTokens(tokens), 1)).toEqual(samples);
  });
});
