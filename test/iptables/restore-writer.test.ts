import { describe, expect, it } from 'vitest';
import type { TableName } from '../../src/domain/family.js';
import type { Rule, Ruleset } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { RestoreBuilder } from '../../src/iptables/restore-builder.js';
import { ruleLine, writeRestore, writeTable } from '../../src/iptables/restore-writer.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { invalidArgument } from '../helpers/errors.js';

const spec = (text: string): Rule => parseRuleSpec(text, 'ipv4');

const RULESET: Ruleset = {
  family: 'ipv4',
  tables: [
    {
      name: 'filter',
      chains: [
        {
          name: 'INPUT',
          policy: 'DROP',
          counters: { packets: 10n, bytes: 600n },
          rules: [
            { ...spec('-p tcp --dport 22 -j ACCEPT'), counters: { packets: 3n, bytes: 180n } },
            spec('-m state --state ESTABLISHED,RELATED -j ACCEPT'),
          ],
        },
        { name: 'FORWARD', policy: 'ACCEPT', rules: [] },
        { name: 'OUTPUT', policy: 'ACCEPT', rules: [] },
        {
          name: 'LOG_AND_DROP',
          rules: [spec('-j LOG --log-prefix "iptables deny: " --log-level 7'), spec('-j DROP')],
        },
      ],
    },
    { name: 'raw', chains: [{ name: 'PREROUTING', policy: 'ACCEPT', rules: [] }] },
  ],
};

describe('writeRestore', () => {
  it('writes the exact restore text', () => {
    expect(writeRestore(RULESET)).toBe(`*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LOG_AND_DROP - [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A LOG_AND_DROP -j LOG --log-prefix "iptables deny: " --log-level 7
-A LOG_AND_DROP -j DROP
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
COMMIT
`);
  });

  it('writes counters when asked', () => {
    const text = writeRestore(RULESET, { counters: true });
    expect(text).toContain(':INPUT DROP [10:600]\n:FORWARD ACCEPT [0:0]\n');
    expect(text).toContain('\n[3:180] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n');
    expect(text).toContain('\n-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n');
  });

  it('is read back by parseSave as the same model', () => {
    expect(parseSave(writeRestore(RULESET), 'ipv4').tables[0]?.chains[3]).toEqual(
      RULESET.tables[0]?.chains[3],
    );
    const back = parseSave(writeRestore(RULESET, { counters: true }), 'ipv4', { counters: true });
    expect(back.tables[0]?.chains[0]).toEqual(RULESET.tables[0]?.chains[0]);
  });

  it('writes an empty ruleset as empty text', () => {
    expect(writeRestore({ family: 'ipv6', tables: [] })).toBe('');
  });

  it('quotes hostile but valid text so that it stays one token', () => {
    const rule = normalizeRule({ matches: [{ module: 'comment', comment: `a" -j DROP # \\ 'x` }] }, 'ipv4');
    const line = ruleLine('INPUT', rule);
    expect(line).toBe(`-A INPUT -m comment --comment "a\\" -j DROP # \\\\ \\'x"`);
    const back = parseSave(`*filter\n:INPUT ACCEPT [0:0]\n${line}\nCOMMIT\n`, 'ipv4');
    expect(back.tables[0]?.chains[0]?.rules[0]).toEqual(rule);
  });

  it('refuses models that were not validated rather than write a second line', () => {
    const bad = (r: unknown, chain = 'INPUT'): string =>
      writeTable({ name: 'filter', chains: [{ name: chain, policy: 'ACCEPT', rules: [r as Rule] }] });
    const hostile: unknown[] = [
      { matches: [{ module: 'comment', comment: 'x\n-A INPUT -j ACCEPT' }] },
      { matches: [{ module: 'foo', raw: ['a\u0000b'] }] },
      { source: '192.0.2.1\n-F', matches: [] },
      { matches: [], target: { jump: 'X\r\nCOMMIT' } },
      { matches: [], target: { target: 'LOG', prefix: 'a\nb' } },
    ];
    for (const r of hostile) invalidArgument(() => bad(r));
    expect(invalidArgument(() => bad({ matches: [] }, 'IN\nPUT')).field).toBe('chain');
    expect(invalidArgument(() => bad({ matches: [] }, 'a b')).field).toBe('chain');
    invalidArgument(() => writeTable({ name: 'filter\n*nat' as TableName, chains: [] }));
    invalidArgument(() =>
      writeTable({ name: 'filter', chains: [{ name: 'INPUT', policy: 'REJECT' as 'DROP', rules: [] }] }),
    );
  });
});

