/**
 * Typed matches refuse hostile and invalid input, from typed JSON and from
 * operator spec strings alike: every refusal is a DomainError with code
 * invalid_argument whose field names the option to fix.
 */
import { describe, expect, it } from 'vitest';
import { MATCHES } from '../../src/domain/extensions/matches.js';
import type { Family } from '../../src/domain/family.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { argvWords, parseRuleArgs, parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { invalidArgument as refusal } from '../helpers/errors.js';

const LONG = 'a'.repeat(10_000);
const M = 'rule.matches[0]';

/** Protocol a match needs in the rule, so that the match itself is what is judged. */
const PROTOCOL: Readonly<Record<string, string>> = {
  tcp: 'tcp',
  udp: 'udp',
  icmp: 'icmp',
  icmp6: 'ipv6-icmp',
  multiport: 'tcp',
};

// [label, family, typed match JSON, expected field]
type JsonCase = readonly [string, Family, Readonly<Record<string, unknown>>, string];
const jsonCases: JsonCase[] = [
  // tcp / udp ports
  ['tcp port 70000', 'ipv4', { module: 'tcp', dport: 70000 }, `${M}.dport`],
  ['tcp port -1', 'ipv4', { module: 'tcp', dport: -1 }, `${M}.dport`],
  ['tcp port text -1', 'ipv4', { module: 'tcp', sport: '-1' }, `${M}.sport`],
  ['tcp range 22:1', 'ipv4', { module: 'tcp', dport: '22:1' }, `${M}.dport`],
  ['tcp port 1e3', 'ipv4', { module: 'tcp', dport: '1e3' }, `${M}.dport`],
  ['tcp port 22.5', 'ipv4', { module: 'tcp', dport: 22.5 }, `${M}.dport`],
  ['tcp port with newline', 'ipv4', { module: 'tcp', dport: '22\n-A INPUT -j ACCEPT' }, `${M}.dport`],
  ['tcp port as list', 'ipv4', { module: 'tcp', dport: [22] }, `${M}.dport`],
  ['tcp port unicode digits', 'ipv4', { module: 'tcp', dport: '２２' }, `${M}.dport`],
  [
    'tcp ! 0:65535 matches nothing',
    'ipv4',
    { module: 'tcp', dport: '0:65535', invert: ['dport'] },
    `${M}.dport`,
  ],
  ['tcp unknown option', 'ipv4', { module: 'tcp', dportt: 22 }, `${M}.dportt`],
  ['tcp prototype key', 'ipv4', { module: 'tcp', constructor: 22 }, `${M}.constructor`],
  [
    'tcp flag name',
    'ipv4',
    { module: 'tcp', tcpFlags: { mask: ['SYN', 'XMAS'], comp: ['SYN'] } },
    `${M}.tcpFlags.mask`,
  ],
  [
    'tcp flags extra field',
    'ipv4',
    { module: 'tcp', tcpFlags: { mask: 'SYN', comp: 'SYN', x: 1 } },
    `${M}.tcpFlags.x`,
  ],
  ['tcp option 256', 'ipv4', { module: 'tcp', tcpOption: 256 }, `${M}.tcpOption`],
  // iptables: Bad TCP option "0"
  ['tcp option 0', 'ipv4', { module: 'tcp', tcpOption: 0 }, `${M}.tcpOption`],
  // An empty mask tests no flag: these match nothing or everything, and nf_tables drops them.
  [
    'tcp flags empty mask, comp SYN',
    'ipv4',
    { module: 'tcp', tcpFlags: { mask: 'NONE', comp: 'SYN' } },
    `${M}.tcpFlags`,
  ],
  [
    'tcp flags ! NONE NONE',
    'ipv6',
    { module: 'tcp', tcpFlags: { mask: [], comp: [] }, invert: ['tcpFlags'] },
    `${M}.tcpFlags`,
  ],
  [
    'tcp flags ! NONE SYN',
    'ipv4',
    { module: 'tcp', dport: 22, tcpFlags: { mask: [], comp: ['SYN'] }, invert: ['tcpFlags'] },
    `${M}.tcpFlags`,
  ],
  ['udp port 65536', 'ipv6', { module: 'udp', sport: '65536' }, `${M}.sport`],
  ['udp invert unknown', 'ipv4', { module: 'udp', dport: 53, invert: ['bogus'] }, `${M}.invert`],
  ['udp invert unset option', 'ipv4', { module: 'udp', dport: 53, invert: ['sport'] }, `${M}.invert`],
  // icmp / icmp6
  ['icmp bad name', 'ipv4', { module: 'icmp', icmpType: 'echo-requestt' }, `${M}.icmpType`],
  ['icmp type 256', 'ipv4', { module: 'icmp', icmpType: '256' }, `${M}.icmpType`],
  ['icmp code 3/300', 'ipv4', { module: 'icmp', icmpType: '3/300' }, `${M}.icmpType`],
  ['icmp on ipv6', 'ipv6', { module: 'icmp', icmpType: 8 }, M],
  ['icmp6 on ipv4', 'ipv4', { module: 'icmp6', icmpv6Type: 128 }, M],
  ['icmp6 any is ipv4 only', 'ipv6', { module: 'icmp6', icmpv6Type: 'any' }, `${M}.icmpv6Type`],
  ['icmp6 long name', 'ipv6', { module: 'icmp6', icmpv6Type: LONG }, `${M}.icmpv6Type`],
  ['icmp without type', 'ipv4', { module: 'icmp' }, `${M}.icmpType`],
  ['icmp6 without type', 'ipv6', { module: 'icmp6' }, `${M}.icmpv6Type`],
  // multiport
  [
    'multiport 16 ports',
    'ipv4',
    { module: 'multiport', dports: Array.from({ length: 16 }, (_, i) => i + 1) },
    `${M}.dports`,
  ],
  [
    'multiport 8 ranges',
    'ipv4',
    { module: 'multiport', ports: Array.from({ length: 8 }, (_, i) => `${i}:${i + 10}`) },
    `${M}.ports`,
  ],
  ['multiport empty', 'ipv4', { module: 'multiport', sports: [] }, `${M}.sports`],
  ['multiport bad item', 'ipv4', { module: 'multiport', dports: [22, 70000] }, `${M}.dports[1]`],
  ['multiport without ports', 'ipv4', { module: 'multiport' }, M],
  ['multiport sports and dports', 'ipv4', { module: 'multiport', sports: [1], dports: [2] }, `${M}.dports`],
  ['multiport dports and ports', 'ipv6', { module: 'multiport', dports: [1], ports: [2] }, `${M}.ports`],
  ['multiport quote', 'ipv4', { module: 'multiport', dports: '22,"80' }, `${M}.dports[1]`],
  // state / conntrack
  ['state unknown word', 'ipv4', { module: 'state', state: ['NEW', 'OLD'] }, `${M}.state`],
  ['state SNAT is conntrack-only', 'ipv4', { module: 'state', state: 'SNAT' }, `${M}.state`],
  ['state empty', 'ipv4', { module: 'state', state: '' }, `${M}.state`],
  ['state without state', 'ipv4', { module: 'state' }, `${M}.state`],
  ['conntrack without options', 'ipv6', { module: 'conntrack' }, M],
  ['conntrack protocol name', 'ipv4', { module: 'conntrack', ctproto: 'tcpp' }, `${M}.ctproto`],
  [
    'conntrack address of other family',
    'ipv4',
    { module: 'conntrack', ctorigsrc: '2001:db8::1' },
    `${M}.ctorigsrc`,
  ],
  ['conntrack host name', 'ipv6', { module: 'conntrack', ctorigdst: 'example.org' }, `${M}.ctorigdst`],
  [
    'conntrack port range reversed',
    'ipv4',
    { module: 'conntrack', ctorigdstport: '9:1' },
    `${M}.ctorigdstport`,
  ],
  ['conntrack status word', 'ipv4', { module: 'conntrack', ctstatus: 'DYING' }, `${M}.ctstatus`],
  ['conntrack expire range reversed', 'ipv4', { module: 'conntrack', ctexpire: '20:10' }, `${M}.ctexpire`],
  ['conntrack dir lower-case', 'ipv4', { module: 'conntrack', ctdir: 'reply' }, `${M}.ctdir`],
  [
    'conntrack dir not negatable',
    'ipv4',
    { module: 'conntrack', ctdir: 'REPLY', invert: ['ctdir'] },
    `${M}.invert`,
  ],
  // recent
  ['recent without action', 'ipv4', { module: 'recent', seconds: 60 }, M],
  ['recent unknown action', 'ipv4', { module: 'recent', action: 'add' }, `${M}.action`],
  ['recent name with newline', 'ipv4', { module: 'recent', action: 'set', name: 'a\nb' }, `${M}.name`],
  ['recent name with quote', 'ipv4', { module: 'recent', action: 'set', name: 'a"b' }, `${M}.name`],
  ['recent name 10 kB', 'ipv4', { module: 'recent', action: 'set', name: LONG }, `${M}.name`],
  ['recent name unicode', 'ipv4', { module: 'recent', action: 'set', name: 'naïve' }, `${M}.name`],
  ['recent seconds negative', 'ipv4', { module: 'recent', action: 'update', seconds: -5 }, `${M}.seconds`],
  ['recent hitcount text', 'ipv4', { module: 'recent', action: 'update', hitcount: 'four' }, `${M}.hitcount`],
  [
    'recent mask of other family',
    'ipv6',
    { module: 'recent', action: 'set', mask: '255.255.255.0' },
    `${M}.mask`,
  ],
  ['recent reap not a flag', 'ipv4', { module: 'recent', action: 'set', reap: 'yes' }, `${M}.reap`],
  [
    'recent seconds not negatable',
    'ipv4',
    { module: 'recent', action: 'set', seconds: 5, invert: ['seconds'] },
    `${M}.invert`,
  ],
  ['recent side', 'ipv4', { module: 'recent', action: 'set', side: 'both' }, `${M}.side`],
  // limit
  ['limit unit', 'ipv4', { module: 'limit', limit: '5/week' }, `${M}.limit`],
  ['limit zero', 'ipv4', { module: 'limit', limit: '0/sec' }, `${M}.limit`],
  ['limit too fast', 'ipv4', { module: 'limit', limit: '100000/sec' }, `${M}.limit`],
  ['limit burst 0', 'ipv4', { module: 'limit', limitBurst: 0 }, `${M}.limitBurst`],
  ['limit not negatable', 'ipv4', { module: 'limit', limit: '5/sec', invert: ['limit'] }, `${M}.invert`],
  // comment
  ['comment missing', 'ipv4', { module: 'comment' }, `${M}.comment`],
  ['comment newline', 'ipv4', { module: 'comment', comment: 'a\nCOMMIT' }, `${M}.comment`],
  ['comment NUL', 'ipv4', { module: 'comment', comment: 'a\u0000b' }, `${M}.comment`],
  ['comment 10 kB', 'ipv4', { module: 'comment', comment: LONG }, `${M}.comment`],
  ['comment 256 characters', 'ipv4', { module: 'comment', comment: 'c'.repeat(256) }, `${M}.comment`],
  ['comment of 256 UTF-8 bytes', 'ipv4', { module: 'comment', comment: 'é'.repeat(128) }, `${M}.comment`],
  ['comment with a C1 control', 'ipv4', { module: 'comment', comment: 'a\u0085b' }, `${M}.comment`],
  ['comment number', 'ipv4', { module: 'comment', comment: 5 }, `${M}.comment`],
  // mark / connmark
  ['mark 33 bits', 'ipv4', { module: 'mark', mark: '0x100000000' }, `${M}.mark`],
  ['mark two masks', 'ipv4', { module: 'mark', mark: '1/2/3' }, `${M}.mark`],
  ['mark negative', 'ipv4', { module: 'mark', mark: -1 }, `${M}.mark`],
  ['connmark text', 'ipv6', { module: 'connmark', mark: 'blue' }, `${M}.mark`],
  ['mark without mark', 'ipv4', { module: 'mark' }, `${M}.mark`],
  ['connmark without mark', 'ipv4', { module: 'connmark' }, `${M}.mark`],
  ['iprange without ranges', 'ipv4', { module: 'iprange' }, M],
  // iprange
  ['iprange without dash', 'ipv4', { module: 'iprange', srcRange: '192.0.2.1' }, `${M}.srcRange`],
  ['iprange other family', 'ipv6', { module: 'iprange', dstRange: '192.0.2.1-192.0.2.9' }, `${M}.dstRange`],
  [
    'iprange three parts',
    'ipv4',
    { module: 'iprange', srcRange: '192.0.2.1-192.0.2.2-192.0.2.3' },
    `${M}.srcRange`,
  ],
  // length / pkttype
  ['length 65536', 'ipv4', { module: 'length', length: 65536 }, `${M}.length`],
  ['length reversed', 'ipv4', { module: 'length', length: '200:100' }, `${M}.length`],
  ['pkttype word', 'ipv4', { module: 'pkttype', pktType: 'anycast' }, `${M}.pktType`],
  ['length without length', 'ipv6', { module: 'length' }, `${M}.length`],
  ['pkttype without type', 'ipv4', { module: 'pkttype' }, `${M}.pktType`],
  // hashlimit
  ['hashlimit without rate', 'ipv4', { module: 'hashlimit', name: 'h' }, `${M}.upto`],
  [
    'hashlimit upto and above',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', above: '2/sec', name: 'h' },
    `${M}.above`,
  ],
  ['hashlimit without name', 'ipv4', { module: 'hashlimit', upto: '1/sec' }, `${M}.name`],
  ['hashlimit rate unit', 'ipv4', { module: 'hashlimit', upto: '1/fortnight', name: 'h' }, `${M}.upto`],
  ['hashlimit rate too fast', 'ipv4', { module: 'hashlimit', upto: '1000001/sec', name: 'h' }, `${M}.upto`],
  ['hashlimit rate 0', 'ipv4', { module: 'hashlimit', above: '0/min', name: 'h' }, `${M}.above`],
  ['hashlimit byte rate 0', 'ipv4', { module: 'hashlimit', upto: '0kb/s', name: 'h' }, `${M}.upto`],
  ['hashlimit byte rate too big', 'ipv4', { module: 'hashlimit', upto: '5000mb/s', name: 'h' }, `${M}.upto`],
  ['hashlimit burst 0', 'ipv4', { module: 'hashlimit', upto: '1/sec', name: 'h', burst: 0 }, `${M}.burst`],
  [
    'hashlimit burst 1000001',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', burst: 1000001 },
    `${M}.burst`,
  ],
  [
    'hashlimit byte burst on packet rate',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', burst: '3kb' },
    `${M}.burst`,
  ],
  [
    'hashlimit byte burst below rate',
    'ipv4',
    { module: 'hashlimit', upto: '1mb/s', name: 'h', burst: '1kb' },
    `${M}.burst`,
  ],
  [
    'hashlimit mode word',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', mode: 'srcip,proto' },
    `${M}.mode`,
  ],
  [
    'hashlimit mode upper-case',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', mode: ['SRCIP'] },
    `${M}.mode`,
  ],
  ['hashlimit name slash', 'ipv4', { module: 'hashlimit', upto: '1/sec', name: 'a/b' }, `${M}.name`],
  ['hashlimit name dot-dot', 'ipv4', { module: 'hashlimit', upto: '1/sec', name: '..' }, `${M}.name`],
  ['hashlimit name 255', 'ipv4', { module: 'hashlimit', upto: '1/sec', name: 'n'.repeat(255) }, `${M}.name`],
  ['hashlimit name newline', 'ipv4', { module: 'hashlimit', upto: '1/sec', name: 'h\n' }, `${M}.name`],
  [
    'hashlimit srcmask 33',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', srcmask: 33 },
    `${M}.srcmask`,
  ],
  [
    'hashlimit dstmask 129',
    'ipv6',
    { module: 'hashlimit', upto: '1/sec', name: 'h', dstmask: 129 },
    `${M}.dstmask`,
  ],
  [
    'hashlimit gcinterval 0',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', htableGcinterval: 0 },
    `${M}.htableGcinterval`,
  ],
  [
    'hashlimit expire 2^32',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', htableExpire: 2 ** 32 },
    `${M}.htableExpire`,
  ],
  [
    'hashlimit size -1',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', htableSize: -1 },
    `${M}.htableSize`,
  ],
  [
    'hashlimit interval 0',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', rateMatch: true, rateInterval: 0 },
    `${M}.rateInterval`,
  ],
  [
    'hashlimit upto not negatable',
    'ipv4',
    { module: 'hashlimit', upto: '1/sec', name: 'h', invert: ['upto'] },
    `${M}.invert`,
  ],
  // mac
  ['mac missing', 'ipv4', { module: 'mac' }, `${M}.macSource`],
  ['mac dashes', 'ipv4', { module: 'mac', macSource: 'aa-bb-cc-dd-ee-ff' }, `${M}.macSource`],
  ['mac five octets', 'ipv4', { module: 'mac', macSource: 'aa:bb:cc:dd:ee' }, `${M}.macSource`],
  ['mac three-digit octet', 'ipv6', { module: 'mac', macSource: 'aaa:bb:cc:dd:ee:ff' }, `${M}.macSource`],
  ['mac not hex', 'ipv4', { module: 'mac', macSource: 'gg:bb:cc:dd:ee:ff' }, `${M}.macSource`],
  ['mac with newline', 'ipv4', { module: 'mac', macSource: 'aa:bb:cc:dd:ee:ff\n' }, `${M}.macSource`],
  // addrtype
  ['addrtype none', 'ipv4', { module: 'addrtype', limitIfaceIn: true }, `${M}.srcType`],
  ['addrtype word', 'ipv4', { module: 'addrtype', srcType: 'LOCALHOST' }, `${M}.srcType`],
  ['addrtype BROADCAST on ipv6', 'ipv6', { module: 'addrtype', dstType: ['BROADCAST'] }, `${M}.dstType`],
  ['addrtype NAT on ipv6', 'ipv6', { module: 'addrtype', srcType: 'LOCAL,NAT' }, `${M}.srcType`],
  [
    'addrtype both interface limits',
    'ipv4',
    { module: 'addrtype', srcType: 'LOCAL', limitIfaceIn: true, limitIfaceOut: true },
    `${M}.limitIfaceOut`,
  ],
  [
    'addrtype limit not negatable',
    'ipv4',
    { module: 'addrtype', srcType: 'LOCAL', limitIfaceIn: true, invert: ['limitIfaceIn'] },
    `${M}.invert`,
  ],
  // set
  ['set missing', 'ipv4', { module: 'set', returnNomatch: true }, `${M}.matchSet`],
  [
    'set name 32 characters',
    'ipv4',
    { module: 'set', matchSet: { name: 's'.repeat(32), flags: 'src' } },
    `${M}.matchSet.name`,
  ],
  [
    'set name with space',
    'ipv4',
    { module: 'set', matchSet: { name: 'a b', flags: 'src' } },
    `${M}.matchSet.name`,
  ],
  [
    'set name with quote',
    'ipv4',
    { module: 'set', matchSet: { name: "a'b", flags: 'src' } },
    `${M}.matchSet.name`,
  ],
  [
    'set flag word',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: 'source' } },
    `${M}.matchSet.flags`,
  ],
  [
    'set seven flags',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: Array(7).fill('src') } },
    `${M}.matchSet.flags`,
  ],
  [
    'set flags upper-case',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: 'SRC' } },
    `${M}.matchSet.flags`,
  ],
  ['set as text', 'ipv4', { module: 'set', matchSet: 's src' }, `${M}.matchSet`],
  [
    'set two packet tests',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: 'src' }, packetsEq: 1, packetsGt: 2 },
    `${M}.packetsGt`,
  ],
  [
    'set packets-lt not negatable',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: 'src' }, packetsLt: 1, invert: ['packetsLt'] },
    `${M}.invert`,
  ],
  [
    'set bytes negative',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: 'src' }, bytesGt: -1 },
    `${M}.bytesGt`,
  ],
  [
    'set returnNomatch not negatable',
    'ipv4',
    { module: 'set', matchSet: { name: 's', flags: 'src' }, returnNomatch: true, invert: ['returnNomatch'] },
    `${M}.invert`,
  ],
  // owner
  ['owner nothing', 'ipv4', { module: 'owner' }, M],
  ['owner user name', 'ipv4', { module: 'owner', uidOwner: 'root' }, `${M}.uidOwner`],
  ['owner uid 2^32-1', 'ipv4', { module: 'owner', uidOwner: 4294967295 }, `${M}.uidOwner`],
  ['owner range reversed', 'ipv6', { module: 'owner', gidOwner: '10-5' }, `${M}.gidOwner`],
  ['owner octal-looking', 'ipv4', { module: 'owner', uidOwner: '010' }, `${M}.uidOwner`],
  ['owner colon range', 'ipv4', { module: 'owner', uidOwner: '1:5' }, `${M}.uidOwner`],
  [
    'owner supplGroups without gid',
    'ipv4',
    { module: 'owner', uidOwner: 1, supplGroups: true },
    `${M}.supplGroups`,
  ],
  [
    'owner supplGroups not negatable',
    'ipv4',
    { module: 'owner', gidOwner: 1, supplGroups: true, invert: ['supplGroups'] },
    `${M}.invert`,
  ],
  // ttl / hl
  ['ttl on ipv6', 'ipv6', { module: 'ttl', ttlEq: 64 }, M],
  ['hl on ipv4', 'ipv4', { module: 'hl', hlEq: 64 }, M],
  ['ttl 256', 'ipv4', { module: 'ttl', ttlEq: 256 }, `${M}.ttlEq`],
  ['ttl two tests', 'ipv4', { module: 'ttl', ttlGt: 1, ttlLt: 5 }, `${M}.ttlLt`],
  ['ttl none', 'ipv4', { module: 'ttl' }, M],
  ['ttl-lt not negatable', 'ipv4', { module: 'ttl', ttlLt: 5, invert: ['ttlLt'] }, `${M}.invert`],
  ['hl negative', 'ipv6', { module: 'hl', hlGt: -1 }, `${M}.hlGt`],
  ['hl-gt not negatable', 'ipv6', { module: 'hl', hlGt: 1, invert: ['hlGt'] }, `${M}.invert`],
  // physdev
  ['physdev nothing', 'ipv4', { module: 'physdev' }, M],
  ['physdev name 16', 'ipv4', { module: 'physdev', physdevIn: 'abcdefghijklmnop' }, `${M}.physdevIn`],
  ['physdev name 15 plus', 'ipv4', { module: 'physdev', physdevIn: 'abcdefghijklmno+' }, `${M}.physdevIn`],
  ['physdev name slash', 'ipv6', { module: 'physdev', physdevOut: 'eth/0' }, `${M}.physdevOut`],
  ['physdev name space', 'ipv4', { module: 'physdev', physdevOut: 'eth 0' }, `${M}.physdevOut`],
  ['physdev name empty', 'ipv4', { module: 'physdev', physdevOut: '' }, `${M}.physdevOut`],
  ['physdev flag false', 'ipv4', { module: 'physdev', physdevIsBridged: false }, `${M}.physdevIsBridged`],
];

