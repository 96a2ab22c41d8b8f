/**
 * Every typed match of the codec and every rule-level field, with and without
 * `!`: matched (yes), not matched (no), and undecidable from the packet
 * (maybe). Each case is one counters-only rule; the answer is its first step.
 */
import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { input, run, tcpSyn } from './helpers.js';

const v6syn = {
  ...tcpSyn,
  family: 'ipv6',
  source: '2001:db8:1::7',
  destination: '2001:db8::1',
  ttl: undefined,
  hopLimit: 64,
  length: 80,
};

function matched(rule: string, packet: Record<string, unknown> = {}, family: Family = 'ipv4'): string {
  const base = family === 'ipv4' ? tcpSyn : v6syn;
  const chain = typeof packet.hook === 'string' ? packet.hook : 'INPUT';
  const r = run(input([`-A ${chain} ${rule}`], { family }), { ...base, ...packet });
  const step = r.outcomes[0]?.path[0];
  return step?.kind === 'rule' ? step.matched : 'none';
}

type Case = readonly [rule: string, packet: Record<string, unknown>, expected: 'yes' | 'no' | 'maybe'];

function table(cases: readonly Case[], family: Family = 'ipv4') {
  for (const [rule, packet, expected] of cases) {
    it(`${rule} ${JSON.stringify(packet)} -> ${expected}`, () => {
      expect(matched(rule, packet, family)).toBe(expected);
    });
  }
}

describe('rule-level fields', () => {
  table([
    ['-s 198.51.100.0/24', {}, 'yes'],
    ['-s 198.51.100.0/25', { source: '198.51.100.200' }, 'no'],
    ['! -s 198.51.100.0/25', { source: '198.51.100.200' }, 'yes'],
    ['-s 198.51.100.0/24', { source: undefined }, 'maybe'],
    ['-d 192.0.2.1/32', {}, 'yes'],
    ['! -d 192.0.2.1/32', {}, 'no'],
    ['-i eth0', {}, 'yes'],
    ['-i eth+', {}, 'yes'],
    ['-i et+', { inInterface: 'wlan0' }, 'no'],
    ['! -i eth+', { inInterface: 'wlan0' }, 'yes'],
    ['-i eth1', { inInterface: undefined }, 'maybe'],
    ['-o eth0', {}, 'no'],
    ['! -o eth0', {}, 'yes'],
    ['-p tcp', {}, 'yes'],
    ['-p 6', {}, 'yes'],
    ['-p udp', {}, 'no'],
    ['! -p udp', {}, 'yes'],
    [
      '-p tcp',
      { protocol: undefined, sourcePort: undefined, destinationPort: undefined, tcpFlags: undefined },
      'maybe',
    ],
    [
      '-p 47',
      { protocol: 47, sourcePort: undefined, destinationPort: undefined, tcpFlags: undefined },
      'yes',
    ],
    ['-f', {}, 'no'],
    ['-f', { fragment: true }, 'yes'],
    ['! -f', { fragment: true }, 'no'],
  ]);
  table(
    [
      ['-s 2001:db8:1::/48', {}, 'yes'],
      ['-s 2001:db8:2::/48', {}, 'no'],
      ['! -s 2001:db8:2::/48', {}, 'yes'],
      ['-d 2001:db8::1/128', {}, 'yes'],
      [
        '-p ipv6-icmp',
        { protocol: 'ipv6-icmp', sourcePort: undefined, destinationPort: undefined, tcpFlags: undefined },
        'yes',
      ],
    ],
    'ipv6',
  );
});

