import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { invalidArgument as invalidArgumentWithin } from '../helpers/errors.js';

const invalidArgument = (fn: () => unknown) => invalidArgumentWithin(fn, 400);

describe('normalizeRule: canonical models', () => {
  it('an empty rule has no fields and no matches', () => {
    expect(normalizeRule({}, 'ipv4')).toEqual({ matches: [] });
  });

  it('returns frozen values', () => {
    const r = normalizeRule({ protocol: 'tcp', matches: [{ module: 'tcp', dport: 22 }] }, 'ipv4');
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.matches)).toBe(true);
    expect(Object.isFrozen(r.matches[0])).toBe(true);
  });

  it.each<[Family, Record<string, unknown>, string]>([
    ['ipv4', { target: { target: 'ACCEPT' } }, '-j ACCEPT'],
    ['ipv4', { protocol: 6 }, '-p tcp'],
    ['ipv4', { protocol: 'TCP' }, '-p tcp'],
    ['ipv4', { protocol: 'all' }, ''],
    ['ipv4', { protocol: '0' }, ''],
    ['ipv4', { protocol: 200 }, '-p 200'],
    ['ipv6', { protocol: 'icmpv6' }, '-p ipv6-icmp'],
    ['ipv6', { protocol: 58 }, '-p ipv6-icmp'],
    ['ipv4', { source: '192.0.2.7/24' }, '-s 192.0.2.0/24'],
    ['ipv4', { source: '192.0.2.7' }, '-s 192.0.2.7/32'],
    ['ipv4', { source: '0.0.0.0/0' }, ''],
    ['ipv6', { destination: '2001:DB8:0::1/64' }, '-d 2001:db8::/64'],
    ['ipv6', { destination: '::/0' }, ''],
    ['ipv4', { inInterface: 'eth+' }, '-i eth+'],
    // `-i +` matches every interface: iptables-save leaves it out, unless negated.
    ['ipv4', { inInterface: '+' }, ''],
    ['ipv4', { outInterface: '+', invert: ['outInterface'] }, '! -o +'],
    ['ipv4', { fragment: true }, '-f'],
    [
      'ipv4',
      {
        target: { target: 'DROP' },
        fragment: true,
        protocol: 'udp',
        outInterface: 'eth1',
        inInterface: 'eth0',
        destination: '198.51.100.1',
        source: '192.0.2.0/24',
        invert: ['protocol', 'source'],
      },
      '! -s 192.0.2.0/24 -d 198.51.100.1/32 -i eth0 -o eth1 ! -p udp -f -j DROP',
    ],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', dport: '22' }], target: { target: 'ACCEPT' } },
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ],
    ['ipv4', { target: { jump: 'LOG_AND_DROP' } }, '-j LOG_AND_DROP'],
    ['ipv4', { target: { goto: 'LOG_AND_DROP' } }, '-g LOG_AND_DROP'],
    // A "jump" to a built-in target is that target.
    ['ipv4', { target: { jump: 'ACCEPT' } }, '-j ACCEPT'],
    ['ipv4', { matches: [{ module: 'foo', raw: ['--bar', '1'] }] }, '-m foo --bar 1'],
    ['ipv4', { target: { target: 'FOO', raw: ['--x', '"a b"'] } }, '-j FOO --x "a b"'],
    [
      'ipv4',
      { target: { target: 'LOG', prefix: 'iptables deny: ', level: 'debug' } },
      '-j LOG --log-prefix "iptables deny: " --log-level 7',
    ],
    [
      'ipv4',
      { matches: [{ module: 'comment', comment: `say "hi" it's \\` }] },
      `-m comment --comment "say \\"hi\\" it\\'s \\\\"`,
    ],
  ])('%s %j -> %s', (family, input, text) => {
    expect(ruleText(normalizeRule(input, family))).toBe(text);
  });

  it('keeps the invert list in field order', () => {
    const r = normalizeRule(
      { protocol: 'tcp', source: '192.0.2.1', invert: ['protocol', 'source', 'protocol'] },
      'ipv4',
    );
    expect(r.invert).toEqual(['source', 'protocol']);
  });
});