describe('typed JSON matches: hostile and invalid input', () => {
  it.each(jsonCases)('%s', (_label, family, match, field) => {
    const protocol = PROTOCOL[match.module as string];
    const rule = { ...(protocol ? { protocol } : {}), matches: [match] };
    const e = refusal(() => normalizeRule(rule, family));
    expect(e.field).toBe(field);
  });

  it('covers every typed match', () => {
    const covered = new Set(jsonCases.map(([, , m]) => m.module));
    expect(MATCHES.map((m) => m.name).filter((n) => !covered.has(n))).toEqual([]);
  });
});

// [spec, family, expected field]
type SpecCase = readonly [string, Family, string];
const S = 'spec.matches[0]';
const specCases: SpecCase[] = [
  ['-p tcp --dport 70000', 'ipv4', `${S}.dport`],
  ['-p tcp --dport -1', 'ipv4', `${S}.dport`],
  ['-p tcp --sport 22:1', 'ipv4', `${S}.sport`],
  ['-p tcp --dport 1e3', 'ipv4', `${S}.dport`],
  ['-p tcp --dport 22 --dport 23', 'ipv4', `${S}.dport`],
  ['-p tcp ! --dport 0:65535', 'ipv4', `${S}.dport`],
  ['-p udp --tcp-flags SYN SYN', 'ipv4', 'spec'],
  ['-p tcp -m tcp --bogus 1', 'ipv4', S],
  ['-p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16', 'ipv4', `${S}.dports`],
  ['-p icmp --icmp-type 8', 'ipv6', S],
  ['-p ipv6-icmp --icmpv6-type nope', 'ipv6', `${S}.icmpv6Type`],
  ['-m state --state NEW,OLD', 'ipv4', `${S}.state`],
  ['-m conntrack --ctdir reply', 'ipv4', `${S}.ctdir`],
  ['-m conntrack ! --ctdir REPLY', 'ipv4', `${S}.ctdir`],
  ['-m recent --set --name "a b"', 'ipv4', `${S}.name`],
  ['-m recent --name x', 'ipv4', S],
  ['-m limit ! --limit 5/sec', 'ipv4', `${S}.limit`],
  ['-m limit --limit 5/fortnight', 'ipv4', `${S}.limit`],
  ['-m comment --comment "a\\"b" --comment c', 'ipv4', `${S}.comment`],
  [`-m comment --comment "${'é'.repeat(128)}"`, 'ipv4', `${S}.comment`],
  ['-m mark --mark 0x1/0x2/0x3', 'ipv4', `${S}.mark`],
  ['-m iprange --src-range 192.0.2.9', 'ipv4', `${S}.srcRange`],
  ['-m length --length 70000', 'ipv4', `${S}.length`],
  ['-m pkttype --pkt-type loopback', 'ipv4', `${S}.pktType`],
  ['-m hashlimit --hashlimit-upto 5/sec', 'ipv4', `${S}.name`],
  ['-m hashlimit ! --hashlimit-upto 5/sec --hashlimit-name h', 'ipv4', `${S}.upto`],
  ['-m hashlimit --hashlimit-upto 5/sec --hashlimit-name h --hashlimit-burst 3kb', 'ipv4', `${S}.burst`],
  [
    '-m hashlimit --hashlimit-upto 5/sec --hashlimit-name h --hashlimit-mode srcip --hashlimit-mode dstip',
    'ipv4',
    `${S}.mode`,
  ],
  ['-m hashlimit --hashlimit-upto 5/sec --hashlimit-name h --hashlimit-srcmask 64', 'ipv4', `${S}.srcmask`],
  ['-m hashlimit --hashlimit-upto 5/sec --hashlimit-name "a/b"', 'ipv4', `${S}.name`],
  ['-m mac --mac-source aa-bb-cc-dd-ee-ff', 'ipv4', `${S}.macSource`],
  ['-m addrtype --src-type LOCAL --src-type UNICAST', 'ipv4', `${S}.srcType`],
  ['-m addrtype ! --limit-iface-in --src-type LOCAL', 'ipv4', `${S}.limitIfaceIn`],
  ['-m addrtype --src-type BLACKHOLE', 'ipv6', `${S}.srcType`],
  ['-m set --match-set s', 'ipv4', 'spec'],
  ['-m set --match-set s source', 'ipv4', `${S}.matchSet.flags`],
  ['-m set --match-set s src ! --packets-gt 5', 'ipv4', `${S}.packetsGt`],
  ['-m set --match-set s src ! --return-nomatch', 'ipv4', `${S}.returnNomatch`],
  ['-m owner --uid-owner nobody', 'ipv4', `${S}.uidOwner`],
  ['-m owner --suppl-groups', 'ipv4', S],
  ['-m owner --gid-owner 1 ! --suppl-groups', 'ipv4', `${S}.supplGroups`],
  ['-m ttl --ttl-eq 64', 'ipv6', S],
  ['-m ttl --ttl-lt 5 --ttl-gt 3', 'ipv4', `${S}.ttlLt`],
  ['-m ttl ! --ttl-lt 5', 'ipv4', `${S}.ttlLt`],
  ['-m hl --hl-eq 64', 'ipv4', S],
  ['-m hl --hl-eq 256', 'ipv6', `${S}.hlEq`],
  ['-m physdev', 'ipv4', S],
  ['-m physdev --physdev-in 0123456789abcdef', 'ipv4', `${S}.physdevIn`],
  ['-m physdev ! --physdev-in', 'ipv4', 'spec'],
  ['-p tcp --tcp-option 0', 'ipv4', `${S}.tcpOption`],
  ['-p tcp --tcp-flags NONE SYN', 'ipv4', `${S}.tcpFlags`],
  ['-p tcp ! --tcp-flags NONE NONE', 'ipv6', `${S}.tcpFlags`],
  // iptables refuses these matches without their options ("option --state must be specified").
  ['-m state', 'ipv4', `${S}.state`],
  ['-m conntrack', 'ipv4', S],
  ['-p tcp -m multiport', 'ipv4', S],
  ['-p udp -m multiport --sports 1 --ports 2', 'ipv6', `${S}.ports`],
  ['-m iprange', 'ipv4', S],
  ['-m mark', 'ipv4', `${S}.mark`],
  ['-m connmark', 'ipv6', `${S}.mark`],
  ['-m length', 'ipv4', `${S}.length`],
  ['-m pkttype', 'ipv4', `${S}.pktType`],
  ['-p icmp -m icmp', 'ipv4', `${S}.icmpType`],
  ['-p ipv6-icmp -m icmp6', 'ipv6', `${S}.icmpv6Type`],
  ['-m hashlimit', 'ipv4', `${S}.upto`],
  ['-m recent', 'ipv4', S],
  ['-m set', 'ipv4', `${S}.matchSet`],
  ['-m addrtype', 'ipv4', `${S}.srcType`],
  ['-m owner', 'ipv4', S],
  ['-m ttl', 'ipv4', S],
  ['-m hl', 'ipv6', S],
  ['-m mac', 'ipv4', `${S}.macSource`],
  ['-m comment', 'ipv4', `${S}.comment`],
];