describe('tcp, udp, multiport', () => {
  table([
    ['-p tcp -m tcp --dport 22', {}, 'yes'],
    ['-p tcp -m tcp --dport 20:21', {}, 'no'],
    ['-p tcp -m tcp ! --dport 23', {}, 'yes'],
    ['-p tcp -m tcp --sport 1024:65535', {}, 'yes'],
    ['-p tcp -m tcp ! --sport 1024:65535', {}, 'no'],
    ['-p tcp -m tcp --dport 22', { destinationPort: undefined }, 'maybe'],
    ['-p tcp -m tcp --dport 22', { fragment: true }, 'no'],
    ['-p tcp -m tcp ! --dport 23', { fragment: true }, 'no'],
    ['-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN', {}, 'yes'],
    ['-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN', { tcpFlags: ['SYN', 'ACK'] }, 'no'],
    ['-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN', { tcpFlags: ['SYN', 'ACK'] }, 'yes'],
    ['-p tcp -m tcp --tcp-flags SYN,ACK SYN', { tcpFlags: undefined }, 'maybe'],
    ['-p tcp -m tcp --tcp-option 2', { tcpOptions: [2, 4, 8] }, 'yes'],
    ['-p tcp -m tcp ! --tcp-option 2', { tcpOptions: [2] }, 'no'],
    ['-p tcp -m tcp --tcp-option 2', {}, 'maybe'],
    ['-p udp -m udp --dport 53', { protocol: 'udp', destinationPort: 53, tcpFlags: undefined }, 'yes'],
    ['-p udp -m udp ! --sport 53', { protocol: 'udp', sourcePort: 53, tcpFlags: undefined }, 'no'],
    ['-p tcp -m multiport --dports 80,22,443', {}, 'yes'],
    ['-p tcp -m multiport --dports 1000:2000,3000', {}, 'no'],
    ['-p tcp -m multiport ! --dports 1000:2000,3000', {}, 'yes'],
    ['-p tcp -m multiport --sports 40000', {}, 'yes'],
    ['-p tcp -m multiport --ports 40000,9', {}, 'yes'],
    ['-p tcp -m multiport --ports 22', { sourcePort: undefined }, 'yes'],
    ['-p tcp -m multiport --ports 23', { sourcePort: undefined }, 'maybe'],
    ['-p tcp -m multiport ! --ports 7,9', {}, 'yes'],
  ]);
});

describe('icmp and icmp6', () => {
  const ping = {
    protocol: 'icmp',
    sourcePort: undefined,
    destinationPort: undefined,
    tcpFlags: undefined,
    icmpType: 8,
    icmpCode: 0,
  };
  table([
    ['-p icmp -m icmp --icmp-type 8', ping, 'yes'],
    ['-p icmp -m icmp --icmp-type echo-request', ping, 'yes'],
    ['-p icmp -m icmp --icmp-type 8/1', ping, 'no'],
    ['-p icmp -m icmp ! --icmp-type 0', ping, 'yes'],
    ['-p icmp -m icmp --icmp-type any', ping, 'yes'],
    ['-p icmp -m icmp ! --icmp-type any', ping, 'no'],
    ['-p icmp -m icmp --icmp-type 3/3', { ...ping, icmpType: 3, icmpCode: 3 }, 'yes'],
    ['-p icmp -m icmp --icmp-type 3', { ...ping, icmpType: 3, icmpCode: 13 }, 'yes'],
    ['-p icmp -m icmp --icmp-type 3/3', { ...ping, icmpType: 3, icmpCode: undefined }, 'maybe'],
    ['-p icmp -m icmp --icmp-type 8', { ...ping, icmpType: undefined, icmpCode: undefined }, 'maybe'],
    ['-p icmp -m icmp --icmp-type 8', { ...ping, fragment: true }, 'no'],
  ]);
  const ping6 = {
    protocol: 'ipv6-icmp',
    sourcePort: undefined,
    destinationPort: undefined,
    tcpFlags: undefined,
    icmpType: 135,
    icmpCode: 0,
  };
  table(
    [
      ['-p ipv6-icmp -m icmp6 --icmpv6-type 135', ping6, 'yes'],
      ['-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation', ping6, 'yes'],
      ['-p ipv6-icmp -m icmp6 ! --icmpv6-type 135', ping6, 'no'],
      ['-p ipv6-icmp -m icmp6 --icmpv6-type 1/4', { ...ping6, icmpType: 1, icmpCode: 3 }, 'no'],
      ['-p ipv6-icmp -m icmp6 --icmpv6-type 255', { ...ping6, icmpType: 1 }, 'no'],
    ],
    'ipv6',
  );
});

