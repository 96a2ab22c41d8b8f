/**
 * Typed targets without a kernel: invalid input is refused with a DomainError
 * `invalid_argument` that names the field, from typed JSON (normalizeRule) and
 * from spec strings (parseRuleSpec) alike. The canonical forms themselves are
 * proven on the kernel in test/iptables/roundtrip-targets.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import type { Family } from '../../src/domain/family.js';
import type { TypedTarget } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { parseSave } from '../../src/iptables/save-parser.js';

function caught(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a DomainError, but nothing was thrown');
}

const json = (
  target: Record<string, unknown>,
  family: Family = 'ipv4',
  extra: Record<string, unknown> = {},
) => normalizeRule({ ...extra, target }, family);

/** [description, typed target JSON, family, field named by the error] */
const INVALID_JSON: ReadonlyArray<readonly [string, Record<string, unknown>, Family, string]> = [
  ['LOG prefix of 30 characters', { target: 'LOG', prefix: 'x'.repeat(30) }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix of 10 kB', { target: 'LOG', prefix: 'x'.repeat(10_240) }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix with a newline', { target: 'LOG', prefix: 'a\nCOMMIT' }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix with a carriage return', { target: 'LOG', prefix: 'a\rb' }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix with NUL', { target: 'LOG', prefix: 'a\u0000b' }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix with a tab', { target: 'LOG', prefix: 'a\tb' }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix of 30 UTF-8 bytes', { target: 'LOG', prefix: 'é'.repeat(15) }, 'ipv4', 'rule.target.prefix'],
  [
    'LOG prefix of 8 emoji (32 bytes)',
    { target: 'LOG', prefix: '🔥'.repeat(8) },
    'ipv4',
    'rule.target.prefix',
  ],
  ['LOG prefix with a C1 control', { target: 'LOG', prefix: 'a\u0085b' }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix with a lone surrogate', { target: 'LOG', prefix: 'a\ud800' }, 'ipv4', 'rule.target.prefix'],
  ['empty LOG prefix', { target: 'LOG', prefix: '' }, 'ipv4', 'rule.target.prefix'],
  ['LOG prefix that is not a string', { target: 'LOG', prefix: 42 }, 'ipv4', 'rule.target.prefix'],
  ['LOG level 8', { target: 'LOG', level: 8 }, 'ipv4', 'rule.target.level'],
  ['LOG level -1', { target: 'LOG', level: -1 }, 'ipv4', 'rule.target.level'],
  ['LOG level 4.5', { target: 'LOG', level: 4.5 }, 'ipv4', 'rule.target.level'],
  [
    'LOG level "warn" (iptables knows only "warning")',
    { target: 'LOG', level: 'warn' },
    'ipv4',
    'rule.target.level',
  ],
  ['LOG level in capitals', { target: 'LOG', level: 'EMERG' }, 'ipv4', 'rule.target.level'],
  ['LOG flag set to false', { target: 'LOG', uid: false }, 'ipv4', 'rule.target.uid'],
  ['LOG unknown key', { target: 'LOG', prefix: 'x', colour: 'red' }, 'ipv4', 'rule.target.colour'],
  ['ACCEPT with an option', { target: 'ACCEPT', prefix: 'x' }, 'ipv4', 'rule.target.prefix'],
  ['invert on a target', { target: 'LOG', invert: ['prefix'] }, 'ipv4', 'rule.target.invert'],
  [
    'NFLOG prefix of 64 characters',
    { target: 'NFLOG', prefix: 'n'.repeat(64) },
    'ipv4',
    'rule.target.prefix',
  ],
  ['NFLOG group 65536', { target: 'NFLOG', group: 65536 }, 'ipv4', 'rule.target.group'],
  ['NFLOG range (never worked)', { target: 'NFLOG', range: 100 }, 'ipv4', 'rule.target.range'],
  ['NFLOG size over 32 bits', { target: 'NFLOG', size: 2 ** 32 }, 'ipv4', 'rule.target.size'],
  [
    'REJECT ipv4 type on ipv6',
    { target: 'REJECT', rejectWith: 'icmp-port-unreachable' },
    'ipv6',
    'rule.target.rejectWith',
  ],
  [
    'REJECT ipv4 alias on ipv6',
    { target: 'REJECT', rejectWith: 'host-prohib' },
    'ipv6',
    'rule.target.rejectWith',
  ],
  ['REJECT tcp-rst on ipv6', { target: 'REJECT', rejectWith: 'tcp-rst' }, 'ipv6', 'rule.target.rejectWith'],
  [
    'REJECT ipv6 type on ipv4',
    { target: 'REJECT', rejectWith: 'icmp6-no-route' },
    'ipv4',
    'rule.target.rejectWith',
  ],
  [
    'REJECT unknown type',
    { target: 'REJECT', rejectWith: 'icmp-echo-reply' },
    'ipv4',
    'rule.target.rejectWith',
  ],
  ['SNAT without toSource', { target: 'SNAT' }, 'ipv4', 'rule.target.toSource'],
  ['SNAT bad octet', { target: 'SNAT', toSource: '192.0.2.256' }, 'ipv4', 'rule.target.toSource'],
  ['SNAT host name', { target: 'SNAT', toSource: 'example.com' }, 'ipv4', 'rule.target.toSource'],
  ['SNAT ipv6 address on ipv4', { target: 'SNAT', toSource: '2001:db8::1' }, 'ipv4', 'rule.target.toSource'],
  ['SNAT ipv4 address on ipv6', { target: 'SNAT', toSource: '192.0.2.1' }, 'ipv6', 'rule.target.toSource'],
  ['SNAT CIDR', { target: 'SNAT', toSource: '192.0.2.0/24' }, 'ipv4', 'rule.target.toSource'],
  [
    'SNAT reversed address range',
    { target: 'SNAT', toSource: '192.0.2.9-192.0.2.1' },
    'ipv4',
    'rule.target.toSource',
  ],
  [
    'SNAT three-part range',
    { target: 'SNAT', toSource: '192.0.2.1-192.0.2.2-192.0.2.3' },
    'ipv4',
    'rule.target.toSource',
  ],
  ['SNAT port 65536', { target: 'SNAT', toSource: '192.0.2.1:65536' }, 'ipv4', 'rule.target.toSource'],
  [
    'SNAT reversed port range',
    { target: 'SNAT', toSource: '192.0.2.1:2000-1000' },
    'ipv4',
    'rule.target.toSource',
  ],
  [
    'SNAT port range with a colon',
    { target: 'SNAT', toSource: '192.0.2.1:1000:2000' },
    'ipv4',
    'rule.target.toSource',
  ],
  [
    'SNAT base port (DNAT only)',
    { target: 'SNAT', toSource: '192.0.2.1:1000-2000/3000' },
    'ipv4',
    'rule.target.toSource',
  ],
  ['SNAT empty', { target: 'SNAT', toSource: '' }, 'ipv4', 'rule.target.toSource'],
  ['SNAT 10 kB', { target: 'SNAT', toSource: '1'.repeat(10_240) }, 'ipv4', 'rule.target.toSource'],
  [
    'SNAT ipv6 unterminated bracket',
    { target: 'SNAT', toSource: '[2001:db8::1:80' },
    'ipv6',
    'rule.target.toSource',
  ],
  [
    'SNAT ipv6 garbage after bracket',
    { target: 'SNAT', toSource: '[2001:db8::1]80' },
    'ipv6',
    'rule.target.toSource',
  ],
  ['SNAT ipv6 zone id', { target: 'SNAT', toSource: 'fe80::1%eth0' }, 'ipv6', 'rule.target.toSource'],
  [
    'SNAT ipv6 bracketed ranges',
    { target: 'SNAT', toSource: '[2001:db8::1]-[2001:db8::9]:80' },
    'ipv6',
    'rule.target.toSource',
  ],
  ['DNAT without toDestination', { target: 'DNAT', random: true }, 'ipv4', 'rule.target.toDestination'],
  [
    'DNAT base port without a range',
    { target: 'DNAT', toDestination: '192.0.2.1:80/100' },
    'ipv4',
    'rule.target.toDestination',
  ],
  [
    'DNAT base port 70000',
    { target: 'DNAT', toDestination: '192.0.2.1:80-90/70000' },
    'ipv4',
    'rule.target.toDestination',
  ],
  [
    'DNAT newline',
    { target: 'DNAT', toDestination: '192.0.2.1\n-A INPUT' },
    'ipv4',
    'rule.target.toDestination',
  ],
  [
    'DNAT random-fully (SNAT only)',
    { target: 'DNAT', toDestination: '192.0.2.1', randomFully: true },
    'ipv4',
    'rule.target.randomFully',
  ],
  [
    'MASQUERADE port range with a colon',
    { target: 'MASQUERADE', toPorts: '1000:2000' },
    'ipv4',
    'rule.target.toPorts',
  ],
  ['MASQUERADE port 65536', { target: 'MASQUERADE', toPorts: 65536 }, 'ipv4', 'rule.target.toPorts'],
  ['REDIRECT reversed ports', { target: 'REDIRECT', toPorts: '90-80' }, 'ipv4', 'rule.target.toPorts'],
  ['MARK without a value', { target: 'MARK' }, 'ipv4', 'rule.target.setXmark'],
  ['MARK value over 32 bits', { target: 'MARK', setXmark: '0x100000000' }, 'ipv4', 'rule.target.setXmark'],
  ['MARK number over 32 bits', { target: 'MARK', setXmark: 2 ** 32 }, 'ipv4', 'rule.target.setXmark'],
  ['MARK mask over 32 bits', { target: 'MARK', setXmark: '0x1/0x1ffffffff' }, 'ipv4', 'rule.target.setXmark'],
  ['MARK negative', { target: 'MARK', setXmark: -1 }, 'ipv4', 'rule.target.setXmark'],
  ['MARK octal-looking', { target: 'MARK', setXmark: '010' }, 'ipv4', 'rule.target.setXmark'],
  ['MARK two slashes', { target: 'MARK', setXmark: '1/2/3' }, 'ipv4', 'rule.target.setXmark'],
  ['MARK shorthand key', { target: 'MARK', setMark: 1 }, 'ipv4', 'rule.target.setMark'],
  ['CONNMARK without a mode', { target: 'CONNMARK' }, 'ipv4', 'rule.target'],
  [
    'CONNMARK save and restore',
    { target: 'CONNMARK', saveMark: true, restoreMark: true },
    'ipv4',
    'rule.target.restoreMark',
  ],
  [
    'CONNMARK set and save',
    { target: 'CONNMARK', setXmark: 1, saveMark: true },
    'ipv4',
    'rule.target.saveMark',
  ],
  ['CONNMARK nfmask with set', { target: 'CONNMARK', setXmark: 1, nfmask: 1 }, 'ipv4', 'rule.target.nfmask'],
  [
    'CONNMARK mask and nfmask',
    { target: 'CONNMARK', saveMark: true, mask: 1, nfmask: 1 },
    'ipv4',
    'rule.target.nfmask',
  ],
  [
    'CONNMARK ctmask over 32 bits',
    { target: 'CONNMARK', saveMark: true, ctmask: 2 ** 32 },
    'ipv4',
    'rule.target.ctmask',
  ],
  [
    'CONNMARK shift 32',
    { target: 'CONNMARK', saveMark: true, leftShiftMark: 32 },
    'ipv4',
    'rule.target.leftShiftMark',
  ],
  [
    'CONNMARK both shifts',
    { target: 'CONNMARK', saveMark: true, leftShiftMark: 1, rightShiftMark: 1 },
    'ipv4',
    'rule.target.rightShiftMark',
  ],
  ['TCPMSS with nothing', { target: 'TCPMSS' }, 'ipv4', 'rule.target'],
  [
    'TCPMSS set and clamp',
    { target: 'TCPMSS', setMss: 1400, clampMssToPmtu: true },
    'ipv4',
    'rule.target.clampMssToPmtu',
  ],
  ['TCPMSS over the ipv4 maximum', { target: 'TCPMSS', setMss: 65516 }, 'ipv4', 'rule.target.setMss'],
  ['TCPMSS over the ipv6 maximum', { target: 'TCPMSS', setMss: 65496 }, 'ipv6', 'rule.target.setMss'],
  ['DSCP 64', { target: 'DSCP', setDscp: 64 }, 'ipv4', 'rule.target.setDscp'],
  ['DSCP unknown class', { target: 'DSCP', setDscp: 'VA' }, 'ipv4', 'rule.target.setDscp'],
  ['DSCP prototype key', { target: 'DSCP', setDscp: 'constructor' }, 'ipv4', 'rule.target.setDscp'],
  ['DSCP without a value', { target: 'DSCP' }, 'ipv4', 'rule.target.setDscp'],
  ['CT zone 65536', { target: 'CT', zone: 65536 }, 'ipv4', 'rule.target.zone'],
  ['CT two zones', { target: 'CT', zone: 1, zoneOrig: 2 }, 'ipv4', 'rule.target.zoneOrig'],
  ['CT unknown event', { target: 'CT', ctevents: ['label'] }, 'ipv4', 'rule.target.ctevents'],
  ['CT event in capitals', { target: 'CT', ctevents: 'NEW' }, 'ipv4', 'rule.target.ctevents'],
  ['CT empty event list', { target: 'CT', ctevents: [] }, 'ipv4', 'rule.target.ctevents'],
  [
    'CT expectation event other than new',
    { target: 'CT', expevents: ['destroy'] },
    'ipv4',
    'rule.target.expevents',
  ],
  ['CT helper of 16 characters', { target: 'CT', helper: 'h'.repeat(16) }, 'ipv4', 'rule.target.helper'],
  ['CT helper with a space', { target: 'CT', helper: 'ftp x' }, 'ipv4', 'rule.target.helper'],
  ['CT timeout of 32 characters', { target: 'CT', timeout: 't'.repeat(32) }, 'ipv4', 'rule.target.timeout'],
];

describe('typed targets refuse invalid JSON, naming the field', () => {
  it.each(INVALID_JSON)('%s', (_what, target, family, field) => {
    const e = caught(() => json(target, family));
    expect(e.code).toBe('invalid_argument');
    expect(e.field).toBe(field);
    expect(e.message.length).toBeLessThan(400);
  });
});

/** [spec, family, field named by the error] */
const INVALID_SPECS: ReadonlyArray<readonly [string, Family, string]> = [
  ['-j LOG --log-prefix 123456789012345678901234567890', 'ipv4', 'spec.target.prefix'],
  ['-j LOG --log-prefix ""', 'ipv4', 'spec.target.prefix'],
  ['-j LOG --log-level 8', 'ipv4', 'spec.target.level'],
  ['-j LOG --log-level err', 'ipv4', 'spec.target.level'],
  ['-j NFLOG --nflog-range 100', 'ipv4', 'spec.target.size'],
  ['-j NFLOG --nflog-size 100 --nflog-size 200', 'ipv4', 'spec.target.size'],
  ['-j REJECT --reject-with icmp-host-prohibited', 'ipv6', 'spec.target.rejectWith'],
  ['-j REJECT --reject-with tcp-rst', 'ipv6', 'spec.target.rejectWith'],
  ['-j SNAT', 'ipv4', 'spec.target.toSource'],
  ['-j SNAT --to-source 192.0.2.1 --to-source 192.0.2.2', 'ipv4', 'spec.target.toSource'],
  ['-p tcp -j SNAT --to-source 192.0.2.1:99999', 'ipv4', 'spec.target.toSource'],
  ['-p tcp -j DNAT --to-destination 2001:db8::1:80-90/85', 'ipv6', 'spec.target.toDestination'],
  ['-p tcp -j MASQUERADE --to-ports 5:6', 'ipv4', 'spec.target.toPorts'],
  ['-j MARK --set-mark 0x100000000', 'ipv4', 'spec.target.setXmark'],
  ['-j MARK --and-mark 4294967296', 'ipv4', 'spec.target.setXmark'],
  ['-j MARK --set-mark 1 --or-mark 2', 'ipv4', 'spec.target.setXmark'],
  ['-j MARK', 'ipv4', 'spec.target.setXmark'],
  ['-j CONNMARK --save-mark --mask 0xff --nfmask 1', 'ipv4', 'spec.target.nfmask'],
  ['-j CONNMARK --set-mark 1 --mask 0xff', 'ipv4', 'spec.target.mask'],
  ['-p tcp -j TCPMSS --set-mss 65516', 'ipv4', 'spec.target.setMss'],
  ['-j DSCP --set-dscp 1 --set-dscp-class EF', 'ipv4', 'spec.target.setDscp'],
  ['-j DSCP --set-dscp-class VA', 'ipv4', 'spec.target.setDscp'],
  ['-j CT --zone 65536', 'ipv4', 'spec.target.zone'],
  ['-j CT --zone-mark 7', 'ipv4', 'spec.target'],
];

describe('typed targets refuse invalid spec strings, naming the field', () => {
  it.each(INVALID_SPECS)('%s (%s)', (spec, family, field) => {
    const e = caught(() => parseRuleSpec(spec, family));
    expect(e.code).toBe('invalid_argument');
    expect(e.field).toBe(field);
  });

  it('says what to use instead of --nflog-range', () => {
    expect(caught(() => parseRuleSpec('-j NFLOG --nflog-range 100', 'ipv4')).message).toMatch(/--nflog-size/);
  });
});

describe('canonical forms that need no kernel', () => {
  it.each([
    // CT prints --timeout last (libxt_CT); not on the kernel test, which would need an `nfct` timeout policy.
    ['-j CT --timeout tcp-long --zone 3 --helper ftp', '-j CT --helper ftp --zone 3 --timeout tcp-long'],
    ['-j LOG --log-prefix "a\\"b"', '-j LOG --log-prefix "a\\"b"'],
    ['-j MARK --and-mark 0', '-j MARK --set-xmark 0x0/0xffffffff'],
    ['-j MARK --and-mark 0xffffffff', '-j MARK --set-xmark 0x0/0x0'],
    ['-j DSCP --set-dscp 0x3f', '-j DSCP --set-dscp 0x3f'],
  ] as const)('%s -> %s', (spec, text) => {
    expect(ruleText(parseRuleSpec(spec, 'ipv4'))).toBe(text);
  });

  it('spec strings and typed JSON give the same model', () => {
    const pairs: ReadonlyArray<readonly [string, Record<string, unknown>, Family]> = [
      ['-j LOG --log-prefix x --log-level info', { target: 'LOG', prefix: 'x', level: 6 }, 'ipv4'],
      ['-j LOG --log-level warning', { target: 'LOG', level: 'warning' }, 'ipv4'],
      ['-j REJECT', { target: 'REJECT', rejectWith: 'port-unreach' }, 'ipv6'],
      ['-j SNAT --to-source [2001:db8::1]', { target: 'SNAT', toSource: '2001:db8:0::1' }, 'ipv6'],
      ['-j MARK --set-mark 0x10/0xff', { target: 'MARK', setXmark: '16/255' }, 'ipv4'],
      ['-j CONNMARK --save-mark --mask 0xff', { target: 'CONNMARK', saveMark: true, mask: 255 }, 'ipv4'],
      ['-j DSCP --set-dscp-class ef', { target: 'DSCP', setDscp: 46 }, 'ipv4'],
      ['-j CT --zone 0 --ctevents new', { target: 'CT', ctevents: 'new', zone: 0 }, 'ipv4'],
    ];
    for (const [spec, target, family] of pairs) {
      expect(json(target, family), spec).toEqual(parseRuleSpec(spec, family));
    }
  });

  it('gives precise exported types', () => {
    const log: TypedTarget = { target: 'LOG', prefix: 'x', level: 6 };
    const snat: TypedTarget = { target: 'SNAT', toSource: '192.0.2.1', persistent: true };
    // @ts-expect-error LOG has no option "colour"
    const bad: TypedTarget = { target: 'LOG', colour: 'red' };
    // @ts-expect-error level is a number in the canonical model
    const badLevel: TypedTarget = { target: 'LOG', level: 'info' };
    // @ts-expect-error CONNMARK's input-only mask never appears in the canonical model
    const badMask: TypedTarget = { target: 'CONNMARK', saveMark: true, mask: '0xff' };
    expect([log, snat, bad, badLevel, badMask]).toHaveLength(5);
  });
});

describe('kernel output that typed input refuses is kept as raw tokens', () => {
  // The kernel accepts and prints these (seen on iptables 1.8.9 nf_tables), but they
  // are not valid typed input: they must survive a save -> model -> text round trip unchanged.
  it.each([
    ['nat', 'POSTROUTING', '-j SNAT --to-source 192.0.2.9-192.0.2.1'],
    ['nat', 'POSTROUTING', '-p tcp -j SNAT --to-source 192.0.2.1:1000-2000/0'],
    // nf_tables keeps NFLOG prefixes up to 127 characters; typed input allows 63 (the legacy limit).
    ['filter', 'INPUT', `-j NFLOG --nflog-prefix ${'n'.repeat(100)}`],
  ] as const)('%s %s %s', (table, chain, text) => {
    const saved = `*${table}\n:${chain} ACCEPT [0:0]\n-A ${chain} ${text}\nCOMMIT\n`;
    const rule = parseSave(saved, 'ipv4').tables[0]?.chains.find((c) => c.name === chain)?.rules[0];
    expect(rule?.target && 'raw' in rule.target).toBe(true);
    expect(rule && ruleText(rule)).toBe(text);
  });

  it('reads CT --timeout from save output as typed', () => {
    const saved =
      '*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j CT --zone 3 --timeout long\nCOMMIT\n';
    const rule = parseSave(saved, 'ipv4').tables[0]?.chains[0]?.rules[0];
    expect(rule?.target).toEqual({ target: 'CT', zone: 3, timeout: 'long' });
  });
});

/** Keys every plain object inherits: a name table must never take them for names. */
const HOSTILE_KEYS = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'] as const;

/** [label, family, typed target for a hostile word, spec string for it, field] */
const NAME_TABLES: ReadonlyArray<
  readonly [string, Family, (w: string) => Record<string, unknown>, (w: string) => string, string]
> = [
  [
    'REJECT alias (ipv4)',
    'ipv4',
    (w) => ({ target: 'REJECT', rejectWith: w }),
    (w) => `-j REJECT --reject-with ${w}`,
    'rejectWith',
  ],
  [
    'REJECT alias (ipv6)',
    'ipv6',
    (w) => ({ target: 'REJECT', rejectWith: w }),
    (w) => `-j REJECT --reject-with ${w}`,
    'rejectWith',
  ],
  ['LOG level name', 'ipv4', (w) => ({ target: 'LOG', level: w }), (w) => `-j LOG --log-level ${w}`, 'level'],
  [
    'DSCP class',
    'ipv4',
    (w) => ({ target: 'DSCP', setDscp: w }),
    (w) => `-j DSCP --set-dscp-class ${w}`,
    'setDscp',
  ],
  [
    'CT events',
    'ipv4',
    (w) => ({ target: 'CT', ctevents: w }),
    (w) => `-j CT --ctevents new,${w}`,
    'ctevents',
  ],
  [
    'CT expectation events',
    'ipv6',
    (w) => ({ target: 'CT', expevents: [w] }),
    (w) => `-j CT --expevents ${w}`,
    'expevents',
  ],
  ['CT zone', 'ipv4', (w) => ({ target: 'CT', zone: w }), (w) => `-j CT --zone ${w}`, 'zone'],
];

describe('name tables take own keys only (constructor, __proto__, toString, ...)', () => {
  const all = NAME_TABLES.flatMap(([label, family, target, spec, key]) =>
    HOSTILE_KEYS.map((w) => [`${label}: ${w}`, family, target(w), spec(w), key] as const),
  );
  it.each(all)('%s', (_label, family, target, spec, key) => {
    const fromJson = caught(() => json(target, family));
    expect(fromJson.code).toBe('invalid_argument');
    expect(fromJson.field).toBe(`rule.target.${key}`);
    const fromSpec = caught(() => parseRuleSpec(spec, family));
    expect(fromSpec.code).toBe('invalid_argument');
    expect(fromSpec.field).toBe(`spec.target.${key}`);
    expect(fromSpec.message).not.toMatch(/native code|\[object/);
  });
});
