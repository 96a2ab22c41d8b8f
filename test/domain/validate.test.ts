import { describe, expect, it } from 'vitest';
import {
  canonicalPortRange,
  checkChainName,
  checkInterface,
  checkName,
  checkPort,
  checkRawToken,
  checkText,
  checkUint,
  MAX_CHAIN_NAME,
  MAX_COMMENT,
  MAX_INTERFACE_NAME,
  MAX_RAW_TOKEN,
} from '../../src/domain/validate.js';
import { checkUserChainName } from '../../src/iptables/catalogue.js';
import { invalidArgument as invalidArgumentWithin } from '../helpers/errors.js';

const invalidArgument = (fn: () => unknown, field?: string) => invalidArgumentWithin(fn, 300, field);

const HOSTILE: readonly unknown[] = [
  'a\nb',
  'a\rb',
  'a\u0000b',
  'a\tb',
  '\u007f',
  'x'.repeat(10_240),
  undefined,
  null,
  -1,
  2 ** 64,
  {},
  [],
];

describe('chain names', () => {
  it.each(['INPUT', 'LOG_AND_DROP', 'a', '1234', 'my-chain.v2+', '_x', 'x'.repeat(MAX_CHAIN_NAME)])(
    'accepts %s',
    (name) => {
      expect(checkChainName(name)).toBe(name);
      expect(checkUserChainName(name)).toBe(name);
    },
  );

  it.each([
    ['', 'must not be empty'],
    ['x'.repeat(MAX_CHAIN_NAME + 1), 'longer than 28'],
    ['-foo', 'must start with'],
    ['!foo', 'may only contain'],
    ['.foo', 'must start with'],
    ['a b', 'may only contain'],
    ['a/b', 'may only contain'],
    ['a"b', 'may only contain'],
    ["a'b", 'may only contain'],
    ['a\\b', 'may only contain'],
    ['a\nb', 'may only contain'],
    ['a\u0000b', 'may only contain'],
    ['ünï', 'may only contain'],
  ])('refuses %j', (name, message) => {
    expect(invalidArgument(() => checkChainName(name, 'body.chain'), 'body.chain').message).toContain(
      message,
    );
  });

  it('refuses non-strings', () => {
    for (const v of [undefined, null, 1, {}, []]) invalidArgument(() => checkChainName(v), 'chain');
  });

  // The kernel refuses these with "chain name may not clash with target name".
  it.each(['ACCEPT', 'DROP', 'QUEUE', 'RETURN', 'LOG', 'REJECT', 'NFLOG', 'MASQUERADE', 'SNAT', 'standard'])(
    'reserves %s for user chains',
    (name) => {
      expect(invalidArgument(() => checkUserChainName(name), 'chain').message).toContain('reserved');
    },
  );

  it('allows lowercase names of matches as user chains', () => {
    expect(checkUserChainName('tcp')).toBe('tcp');
  });
});

describe('interfaces', () => {
  it.each([
    'eth0',
    'eth+',
    '+',
    'veth-a.10',
    'br_lan',
    'eth0:1',
    'x'.repeat(MAX_INTERFACE_NAME),
    `${'x'.repeat(14)}+`,
  ])('accepts %s', (name) => {
    expect(checkInterface(name, 'inInterface')).toBe(name);
  });

  it.each([
    ['', '1 to 15'],
    ['x'.repeat(16), '1 to 15'],
    // iptables: "interface name `abcdefghijklmno+' must be shorter than IFNAMSIZ (15)"
    [`${'x'.repeat(15)}+`, '1 to 15'],
    ['eth 0', 'may only contain'],
    ['eth0/1', 'may only contain'],
    ['e+th', 'may only contain'],
    ['++', 'may only contain'],
    ['eth0\n', 'may only contain'],
    ['ëth0', 'may only contain'],
  ])('refuses %j', (name, message) => {
    expect(
      invalidArgument(() => checkInterface(name, 'rule.inInterface'), 'rule.inInterface').message,
    ).toContain(message);
  });
});

