/**
 * The CLI's renderers without a kernel: change lines (watch, diff), trace, lint, status and
 * verify from real service answers (format-fixtures.ts), colour rules (terminal only, never
 * with NO_COLOR, same columns with and without), and the edge cases of reading a rule's
 * canonical text and of `-S -v`. The kernel comparison of -L / -S is format-kernel.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { renderChange } from '../../src/cli/format/change.js';
import { counterColumn, counterWords } from '../../src/cli/format/columns.js';
import { renderLint } from '../../src/cli/format/lint.js';
import { renderList } from '../../src/cli/format/list.js';
import { NUMERIC_NAMES, parseIdFile, parseServices } from '../../src/cli/format/names.js';
import { parseRuleText } from '../../src/cli/format/rule-text.js';
import { renderSpecs, ruleSpecLine } from '../../src/cli/format/specs.js';
import { renderStatus, renderVerify } from '../../src/cli/format/status.js';
import { COLOR, PLAIN, styleFor } from '../../src/cli/format/style.js';
import { renderTrace } from '../../src/cli/format/trace.js';
import { LINT, STATUS, TRACE_DEFINITE, TRACE_UNCERTAIN } from './format-fixtures.js';

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('renderChange: one iptables command line per change', () => {
  it('writes rule, chain and policy changes as the commands that make them', () => {
    const base = { family: 'ipv4', table: 'filter', chain: 'INPUT' } as const;
    expect(
      renderChange({ ...base, type: 'rule.added', position: 3, text: '-p tcp -m tcp --dport 22 -j ACCEPT' }),
    ).toBe('-I INPUT 3 -p tcp -m tcp --dport 22 -j ACCEPT');
    expect(renderChange({ ...base, type: 'rule.added', text: '-j DROP' })).toBe('-A INPUT -j DROP');
    expect(renderChange({ ...base, type: 'rule.added', position: 1, text: '' })).toBe('-I INPUT 1');
    expect(renderChange({ ...base, type: 'rule.deleted', position: 2, text: '-j DROP' })).toBe(
      '-D INPUT -j DROP',
    );
    expect(renderChange({ ...base, chain: 'LOG_AND_DROP', type: 'chain.created' })).toBe('-N LOG_AND_DROP');
    expect(renderChange({ ...base, chain: 'X', type: 'chain.deleted' })).toBe('-X X');
    expect(renderChange({ ...base, type: 'chain.flushed' })).toBe('-F INPUT');
    expect(renderChange({ ...base, chain: 'A', type: 'chain.renamed', newName: 'B' })).toBe('-E A B');
    expect(renderChange({ ...base, type: 'policy.set', policy: 'DROP' })).toBe('-P INPUT DROP');
    expect(renderChange({ ...base, type: 'counters.zeroed' })).toBe('-Z INPUT');
    expect(renderChange({ family: 'ipv4', table: 'filter', type: 'counters.zeroed' })).toBe('-Z');
  });

  it('names the family and a table other than filter as iptables options', () => {
    expect(
      renderChange({
        type: 'rule.added',
        family: 'ipv6',
        table: 'nat',
        chain: 'POSTROUTING',
        position: 1,
        text: '-j MASQUERADE',
      }),
    ).toBe('-6 -t nat -I POSTROUTING 1 -j MASQUERADE');
    expect(
      renderChange({ type: 'policy.set', family: 'ipv6', table: 'filter', chain: 'INPUT', policy: 'DROP' }),
    ).toBe('-6 -P INPUT DROP');
  });

  it('writes events that are not commands as comments', () => {
    expect(renderChange({ type: 'ruleset.reloaded', family: 'ipv4' })).toBe(
      '# ipv4: ruleset re-read from the kernel',
    );
    expect(
      renderChange({
        type: 'ruleset.diverged',
        family: 'ipv6',
        table: 'filter',
        chain: 'INPUT',
        detail: 'rules',
      }),
    ).toBe('# ipv6: the kernel differs from the model in filter INPUT (rules); it was re-read');
    expect(renderChange({ type: 'backend.mixed', family: 'ipv4', detail: 'legacy filter: 2 rules' })).toMatch(
      /^# ipv4: the other iptables backend has rules \(legacy filter: 2 rules\)$/,
    );
  });

  it('colours by kind only when asked, and the text is the same underneath', () => {
    const c = {
      type: 'rule.deleted',
      family: 'ipv4',
      table: 'filter',
      chain: 'INPUT',
      text: '-j DROP',
    } as const;
    const coloured = renderChange(c, COLOR);
    expect(coloured).not.toBe(renderChange(c));
    expect(coloured).toContain('\x1b[31m');
    expect(stripAnsi(coloured)).toBe(renderChange(c));
  });
});

describe('renderTrace', () => {
  it('gives a definite verdict first, then the path with every rule visited', () => {
    const text = renderTrace(TRACE_DEFINITE);
    const lines = text.split('\n');
    expect(lines[0]).toBe('verdict: ACCEPT (at revision 5)');
    expect(lines[1]).toBe('ipv4 INPUT: ACCEPT');
    expect(lines[2]).toBe('  path: ACCEPT');
    expect(text).toContain('    filter INPUT #1 no: -p tcp -m tcp --dport 22 -m state --state NEW');
    expect(text).toContain('    filter INPUT #5 match: -j EMPTY\n');
    expect(text).toContain('    filter INPUT policy ACCEPT\n');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('lists every possible verdict, the undecided rule with its reason, and each path with what it assumed', () => {
    const text = renderTrace(TRACE_UNCERTAIN);
    expect(text.split('\n')[0]).toBe('verdict: ACCEPT or DROP, not certain (at revision 5)');
    expect(text).toMatch(
      / {2}undecided: filter INPUT #2: .*--update .* \[state of recent list "DEFAULT" is not given/,
    );
    expect(text).toContain('  path 1 of 2: ACCEPT');
    expect(text).toContain('  path 2 of 2: DROP');
    expect(text).toMatch(/filter INPUT #2 maybe, assumed no: /);
    expect(text).toMatch(/filter INPUT #2 maybe, assumed yes: /);
    expect(text).toContain('    filter LOG_AND_DROP #2 match: -j DROP');
  });
});

describe('renderLint', () => {
  it('prints each finding with its code, rules, explanation and fix, and a count', () => {
    const text = renderLint(LINT);
    expect(text).toContain('warning duplicate-rule  ipv4 filter INPUT\n');
    expect(text).toContain('        filter INPUT #4: -p tcp -m tcp --dport 22 -j ACCEPT\n');
    expect(text).toContain('        fix: Delete rule 4');
    expect(text).toContain('error   ipv6-nd-blocked  ipv6 filter INPUT\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('2 errors, 2 warnings (revision 5)');
  });

  it('says so when there is nothing to report', () => {
    expect(renderLint({ revision: 9, findings: [] })).toBe('no findings (revision 9)\n');
  });
});

describe('renderStatus and renderVerify', () => {
  it('aligns the status as label and value', () => {
    const text = renderStatus(STATUS);
    expect(text).toContain('ready             yes\n');
    expect(text).toContain('backend           nf_tables (iptables 1.8.9)\n');
    expect(text).toContain('last verify       2026-11-29T08:17:19.379Z consistent\n');
    const widths = new Set(
      text
        .trimEnd()
        .split('\n')
        .map((l) => l.search(/ {2}\S/)),
    );
    expect(widths.size).toBe(1);
  });

  it('reports a consistent comparison in one line and each difference otherwise', () => {
    expect(
      renderVerify({ revision: 3, time: 't', consistent: true, differences: [], durationMs: 12.4 }),
    ).toBe('consistent: the kernel holds what the model says (revision 3, 12 ms)\n');
    const text = renderVerify({
      revision: 4,
      time: 't',
      consistent: false,
      durationMs: 3,
      differences: [
        { family: 'ipv4', table: 'filter', chain: 'INPUT', kind: 'rules', onlyInKernel: ['-j DROP'] },
        {
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          kind: 'policy',
          modelPolicy: 'ACCEPT',
          kernelPolicy: 'DROP',
        },
      ],
    });
    expect(text.split('\n')).toEqual([
      'diverged: 2 differences between the kernel and the model (revision 4, 3 ms); the model was re-read',
      '  ipv4 filter INPUT: only in the kernel: -j DROP',
      '  ipv4 filter INPUT: policy ACCEPT in the model, DROP in the kernel',
      '',
    ]);
  });
});

describe('styleFor: colour only for a person at a terminal', () => {
  it('is plain when not a terminal, with NO_COLOR, or on a dumb terminal', () => {
    expect(styleFor({ isTTY: false }, {}).enabled).toBe(false);
    expect(styleFor({ isTTY: true }, { NO_COLOR: '1' }).enabled).toBe(false);
    expect(styleFor({ isTTY: true }, { TERM: 'dumb' }).enabled).toBe(false);
    expect(styleFor({ isTTY: true }, { TERM: 'xterm' }).enabled).toBe(true);
    expect(styleFor({ isTTY: true }, { NO_COLOR: '' }).enabled).toBe(true);
  });

  it('can be forced either way', () => {
    expect(styleFor({ isTTY: false }, {}, 'always').enabled).toBe(true);
    expect(styleFor({ isTTY: true }, {}, 'never').enabled).toBe(false);
  });

  it('keeps the -L columns where they are', () => {
    const chains = [
      {
        name: 'INPUT',
        builtin: true,
        policy: 'DROP',
        references: 0,
        rules: [
          { text: '-p tcp -m tcp --dport 22 -j ACCEPT' },
          { text: '-j LOG_AND_DROP' },
          { text: '-j DROP' },
        ],
      },
    ];
    const o = { family: 'ipv4', numeric: true, verbose: false, exact: false, lineNumbers: true } as const;
    const coloured = renderList(chains, o, COLOR);
    expect(coloured).toContain('\x1b[32mACCEPT\x1b[39m');
    expect(stripAnsi(coloured)).toBe(renderList(chains, o, PLAIN));
  });
});

describe('reading canonical rule text', () => {
  it('keeps option values that look like options with their option', () => {
    const r = parseRuleText('-m comment --comment -j -j ACCEPT');
    expect(r.matches).toEqual([
      { name: 'comment', options: [{ flag: '--comment', args: ['-j'], negated: false }] },
    ]);
    expect(r.target?.name).toBe('ACCEPT');
    expect(r.targetAt).toBe(4);
  });

  it('reads negations of rule fields and of extension options', () => {
    const r = parseRuleText('! -s 198.51.100.7/32 -p tcp -m tcp ! --dport 22 -g SSH');
    expect(r.source).toEqual({ value: '198.51.100.7/32', negated: true });
    expect(r.matches[0]?.options[0]).toEqual({ flag: '--dport', args: ['22'], negated: true });
    expect(r.target).toMatchObject({ name: 'SSH', goto: true });
  });

  it('keeps the words of an untyped extension together', () => {
    const r = parseRuleText('-m u32 --u32 "0>>22&0x3C@ 12>>26&0x3C@ 0&0xFFFF=0x3" -j DROP');
    expect(r.matches[0]).toEqual({
      name: 'u32',
      options: [{ flag: '--u32', args: ['0>>22&0x3C@ 12>>26&0x3C@ 0&0xFFFF=0x3'], negated: false }],
    });
  });

  it('prints an extension it has no printer for in its save form', () => {
    const chains = [
      {
        name: 'INPUT',
        builtin: true,
        policy: 'ACCEPT',
        references: 0,
        rules: [{ text: '-m u32 --u32 "0x0=0x1" -j DROP' }],
      },
    ];
    const out = renderList(chains, {
      family: 'ipv4',
      numeric: true,
      verbose: false,
      exact: false,
      lineNumbers: false,
    });
    expect(out.split('\n')[2]).toBe(
      'DROP       0    --  0.0.0.0/0            0.0.0.0/0            u32 --u32 0x0=0x1',
    );
  });
});

describe('-S -v and counters', () => {
  it('puts -c PKTS BYTES before the target, or at the end of a rule without one', () => {
    expect(
      ruleSpecLine(
        'INPUT',
        { text: '-p tcp -m tcp --dport 22 -j ACCEPT', counters: { packets: '5', bytes: '300' } },
        true,
      ),
    ).toBe('-A INPUT -p tcp -m tcp --dport 22 -c 5 300 -j ACCEPT\n');
    expect(
      ruleSpecLine(
        'INPUT',
        { text: '-m comment --comment "a b"', counters: { packets: '1', bytes: '2' } },
        true,
      ),
    ).toBe('-A INPUT -m comment --comment "a b" -c 1 2\n');
    expect(ruleSpecLine('INPUT', { text: '' }, true)).toBe('-A INPUT -c 0 0\n');
    expect(ruleSpecLine('INPUT', { text: '' }, false)).toBe('-A INPUT\n');
  });

  it('declares built-in chains first, then user chains, then every rule', () => {
    const chains = [
      { name: 'INPUT', builtin: true, policy: 'DROP', references: 0, rules: [{ text: '-j X' }] },
      { name: 'X', builtin: false, references: 1, rules: [{ text: '-j DROP' }] },
    ];
    expect(renderSpecs(chains, { verbose: false, oneChain: false })).toBe(
      '-P INPUT DROP\n-N X\n-A INPUT -j X\n-A X -j DROP\n',
    );
  });

  it('rounds counters as iptables does, wrap-around included', () => {
    expect(counterColumn('99999', false)).toBe('99999 ');
    expect(counterColumn('100499', false)).toBe(' 100K ');
    expect(counterColumn('9999500', false)).toBe('  10M ');
    expect(counterColumn('18446744073709551615', false)).toBe('   0K ');
    expect(counterColumn('123', true)).toBe('     123 ');
    expect(counterWords('98765432109', false)).toBe('99G ');
  });
});

describe('names for non-numeric listings', () => {
  it('reads the first name of each port and id', () => {
    const services = parseServices(
      'ssh\t\t22/tcp\t# SSH\nssh 22/udp\nalias-ssh 22/tcp\n# 23/tcp\ndomain 53/udp',
    );
    expect(services.get('22/tcp')).toBe('ssh');
    expect(services.get('53/udp')).toBe('domain');
    expect(services.has('23/tcp')).toBe(false);
    expect(parseIdFile('root:x:0:0:root:/root:/bin/bash\nbin:x:2:2::/:/bin/false').get(2)).toBe('bin');
    expect(NUMERIC_NAMES.service(22, 'tcp')).toBeUndefined();
  });
});
