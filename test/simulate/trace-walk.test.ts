/**
 * The walk: chains, jumps, goto, RETURN, policies, table order per hook,
 * nat only for NEW connections, non-terminating targets, and rule ids equal
 * to the service's ids.
 */
import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import { ruleIds } from '../../src/domain/rule-id.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { trace } from '../../src/simulate/index.js';
import { input, only, rs, run, steps, tcpSyn, verdict } from './helpers.js';

describe('chains and verdicts', () => {
  it('stops at the first matching ACCEPT and records every rule visited', () => {
    const r = run(
      input(['-A INPUT -p udp -j DROP', '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', '-A INPUT -j DROP']),
      tcpSyn,
    );
    expect(verdict(r)).toBe('ACCEPT');
    expect(steps(only(r).path)).toEqual(['INPUT#1:no', 'INPUT#2:yes']);
  });

  it('falls through to the policy', () => {
    const r = run(input(['-A INPUT -p udp -j ACCEPT'], { policy: 'DROP' }), tcpSyn);
    expect(verdict(r)).toBe('DROP');
    expect(steps(only(r).path)).toEqual(['INPUT#1:no', 'policy:INPUT:DROP']);
    expect(only(r).decidedBy).toMatchObject({ kind: 'policy', chain: 'INPUT', policy: 'DROP' });
  });

  it('reports REJECT distinctly, with its answer', () => {
    const r = run(input(['-A INPUT -p tcp -j REJECT --reject-with tcp-reset']), tcpSyn);
    expect(verdict(r)).toBe('REJECT');
    expect(only(r).rejectWith).toBe('tcp-reset');
  });

  it('QUEUE and NFQUEUE give the verdict QUEUE', () => {
    expect(verdict(run(input(['-A INPUT -j QUEUE']), tcpSyn))).toBe('QUEUE');
    expect(verdict(run(input(['-A INPUT -j NFQUEUE --queue-num 3']), tcpSyn))).toBe('QUEUE');
  });

  it('jumps into a user chain and comes back after RETURN or its end', () => {
    const ruleset = input(
      [
        '-A INPUT -j CHECK',
        '-A INPUT -p tcp -j ACCEPT',
        '-A CHECK -p udp -j DROP',
        '-A CHECK -s 198.51.100.0/24 -j RETURN',
        '-A CHECK -j DROP',
      ],
      { chains: ['CHECK'], policy: 'DROP' },
    );
    const r = run(ruleset, tcpSyn);
    expect(verdict(r)).toBe('ACCEPT');
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'CHECK#1:no', 'CHECK#2:yes', 'INPUT#2:yes']);
    const other = run(ruleset, { ...tcpSyn, source: '192.0.2.50' });
    expect(steps(only(other).path)).toEqual(['INPUT#1:yes', 'CHECK#1:no', 'CHECK#2:no', 'CHECK#3:yes']);
    expect(verdict(other)).toBe('DROP');
  });

  it('the end of a user chain returns to the caller', () => {
    const r = run(
      input(['-A INPUT -j EMPTYISH', '-A INPUT -j ACCEPT', '-A EMPTYISH -p udp -j DROP'], {
        chains: ['EMPTYISH'],
        policy: 'DROP',
      }),
      tcpSyn,
    );
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'EMPTYISH#1:no', 'INPUT#2:yes']);
  });

  it('goto does not come back: RETURN from the goto target returns to the caller of the chain that did the goto', () => {
    const ruleset = input(
      ['-A INPUT -j A', '-A INPUT -j DROP', '-A A -g B', '-A A -j REJECT', '-A B -j RETURN'],
      { chains: ['A', 'B'] },
    );
    const r = run(ruleset, tcpSyn);
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'A#1:yes', 'B#1:yes', 'INPUT#2:yes']);
    expect(verdict(r)).toBe('DROP');
  });

  it('goto from the built-in chain ends in its policy when the target returns', () => {
    const r = run(
      input(['-A INPUT -g B', '-A INPUT -j ACCEPT', '-A B -p udp -j ACCEPT'], {
        chains: ['B'],
        policy: 'DROP',
      }),
      tcpSyn,
    );
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'B#1:no', 'policy:INPUT:DROP']);
  });

  it('RETURN in a built-in chain applies the policy', () => {
    const r = run(input(['-A INPUT -j RETURN', '-A INPUT -j ACCEPT'], { policy: 'DROP' }), tcpSyn);
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'policy:INPUT:DROP']);
  });

  it('counters-only rules, LOG and NFLOG continue', () => {
    const r = run(
      input([
        '-A INPUT -p tcp',
        '-A INPUT -j LOG --log-prefix "in: "',
        '-A INPUT -j NFLOG --nflog-group 2',
        '-A INPUT -j DROP',
      ]),
      tcpSyn,
    );
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'INPUT#2:yes', 'INPUT#3:yes', 'INPUT#4:yes']);
    expect(verdict(r)).toBe('DROP');
  });

  it('MARK sets the mark for later rules, and CONNMARK save/restore move it', () => {
    const ruleset = input([
      '-A INPUT -p tcp -j MARK --set-xmark 0x5/0xff',
      '-A INPUT -m mark --mark 0x4/0x4 -j CONNMARK --save-mark',
      '-A INPUT -m connmark --mark 0x5 -j ACCEPT',
      '-A INPUT -j DROP',
    ]);
    const r = run(ruleset, tcpSyn);
    expect(steps(only(r).path)).toEqual(['INPUT#1:yes', 'INPUT#2:yes', 'INPUT#3:yes']);
    expect(only(r).mark).toBe('0x5');
    expect(only(r).path[0]).toMatchObject({ note: 'mark is now 0x5' });
    const noMark = run(input(['-A INPUT -m mark --mark 0x5 -j ACCEPT', '-A INPUT -j DROP']), tcpSyn);
    expect(verdict(noMark)).toBe('DROP');
  });

  it('MARK --set-xmark changes only the masked bits', () => {
    const r = run(
      input([
        '-A INPUT -j MARK --set-xmark 0x10/0x10',
        '-A INPUT -m mark --mark 0x11 -j ACCEPT',
        '-A INPUT -m mark --mark 0x111 -j REJECT',
      ]),
      { ...tcpSyn, mark: 0x101 },
    );
    expect(verdict(r)).toBe('REJECT');
  });

  it('CONNMARK does nothing to a packet without a connection', () => {
    const r = run(
      input([
        '-A INPUT -j CONNMARK --set-xmark 0x1/0xffffffff',
        '-A INPUT -m connmark --mark 0x1 -j ACCEPT',
        '-A INPUT -j DROP',
      ]),
      { ...tcpSyn, ctState: 'INVALID' },
    );
    expect(verdict(r)).toBe('DROP');
  });

  it('a jump to a chain of another name that is not a chain is an unknown (maybe terminal) target', () => {
    const r = run(input(['-A INPUT -j NOSUCHCHAIN', '-A INPUT -j DROP']), tcpSyn);
    expect(r.definite).toBe(false);
    expect(r.possibleVerdicts).toEqual(['DROP', 'UNKNOWN']);
    expect(r.uncertain[0]?.reasons[0]).toMatch(/untyped target NOSUCHCHAIN/);
  });
});

