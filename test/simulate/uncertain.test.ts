/**
 * Three-valued answers: undecidable rules fork the trace, every verdict still
 * possible is listed with the rules that made it uncertain, branches that
 * assumed a match narrow what they know, and the exploration is bounded.
 */
import { describe, expect, it } from 'vitest';
import { trace } from '../../src/simulate/index.js';
import { input, run, steps, tcpSyn, verdict } from './helpers.js';

describe('maybe-branching', () => {
  it('a rule it cannot decide makes both outcomes possible and names the rule and why', () => {
    const r = run(input(['-A INPUT -p tcp -m limit --limit 5/min -j ACCEPT'], { policy: 'DROP' }), tcpSyn);
    expect(r.definite).toBe(false);
    expect(r.possibleVerdicts).toEqual(['ACCEPT', 'DROP']);
    expect(r.uncertain).toEqual([
      expect.objectContaining({
        chain: 'INPUT',
        position: 1,
        reasons: [expect.stringMatching(/limit 5\/min/)],
      }),
    ]);
    const paths = r.outcomes.map((o) => `${o.verdict}:${steps(o.path).join(' ')}`).sort();
    expect(paths).toEqual(['ACCEPT:INPUT#1:maybe(yes)', 'DROP:INPUT#1:maybe(no) policy:INPUT:DROP']);
    for (const o of r.outcomes) expect(o.assumptions).toHaveLength(1);
  });

  it('is definite when every branch reaches the same verdict', () => {
    const r = run(input(['-A INPUT -m limit --limit 1/sec -j LOG', '-A INPUT -j DROP']), tcpSyn);
    expect(r.definite).toBe(true);
    expect(verdict(r)).toBe('DROP');
    expect(r.outcomes).toHaveLength(2);
    expect(r.uncertain).toHaveLength(1);
  });

  it('a branch that assumed "-p tcp" knows the packet is tcp', () => {
    const ruleset = input(
      ['-A INPUT -p tcp -j TCPONLY', '-A TCPONLY -p udp -j DROP', '-A TCPONLY -j ACCEPT'],
      { chains: ['TCPONLY'], policy: 'DROP' },
    );
    const r = run(ruleset, {
      family: 'ipv4',
      hook: 'INPUT',
      source: '198.51.100.7',
      destination: '192.0.2.1',
    });
    expect(r.possibleVerdicts).toEqual(['ACCEPT', 'DROP']);
    const accept = r.outcomes.find((o) => o.verdict === 'ACCEPT');
    expect(steps(accept?.path ?? [])).toEqual(['INPUT#1:maybe(yes)', 'TCPONLY#1:no', 'TCPONLY#2:yes']);
    expect(r.outcomes).toHaveLength(2);
  });

  it('explores every combination of independent unknowns', () => {
    const r = run(
      input(
        [
          '-A INPUT -m limit --limit 1/sec -j MARK --set-xmark 0x1/0x1',
          '-A INPUT -m statistic --mode nth --every 2 -j MARK --set-xmark 0x2/0x2',
          '-A INPUT -m mark --mark 0x3 -j REJECT',
        ],
        { policy: 'DROP' },
      ),
      tcpSyn,
    );
    expect(r.outcomes).toHaveLength(4);
    expect(r.possibleVerdicts).toEqual(['DROP', 'REJECT']);
    expect(r.outcomes.filter((o) => o.verdict === 'REJECT').map((o) => o.mark)).toEqual(['0x3']);
  });

  it('bounds the exploration and says so', () => {
    const rules = Array.from(
      { length: 12 },
      (_, i) =>
        `-A INPUT -m limit --limit ${i + 1}/sec -j MARK --set-xmark 0x${(1 << i).toString(16)}/0x${(1 << i).toString(16)}`,
    );
    const r = trace(
      input([...rules, '-A INPUT -m mark --mark 0xfff -j ACCEPT'], { policy: 'DROP' }),
      tcpSyn,
      { maxBranches: 8 },
    );
    expect(r.truncated).toBe(true);
    expect(r.definite).toBe(false);
    expect(r.outcomes.length).toBeLessThanOrEqual(8);
    const full = trace(input(rules.slice(0, 3), { policy: 'DROP' }), tcpSyn);
    expect(full.truncated).toBe(false);
    expect(full.outcomes).toHaveLength(8);
  });

  it('stops at the step limit', () => {
    const r = trace(
      input(Array.from({ length: 100 }, (_, i) => `-A INPUT -p udp -m udp --dport ${i + 1} -j DROP`)),
      tcpSyn,
      { maxSteps: 10 },
    );
    expect(r.truncated).toBe(true);
    expect(r.possibleVerdicts).toEqual(['UNKNOWN']);
  });

  it('an unknown target may stop the packet or continue', () => {
    const r = run(input(['-A INPUT -j SYNPROXY --sack-perm', '-A INPUT -j ACCEPT']), tcpSyn);
    expect(r.possibleVerdicts).toEqual(['ACCEPT', 'UNKNOWN']);
    expect(r.uncertain[0]?.reasons[0]).toMatch(/SYNPROXY may stop/);
  });

  it('an untyped match is maybe, naming the module', () => {
    const r = run(input(['-A INPUT -m u32 --u32 "0>>22&0x3C@ 12>>26&0x3F=0x10" -j DROP']), tcpSyn);
    expect(r.uncertain[0]?.reasons[0]).toMatch(/untyped match -m u32/);
  });

  it('a partly known mark still decides the known bits', () => {
    const rules = [
      '-A INPUT -j HMARK --hmark-tuple src --hmark-mod 10 --hmark-rnd 0x1',
      '-A INPUT -j MARK --set-xmark 0x1/0xff',
    ];
    const exact = run(
      input([...rules, '-A INPUT -m mark --mark 0x1/0xff -j ACCEPT'], { policy: 'DROP' }),
      tcpSyn,
    );
    expect(verdict(exact)).toBe('ACCEPT');
    const other = run(
      input([...rules, '-A INPUT -m mark --mark 0x2/0x3 -j ACCEPT'], { policy: 'DROP' }),
      tcpSyn,
    );
    expect(verdict(other)).toBe('DROP');
    const partial = run(
      input([...rules, '-A INPUT -m mark --mark 0x1 -j ACCEPT'], { policy: 'DROP' }),
      tcpSyn,
    );
    expect(partial.possibleVerdicts).toEqual(['ACCEPT', 'DROP']);
    expect(exact.outcomes[0]?.mark).toBe('0x1 (known bits 0xff)');
  });

  it('recent on a list the packet did not describe: a hit added here is known, earlier ones are not', () => {
    const ruleset = input(
      [
        '-A INPUT -m recent --set --name X',
        '-A INPUT -m recent --rcheck --name X -j ACCEPT',
        '-A INPUT -m recent --rcheck --hitcount 2 --name Y -j DROP',
      ],
      { policy: 'DROP' },
    );
    const r = run(ruleset, tcpSyn);
    expect(verdict(r)).toBe('ACCEPT');
    const hits = run(
      input(
        ['-A INPUT -m recent --set --name X', '-A INPUT -m recent --rcheck --hitcount 2 --name X -j ACCEPT'],
        { policy: 'DROP' },
      ),
      tcpSyn,
    );
    expect(hits.possibleVerdicts).toEqual(['ACCEPT', 'DROP']);
  });

  it('recent --set happens when the match is reached even if a later match fails', () => {
    const ruleset = input(
      [
        '-A INPUT -m recent --set --name X -m mark --mark 0x9',
        '-A INPUT -m recent --rcheck --hitcount 2 --name X -j ACCEPT',
      ],
      { policy: 'DROP' },
    );
    const r = run(ruleset, { ...tcpSyn, recent: { X: [{ address: '198.51.100.7', hits: [30] }] } });
    expect(steps(r.outcomes[0]?.path ?? [])).toEqual(['INPUT#1:no', 'INPUT#2:yes']);
    expect(verdict(r)).toBe('ACCEPT');
  });
});