describe('normalizeRule: refusals name the field', () => {
  it.each<[Family, unknown, string, string]>([
    ['ipv4', null, 'rule', 'must be an object'],
    ['ipv4', [], 'rule', 'must be an object'],
    ['ipv4', 'string', 'rule', 'must be an object'],
    ['ipv4', { sauce: '192.0.2.1' }, 'rule.sauce', 'no field "sauce"'],
    ['ipv4', { counters: { packets: 1 } }, 'rule.counters', 'no field'],
    ['ipv4', { source: 'example.com' }, 'rule.source', 'host names are not accepted'],
    ['ipv4', { source: 3232235777 }, 'rule.source', 'address or CIDR'],
    ['ipv4', { source: '2001:db8::1' }, 'rule.source', 'not an IPv4'],
    ['ipv6', { destination: '192.0.2.1' }, 'rule.destination', 'not an IPv6'],
    ['ipv4', { protocol: 'tcpp' }, 'rule.protocol', 'not a known protocol'],
    ['ipv4', { protocol: 256 }, 'rule.protocol', '0 to 255'],
    ['ipv4', { protocol: -1 }, 'rule.protocol', '0 to 255'],
    ['ipv4', { protocol: 1e300 }, 'rule.protocol', '0 to 255'],
    ['ipv4', { inInterface: 'x'.repeat(16) }, 'rule.inInterface', '1 to 15'],
    ['ipv4', { inInterface: 'eth0\n-F' }, 'rule.inInterface', 'may only contain'],
    ['ipv6', { fragment: true }, 'rule.fragment', 'only for ipv4'],
    ['ipv4', { fragment: false }, 'rule.fragment', 'is a flag'],
    ['ipv4', { fragment: 'yes' }, 'rule.fragment', 'is a flag'],
    ['ipv4', { invert: 'source' }, 'rule.invert', 'must be a list'],
    ['ipv4', { invert: ['sauce'] }, 'rule.invert', 'is not one of'],
    ['ipv4', { invert: ['source'] }, 'rule.invert', 'not set'],
    // "Not any" never matches; the kernel refuses `! -s 0.0.0.0/0` and `! -p all` as well.
    ['ipv4', { source: '0.0.0.0/0', invert: ['source'] }, 'rule.invert', 'not set'],
    ['ipv4', { protocol: 'all', invert: ['protocol'] }, 'rule.invert', 'not set'],
    ['ipv4', { matches: {} }, 'rule.matches', 'must be a list'],
    [
      'ipv4',
      { matches: Array.from({ length: 33 }, () => ({ module: 'foo' })) },
      'rule.matches',
      'at most 32',
    ],
    ['ipv4', { matches: [null] }, 'rule.matches[0]', 'module'],
    ['ipv4', { matches: [{ module: 'bad name' }] }, 'rule.matches[0].module', 'not a valid match name'],
    ['ipv4', { matches: [{ module: 'foo', opt: 1 }] }, 'rule.matches[0].opt', 'not typed'],
    ['ipv4', { matches: [{ module: 'foo', raw: '--x' }] }, 'rule.matches[0].raw', 'list of tokens'],
    ['ipv4', { matches: [{ module: 'foo', raw: ['a\nb'] }] }, 'rule.matches[0].raw[0]', 'control'],
    ['ipv4', { matches: [{ module: 'foo', raw: ['ok', 'a\u0085b'] }] }, 'rule.matches[0].raw[1]', 'control'],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', dportt: 22 }] },
      'rule.matches[0].dportt',
      'no option "dportt"',
    ],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', dport: -1 }] },
      'rule.matches[0].dport',
      '0 to 65535',
    ],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', dport: 65536 }] },
      'rule.matches[0].dport',
      '0 to 65535',
    ],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', dport: 2 ** 53 + 1 }] },
      'rule.matches[0].dport',
      '0 to 65535',
    ],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', dport: 22, invert: ['dportt'] }] },
      'rule.matches[0].invert',
      'not a negatable option',
    ],
    [
      'ipv4',
      { protocol: 'tcp', matches: [{ module: 'tcp', invert: ['dport'] }] },
      'rule.matches[0].invert',
      'not set',
    ],
    // Protocol-bound matches need their -p, as iptables demands ("TCP match requires '-p tcp'").
    ['ipv4', { matches: [{ module: 'tcp', dport: 22 }] }, 'rule.matches[0]', 'needs protocol tcp'],
    [
      'ipv4',
      { protocol: 'udp', matches: [{ module: 'tcp', dport: 22 }] },
      'rule.matches[0]',
      'needs protocol tcp',
    ],
    [
      'ipv4',
      { protocol: 'tcp', invert: ['protocol'], matches: [{ module: 'tcp', dport: 22 }] },
      'rule.matches[0]',
      'not negated',
    ],
    [
      'ipv4',
      { matches: [{ module: 'multiport', dports: '22,80' }] },
      'rule.matches[0]',
      'needs protocol tcp, udp',
    ],
    [
      'ipv6',
      { protocol: 'icmp', matches: [{ module: 'icmp', icmpType: 8 }] },
      'rule.matches[0]',
      'only for ipv4',
    ],
    [
      'ipv4',
      { protocol: 'ipv6-icmp', matches: [{ module: 'icmp6', icmpv6Type: 128 }] },
      'rule.matches[0]',
      'only for ipv6',
    ],
    [
      'ipv4',
      { target: { target: 'REJECT', rejectWith: 'tcp-reset' } },
      'rule.target.rejectWith',
      'needs protocol tcp',
    ],
    ['ipv4', { matches: [{ module: 'comment', comment: 'a\nb' }] }, 'rule.matches[0].comment', 'control'],
    ['ipv4', { matches: [{ module: 'comment', comment: 'a\u0000b' }] }, 'rule.matches[0].comment', 'control'],
    [
      'ipv4',
      { matches: [{ module: 'comment', comment: 'x'.repeat(10_240) }] },
      'rule.matches[0].comment',
      'at most 255',
    ],
    [
      'ipv4',
      { matches: [{ module: 'comment', comment: 'ü'.repeat(128) }] },
      'rule.matches[0].comment',
      'at most 255',
    ],
    [
      'ipv4',
      { matches: [{ module: 'comment', comment: 42 }] },
      'rule.matches[0].comment',
      'must be a string',
    ],
    ['ipv4', { target: 'ACCEPT' }, 'rule.target', 'must be an object'],
    ['ipv4', { target: {} }, 'rule.target', 'needs "target"'],
    ['ipv4', { target: { target: 'LOG', prefix: 'x'.repeat(30) } }, 'rule.target.prefix', 'at most 29'],
    [
      'ipv4',
      { target: { target: 'LOG', prefix: 'deny\n-A INPUT -j ACCEPT' } },
      'rule.target.prefix',
      'control',
    ],
    ['ipv4', { target: { target: 'LOG', prefx: 'x' } }, 'rule.target.prefx', 'no option "prefx"'],
    ['ipv4', { target: { target: 'LOG', level: 8 } }, 'rule.target.level', '0 to 7'],
    ['ipv4', { target: { jump: 'a b' } }, 'rule.target.jump', 'may only contain'],
    ['ipv4', { target: { jump: 'X\u0000' } }, 'rule.target.jump', 'may only contain'],
    ['ipv4', { target: { jump: 'x'.repeat(29) } }, 'rule.target.jump', 'longer than 28'],
    ['ipv4', { target: { jump: 'X', goto: 'Y' } }, 'rule.target', 'takes no other fields'],
    ['ipv4', { target: { goto: 'ACCEPT' } }, 'rule.target.goto', 'user chain'],
    ['ipv4', { target: { target: 'FOO', opt: 1 } }, 'rule.target.opt', 'not typed'],
    ['ipv4', { target: { target: 'FOO BAR' } }, 'rule.target.target', 'not a valid target name'],
  ])('%s %# -> %s', (family, input, field, message) => {
    const e = invalidArgument(() => normalizeRule(input, family));
    expect(e.field).toBe(field);
    expect(e.message).toContain(message);
  });

  it('uses the field prefix given', () => {
    const e = invalidArgument(() => normalizeRule({ source: 'x' }, 'ipv4', 'rules[3]'));
    expect(e.field).toBe('rules[3].source');
  });

  it('refuses prototype keys as unknown fields instead of crashing', () => {
    const input = JSON.parse('{"__proto__": {"source": "192.0.2.1"}, "matches": []}');
    expect(invalidArgument(() => normalizeRule(input, 'ipv4')).field).toBe('rule.__proto__');
    expect(invalidArgument(() => normalizeRule({ constructor: 'x' }, 'ipv4')).field).toBe('rule.constructor');
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const match = JSON.parse(`{"protocol":"tcp","matches":[{"module":"tcp","${key}":1}]}`);
      expect(invalidArgument(() => normalizeRule(match, 'ipv4')).field).toBe(`rule.matches[0].${key}`);
      const target = JSON.parse(`{"target":{"target":"LOG","${key}":1}}`);
      expect(invalidArgument(() => normalizeRule(target, 'ipv4')).field).toBe(`rule.target.${key}`);
      const inverted = { protocol: 'tcp', matches: [{ module: 'tcp', dport: 22, invert: [key] }] };
      expect(invalidArgument(() => normalizeRule(inverted, 'ipv4')).field).toBe('rule.matches[0].invert');
    }
    // Alias tables of value kinds are plain objects too.
    expect(
      invalidArgument(() =>
        normalizeRule({ matches: [{ module: 'pkttype', pktType: 'constructor' }] }, 'ipv4'),
      ).field,
    ).toBe('rule.matches[0].pktType');
    expect(
      invalidArgument(() => normalizeRule({ matches: [{ module: 'state', state: 'constructor' }] }, 'ipv4'))
        .field,
    ).toBe('rule.matches[0].state');
  });
});