describe('RestoreBuilder', () => {
  const r = spec('-p tcp --dport 22 -j ACCEPT');

  it('renders an empty builder as the empty string', () => {
    const b = new RestoreBuilder();
    expect(b.isEmpty).toBe(true);
    expect(b.toString()).toBe('');
  });

  it('groups commands by table in first-use order, leaving out tables without commands', () => {
    const b = new RestoreBuilder()
      .newChain('filter', 'SSH')
      .append('filter', 'SSH', r)
      .policy('nat', 'PREROUTING', 'ACCEPT')
      .insert('filter', 'INPUT', 1, spec('-j SSH'))
      .replace('filter', 'SSH', 1, spec('-j DROP'))
      .deleteAt('filter', 'INPUT', 3)
      .flush('filter', 'SSH')
      .flush('raw')
      .zero('filter')
      .zero('filter', 'INPUT')
      .rename('filter', 'SSH', 'SSH2')
      .deleteChain('filter', 'SSH2')
      .policy('filter', 'INPUT', 'DROP');
    expect(b.isEmpty).toBe(false);
    expect(b.toString()).toBe(`*filter
-N SSH
-A SSH -p tcp -m tcp --dport 22 -j ACCEPT
-I INPUT 1 -j SSH
-R SSH 1 -j DROP
-D INPUT 3
-F SSH
-Z
-Z INPUT
COMMIT
*filter
-E SSH SSH2
COMMIT
*filter
-X SSH2
-P INPUT DROP
COMMIT
*nat
-P PREROUTING ACCEPT
COMMIT
*raw
-F
COMMIT
`);
  });

  it.each<[string, (b: RestoreBuilder) => unknown, string]>([
    ['a chain with a newline', (b) => b.append('filter', 'INPUT\n-F', r), 'chain'],
    ['a chain with a space', (b) => b.flush('filter', 'IN PUT'), 'chain'],
    ['a 29-character chain', (b) => b.newChain('filter', 'x'.repeat(29)), 'chain'],
    ['a reserved new chain', (b) => b.newChain('filter', 'ACCEPT'), 'chain'],
    ['a target name as new chain', (b) => b.newChain('filter', 'LOG'), 'chain'],
    ['a reserved rename', (b) => b.rename('filter', 'A', 'DROP'), 'newName'],
    ['position 0', (b) => b.insert('filter', 'INPUT', 0, r), 'position'],
    ['a negative position', (b) => b.deleteAt('filter', 'INPUT', -1), 'position'],
    ['a fractional position', (b) => b.replace('filter', 'INPUT', 1.5, r), 'position'],
    ['a NaN position', (b) => b.deleteAt('filter', 'INPUT', Number.NaN), 'position'],
    ['a huge position', (b) => b.deleteAt('filter', 'INPUT', 2 ** 40), 'position'],
    ['a bad policy', (b) => b.policy('filter', 'INPUT', 'REJECT' as 'DROP'), 'policy'],
    ['a bad table', (b) => b.flush('filter\nCOMMIT' as TableName), 'table'],
  ])('refuses %s', (_name, call, field) => {
    const b = new RestoreBuilder();
    expect(invalidArgument(() => call(b)).field).toBe(field);
    expect(b.isEmpty).toBe(true);
    expect(b.toString()).toBe('');
  });

  it('ends a block before renaming a chain it created, and after any rename', () => {
    const b = new RestoreBuilder()
      .rename('filter', 'OLD', 'OLD2')
      .newChain('filter', 'NEW')
      .rename('filter', 'NEW', 'NEW2')
      .append('filter', 'NEW2', r);
    expect(b.toString()).toBe(
      '*filter\n-E OLD OLD2\nCOMMIT\n*filter\n-N NEW\nCOMMIT\n*filter\n-E NEW NEW2\nCOMMIT\n*filter\n-A NEW2 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n',
    );
  });

  it('ends a block before creating a chain it deleted (a retry after a concurrent commit would skip the -N)', () => {
    const b = new RestoreBuilder()
      .flush('filter', 'C')
      .deleteChain('filter', 'C')
      .deleteChain('filter', 'D')
      .newChain('filter', 'E')
      .newChain('filter', 'C')
      .append('filter', 'C', r)
      .newChain('filter', 'D');
    expect(b.toString()).toBe(
      '*filter\n-F C\n-X C\n-X D\n-N E\nCOMMIT\n*filter\n-N C\n-A C -p tcp -m tcp --dport 22 -j ACCEPT\n-N D\nCOMMIT\n',
    );
  });

  it('sets a policy again after a zero that would undo it', () => {
    const b = new RestoreBuilder()
      .policy('filter', 'INPUT', 'DROP')
      .policy('filter', 'FORWARD', 'DROP')
      .zero('filter', 'INPUT')
      .zero('filter');
    expect(b.toString()).toBe(
      '*filter\n-P INPUT DROP\n-P FORWARD DROP\n-Z INPUT\n-P INPUT DROP\n-Z\n-P INPUT DROP\n-P FORWARD DROP\nCOMMIT\n',
    );
  });

  it('reports the owner of every line, the blocks and the rules added', () => {
    const built = new RestoreBuilder()
      .add({ op: 'append', table: 'filter', chain: 'INPUT', rule: r }, 7)
      .add({ op: 'policy', table: 'nat', chain: 'OUTPUT', policy: 'ACCEPT' }, 8)
      .add({ op: 'insert', table: 'filter', chain: 'INPUT', position: 1, rule: r }, 9)
      .build();
    expect(built.owners).toEqual([undefined, 7, 9, undefined, undefined, 8, undefined]);
    expect(built.blocks).toEqual([
      { table: 'filter', commitLine: 4, changes: true },
      { table: 'nat', commitLine: 7, changes: true },
    ]);
    expect(built.adds).toEqual([0, 2]);
  });

  it('a refused command leaves earlier ones intact', () => {
    const b = new RestoreBuilder().append('filter', 'INPUT', r);
    invalidArgument(() =>
      b.append('filter', 'INPUT', { matches: [{ module: 'comment', comment: 'a\nb' }] } as Rule),
    );
    expect(b.toString()).toBe('*filter\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n');
  });
});