describe('tables and hooks', () => {
  const many = (family: Family = 'ipv4'): Ruleset =>
    rs(
      [
        '*raw',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A OUTPUT -p udp -j NOTRACK',
        'COMMIT',
        '*mangle',
        ':PREROUTING ACCEPT [0:0]',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        '-A INPUT -j MARK --set-xmark 0x7/0xffffffff',
        '-A OUTPUT -p tcp -j ACCEPT',
        'COMMIT',
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':INPUT ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        `-A OUTPUT -p tcp -m tcp --dport 80 -j DNAT --to-destination ${family === 'ipv4' ? '192.0.2.80:8080' : '[2001:db8::80]:8080'}`,
        '-A INPUT -j ACCEPT',
        'COMMIT',
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT DROP [0:0]',
        '-A INPUT -m mark --mark 0x7 -j ACCEPT',
        '-A INPUT -j DROP',
        `-A OUTPUT -d ${family === 'ipv4' ? '192.0.2.80/32' : '2001:db8::80/128'} -p tcp -m tcp --dport 8080 -j ACCEPT`,
        '-A OUTPUT -p udp -m state --state UNTRACKED -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
      family,
    );

  it('INPUT: mangle before filter (the mark set in mangle is seen by filter), nat last', () => {
    const r = run(many(), tcpSyn);
    expect(verdict(r)).toBe('ACCEPT');
    const o = only(r);
    expect(o.tables.map((t) => t.table)).toEqual(['mangle', 'filter', 'nat']);
    expect(o.decidedBy).toMatchObject({ table: 'filter', chain: 'INPUT', position: 1 });
  });

  it('OUTPUT: nat before filter, so filter sees the DNATed destination', () => {
    const out = {
      family: 'ipv4',
      hook: 'OUTPUT',
      outInterface: 'eth0',
      source: '192.0.2.1',
      destination: '198.51.100.9',
      protocol: 'tcp',
      sourcePort: 40000,
      destinationPort: 80,
      ctState: 'NEW',
    };
    const r = run(many(), out);
    expect(verdict(r)).toBe('ACCEPT');
    expect(only(r).nat).toEqual([
      expect.objectContaining({ table: 'nat', description: 'DNAT: destination becomes 192.0.2.80:8080' }),
    ]);
    const r6 = run(many('ipv6'), {
      ...out,
      family: 'ipv6',
      source: '2001:db8::1',
      destination: '2001:db8::9',
    });
    expect(verdict(r6)).toBe('ACCEPT');
  });

  it('nat is traversed only by NEW connections', () => {
    const out = {
      family: 'ipv4',
      hook: 'OUTPUT',
      outInterface: 'eth0',
      source: '192.0.2.1',
      destination: '198.51.100.9',
      protocol: 'tcp',
      sourcePort: 40000,
      destinationPort: 80,
      ctState: 'ESTABLISHED',
    };
    const r = run(many(), out);
    expect(verdict(r)).toBe('DROP');
    expect(only(r).path.some((s) => s.kind === 'note' && /nat table skipped/.test(s.text))).toBe(true);
  });

  it('with an unknown conntrack state both "nat traversed" and "nat skipped" are explored', () => {
    const out = {
      family: 'ipv4',
      hook: 'OUTPUT',
      outInterface: 'eth0',
      source: '192.0.2.1',
      destination: '198.51.100.9',
      protocol: 'tcp',
      sourcePort: 40000,
      destinationPort: 80,
    };
    const r = run(many(), out);
    expect(r.definite).toBe(false);
    expect(r.possibleVerdicts).toEqual(['ACCEPT', 'DROP']);
  });

  it('raw NOTRACK makes later tables see UNTRACKED; conntrack matches in raw see no connection', () => {
    const out = {
      family: 'ipv4',
      hook: 'OUTPUT',
      outInterface: 'eth0',
      source: '192.0.2.1',
      destination: '198.51.100.9',
      protocol: 'udp',
      sourcePort: 5000,
      destinationPort: 53,
      ctState: 'NEW',
    };
    expect(verdict(run(many(), out))).toBe('ACCEPT');
    const raw = rs(
      [
        '*raw',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A PREROUTING -m state --state NEW -j DROP',
        '-A PREROUTING -m state --state INVALID -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const pre = { ...tcpSyn, hook: 'PREROUTING' };
    expect(steps(only(run(raw, pre)).path)).toEqual(['PREROUTING#1:no', 'PREROUTING#2:yes']);
  });

  it('a hook walks only the tables that have it; a missing table is an empty ACCEPT', () => {
    const r = run(many(), { ...tcpSyn, hook: 'FORWARD', outInterface: 'eth1' });
    expect(verdict(r)).toBe('ACCEPT');
    expect(only(r).tables.map((t) => t.table)).toEqual(['mangle', 'filter']);
  });

  it('picks the ruleset of the packet family from a Map, and refuses a single ruleset of the other family', () => {
    const map = new Map<Family, Ruleset>([
      ['ipv4', input(['-A INPUT -j ACCEPT'])],
      ['ipv6', input(['-A INPUT -j DROP'], { family: 'ipv6' })],
    ]);
    expect(verdict(run(map, tcpSyn))).toBe('ACCEPT');
    expect(
      verdict(
        run(map, {
          ...tcpSyn,
          family: 'ipv6',
          source: '2001:db8::7',
          destination: '2001:db8::1',
          ttl: undefined,
          hopLimit: 64,
        }),
      ),
    ).toBe('DROP');
    expect(() =>
      run(input(['-A INPUT -j DROP']), {
        ...tcpSyn,
        family: 'ipv6',
        source: '2001:db8::7',
        destination: '2001:db8::1',
        ttl: undefined,
      }),
    ).toThrow(/ipv6 but the ruleset is ipv4/);
  });
});

describe('rule ids and text', () => {
  it('equal the service ids (ruleIds over ruleText), duplicates included', () => {
    const ruleset = input([
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A INPUT -p udp -j DROP',
      '-A INPUT -p udp -j DROP',
    ]);
    const chain = ruleset.tables[0]?.chains[0];
    const expected = ruleIds('ipv4', 'filter', 'INPUT', chain?.rules.map(ruleText) ?? []);
    const r = trace(ruleset, {
      ...tcpSyn,
      protocol: 'icmp',
      sourcePort: undefined,
      destinationPort: undefined,
      tcpFlags: undefined,
      icmpType: 8,
    });
    const ids = only(r).path.flatMap((s) => (s.kind === 'rule' ? [s.ruleId] : []));
    expect(ids).toEqual(expected);
    expect(new Set(ids).size).toBe(3);
    const first = only(r).path[0];
    expect(first).toMatchObject({
      ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
      position: 1,
      table: 'filter',
    });
  });
});
