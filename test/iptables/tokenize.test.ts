import { describe, expect, it } from 'vitest';
import { renderTokens, splitRestoreLine, splitSpec } from '../../src/iptables/tokenize.js';
import { invalidArgument } from '../helpers/errors.js';

describe('splitSpec', () => {
  it.each<[string, string[]]>([
    ['', []],
    ['   ', []],
    ['-p tcp --dport 22', ['-p', 'tcp', '--dport', '22']],
    ['  -p\ttcp   -j  ACCEPT  ', ['-p', 'tcp', '-j', 'ACCEPT']],
    [`--comment 'hello world'`, ['--comment', 'hello world']],
    [`--comment "hello world"`, ['--comment', 'hello world']],
    [`--log-prefix "iptables deny: "`, ['--log-prefix', 'iptables deny: ']],
    [`--comment ""`, ['--comment', '']],
    [`--comment ''`, ['--comment', '']],
    [`--comment "say \\"hi\\""`, ['--comment', 'say "hi"']],
    [`--comment "back\\\\slash"`, ['--comment', 'back\\slash']],
    [`--comment "keep \\n as is"`, ['--comment', 'keep \\n as is']],
    [`--comment 'single \\ keeps backslash'`, ['--comment', 'single \\ keeps backslash']],
    [`--comment "it's"`, ['--comment', "it's"]],
    [`--comment 'say "hi"'`, ['--comment', 'say "hi"']],
    [`--comment a\\ b`, ['--comment', 'a b']],
    [`--comment ab"cd ef"gh`, ['--comment', 'abcd efgh']],
    [`--comment "a;b|c&d$e\`f<g>h"`, ['--comment', 'a;b|c&d$e`f<g>h']],
    [`--comment 'a;b|c&d$e'`, ['--comment', 'a;b|c&d$e']],
    [`--comment \\;`, ['--comment', ';']],
    [`--comment "\\$HOME"`, ['--comment', '$HOME']],
    ['--comment "ünïcødé ✓"', ['--comment', 'ünïcødé ✓']],
  ])('splits %j', (text, tokens) => {
    expect(splitSpec(text)).toEqual(tokens);
  });

  it.each([
    ['-j ACCEPT; iptables -F', ';'],
    ['-j ACCEPT | cat', '|'],
    ['-j ACCEPT && reboot', '&'],
    ['-s $(hostname)', '$'],
    ['-s `hostname`', '`'],
    ['-j ACCEPT > /etc/passwd', '>'],
    ['-j ACCEPT < /etc/passwd', '<'],
  ])('refuses an unquoted shell operator in %j', (text, op) => {
    const e = invalidArgument(() => splitSpec(text));
    expect(e.field).toBe('spec');
    expect(e.message).toContain(`unquoted "${op}"`);
  });

  it.each([
    ['-j ACCEPT\n-F', '\\u000a'],
    ['-j ACCEPT\r', '\\u000d'],
    ['-j AC\u0000CEPT', '\\u0000'],
    ['--comment "a\nb"', '\\u000a'],
    ["--comment 'a\u0007b'", '\\u0007'],
    ['-j ACCEPT\u007f', '\\u007f'],
  ])('refuses control characters, even quoted: %j', (text, code) => {
    const e = invalidArgument(() => splitSpec(text));
    expect(e.message).toContain('single line');
    expect(e.message).toContain(code);
  });

  it.each([
    ['--comment "open', 'unterminated double quote'],
    ["--comment 'open", 'unterminated single quote'],
    ['--comment "a\\"', 'unterminated double quote'],
    ['-j ACCEPT \\', 'lone backslash'],
  ])('refuses %j', (text, message) => {
    expect(invalidArgument(() => splitSpec(text)).message).toContain(message);
  });

  it('uses the field name given', () => {
    expect(invalidArgument(() => splitSpec('a;b', 'rule.spec')).field).toBe('rule.spec');
  });

  it('refuses a non-string', () => {
    expect(invalidArgument(() => splitSpec(42 as unknown as string)).message).toContain('must be a string');
  });

  it('accepts 8 kB, refuses 10 kB with a short message', () => {
    const long = `--comment ${'a'.repeat(8000)}`;
    expect(splitSpec(long)[1]).toHaveLength(8000);
    const e = invalidArgument(() => splitSpec(`--comment ${'a'.repeat(10_240)}`));
    expect(e.message).toContain('longer than');
    expect(e.message.length).toBeLessThan(200);
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