describe('state and conntrack', () => {
  table([
    ['-m state --state NEW', {}, 'yes'],
    ['-m state --state RELATED,ESTABLISHED', {}, 'no'],
    ['-m state ! --state RELATED,ESTABLISHED', {}, 'yes'],
    ['-m state --state NEW', { ctState: undefined }, 'maybe'],
    ['-m state --state INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED', { ctState: undefined }, 'yes'],
    ['-m conntrack --ctstate NEW', {}, 'yes'],
    ['-m conntrack ! --ctstate NEW', {}, 'no'],
    ['-m conntrack --ctstate DNAT', {}, 'no'],
    ['-m conntrack --ctstate DNAT', { ctNat: ['DNAT'] }, 'yes'],
    ['-m conntrack --ctstate DNAT', { ctState: 'ESTABLISHED' }, 'maybe'],
    ['-m conntrack --ctstate ESTABLISHED', { ctState: 'ESTABLISHED' }, 'yes'],
    ['-m conntrack --ctstate SNAT', { ctState: 'INVALID' }, 'no'],
    ['-m conntrack --ctstatus CONFIRMED', {}, 'no'],
    ['-m conntrack --ctstatus NONE', { ctState: 'ESTABLISHED', ctStatus: ['SEEN_REPLY'] }, 'no'],
    ['-m conntrack ! --ctstatus NONE', { ctState: 'ESTABLISHED', ctStatus: ['SEEN_REPLY'] }, 'yes'],
    ['-m conntrack --ctstatus ASSURED', { ctState: 'ESTABLISHED' }, 'maybe'],
    [
      '-m conntrack --ctstatus ASSURED',
      { ctState: 'ESTABLISHED', ctStatus: ['SEEN_REPLY', 'ASSURED'] },
      'yes',
    ],
    ['-m conntrack --ctdir ORIGINAL', {}, 'yes'],
    ['-m conntrack --ctdir REPLY', {}, 'no'],
    ['-m conntrack --ctdir REPLY', { ctState: 'ESTABLISHED' }, 'maybe'],
    ['-m conntrack --ctdir REPLY', { ctState: 'ESTABLISHED', ctDirection: 'REPLY' }, 'yes'],
    ['-m conntrack --ctdir ORIGINAL', { ctState: 'UNTRACKED' }, 'no'],
    ['-m conntrack --ctproto 6', {}, 'yes'],
    ['-m conntrack ! --ctproto 6', {}, 'no'],
    ['-m conntrack --ctorigsrc 198.51.100.0/24 --ctorigdstport 22', {}, 'yes'],
    ['-m conntrack --ctreplsrc 192.0.2.1', {}, 'yes'],
    [
      '-m conntrack --ctrepldst 198.51.100.7 --ctreplsrcport 22',
      { ctState: 'ESTABLISHED', ctDirection: 'ORIGINAL', ctNat: [] },
      'yes',
    ],
    [
      '-m conntrack --ctorigsrc 192.0.2.1',
      { ctState: 'ESTABLISHED', ctDirection: 'REPLY', ctNat: [] },
      'yes',
    ],
    ['-m conntrack --ctorigsrc 198.51.100.7', { ctState: 'ESTABLISHED', ctNat: [] }, 'maybe'],
    ['-m conntrack --ctorigsrc 198.51.100.7', { ctNat: ['DNAT'] }, 'maybe'],
    ['-m conntrack --ctexpire 10:100', { ctState: 'ESTABLISHED' }, 'maybe'],
    ['-m conntrack --ctstate NEW --ctexpire 10:100', { ctState: 'INVALID' }, 'no'],
    ['-m conntrack --ctstate INVALID --ctexpire 10:100', { ctState: 'INVALID' }, 'yes'],
  ]);
});

describe('mark and connmark', () => {
  table([
    ['-m mark --mark 0x0', {}, 'yes'],
    ['-m mark --mark 0x1', { mark: 1 }, 'yes'],
    ['-m mark --mark 0x1/0x1', { mark: '0x3' }, 'yes'],
    ['-m mark ! --mark 0x1/0x1', { mark: 3 }, 'no'],
    ['-m mark --mark 0x2', { mark: 1 }, 'no'],
    ['-m connmark --mark 0x0', {}, 'yes'],
    ['-m connmark --mark 0x4', { ctState: 'ESTABLISHED' }, 'maybe'],
    ['-m connmark --mark 0x4', { ctState: 'ESTABLISHED', connmark: 4 }, 'yes'],
    ['-m connmark ! --mark 0x4', { ctState: 'ESTABLISHED', connmark: 4 }, 'no'],
    ['-m connmark ! --mark 0x4', { ctState: 'INVALID' }, 'no'],
  ]);
});