describe('recent side effects', () => {
  it('a negated --update does not create an entry that was absent', () => {
    const ruleset = input(
      ['-A INPUT -m recent ! --update --name X', '-A INPUT -m recent --rcheck --name X -j DROP'],
      { policy: 'ACCEPT' },
    );
    const r = run(ruleset, { ...tcpSyn, recent: { X: [] } });
    expect(steps(r.outcomes[0]?.path ?? [])).toEqual(['INPUT#1:yes', 'INPUT#2:no', 'policy:INPUT:ACCEPT']);
  });

  it('--update adds a hit only when it matches, --remove forgets the address', () => {
    const ruleset = input(
      [
        '-A INPUT -m recent --update --seconds 10 --name X',
        '-A INPUT -m recent --rcheck --hitcount 2 --name X -j REJECT',
        '-A INPUT -m recent --remove --name X',
        '-A INPUT -m recent --rcheck --name X -j DROP',
      ],
      { policy: 'ACCEPT' },
    );
    const recent = (hits: number[]) => ({ ...tcpSyn, recent: { X: [{ address: '198.51.100.7', hits }] } });
    expect(verdict(run(ruleset, recent([5])))).toBe('REJECT');
    expect(verdict(run(ruleset, recent([50])))).toBe('ACCEPT');
  });
});