describe('spec strings: hostile and invalid match options', () => {
  it.each(specCases)('%s (%s)', (spec, family, field) => {
    const e = refusal(() => parseRuleSpec(spec, family));
    expect(e.field).toBe(field);
  });
});

describe('typed JSON and spec strings agree', () => {
  it.each<[Family, string, Readonly<Record<string, unknown>>]>([
    [
      'ipv4',
      '-m hashlimit --hashlimit 60/min --hashlimit-name web',
      { matches: [{ module: 'hashlimit', upto: '60/min', name: 'web' }] },
    ],
    [
      'ipv4',
      '-m mac --mac-source AA:BB:CC:0:1:2',
      { matches: [{ module: 'mac', macSource: 'aa:bb:cc:00:01:02' }] },
    ],
    [
      'ipv6',
      '-m addrtype ! --src-type local,unicast',
      { matches: [{ module: 'addrtype', srcType: ['UNICAST', 'LOCAL'], invert: ['srcType'] }] },
    ],
    [
      'ipv4',
      '-m set ! --match-set blocked src,dst ! --update-counters',
      {
        matches: [
          {
            module: 'set',
            matchSet: { name: 'blocked', flags: ['src', 'dst'] },
            updateCounters: true,
            invert: ['matchSet', 'updateCounters'],
          },
        ],
      },
    ],
    ['ipv4', '-m owner --uid-owner 0x3e8-2000', { matches: [{ module: 'owner', uidOwner: '1000-2000' }] }],
    ['ipv4', '-m ttl ! --ttl-eq 1', { matches: [{ module: 'ttl', ttlEq: 1, invert: ['ttlEq'] }] }],
    ['ipv6', '-m hl --hl-lt 2', { matches: [{ module: 'hl', hlLt: '2' }] }],
    [
      'ipv4',
      '-m physdev --physdev-is-bridged ! --physdev-in eth0',
      { matches: [{ module: 'physdev', physdevIn: 'eth0', physdevIsBridged: true, invert: ['physdevIn'] }] },
    ],
    [
      'ipv4',
      '-p tcp ! --dport :1023',
      { protocol: 'tcp', matches: [{ module: 'tcp', dport: '1024:65535' }] },
    ],
  ])('%s %s', (family, spec, json) => {
    const fromSpec = parseRuleSpec(spec, family);
    const fromJson = normalizeRule(json, family);
    expect(fromSpec).toEqual(fromJson);
    // The canonical model is a fixed point: its own text and its own JSON give it back.
    expect(parseRuleSpec(ruleText(fromSpec), family)).toEqual(fromSpec);
    expect(normalizeRule(JSON.parse(JSON.stringify(fromSpec)), family)).toEqual(fromSpec);
  });
});