describe('iprange, length, ttl, hl, pkttype, mac', () => {
  table([
    ['-m iprange --src-range 198.51.100.1-198.51.100.9', {}, 'yes'],
    ['-m iprange --src-range 198.51.100.8-198.51.100.9', {}, 'no'],
    ['-m iprange ! --src-range 198.51.100.8-198.51.100.9', {}, 'yes'],
    ['-m iprange --dst-range 192.0.2.0-192.0.2.1', {}, 'yes'],
    ['-m iprange --dst-range 192.0.2.0-192.0.2.1', { destination: undefined }, 'maybe'],
    ['-m length --length 60', {}, 'yes'],
    ['-m length --length 0:59', {}, 'no'],
    ['-m length ! --length 0:59', {}, 'yes'],
    ['-m length --length 100:200', { length: undefined }, 'maybe'],
    ['-m ttl --ttl-eq 64', {}, 'yes'],
    ['-m ttl ! --ttl-eq 64', {}, 'no'],
    ['-m ttl --ttl-gt 63', {}, 'yes'],
    ['-m ttl --ttl-lt 64', {}, 'no'],
    ['-m ttl --ttl-lt 64', { ttl: undefined }, 'maybe'],
    ['-m pkttype --pkt-type unicast', { pktType: 'unicast' }, 'yes'],
    ['-m pkttype ! --pkt-type broadcast', { pktType: 'broadcast' }, 'no'],
    ['-m pkttype --pkt-type multicast', {}, 'maybe'],
    ['-m mac --mac-source 02:00:00:00:00:01', { sourceMac: '2:0:0:0:0:1' }, 'yes'],
    ['-m mac ! --mac-source 02:00:00:00:00:01', { sourceMac: '02:00:00:00:00:01' }, 'no'],
    ['-m mac --mac-source 02:00:00:00:00:01', {}, 'maybe'],
  ]);
  table(
    [
      ['-m hl --hl-eq 64', {}, 'yes'],
      ['-m hl --hl-gt 64', {}, 'no'],
      ['-m hl ! --hl-eq 1', {}, 'yes'],
    ],
    'ipv6',
  );
});

describe('addrtype', () => {
  table([
    ['-m addrtype --dst-type LOCAL', { destinationAddressType: ['LOCAL'] }, 'yes'],
    ['-m addrtype --dst-type LOCAL', { localAddresses: ['192.0.2.1'] }, 'yes'],
    ['-m addrtype ! --dst-type LOCAL', { localAddresses: ['192.0.2.1'] }, 'no'],
    ['-m addrtype --dst-type LOCAL', { localAddresses: ['192.0.2.2'] }, 'no'],
    ['-m addrtype --dst-type UNICAST', { localAddresses: ['192.0.2.1'] }, 'no'],
    ['-m addrtype --dst-type UNICAST', { localAddresses: ['192.0.2.2'] }, 'maybe'],
    ['-m addrtype --dst-type LOCAL', {}, 'maybe'],
    ['-m addrtype --dst-type MULTICAST', { destination: '224.0.0.251' }, 'yes'],
    ['-m addrtype --dst-type BROADCAST', { destination: '255.255.255.255' }, 'yes'],
    ['-m addrtype --src-type UNICAST', { sourceAddressType: ['UNICAST'] }, 'yes'],
    ['-m addrtype --src-type UNICAST,LOCAL', { sourceAddressType: ['BROADCAST'] }, 'no'],
    ['-m addrtype --dst-type LOCAL --limit-iface-in', { localAddresses: ['192.0.2.1'] }, 'maybe'],
  ]);
  table(
    [
      ['-m addrtype --dst-type MULTICAST', { destination: 'ff02::1' }, 'yes'],
      ['-m addrtype --dst-type UNICAST', { destination: 'ff02::1' }, 'no'],
      ['-m addrtype --dst-type UNICAST,LOCAL', { localAddresses: ['2001:db8::1'] }, 'yes'],
      ['-m addrtype --dst-type UNICAST,LOCAL', { localAddresses: ['2001:db8::2'] }, 'no'],
      ['-m addrtype --dst-type LOCAL,ANYCAST', { localAddresses: ['2001:db8::2'] }, 'maybe'],
    ],
    'ipv6',
  );
});

describe('physdev', () => {
  table([
    ['-m physdev --physdev-in veth0', { bridged: false }, 'no'],
    ['-m physdev ! --physdev-in veth0', { bridged: false }, 'yes'],
    ['-m physdev --physdev-is-bridged', { bridged: false }, 'no'],
    ['-m physdev --physdev-in veth0', { physdevIn: 'veth0' }, 'yes'],
    ['-m physdev --physdev-in veth+', { physdevIn: 'veth3' }, 'yes'],
    ['-m physdev ! --physdev-in veth0', { physdevIn: 'veth0' }, 'no'],
    ['-m physdev --physdev-out veth0', { physdevIn: 'veth0' }, 'no'],
    ['-m physdev ! --physdev-out veth0', { physdevIn: 'veth0' }, 'no'],
    ['-m physdev --physdev-is-in', { physdevIn: 'veth0' }, 'yes'],
    ['-m physdev --physdev-in veth0', {}, 'maybe'],
  ]);
});

