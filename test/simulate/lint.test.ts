/**
 * Each lint code on a ruleset that triggers it and on a close one that does
 * not (the second half is what keeps the linter conservative).
 */
import { describe, expect, it } from 'vitest';
import type { Ruleset } from '../../src/domain/model.js';
import { type Finding, lint } from '../../src/simulate/index.js';
import { input, rs } from './helpers.js';

const codes = (findings: readonly Finding[]) => findings.map((f) => f.code);
const about = (findings: readonly Finding[], code: string) => findings.filter((f) => f.code === code);
const positions = (f: Finding | undefined) => f?.rules.map((r) => `${r.chain}#${r.position}`);

describe('shadowed-rule and redundant-rule', () => {
  const shadowed = (lines: string[], opts = {}) => about(lint(input(lines, opts)), 'shadowed-rule');

  it('reports a rule an earlier terminal rule covers on every modelled field', () => {
    const f = shadowed([
      '-A INPUT -s 198.51.100.0/24 -j DROP',
      '-A INPUT -s 198.51.100.7/32 -p tcp -m tcp --dport 22 -j ACCEPT',
    ]);
    expect(positions(f[0])).toEqual(['INPUT#2', 'INPUT#1']);
    expect(f[0]?.severity).toBe('warning');
    expect(f[0]?.message).toMatch(/never matches/);
  });

  it.each([
    [
      [
        '-A INPUT -p tcp -m multiport --dports 20:25,80 -j DROP',
        '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      ],
    ],
    [['-A INPUT -i eth+ -j REJECT', '-A INPUT -i eth0 -p udp -j ACCEPT']],
    [['-A INPUT ! -i lo -j DROP', '-A INPUT -i eth1 -j ACCEPT']],
    [
      [
        '-A INPUT -m state --state INVALID,NEW -j DROP',
        '-A INPUT -m conntrack --ctstate NEW -p tcp -j ACCEPT',
      ],
    ],
    [
      [
        '-A INPUT -p icmp -m icmp --icmp-type 3 -j DROP',
        '-A INPUT -p icmp -m icmp --icmp-type 3/4 -j ACCEPT',
      ],
    ],
    [
      [
        '-A INPUT -m iprange --src-range 198.51.100.0-198.51.100.127 -j DROP',
        '-A INPUT -s 198.51.100.64/26 -j ACCEPT',
      ],
    ],
    [['-A INPUT ! -p udp -j DROP', '-A INPUT -p tcp -j ACCEPT']],
    [['-A INPUT -p tcp -m tcp ! --dport 22 -j DROP', '-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT']],
    [
      [
        '-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN -j DROP',
        '-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT',
      ],
    ],
    [
      [
        '-A INPUT -j RETURN -m comment --comment "x" -s 198.51.100.0/24',
        '-A INPUT -s 198.51.100.1/32 -j ACCEPT',
      ],
    ],
  ])('covers %j', (lines) => {
    expect(shadowed(lines)).toHaveLength(1);
  });

  it.each([
    [['-A INPUT -s 198.51.100.7/32 -j DROP', '-A INPUT -s 198.51.100.0/24 -j ACCEPT'], 'narrower first'],
    [['-A INPUT -p tcp -m tcp --dport 22 -j DROP', '-A INPUT -p tcp -j ACCEPT'], 'j has more ports'],
    [
      ['-A INPUT -p tcp -m tcp --dport 22 -j DROP', '-A INPUT -p udp -m udp --dport 22 -j ACCEPT'],
      'other protocol',
    ],
    [
      ['-A INPUT -p tcp -m limit --limit 1/sec -j DROP', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'],
      'i has an undecidable match',
    ],
    [['-A INPUT -p tcp -j LOG', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'], 'i does not stop the packet'],
    [['-A INPUT -p tcp -j CHECK', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'], 'a jump may return'],
    [['-A INPUT -i eth+ -j DROP', '-A INPUT ! -i lo -j ACCEPT'], 'j has names i lacks'],
    [
      ['-A INPUT -p icmp -m icmp --icmp-type any -j DROP', '-A INPUT -p icmp -j ACCEPT'],
      'fragments of j escape i',
    ],
    [
      [
        '-A INPUT -m conntrack --ctstate NEW --ctorigdstport 22 -j DROP',
        '-A INPUT -m state --state NEW -j ACCEPT',
      ],
      'i has unmodelled conntrack options',
    ],
    [
      [
        '-A INPUT -s 198.51.100.0/24 -j DROP',
        '-A INPUT -j SYNPROXY --sack-perm',
        '-A INPUT -s 198.51.100.1/32 -j ACCEPT',
      ],
      'an unknown target in between',
    ],
  ])('does not report %j (%s)', (lines) => {
    expect(shadowed(lines as string[], { chains: ['CHECK'] })).toEqual([]);
  });

  it('a covered rule with the same target is redundant (info)', () => {
    const f = lint(input(['-A INPUT -s 198.51.100.0/24 -j DROP', '-A INPUT -s 198.51.100.9/32 -j DROP']));
    expect(f.map((x) => [x.code, x.severity])).toEqual([['redundant-rule', 'info']]);
  });

  it('works for ipv6 and in user chains', () => {
    const ruleset = rs(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':C - [0:0]',
        '-A INPUT -j C',
        '-A C -s 2001:db8::/32 -j RETURN',
        '-A C -s 2001:db8:5::/48 -j DROP',
        'COMMIT',
        '',
      ].join('\n'),
      'ipv6',
    );
    expect(positions(about(lint(ruleset), 'shadowed-rule')[0])).toEqual(['C#2', 'C#1']);
  });

  it('scales to a 20,000-rule ban list', () => {
    const bans = Array.from({ length: 20_000 }, (_, i) => `-A INPUT -s 10.${i >> 8}.${i & 255}.1/32 -j DROP`);
    const ruleset = input([...bans, '-A INPUT -s 10.3.7.1/32 -p tcp -j ACCEPT']);
    const t0 = performance.now();
    const f = lint(ruleset);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(codes(f)).toEqual(['shadowed-rule']);
  });
});

describe('unreachable-rule', () => {
  it('reports every rule after an unconditional terminal rule, once per chain', () => {
    const f = about(
      lint(
        input([
          '-A INPUT -p tcp -j ACCEPT',
          '-A INPUT -m comment --comment "end" -j DROP',
          '-A INPUT -p udp -j ACCEPT',
          '-A INPUT -j LOG',
        ]),
      ),
      'unreachable-rule',
    );
    expect(f).toHaveLength(1);
    expect(positions(f[0])).toEqual(['INPUT#3', 'INPUT#4', 'INPUT#2']);
    expect(f[0]?.message).toMatch(/Rules 3-4 of INPUT can never be reached: rule 2/);
  });

  it('not after a conditional or non-terminal rule', () => {
    expect(
      about(
        lint(
          input(
            [
              '-A INPUT -j LOG',
              '-A INPUT -j CHECK',
              '-A INPUT -m limit -j DROP',
              '-A INPUT -p tcp -j ACCEPT',
              '-A CHECK -p udp -j DROP',
            ],
            { chains: ['CHECK'] },
          ),
        ),
        'unreachable-rule',
      ),
    ).toEqual([]);
  });
});

describe('duplicate-rule', () => {
  it('reports an exact copy in the same chain', () => {
    const f = lint(
      input([
        '-A INPUT -p tcp -m tcp --dport 22 -j LOG',
        '-A INPUT -p udp -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 22 -j LOG',
      ]),
    );
    expect(codes(f)).toEqual(['duplicate-rule']);
    expect(positions(f[0])).toEqual(['INPUT#3', 'INPUT#1']);
  });

  it('not for similar rules or copies in different chains', () => {
    const f = lint(
      input(
        [
          '-A INPUT -p tcp -m tcp --dport 22 -j LOG',
          '-A INPUT -p tcp -m tcp --dport 23 -j LOG',
          '-A C -p tcp -m tcp --dport 22 -j LOG',
        ],
        { chains: ['C'] },
      ),
    );
    expect(about(f, 'duplicate-rule')).toEqual([]);
  });
});

describe('jump-to-missing-chain and jump-to-empty-chain', () => {
  it('a target that is neither a chain nor a known target', () => {
    const f = lint(input(['-A INPUT -p tcp -j LOGDROP']));
    expect(codes(f)).toEqual(['jump-to-missing-chain']);
    expect(f[0]?.severity).toBe('error');
  });

  it('a jump or goto to an empty chain', () => {
    const f = lint(input(['-A INPUT -p tcp -j EMPTY', '-A INPUT -p udp -g EMPTY'], { chains: ['EMPTY'] }));
    expect(codes(f)).toEqual(['jump-to-empty-chain', 'jump-to-empty-chain']);
    expect(f[1]?.message).toMatch(/skip the rest of INPUT/);
  });

  it('not for chains with rules or known targets', () => {
    expect(
      lint(
        input(['-A INPUT -p tcp -j FULL', '-A INPUT -j NFQUEUE --queue-num 1', '-A FULL -j ACCEPT'], {
          chains: ['FULL'],
        }),
      ),
    ).toEqual([]);
  });
});

describe('recent-list-never-set', () => {
  it('an --update of a list nothing --sets', () => {
    const f = lint(input(['-A INPUT -p tcp -m recent --update --seconds 60 --name SSH -j DROP']));
    expect(codes(f)).toEqual(['recent-list-never-set']);
    expect(f[0]?.message).toMatch(/"SSH"/);
  });

  it('not when some rule sets it, in either family', () => {
    expect(
      lint(input(['-A INPUT -m recent --set --name SSH', '-A INPUT -m recent --rcheck --name SSH -j DROP'])),
    ).toEqual([]);
    const v6 = input(['-A INPUT -m recent --set --name SSH'], { family: 'ipv6' });
    expect(lint([input(['-A INPUT -m recent --remove --name SSH']), v6])).toEqual([]);
  });
});

describe('unknown-ipset', () => {
  const ruleset = input(['-A INPUT -m set --match-set blocklist src -j DROP']);
  it('a set that does not exist, when the known sets are given', () => {
    const f = lint(ruleset, { knownIpsets: ['allow'] });
    expect(codes(f)).toEqual(['unknown-ipset']);
  });
  it('not when it exists, nor without the list', () => {
    expect(lint(ruleset, { knownIpsets: ['blocklist'] })).toEqual([]);
    expect(lint(ruleset)).toEqual([]);
  });
});

describe('log-without-verdict', () => {
  it('LOG as the last rule of a user chain', () => {
    const f = lint(
      input(['-A INPUT -p tcp -j LOGGED', '-A LOGGED -j LOG --log-prefix "deny: "'], { chains: ['LOGGED'] }),
    );
    expect(codes(f)).toEqual(['log-without-verdict']);
  });
  it('LOG followed by RETURN of the same packets', () => {
    const f = lint(
      input(['-A INPUT -j C', '-A C -p udp -j NFLOG', '-A C -p udp -j RETURN', '-A C -j ACCEPT'], {
        chains: ['C'],
      }),
    );
    expect(codes(f)).toEqual(['log-without-verdict']);
  });
  it('a "drop" LOG at the end of an ACCEPT chain', () => {
    const f = lint(
      input(['-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', '-A INPUT -j LOG --log-prefix "dropped: "']),
    );
    expect(codes(f)).toEqual(['log-without-verdict']);
  });
  it('not when a verdict follows (the LOG_AND_DROP pattern) or the policy drops', () => {
    expect(lint(input(['-A INPUT -p tcp -j L', '-A L -j LOG', '-A L -j DROP'], { chains: ['L'] }))).toEqual(
      [],
    );
    const dropPolicy = input(
      ['-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', '-A INPUT -j LOG --log-prefix "dropped: "'],
      { policy: 'DROP' },
    );
    expect(about(lint(dropPolicy), 'log-without-verdict')).toEqual([]);
    expect(lint(input(['-A INPUT -j LOG --log-prefix "seen: "']))).toEqual([]);
  });
});

describe('ipv6-nd-blocked', () => {
  const v6 = (lines: string[], policy = 'DROP'): Ruleset =>
    input(['-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', ...lines], {
      family: 'ipv6',
      policy,
    });

  it('a DROP policy without neighbour discovery', () => {
    const f = lint(v6([]));
    expect(codes(f)).toEqual(['ipv6-nd-blocked']);
    expect(f[0]?.severity).toBe('error');
  });
  it('a final catch-all REJECT', () => {
    expect(codes(lint(v6(['-A INPUT -j REJECT'], 'ACCEPT')))).toEqual(['ipv6-nd-blocked']);
  });
  it('a state rule that drops INVALID and UNTRACKED first still blocks', () => {
    expect(
      codes(
        lint(v6(['-A INPUT -m state --state INVALID,UNTRACKED -j DROP', '-A INPUT -p ipv6-icmp -j ACCEPT'])),
      ),
    ).toEqual(['ipv6-nd-blocked']);
  });
  it('only some types allowed: names the others; a rate limit makes it a warning', () => {
    const f = lint(
      v6([
        '-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT',
        '-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT',
      ]),
    );
    expect(f[0]?.message).toMatch(/router solicitation, router advertisement is dropped/);
    const limited = lint(v6(['-A INPUT -p ipv6-icmp -m limit --limit 100/sec -j ACCEPT']));
    expect(limited.map((x) => [x.code, x.severity])).toEqual([['ipv6-nd-blocked', 'warning']]);
  });
  it('not when ICMPv6 is accepted, when the policy is ACCEPT, or for ipv4', () => {
    expect(lint(v6(['-A INPUT -p ipv6-icmp -j ACCEPT']))).toEqual([]);
    expect(lint(v6([], 'ACCEPT'))).toEqual([]);
    expect(
      lint(input(['-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'], { policy: 'DROP' })),
    ).toEqual([]);
  });
});

describe('input-drop-without-established', () => {
  it('a DROP policy with no ESTABLISHED accept', () => {
    const f = lint(input(['-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'], { policy: 'DROP' }));
    expect(codes(f)).toEqual(['input-drop-without-established']);
    expect(f[0]?.severity).toBe('warning');
    expect(codes(lint(input(['-A INPUT -p udp -j ACCEPT'], { policy: 'DROP' })))).toEqual([
      'input-drop-without-established',
    ]);
    expect(lint(input(['-A INPUT -p udp -j ACCEPT'], { policy: 'DROP' }))[0]?.severity).toBe('error');
  });
  it('not with a state or conntrack ESTABLISHED accept, also in a user chain', () => {
    expect(lint(input(['-A INPUT -m state --state ESTABLISHED -j ACCEPT'], { policy: 'DROP' }))).toEqual([]);
    expect(
      lint(
        input(['-A INPUT -j C', '-A C -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'], {
          policy: 'DROP',
          chains: ['C'],
        }),
      ),
    ).toEqual([]);
    expect(lint(input(['-A INPUT -j ACCEPT'], { policy: 'DROP' }))).toEqual([]);
  });
});

describe('analysis-truncated', () => {
  it('says when the shadowing check hit its bound', () => {
    const rules = Array.from({ length: 30 }, (_, i) => `-A INPUT ! -s 198.51.100.${i}/32 -j LOG`);
    const terminal = Array.from({ length: 30 }, (_, i) => `-A INPUT ! -s 192.0.2.${i}/32 -j DROP`);
    const ruleset = input([...rules, ...terminal]);
    expect(codes(lint(ruleset, { maxComparisons: 10 }))).toEqual(['analysis-truncated']);
    expect(lint(ruleset)).toEqual([]);
  });
});

describe('ordering and shape', () => {
  it('sorts by severity, then place, and names ids and text of the rules', () => {
    const f = lint(
      input(['-A INPUT -p tcp -j MISSING', '-A INPUT -p udp -j ACCEPT', '-A INPUT -p udp -j ACCEPT'], {
        policy: 'DROP',
      }),
    );
    expect(f.map((x) => [x.severity, x.code])).toEqual([
      ['error', 'jump-to-missing-chain'],
      ['warning', 'input-drop-without-established'],
      ['warning', 'duplicate-rule'],
    ]);
    for (const x of f) {
      expect(x.suggestion.length).toBeGreaterThan(10);
      for (const r of x.rules) expect(r.ruleId).toMatch(/^[0-9a-f]{16}$/);
    }
  });
});
