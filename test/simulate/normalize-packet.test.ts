/**
 * normalizePacket is the door for untrusted JSON: every hostile or
 * inconsistent input is an `invalid_argument` naming the field, with a short
 * one-line message.
 */
import { describe, expect, it } from 'vitest';
import { normalizePacket, PACKET_LIMITS } from '../../src/simulate/index.js';
import { invalidArgument } from '../helpers/errors.js';
import { tcpSyn } from './helpers.js';

const refused = (input: unknown, field: string, message?: RegExp) => {
  const e = invalidArgument(() => normalizePacket(input));
  expect(e.field).toBe(field);
  if (message) expect(e.message).toMatch(message);
};

describe('normalizePacket', () => {
  it('canonicalises a valid packet', () => {
    const p = normalizePacket({
      ...tcpSyn,
      source: '198.51.100.07'.replace('.07', '.7'),
      protocol: 'TCP',
      tcpFlags: ['ack', 'SYN'],
      mark: '0x10',
      sourceMac: '2:0:0:A:b:1',
      ipsets: { ban: ['198.51.100.9/24'] },
      recent: { SSH: [{ address: '198.51.100.7', hits: [1, 2.5] }] },
    });
    expect(p).toMatchObject({
      family: 'ipv4',
      protocol: 6,
      tcpFlags: ['SYN', 'ACK'],
      mark: 16,
      sourceMac: '02:00:00:0a:0b:01',
      fragment: false,
    });
    expect(p.ipsets?.get('ban')).toEqual(['198.51.100.0/24']);
    expect(normalizePacket({ family: 'ipv6', hook: 'INPUT', source: '2001:DB8:0::1' }).source).toBe(
      '2001:db8::1',
    );
    expect(
      normalizePacket({ family: 'ipv4', hook: 'INPUT', protocol: 'icmp', icmpType: 'port-unreachable' }),
    ).toMatchObject({ icmpType: 3, icmpCode: 3 });
  });

  it('refuses what is not a packet object', () => {
    for (const v of [null, 'x', 42, [tcpSyn], undefined]) refused(v, 'packet');
  });

  it('refuses unknown fields, including prototype keys', () => {
    refused({ ...tcpSyn, sport: 1 }, 'sport', /no field "sport"/);
    refused(JSON.parse('{"family":"ipv4","hook":"INPUT","__proto__":{"x":1}}'), '__proto__');
    refused({ ...tcpSyn, constructor: 1 }, 'constructor');
  });

  it('refuses wrong types', () => {
    refused({ ...tcpSyn, family: 4 }, 'family');
    refused({ ...tcpSyn, hook: 'input' }, 'hook', /PREROUTING, INPUT/);
    refused({ ...tcpSyn, sourcePort: '22x' }, 'sourcePort');
    refused({ ...tcpSyn, destinationPort: 22.5 }, 'destinationPort');
    refused({ ...tcpSyn, fragment: 'yes' }, 'fragment');
    refused({ ...tcpSyn, tcpFlags: 'SYN' }, 'tcpFlags');
    refused({ ...tcpSyn, tcpFlags: ['SYN', 'SYN'] }, 'tcpFlags');
    refused({ ...tcpSyn, tcpFlags: ['XMAS'] }, 'tcpFlags[0]');
    refused({ ...tcpSyn, ctState: 'new' }, 'ctState');
    refused({ ...tcpSyn, mark: -1 }, 'mark');
    refused({ ...tcpSyn, mark: 2 ** 32 }, 'mark');
    refused({ ...tcpSyn, sourceMac: '02:00:00:00:00' }, 'sourceMac');
  });

  it('refuses out-of-range numbers', () => {
    refused({ ...tcpSyn, destinationPort: 65536 }, 'destinationPort', /0 to 65535/);
    refused({ ...tcpSyn, sourcePort: -1 }, 'sourcePort');
    refused({ ...tcpSyn, ttl: 256 }, 'ttl');
    refused({ ...tcpSyn, length: 70000 }, 'length');
    refused({ ...tcpSyn, length: 10 }, 'length');
    refused({ family: 'ipv4', hook: 'INPUT', protocol: 'icmp', icmpType: 300 }, 'icmpType');
    refused({ family: 'ipv4', hook: 'INPUT', protocol: 'icmp', icmpType: 3, icmpCode: 256 }, 'icmpCode');
    refused({ ...tcpSyn, protocol: 256 }, 'protocol');
    refused({ ...tcpSyn, protocol: 0 }, 'protocol');
  });

  it('refuses addresses of the wrong family and host names', () => {
    refused({ ...tcpSyn, source: '2001:db8::1' }, 'source', /not an IPv4 address/);
    refused(
      { ...tcpSyn, family: 'ipv6', ttl: undefined, destination: '2001:db8::1' },
      'source',
      /not an IPv6 address/,
    );
    refused({ ...tcpSyn, destination: 'example.com' }, 'destination');
    refused({ ...tcpSyn, ipsets: { ban: ['2001:db8::/32'] } }, 'ipsets.ban[0]');
    refused({ ...tcpSyn, localAddresses: ['::1'] }, 'localAddresses[0]');
    refused({ ...tcpSyn, recent: { SSH: [{ address: '::1', hits: [] }] } }, 'recent.SSH[0].address');
  });

  it('refuses huge strings with a short message', () => {
    const huge = 'A'.repeat(1_000_000);
    refused({ ...tcpSyn, source: huge }, 'source');
    refused({ ...tcpSyn, inInterface: huge }, 'inInterface');
    refused({ ...tcpSyn, protocol: huge }, 'protocol');
    refused({ ...tcpSyn, [huge]: 1 }, huge.slice(0, 40).concat('...'));
    refused({ ...tcpSyn, ipsets: { [huge]: [] } }, `ipsets["${'A'.repeat(40)}..."]`);
    refused({ family: 'ipv4', hook: 'INPUT', protocol: 'icmp', icmpType: huge }, 'icmpType');
  });

  it('refuses deep nesting at its first level', () => {
    let deep: unknown = '198.51.100.1';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    refused({ ...tcpSyn, ipsets: { ban: deep } }, 'ipsets.ban[0]');
    refused(
      { ...tcpSyn, recent: { SSH: [{ address: '198.51.100.1', hits: deep }] } },
      'recent.SSH[0].hits[0]',
    );
    refused(
      { ...tcpSyn, recent: { SSH: [{ address: '198.51.100.1', hits: [], more: deep }] } },
      'recent.SSH[0].more',
    );
    refused({ ...tcpSyn, source: { address: deep } }, 'source');
  });

  it('bounds lists and maps', () => {
    refused(
      {
        ...tcpSyn,
        ipsets: { big: Array.from({ length: PACKET_LIMITS.ipsetEntries + 1 }, () => '198.51.100.1') },
      },
      'ipsets.big',
    );
    refused(
      { ...tcpSyn, ipsets: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`s${i}`, []])) },
      'ipsets',
    );
    refused(
      { ...tcpSyn, recent: { SSH: [{ address: '198.51.100.1', hits: Array(256).fill(1) }] } },
      'recent.SSH[0].hits',
    );
    refused(
      { ...tcpSyn, recent: { SSH: [{ address: '198.51.100.1', hits: [-1] }] } },
      'recent.SSH[0].hits[0]',
    );
    refused(
      { ...tcpSyn, recent: { SSH: [{ address: '198.51.100.1', hits: [Number.NaN] }] } },
      'recent.SSH[0].hits[0]',
    );
    refused({ ...tcpSyn, ipsets: { 'bad name!': [] } }, 'ipsets["bad name!"]');
  });

  it('refuses fields that make no sense for the hook, family or protocol', () => {
    refused({ ...tcpSyn, outInterface: 'eth1' }, 'outInterface', /INPUT has no out interface/);
    refused({ ...tcpSyn, hook: 'OUTPUT' }, 'inInterface');
    refused({ ...tcpSyn, inInterface: 'eth+' }, 'inInterface', /not a pattern/);
    refused({ ...tcpSyn, protocol: 'udp' }, 'tcpFlags', /needs protocol tcp/);
    refused(
      { family: 'ipv4', hook: 'INPUT', protocol: 'icmp', destinationPort: 1 },
      'destinationPort',
      /needs protocol tcp, udp/,
    );
    refused({ family: 'ipv4', hook: 'INPUT', destinationPort: 1 }, 'destinationPort');
    refused(
      { family: 'ipv4', hook: 'INPUT', protocol: 'tcp', icmpType: 8 },
      'icmpType',
      /needs protocol icmp/,
    );
    refused({ family: 'ipv6', hook: 'INPUT', protocol: 'icmp', icmpType: 8 }, 'icmpType', /ipv6-icmp/);
    refused(
      { family: 'ipv4', hook: 'INPUT', protocol: 'icmp', icmpType: 'port-unreachable', icmpCode: 1 },
      'icmpCode',
    );
    refused({ ...tcpSyn, hopLimit: 64 }, 'hopLimit', /ipv6 field/);
    refused({ ...tcpSyn, uid: 0 }, 'uid', /OUTPUT, POSTROUTING/);
    refused({ family: 'ipv4', hook: 'OUTPUT', socketExists: false, uid: 0 }, 'uid');
    refused({ ...tcpSyn, ctState: 'INVALID', connmark: 1 }, 'connmark', /no connection/);
    refused({ ...tcpSyn, sourceAddressType: ['LOCAL', 'UNICAST'] }, 'sourceAddressType', /exactly one/);
    refused({ ...tcpSyn, bridged: false, physdevIn: 'veth0' }, 'physdevIn');
  });
});