/**
 * Keys every plain object inherits: a name table that is a plain object must
 * never take them for names (`rejectWith: 'constructor'` once wrote
 * `function Object() { [native code] }` into restore text).
 */
const HOSTILE_KEYS = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'] as const;

// [label, family, protocol, typed match for a hostile word, spec string for it, field]
type NameTableCase = readonly [
  string,
  Family,
  string | undefined,
  (w: string) => Readonly<Record<string, unknown>>,
  (w: string) => string,
  string,
];
const nameTableCases: NameTableCase[] = [
  [
    'icmp type name',
    'ipv4',
    'icmp',
    (w) => ({ module: 'icmp', icmpType: w }),
    (w) => `-p icmp --icmp-type ${w}`,
    'icmpType',
  ],
  [
    'icmp6 type name',
    'ipv6',
    'ipv6-icmp',
    (w) => ({ module: 'icmp6', icmpv6Type: w }),
    (w) => `-p ipv6-icmp --icmpv6-type ${w}`,
    'icmpv6Type',
  ],
  [
    'tcp flag name',
    'ipv4',
    'tcp',
    (w) => ({ module: 'tcp', tcpFlags: { mask: w, comp: 'SYN' } }),
    (w) => `-p tcp --tcp-flags ${w} SYN`,
    'tcpFlags.mask',
  ],
  [
    'state word',
    'ipv4',
    undefined,
    (w) => ({ module: 'state', state: w }),
    (w) => `-m state --state ${w}`,
    'state',
  ],
  [
    'conntrack state',
    'ipv6',
    undefined,
    (w) => ({ module: 'conntrack', ctstate: [w] }),
    (w) => `-m conntrack --ctstate NEW,${w}`,
    'ctstate',
  ],
  [
    'conntrack status',
    'ipv4',
    undefined,
    (w) => ({ module: 'conntrack', ctstatus: w }),
    (w) => `-m conntrack --ctstatus ${w}`,
    'ctstatus',
  ],
  [
    'conntrack direction',
    'ipv4',
    undefined,
    (w) => ({ module: 'conntrack', ctdir: w }),
    (w) => `-m conntrack --ctdir ${w}`,
    'ctdir',
  ],
  [
    'conntrack protocol name',
    'ipv4',
    undefined,
    (w) => ({ module: 'conntrack', ctproto: w }),
    (w) => `-m conntrack --ctproto ${w}`,
    'ctproto',
  ],
  [
    'recent action',
    'ipv4',
    undefined,
    (w) => ({ module: 'recent', action: w }),
    (w) => `-m recent --${w}`,
    'action',
  ],
  [
    'limit rate unit',
    'ipv4',
    undefined,
    (w) => ({ module: 'limit', limit: `1/${w}` }),
    (w) => `-m limit --limit 1/${w}`,
    'limit',
  ],
  [
    'pkttype word',
    'ipv6',
    undefined,
    (w) => ({ module: 'pkttype', pktType: w }),
    (w) => `-m pkttype --pkt-type ${w}`,
    'pktType',
  ],
  [
    'hashlimit rate unit',
    'ipv4',
    undefined,
    (w) => ({ module: 'hashlimit', upto: `1/${w}`, name: 'h' }),
    (w) => `-m hashlimit --hashlimit-upto 1/${w} --hashlimit-name h`,
    'upto',
  ],
  [
    'hashlimit mode',
    'ipv4',
    undefined,
    (w) => ({ module: 'hashlimit', upto: '1/sec', name: 'h', mode: w }),
    (w) => `-m hashlimit --hashlimit-upto 1/sec --hashlimit-name h --hashlimit-mode ${w}`,
    'mode',
  ],
  [
    'addrtype type',
    'ipv4',
    undefined,
    (w) => ({ module: 'addrtype', srcType: w }),
    (w) => `-m addrtype --src-type ${w}`,
    'srcType',
  ],
  [
    'set flag',
    'ipv4',
    undefined,
    (w) => ({ module: 'set', matchSet: { name: 's', flags: w } }),
    (w) => `-m set --match-set s ${w}`,
    'matchSet.flags',
  ],
];

