/**
 * ICMP and ICMPv6 types for the icmp and icmp6 matches: the type names iptables
 * accepts and the canonical `type[/code]` numbers iptables-save prints for them.
 * Declarative tables, kept out of matches.ts so that the match catalogue reads as
 * a list of matches.
 */
import { preview } from '../address.js';
import { invalid } from '../errors.js';
import { checkUint } from '../validate.js';
import { kind, lookup, type ValueKind } from './kinds.js';

/** ICMP and ICMPv6 type names iptables accepts, mapped to the numbers iptables-save prints. */
export const ICMP_TYPES: Readonly<Record<string, string>> = {
  'echo-reply': '0',
  pong: '0',
  'destination-unreachable': '3',
  'network-unreachable': '3/0',
  'host-unreachable': '3/1',
  'protocol-unreachable': '3/2',
  'port-unreachable': '3/3',
  'fragmentation-needed': '3/4',
  'source-route-failed': '3/5',
  'network-unknown': '3/6',
  'host-unknown': '3/7',
  'network-prohibited': '3/9',
  'host-prohibited': '3/10',
  'TOS-network-unreachable': '3/11',
  'TOS-host-unreachable': '3/12',
  'communication-prohibited': '3/13',
  'host-precedence-violation': '3/14',
  'precedence-cutoff': '3/15',
  'source-quench': '4',
  redirect: '5',
  'network-redirect': '5/0',
  'host-redirect': '5/1',
  'TOS-network-redirect': '5/2',
  'TOS-host-redirect': '5/3',
  'echo-request': '8',
  ping: '8',
  'router-advertisement': '9',
  'router-solicitation': '10',
  'time-exceeded': '11',
  'ttl-exceeded': '11',
  'ttl-zero-during-transit': '11/0',
  'ttl-zero-during-reassembly': '11/1',
  'parameter-problem': '12',
  'ip-header-bad': '12/0',
  'required-option-missing': '12/1',
  'timestamp-request': '13',
  'timestamp-reply': '14',
  'address-mask-request': '17',
  'address-mask-reply': '18',
};
export const ICMP6_TYPES: Readonly<Record<string, string>> = {
  'destination-unreachable': '1',
  'no-route': '1/0',
  'communication-prohibited': '1/1',
  'beyond-scope': '1/2',
  'address-unreachable': '1/3',
  'port-unreachable': '1/4',
  'failed-policy': '1/5',
  'reject-route': '1/6',
  'packet-too-big': '2',
  'time-exceeded': '3',
  'ttl-exceeded': '3',
  'ttl-zero-during-transit': '3/0',
  'ttl-zero-during-reassembly': '3/1',
  'parameter-problem': '4',
  'bad-header': '4/0',
  'unknown-header-type': '4/1',
  'unknown-option': '4/2',
  'echo-request': '128',
  ping: '128',
  'echo-reply': '129',
  pong: '129',
  'router-solicitation': '133',
  'router-advertisement': '134',
  'neighbour-solicitation': '135',
  'neighbor-solicitation': '135',
  'neighbour-advertisement': '136',
  'neighbor-advertisement': '136',
  redirect: '137',
};
/**
 * An ICMP type[/code] as iptables-save prints it: a number. For IPv4, type 255
 * means "any type" to the kernel and is printed as `any`, whatever the code.
 */
export const icmpType = (names: Readonly<Record<string, string>>, anyWord: boolean): ValueKind<string> =>
  kind(
    (input, ctx) => {
      const t = typeof input === 'number' ? String(input) : input;
      if (typeof t !== 'string')
        throw invalid(ctx.field, `${ctx.field} must be an ICMP type name or number like 8 or 3/1`);
      if (anyWord && t === 'any') return 'any';
      const named =
        lookup(names, t) ?? Object.entries(names).find(([k]) => k.toLowerCase() === t.toLowerCase())?.[1];
      if (named) return named;
      const m = /^(\d{1,3})(?:\/(\d{1,3}))?$/.exec(t);
      if (!m)
        throw invalid(
          ctx.field,
          `${ctx.field} "${preview(t)}" is not an ICMP type name or number like 8 or 3/1`,
        );
      const type = checkUint(m[1], ctx.field, 0, 255);
      const code = m[2] === undefined ? undefined : checkUint(m[2], ctx.field, 0, 255);
      if (anyWord && type === 255) return 'any';
      return code === undefined ? String(type) : `${type}/${code}`;
    },
    (v) => v,
  );
