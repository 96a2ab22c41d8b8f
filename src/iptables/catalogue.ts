/**
 * The extension catalogue of the iptables we speak: iptables 1.8.9. Everything that
 * depends on which iptables release is installed lives here, and only here: the target
 * and match extensions it ships per family, and what follows from them — the names no
 * user chain can take.
 *
 * Why a module of its own: the rule model (src/domain) must not change when the iptables
 * version does, and the codec, the fake executor and the simulator's lint must all agree
 * on one list. Speaking another release means editing this file and nothing else.
 *
 * How the domain gets what it needs without depending on this module: the domain owns
 * the checks that need reserved names (`checkUnreservedChainName`, `normalizeRuleWith`)
 * and takes the names as an argument; this module binds them to iptables 1.8.9 under the
 * names every caller uses (`checkUserChainName`, `normalizeRule`). The domain stays pure
 * (it imports nothing from src/iptables), and no caller can forget to pass the names.
 * (Protocol names are not here: they come from the system's /etc/protocols, not from
 * iptables, and the domain owns them in src/domain/protocol.ts.)
 *
 * Who may touch it: nobody at run time — plain frozen data and pure functions.
 */
import type { Family } from '../domain/family.js';
import type { Rule } from '../domain/model.js';
import { normalizeRuleWith } from '../domain/rule.js';
import { checkUnreservedChainName, type ReservedChainNames } from '../domain/validate.js';

/** Target extensions iptables 1.8.9 ships for both families (libxt_*), verdicts included. */
const COMMON_TARGETS = [
  'ACCEPT',
  'DROP',
  'RETURN',
  'QUEUE',
  'AUDIT',
  'CHECKSUM',
  'CLASSIFY',
  'CONNMARK',
  'CONNSECMARK',
  'CT',
  'DNAT',
  'DSCP',
  'HMARK',
  'IDLETIMER',
  'LED',
  'LOG',
  'MARK',
  'MASQUERADE',
  'NETMAP',
  'NFLOG',
  'NFQUEUE',
  'NOTRACK',
  'RATEEST',
  'REDIRECT',
  'REJECT',
  'SECMARK',
  'SET',
  'SNAT',
  'SYNPROXY',
  'TCPMSS',
  'TCPOPTSTRIP',
  'TEE',
  'TOS',
  'TPROXY',
  'TRACE',
] as const;

/** Target extensions iptables 1.8.9 ships per family (libxt_*, libipt_* / libip6t_*). */
export const TARGET_EXTENSIONS: Readonly<Record<Family, readonly string[]>> = {
  ipv4: [...COMMON_TARGETS, 'CLUSTERIP', 'ECN', 'TTL', 'ULOG'],
  ipv6: [...COMMON_TARGETS, 'DNPT', 'SNPT', 'HL'],
};

/** Match extensions iptables 1.8.9 ships for both families (libxt_*). */
const COMMON_MATCHES = [
  'addrtype',
  'bpf',
  'cgroup',
  'cluster',
  'comment',
  'connbytes',
  'connlabel',
  'connlimit',
  'connmark',
  'conntrack',
  'cpu',
  'dccp',
  'devgroup',
  'dscp',
  'ecn',
  'esp',
  'hashlimit',
  'helper',
  'ipcomp',
  'iprange',
  'ipvs',
  'length',
  'limit',
  'mac',
  'mark',
  'multiport',
  'nfacct',
  'osf',
  'owner',
  'physdev',
  'pkttype',
  'policy',
  'quota',
  'rateest',
  'recent',
  'rpfilter',
  'sctp',
  'set',
  'socket',
  'state',
  'statistic',
  'string',
  'tcp',
  'tcpmss',
  'time',
  'tos',
  'u32',
  'udp',
] as const;

/** Match extensions iptables 1.8.9 ships per family (libxt_*, libipt_* / libip6t_*). */
export const MATCH_EXTENSIONS: Readonly<Record<Family, readonly string[]>> = {
  ipv4: [...COMMON_MATCHES, 'ah', 'icmp', 'realm', 'ttl'],
  ipv6: [
    ...COMMON_MATCHES,
    'ah',
    'dst',
    'eui64',
    'frag',
    'hbh',
    'hl',
    'icmp6',
    'ipv6header',
    'mh',
    'rt',
    'srh',
  ],
};

const setsOf = (lists: Readonly<Record<Family, readonly string[]>>): Record<Family, ReadonlySet<string>> => ({
  ipv4: new Set(lists.ipv4),
  ipv6: new Set(lists.ipv6),
});
const TARGET_SETS = setsOf(TARGET_EXTENSIONS);
const MATCH_SETS = setsOf(MATCH_EXTENSIONS);

/** Whether iptables 1.8.9 ships target extension `name` for `family` (verdicts included). */
export function isTargetExtension(family: Family, name: string): boolean {
  return TARGET_SETS[family].has(name);
}

/** Whether iptables 1.8.9 ships match extension `name` for `family`. */
export function isMatchExtension(family: Family, name: string): boolean {
  return MATCH_SETS[family].has(name);
}

/**
 * Names no user chain may take: the verdicts, and every target extension
 * iptables 1.8.9 ships (`iptables -N LOG` fails with "chain name may not clash
 * with target name"; a jump to such a chain would read back as the target).
 */
export const RESERVED_CHAIN_NAMES: ReservedChainNames = new Set([
  'standard',
  ...TARGET_EXTENSIONS.ipv4,
  ...TARGET_EXTENSIONS.ipv6,
]);

/** A name for a new user chain: a valid chain name that is not a verdict or target name. */
export function checkUserChainName(value: unknown, field = 'chain'): string {
  return checkUnreservedChainName(value, RESERVED_CHAIN_NAMES, field);
}

/**
 * Validates a typed rule (as JSON) for `family` and returns its canonical model;
 * a jump to a verdict or target name is that target (see normalizeRuleWith).
 */
export function normalizeRule(input: unknown, family: Family, field = 'rule'): Rule {
  return normalizeRuleWith(RESERVED_CHAIN_NAMES, input, family, field);
}