describe('name tables take own keys only (constructor, __proto__, toString, ...)', () => {
  const all = nameTableCases.flatMap(([label, family, protocol, json, spec, key]) =>
    HOSTILE_KEYS.map((w) => [`${label}: ${w}`, family, protocol, json(w), spec(w), key] as const),
  );
  it.each(all)('%s', (_label, family, protocol, match, spec, key) => {
    const rule = { ...(protocol ? { protocol } : {}), matches: [match] };
    expect(refusal(() => normalizeRule(rule, family)).field).toBe(`${M}.${key}`);
    // recent's action is set by its flag: `--constructor` is no option of recent at all.
    const e = refusal(() => parseRuleSpec(spec, family));
    expect(e.field).toBe(key === 'action' ? S : `${S}.${key}`);
    expect(e.message).not.toMatch(/native code|\[object/);
  });
});

describe('repeated tcp and udp matches merge as nf_tables merges them', () => {
  it.each<[string, Family, string | Readonly<Record<string, unknown>>, string]>([
    [
      'implicit then explicit',
      'ipv4',
      '-p tcp --dport 22 -m tcp --sport 1',
      '-p tcp -m tcp --sport 1 --dport 22',
    ],
    [
      'across another match, with a negation',
      'ipv6',
      '-p udp -m udp --dport 53 -m comment --comment x -m udp ! --sport 1',
      '-p udp -m udp ! --sport 1 --dport 53 -m comment --comment x',
    ],
    ['equal values', 'ipv4', '-p tcp -m tcp --dport 22 -m tcp --dport 22:22', '-p tcp -m tcp --dport 22'],
    [
      '--syn equals its flags',
      'ipv4',
      '-p tcp --syn -m tcp --tcp-flags SYN,ACK,FIN,RST SYN',
      '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN',
    ],
    [
      'a match without options is not merged',
      'ipv4',
      '-p tcp -m tcp --sport 1 -m tcp -m tcp --dport 2',
      '-p tcp -m tcp --sport 1 --dport 2 -m tcp',
    ],
    [
      'a tcp match with --tcp-option is not merged',
      'ipv4',
      '-p tcp -m tcp --tcp-option 3 --dport 1 -m tcp --dport 2',
      '-p tcp -m tcp --dport 1 --tcp-option 3 -m tcp --dport 2',
    ],
    [
      'full port range left out first',
      'ipv4',
      '-p udp -m udp --sport 53 -m udp --sport 0:65535',
      '-p udp -m udp --sport 53 -m udp',
    ],
    [
      'typed JSON',
      'ipv4',
      {
        protocol: 'tcp',
        matches: [
          { module: 'tcp', dport: 22 },
          { module: 'comment', comment: 'c' },
          { module: 'tcp', sport: '1:2', invert: ['sport'] },
          { module: 'tcp', tcpFlags: { mask: 'SYN', comp: 'SYN' } },
        ],
      },
      '-p tcp -m tcp ! --sport 1:2 --dport 22 --tcp-flags SYN SYN -m comment --comment c',
    ],
    [
      'icmp is never merged',
      'ipv4',
      '-p icmp --icmp-type 8 -m icmp --icmp-type 0',
      '-p icmp -m icmp --icmp-type 8 -m icmp --icmp-type 0',
    ],
    [
      'comment is never merged',
      'ipv4',
      '-m comment --comment a -m comment --comment b',
      '-m comment --comment a -m comment --comment b',
    ],
  ])('%s', (_label, family, input, text) => {
    const rule = typeof input === 'string' ? parseRuleSpec(input, family) : normalizeRule(input, family);
    expect(ruleText(rule)).toBe(text);
    expect(parseRuleSpec(text, family)).toEqual(rule);
  });

  it.each<[string, Family, string | Readonly<Record<string, unknown>>, string]>([
    ['two destination ports', 'ipv4', '-p tcp -m tcp --dport 22 -m tcp --dport 23', 'spec.matches[1].dport'],
    ['the same port, once negated', 'ipv6', '-p tcp --sport 1 -m tcp ! --sport 1', 'spec.matches[1].sport'],
    [
      'two flag tests',
      'ipv4',
      '-p tcp -m tcp --tcp-flags SYN SYN -m comment --comment x -m tcp --tcp-flags ACK ACK',
      'spec.matches[2].tcpFlags',
    ],
    [
      'typed JSON',
      'ipv4',
      {
        protocol: 'udp',
        matches: [
          { module: 'udp', dport: 1 },
          { module: 'udp', dport: '1:2' },
        ],
      },
      'rule.matches[1].dport',
    ],
  ])('refuses %s', (_label, family, input, field) => {
    const e = refusal(() =>
      typeof input === 'string' ? parseRuleSpec(input, family) : normalizeRule(input, family),
    );
    expect(e.field).toBe(field);
  });

  it('keeps conflicting kernel output unmerged (save mode loses nothing)', () => {
    const tokens = '-p tcp -m tcp --dport 22 -m tcp --dport 23'.split(' ');
    const rule = parseRuleArgs(argvWords(tokens), 'ipv4', { mode: 'save' });
    expect(ruleText(rule)).toBe('-p tcp -m tcp --dport 22 -m tcp --dport 23');
  });
});

describe('save mode keeps what typed input refuses as raw tokens', () => {
  it.each<[Family, string]>([
    ['ipv4', '-m state'],
    ['ipv4', '-m conntrack -j ACCEPT'],
    ['ipv4', '-p icmp -m icmp'],
    ['ipv6', '-p ipv6-icmp -m icmp6'],
    ['ipv4', '-p tcp -m multiport'],
    ['ipv4', '-m mark'],
    ['ipv4', '-p tcp -m tcp --tcp-option 3 ! --tcp-flags NONE NONE'],
    ['ipv4', '-p tcp -m tcp --tcp-option 0'],
    ['ipv4', '-m string --algo bm --string toString'],
    ['ipv4', '-m string --algo bm --string constructor -j DROP'],
  ])('%s %s', (family, text) => {
    const rule = parseRuleArgs(argvWords(text.split(' ')), family, { mode: 'save' });
    expect(ruleText(rule)).toBe(text);
    expect(rule.matches.some((m) => 'raw' in m)).toBe(true);
  });
});
