/**
 * The two seed articles (../shared/seeds) as the operations an operator sends: each rule as
 * the pasted iptables spec string (the article's typographic dashes `–dport` typed as the
 * `--dport` iptables reads) and as typed JSON, plus the canonical text iptables-save prints
 * back for each, per family.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonObject } from '@bufbuild/protobuf';
import type { Family, RuleInput, TxOp } from './clients.js';

export type RuleForm = 'spec' | 'typed';

export interface SeedRule {
  readonly chain: string;
  readonly spec: string;
  readonly typed: RuleInput;
}

const allOnes: Readonly<Record<Family, string>> = {
  ipv4: '255.255.255.255',
  ipv6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
};

const ssh22: JsonObject[] = [
  { module: 'tcp', dport: '22' },
  { module: 'state', state: ['NEW'] },
];

// ---------------------------------------------------------------- secure-server-with-iptables

export const LOG_AND_DROP = 'LOG_AND_DROP';

/** Rules of the SSH brute-force article, in the order they are added (after `-N LOG_AND_DROP`). */
export const SSH_LIMIT_RULES: readonly SeedRule[] = [
  {
    chain: 'INPUT',
    spec: '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --rsource',
    typed: {
      protocol: 'tcp',
      matches: [...ssh22, { module: 'recent', action: 'set', name: 'DEFAULT', side: 'rsource' }],
    },
  },
  {
    chain: 'INPUT',
    spec: '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --rsource -j LOG_AND_DROP',
    typed: {
      protocol: 'tcp',
      matches: [
        ...ssh22,
        { module: 'recent', action: 'update', seconds: 60, hitcount: 4, name: 'DEFAULT', side: 'rsource' },
      ],
      target: { jump: LOG_AND_DROP },
    },
  },
  {
    chain: 'INPUT',
    spec: '-p tcp -m tcp --dport 22 -j ACCEPT',
    typed: { protocol: 'tcp', matches: [{ module: 'tcp', dport: '22' }], target: { target: 'ACCEPT' } },
  },
  {
    chain: LOG_AND_DROP,
    spec: '-j LOG --log-prefix "iptables deny: " --log-level 7',
    typed: { matches: [], target: { target: 'LOG', prefix: 'iptables deny: ', level: 7 } },
  },
  {
    chain: LOG_AND_DROP,
    spec: '-j DROP',
    typed: { matches: [], target: { target: 'DROP' } },
  },
];

/** What iptables-save prints for each chain after the SSH-limiting rules. */
export function sshLimitListing(family: Family): Readonly<Record<string, readonly string[]>> {
  const mask = allOnes[family];
  return {
    INPUT: [
      `-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask ${mask} --rsource`,
      `-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask ${mask} --rsource -j LOG_AND_DROP`,
      '-p tcp -m tcp --dport 22 -j ACCEPT',
    ],
    [LOG_AND_DROP]: ['-j LOG --log-prefix "iptables deny: " --log-level 7', '-j DROP'],
  };
}

// ---------------------------------------------------------------- hardening-server-iptables

export const ALLOW_SSH: SeedRule = SSH_LIMIT_RULES[2] as SeedRule;

export const ALLOW_ESTABLISHED: SeedRule = {
  chain: 'INPUT',
  spec: '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
  typed: {
    matches: [{ module: 'conntrack', ctstate: ['ESTABLISHED', 'RELATED'] }],
    target: { target: 'ACCEPT' },
  },
};

/** INPUT after the hardening article: policy DROP, these rules (iptables-save orders the states). */
export const HARDENED_INPUT: readonly string[] = [
  '-p tcp -m tcp --dport 22 -j ACCEPT',
  '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
];

/**
 * ICMPv6 neighbour discovery (solicitation, advertisement): without it `ip6tables -P INPUT DROP`
 * drops every neighbour lookup, so no ipv6 packet arrives at all; the lockout guard refuses the
 * article's ipv6 variant until these are accepted, so the ipv6 hardening adds them first.
 */
export const ALLOW_ND: readonly SeedRule[] = (
  ['neighbour-solicitation', 'neighbour-advertisement'] as const
).map((type, i) => ({
  chain: 'INPUT',
  spec: `-p ipv6-icmp -m icmp6 --icmpv6-type ${135 + i} -j ACCEPT`,
  typed: {
    protocol: 'ipv6-icmp',
    matches: [{ module: 'icmp6', icmpv6Type: type }],
    target: { target: 'ACCEPT' },
  },
}));

/** The ND rules as the kernel prints them. */
export const ND_INPUT: readonly string[] = [
  '-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT',
  '-p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT',
];

/** INPUT after the hardening article in `family` (ipv6: neighbour discovery first). */
export function hardenedInput(family: Family): readonly string[] {
  return family === 'ipv6' ? [...ND_INPUT, ...HARDENED_INPUT] : HARDENED_INPUT;
}

/** The hardening fixture of `family`, with the ND accepts first in INPUT for ipv6. */
export function hardenedFixture(family: Family): string {
  const save = fixture('hardening', family);
  if (family !== 'ipv6') return save;
  const lines = save.split('\n');
  const first = lines.findIndex((l) => l.startsWith('-A INPUT '));
  lines.splice(first, 0, ...ND_INPUT.map((r) => `-A INPUT ${r}`));
  return lines.join('\n');
}

export function rule(seed: SeedRule, form: RuleForm): RuleInput {
  return form === 'spec' ? { spec: seed.spec } : seed.typed;
}

/** The hardening article as one transaction (ipv6: allow ND; allow 22, policy DROP, allow ESTABLISHED,RELATED). */
export function hardeningOps(family: Family, form: RuleForm): TxOp[] {
  return [
    ...(family === 'ipv6' ? ALLOW_ND : []).map(
      (nd): TxOp => ({ op: 'append', family, chain: 'INPUT', rule: rule(nd, form) }),
    ),
    { op: 'append', family, chain: 'INPUT', rule: rule(ALLOW_SSH, form) },
    { op: 'setPolicy', family, chain: 'INPUT', policy: 'DROP' },
    { op: 'append', family, chain: 'INPUT', rule: rule(ALLOW_ESTABLISHED, form) },
  ];
}

// ---------------------------------------------------------------- fixtures

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'seeds');

/** A seed fixture (test/fixtures/seeds, saved from the kernel) without its comment lines. */
export function fixture(name: 'hardening' | 'ssh-bruteforce', family: Family): string {
  return withoutComments(readFileSync(join(FIXTURES, `${name}.${family}.save`), 'utf8'));
}

export function withoutComments(save: string): string {
  return save
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n')
    .trim();
}