describe('set, owner, limit, hashlimit, comment, untyped', () => {
  table([
    ['-m set --match-set ban src', { ipsets: { ban: ['198.51.100.0/24'] } }, 'yes'],
    ['-m set --match-set ban src', { ipsets: { ban: ['198.51.100.8'] } }, 'no'],
    ['-m set ! --match-set ban src', { ipsets: { ban: ['198.51.100.8'] } }, 'yes'],
    ['-m set --match-set ban dst', { ipsets: { ban: ['192.0.2.1'] } }, 'yes'],
    ['-m set --match-set ban src', {}, 'maybe'],
    ['-m set --match-set ban src,dst', { ipsets: { ban: ['198.51.100.7'] } }, 'maybe'],
    ['-m set --match-set ban src --packets-gt 5', { ipsets: { ban: ['198.51.100.7'] } }, 'maybe'],
    ['-m owner --uid-owner 1000', {}, 'maybe'],
    ['-m limit --limit 5/min', {}, 'maybe'],
    ['-m hashlimit --hashlimit-upto 5/sec --hashlimit-name h1', {}, 'maybe'],
    ['-m comment --comment "just a note"', {}, 'yes'],
    ['-m statistic --mode random --probability 0.5', {}, 'maybe'],
    ['-m connlimit --connlimit-above 3', {}, 'maybe'],
  ]);
  const out = { hook: 'OUTPUT', inInterface: undefined, outInterface: 'eth0' };
  table([
    ['-m owner --uid-owner 1000', { ...out, uid: 1000, gid: 100 }, 'yes'],
    ['-m owner --uid-owner 1000-1999', { ...out, uid: 999 }, 'no'],
    ['-m owner ! --uid-owner 1000', { ...out, uid: 999 }, 'yes'],
    ['-m owner --gid-owner 50', { ...out, uid: 1, gid: 100 }, 'no'],
    ['-m owner --gid-owner 50 --suppl-groups', { ...out, uid: 1, gid: 100, supplementaryGids: [50] }, 'yes'],
    ['-m owner --gid-owner 50 --suppl-groups', { ...out, uid: 1, gid: 100 }, 'maybe'],
    ['-m owner --socket-exists', { ...out, socketExists: true }, 'yes'],
    ['-m owner ! --socket-exists', { ...out, socketExists: true }, 'no'],
    ['-m owner --uid-owner 0', { ...out, socketExists: false }, 'no'],
    ['-m owner ! --uid-owner 0', { ...out, socketExists: false }, 'yes'],
    ['-m owner --uid-owner 0', out, 'maybe'],
  ]);
});

describe('recent', () => {
  const recent = (hits: number[]) => ({ recent: { SSH: [{ address: '198.51.100.7', hits }] } });
  table([
    ['-m recent --set --name SSH', {}, 'yes'],
    ['-m recent ! --set --name SSH', {}, 'no'],
    ['-m recent --rcheck --name SSH', recent([10]), 'yes'],
    ['-m recent --rcheck --name SSH', { recent: { SSH: [] } }, 'no'],
    ['-m recent ! --rcheck --name SSH', { recent: { SSH: [] } }, 'yes'],
    ['-m recent --rcheck --seconds 60 --name SSH', recent([61]), 'no'],
    ['-m recent --rcheck --seconds 60 --hitcount 2 --name SSH', recent([1, 59, 61]), 'yes'],
    ['-m recent --rcheck --seconds 60 --hitcount 3 --name SSH', recent([1, 59, 61]), 'no'],
    ['-m recent --update --seconds 60 --name SSH', {}, 'maybe'],
    [
      '-m recent --rcheck --name SSH --rdest',
      { recent: { SSH: [{ address: '192.0.2.1', hits: [3] }] } },
      'yes',
    ],
    [
      '-m recent --rcheck --name SSH --mask 255.255.255.0',
      { recent: { SSH: [{ address: '198.51.100.0', hits: [3] }] } },
      'yes',
    ],
    ['-m recent --remove --name SSH', recent([3]), 'yes'],
    ['-m recent --rcheck --rttl --name SSH', recent([3]), 'maybe'],
  ]);
});