describe('numbers and ports', () => {
  it.each<[unknown, number]>([
    [0, 0],
    [65535, 65535],
    ['22', 22],
    ['0', 0],
    ['0x16', 22],
  ])('checkPort(%j) = %d', (input, out) => {
    expect(checkPort(input, 'dport')).toBe(out);
  });

  it.each([
    -1,
    65536,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    1e300,
    '-1',
    '022',
    ' 22',
    '22 ',
    '1e3',
    '',
    'ssh',
    '99999999999999999999',
    null,
    true,
    [22],
  ])('checkPort refuses %j', (input) => {
    invalidArgument(() => checkPort(input, 'matches[0].dport'), 'matches[0].dport');
  });

  it('checkUint bounds are inclusive', () => {
    expect(checkUint(4294967295, 'x', 0, 0xffffffff)).toBe(4294967295);
    invalidArgument(() => checkUint(4294967296, 'x', 0, 0xffffffff), 'x');
    invalidArgument(() => checkUint(0, 'x', 1, 10), 'x');
  });

  it.each<[unknown, string]>([
    [22, '22'],
    ['22', '22'],
    ['1000:2000', '1000:2000'],
    ['22:22', '22'],
    [':1024', '0:1024'],
    ['1024:', '1024:65535'],
    ['0:65535', '0:65535'],
  ])('canonicalPortRange(%j) = %s', (input, out) => {
    expect(canonicalPortRange(input, 'dport')).toBe(out);
  });

  it.each([
    ['2000:1000', 'starts after it ends'],
    [':', 'must be a port'],
    ['', 'must be a port'],
    ['1:2:3', 'must be a port'],
    ['65536', 'from 0 to 65535'],
    ['1-2', 'must be a port'],
    ['ssh', 'must be a port'],
    ['022', 'from 0 to 65535'],
  ])('canonicalPortRange refuses %j', (input, message) => {
    expect(invalidArgument(() => canonicalPortRange(input, 'dport'), 'dport').message).toContain(message);
  });
});

describe('free text (comments, log prefixes)', () => {
  it.each(['', 'a', 'iptables deny: ', `say "hi" it's \\ ok`, '!', '-j', 'x'.repeat(MAX_COMMENT)])(
    'accepts %j',
    (text) => {
      expect(checkText(text, 'comment', MAX_COMMENT)).toBe(text);
    },
  );

  it.each([
    ['a\nb', 'control characters'],
    ['a\r\n-A INPUT -j DROP', 'control characters'],
    ['a\u0000', 'control characters'],
    ['tab\there', 'control characters'],
    ['C1 \u0085 control', 'control characters'],
    ['lone \udc00 surrogate', 'surrogate'],
    ['é'.repeat(128), 'at most 255'],
    ['x'.repeat(MAX_COMMENT + 1), 'at most 255'],
    ['x'.repeat(10_240), 'at most 255'],
  ])('refuses %j', (text, message) => {
    expect(
      invalidArgument(
        () => checkText(text, 'rule.matches[0].comment', MAX_COMMENT),
        'rule.matches[0].comment',
      ).message,
    ).toContain(message);
  });

  it('refuses non-strings', () => {
    for (const v of [undefined, null, 5, {}, ['a']])
      invalidArgument(() => checkText(v, 'comment', 10), 'comment');
  });
});

describe('raw tokens of untyped extensions', () => {
  it.each([
    '--foo',
    'bar',
    '192.0.2.0/24',
    '!',
    '"a b"',
    'ü',
    'a"b',
    "a'b",
    'a\\b',
    'x'.repeat(MAX_RAW_TOKEN),
  ])('accepts the shape of %j (its syntax is checked by src/iptables)', (t) => {
    expect(checkRawToken(t, 'raw[0]')).toBe(t);
  });

  it.each([
    ['', 'must not be empty'],
    ['x'.repeat(MAX_RAW_TOKEN + 1), 'longer than'],
    ['a\nb', 'control characters'],
    ['a\u0000', 'control characters'],
    ['a\u0085b', 'control characters'],
  ])('refuses %j', (t, message) => {
    expect(
      invalidArgument(() => checkRawToken(t, 'matches[1].raw[2]'), 'matches[1].raw[2]').message,
    ).toContain(message);
  });
});

describe('names (recent lists and the like)', () => {
  it('accepts letters, digits, _ . -', () => {
    expect(checkName('DEFAULT', 'name', 200)).toBe('DEFAULT');
    expect(checkName('ssh-v4.list_1', 'name', 200)).toBe('ssh-v4.list_1');
  });
  it.each(['', 'a b', 'a/b', 'a\n', 'x'.repeat(201)])('refuses %j', (n) => {
    invalidArgument(() => checkName(n, 'matches[2].name', 200), 'matches[2].name');
  });
});

describe('hostile values never crash a check', () => {
  const checks: Array<[string, (v: unknown) => unknown]> = [
    ['checkChainName', (v) => checkChainName(v)],
    ['checkUserChainName', (v) => checkUserChainName(v)],
    ['checkInterface', (v) => checkInterface(v, 'i')],
    ['checkPort', (v) => checkPort(v, 'p')],
    ['canonicalPortRange', (v) => canonicalPortRange(v, 'p')],
    ['checkText', (v) => checkText(v, 't', 255)],
    ['checkRawToken', (v) => checkRawToken(v, 'r')],
    ['checkName', (v) => checkName(v, 'n', 200)],
  ];
  it.each(checks)('%s', (_name, check) => {
    for (const v of HOSTILE) invalidArgument(() => check(v));
  });
});
