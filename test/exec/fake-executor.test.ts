import { describe, expect, it } from 'vitest';
import { isDomainError } from '../../src/domain/errors.js';
import type { Family } from '../../src/domain/family.js';
import type { Rule } from '../../src/domain/model.js';
import { ExecError, type ExecErrorKind } from '../../src/exec/executor.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { parseRestore, parseRestorePartial } from '../../src/exec/testing/restore-parser.js';
import { parseSave } from '../../src/iptables/save-parser.js';

const filter = (...lines: string[]) => `*filter\n${lines.join('\n')}\nCOMMIT\n`;
const BASE = filter(
  ':INPUT DROP [0:0]',
  ':FOO - [0:0]',
  ':BAR - [0:0]',
  ':EMPTY - [0:0]',
  '-A INPUT -i lo -j ACCEPT',
  '-A INPUT -j FOO',
  '-A FOO -p tcp --dport 22 -j ACCEPT',
  '-A BAR -j DROP',
);

async function withBase(family: Family = 'ipv4'): Promise<FakeExecutor> {
  const fake = new FakeExecutor();
  await fake.restore(family, BASE);
  return fake;
}

/** The save output without the table header noise: the `:` and `-A` lines. */
async function lines(fake: FakeExecutor, family: Family = 'ipv4'): Promise<string[]> {
  return (await fake.save(family)).split('\n').filter((l) => l.startsWith(':') || l.startsWith('-A'));
}

async function failure(p: Promise<unknown>): Promise<ExecError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ExecError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

describe('parseRestore', () => {
  it('reads every command form into table blocks', () => {
    const blocks = parseRestore(
      [
        '# comment',
        '*filter',
        ':INPUT DROP [1:2]',
        ':FOO - [0:0]',
        '[3:4] -A INPUT -p tcp --dport 22 -j ACCEPT',
        '-I INPUT -j FOO',
        '-I INPUT 2 -j DROP',
        '-R INPUT 1 -j ACCEPT',
        '-D INPUT 3',
        '-D INPUT -j DROP',
        '-N BAR',
        '-X BAR',
        '-X',
        '-F FOO',
        '-F',
        '-Z FOO',
        '-Z',
        '-P INPUT ACCEPT',
        '-E FOO SSH',
        'COMMIT',
        '*nat',
        'COMMIT',
        '',
      ].join('\n'),
      'ipv4',
    );
    expect(blocks.map((b) => [b.table, b.line, b.commitLine])).toEqual([
      ['filter', 2, 20],
      ['nat', 21, 22],
    ]);
    const ops = blocks[0]?.commands.map((c) => {
      const { rule, ...rest } = c as typeof c & { rule?: unknown };
      return rule === undefined ? rest : { ...rest, rule: 'R' };
    });
    expect(ops).toEqual([
      { op: 'declare', line: 3, chain: 'INPUT', policy: 'DROP', counters: { packets: 1n, bytes: 2n } },
      { op: 'declare', line: 4, chain: 'FOO', policy: '-', counters: { packets: 0n, bytes: 0n } },
      { op: 'append', line: 5, chain: 'INPUT', rule: 'R' },
      { op: 'insert', line: 6, chain: 'INPUT', position: 1, rule: 'R' },
      { op: 'insert', line: 7, chain: 'INPUT', position: 2, rule: 'R' },
      { op: 'replace', line: 8, chain: 'INPUT', position: 1, rule: 'R' },
      { op: 'deleteAt', line: 9, chain: 'INPUT', position: 3 },
      { op: 'deleteRule', line: 10, chain: 'INPUT', rule: 'R' },
      { op: 'newChain', line: 11, chain: 'BAR' },
      { op: 'deleteChain', line: 12, chain: 'BAR' },
      { op: 'deleteChain', line: 13 },
      { op: 'flush', line: 14, chain: 'FOO' },
      { op: 'flush', line: 15 },
      { op: 'zero', line: 16, chain: 'FOO' },
      { op: 'zero', line: 17 },
      { op: 'policy', line: 18, chain: 'INPUT', policy: 'ACCEPT' },
      { op: 'rename', line: 19, chain: 'FOO', newName: 'SSH' },
    ]);
    const append = blocks[0]?.commands[2] as { rule: unknown };
    expect(append.rule).toEqual({
      protocol: 'tcp',
      matches: [{ module: 'tcp', dport: '22' }],
      target: { target: 'ACCEPT' },
      counters: { packets: 3n, bytes: 4n },
    });
  });

  it.each([
    ['-A INPUT -j ACCEPT\n', 1, 'outside_table'],
    ['COMMIT\n', 1, 'outside_table'],
    ['*filter\n-A INPUT -j ACCEPT\n', 3, 'missing_commit'],
    ['*filter\n-A INPUT -j ACCEPT', 3, 'missing_commit'],
    ['*nosuch\nCOMMIT\n', 1, 'syntax'],
    ['*filter\n*nat\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n:FOO\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-A INPUT --bogus\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-I INPUT 0 -j ACCEPT\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-R INPUT -j ACCEPT\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-N FOO extra\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-P INPUT\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-E FOO\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-L\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-A\nCOMMIT\n', 2, 'syntax'],
    ['*filter\n-A INPUT -m comment --comment "open\nCOMMIT\n', 2, 'syntax'],
    ['# x\n\n*filter\n\n-A INPUT -s 999.1.1.1 -j DROP\nCOMMIT\n', 5, 'syntax'],
  ])('%j fails at line %i (%s)', (text, line, problem) => {
    let error: unknown;
    try {
      parseRestore(text, 'ipv4');
    } catch (e) {
      error = e;
    }
    expect(isDomainError(error, 'invalid_argument')).toBe(true);
    expect((error as { details: unknown }).details).toMatchObject({ line, problem });
  });

  it('returns the blocks read before the first error', () => {
    const partial = parseRestorePartial(`${filter('-N A')}*nat\n-A OUTPUT --bogus\nCOMMIT\n`, 'ipv4');
    expect(partial.blocks.map((b) => b.table)).toEqual(['filter']);
    expect(partial.error?.details).toMatchObject({ line: 5, problem: 'syntax' });
  });

  it('tells jumps from targets with isChain', () => {
    const ruleOf = (blocks: ReturnType<typeof parseRestore>) =>
      (blocks[0]!.commands[0] as { rule: Rule }).rule;
    expect(ruleOf(parseRestore(filter('-A INPUT -j XYZ'), 'ipv4')).target).toEqual({ jump: 'XYZ' });
    expect(
      ruleOf(parseRestore(filter('-A INPUT -j XYZ'), 'ipv4', { isChain: (n) => n !== 'XYZ' })).target,
    ).toEqual({ target: 'XYZ', raw: [] });
  });
});

describe('FakeExecutor: state', () => {
  it('starts empty and shows a table once it is used, with every built-in chain', async () => {
    const fake = new FakeExecutor();
    expect(await fake.save('ipv4')).toBe('');
    await fake.restore('ipv4', filter(), { noflush: true });
    expect(await fake.save('ipv4')).toBe('');
    await fake.restore('ipv4', filter('-A INPUT -j ACCEPT'), { noflush: true });
    expect(await fake.save('ipv4')).toBe(
      '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n',
    );
    expect(await fake.save('ipv6')).toBe('');
  });

  it('prints what parseSave reads back, user chains sorted by name, tables in iptables-nft order', async () => {
    const fake = new FakeExecutor();
    await fake.restore(
      'ipv4',
      `*nat\n-N N\nCOMMIT\n${filter(':zeta - [0:0]', ':Alpha - [0:0]', '-A INPUT -j zeta')}*mangle\n-P FORWARD DROP\nCOMMIT\n`,
    );
    const text = await fake.save('ipv4');
    expect(text.split('\n').filter((l) => l.startsWith('*'))).toEqual(['*mangle', '*filter', '*nat']);
    const ruleset = parseSave(text, 'ipv4');
    expect(ruleset.tables.find((t) => t.name === 'filter')?.chains.map((c) => c.name)).toEqual([
      'INPUT',
      'FORWARD',
      'OUTPUT',
      'Alpha',
      'zeta',
    ]);
    expect(await fake.save('ipv4', { table: 'nat' })).toMatch(/^\*nat\n/);
    expect(await fake.save('ipv4', { table: 'raw' })).toBe('');
  });

  it('a full restore replaces the named tables only; an empty block deletes its table', async () => {
    const fake = await withBase();
    await fake.restore('ipv4', '*nat\n-N N\nCOMMIT\n');
    await fake.restore('ipv4', filter('-A OUTPUT -j ACCEPT'));
    expect(await lines(fake)).toEqual([
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      '-A OUTPUT -j ACCEPT',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':N - [0:0]',
    ]);
    await fake.restore('ipv4', filter());
    expect(await fake.save('ipv4', { table: 'filter' })).toBe('');
  });

  it('--noflush declarations: a user chain is created or flushed, a built-in gets its policy', async () => {
    const fake = await withBase();
    await fake.restore('ipv4', filter(':FOO - [0:0]', ':NEW - [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT -'), {
      noflush: true,
    });
    expect(await lines(fake)).toEqual([
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':BAR - [0:0]',
      ':EMPTY - [0:0]',
      ':FOO - [0:0]',
      ':NEW - [0:0]',
      '-A INPUT -i lo -j ACCEPT',
      '-A INPUT -j FOO',
      '-A BAR -j DROP',
    ]);
  });

  it.each([
    ['-I INPUT -j DROP', ['-A INPUT -j DROP', '-A INPUT -i lo -j ACCEPT', '-A INPUT -j FOO']],
    ['-I INPUT 2 -j DROP', ['-A INPUT -i lo -j ACCEPT', '-A INPUT -j DROP', '-A INPUT -j FOO']],
    ['-I INPUT 3 -j DROP', ['-A INPUT -i lo -j ACCEPT', '-A INPUT -j FOO', '-A INPUT -j DROP']],
    ['-R INPUT 1 -j DROP', ['-A INPUT -j DROP', '-A INPUT -j FOO']],
    ['-D INPUT 1', ['-A INPUT -j FOO']],
    ['-D INPUT -i lo -j ACCEPT', ['-A INPUT -j FOO']],
    ['-F INPUT', []],
    ['-F', []],
    ['-A INPUT -j EMPTY', ['-A INPUT -i lo -j ACCEPT', '-A INPUT -j FOO', '-A INPUT -j EMPTY']],
    ['-A INPUT -g EMPTY', ['-A INPUT -i lo -j ACCEPT', '-A INPUT -j FOO', '-A INPUT -g EMPTY']],
    ['-E FOO SSH', ['-A INPUT -i lo -j ACCEPT', '-A INPUT -j SSH']],
  ])('%s changes INPUT to %j', async (command, input) => {
    const fake = await withBase();
    await fake.restore('ipv4', filter(command), { noflush: true });
    expect((await lines(fake)).filter((l) => l.startsWith('-A INPUT '))).toEqual(input);
  });

  it.each([
    ['-N NEW', [':BAR - [0:0]', ':EMPTY - [0:0]', ':FOO - [0:0]', ':NEW - [0:0]']],
    ['-X EMPTY', [':BAR - [0:0]', ':FOO - [0:0]']],
    ['-F BAR\n-X BAR', [':EMPTY - [0:0]', ':FOO - [0:0]']],
    ['-F\n-X', []],
    ['-E FOO SSH', [':BAR - [0:0]', ':EMPTY - [0:0]', ':SSH - [0:0]']],
    ['-E EMPTY NEW\n-A EMPTY -j ACCEPT', [':BAR - [0:0]', ':FOO - [0:0]', ':NEW - [0:0]']],
  ])('%j leaves user chains %j', async (command, chains) => {
    const fake = await withBase();
    await fake.restore('ipv4', filter(command), { noflush: true });
    expect((await lines(fake)).filter((l) => / - \[/.test(l))).toEqual(chains);
  });

  it('-P sets a policy; -X of an empty ACCEPT built-in chain removes it from the kernel only', async () => {
    const fake = await withBase();
    await fake.restore('ipv4', filter('-P INPUT ACCEPT', '-P FORWARD DROP', '-F OUTPUT'), { noflush: true });
    expect((await lines(fake)).slice(0, 3)).toEqual([
      ':INPUT ACCEPT [0:0]',
      ':FORWARD DROP [0:0]',
      ':OUTPUT ACCEPT [0:0]',
    ]);
    await fake.restore('ipv4', filter('-X OUTPUT'), { noflush: true });
    const e = await failure(fake.restore('ipv4', filter('-X OUTPUT'), { noflush: true }));
    expect([e.kind, e.line]).toEqual(['not_found', 2]);
  });

  it('-D by spec deletes the first rule with the same canonical form', async () => {
    const fake = new FakeExecutor();
    await fake.restore(
      'ipv4',
      filter('-A INPUT -s 192.0.2.1 -j DROP', '-A INPUT -j ACCEPT', '-A INPUT -s 192.0.2.1 -j DROP'),
    );
    await fake.restore('ipv4', filter('-D INPUT -s 192.0.2.1/32 -j DROP'), { noflush: true });
    expect(await lines(fake)).toContain('-A INPUT -s 192.0.2.1/32 -j DROP');
    expect((await lines(fake)).filter((l) => l.startsWith('-A'))).toEqual([
      '-A INPUT -j ACCEPT',
      '-A INPUT -s 192.0.2.1/32 -j DROP',
    ]);
  });

  it('restores and zeroes counters with --counters', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', filter(':INPUT DROP [7:700]', '[5:100] -A INPUT -j ACCEPT'), {
      counters: true,
    });
    expect(await fake.save('ipv4', { counters: true })).toContain(':INPUT DROP [7:700]');
    expect(await fake.save('ipv4', { counters: true })).toContain('[5:100] -A INPUT -j ACCEPT');
    expect(await fake.save('ipv4')).toContain('\n-A INPUT -j ACCEPT\n');
    await fake.restore('ipv4', filter('-Z'), { noflush: true });
    expect(await fake.save('ipv4', { counters: true })).toContain(':INPUT DROP [0:0]\n');
    expect(await fake.save('ipv4', { counters: true })).toContain('[0:0] -A INPUT -j ACCEPT');
  });

  it('ignores counters without --counters', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', filter(':INPUT DROP [7:700]', '[5:100] -A INPUT -j ACCEPT'));
    expect(await fake.save('ipv4', { counters: true })).toContain(':INPUT DROP [0:0]');
    expect(await fake.save('ipv4', { counters: true })).toContain('[0:0] -A INPUT -j ACCEPT');
  });

  it('keeps families apart', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv6', filter('-A INPUT -s 2001:db8::1 -j DROP'));
    expect(await fake.save('ipv4')).toBe('');
    expect(await lines(fake, 'ipv6')).toContain('-A INPUT -s 2001:db8::1/128 -j DROP');
  });

  it('keeps target extensions without options as targets, not jumps', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', '*raw\n-A PREROUTING -j TRACE\nCOMMIT\n');
    expect(await lines(fake)).toContain('-A PREROUTING -j TRACE');
  });
});

interface ErrorCase {
  what: string;
  text: string;
  noflush?: boolean;
  kind: ExecErrorKind;
  line: number | undefined;
}

const errors: ErrorCase[] = [
  // not found
  { what: '-A to a missing chain', text: filter('-A NOPE -j ACCEPT'), kind: 'not_found', line: 2 },
  { what: '-I to a missing chain', text: filter('-I NOPE 1 -j ACCEPT'), kind: 'not_found', line: 2 },
  { what: '-R in a missing chain', text: filter('-R NOPE 1 -j ACCEPT'), kind: 'not_found', line: 2 },
  { what: '-D N in a missing chain', text: filter('-D NOPE 1'), kind: 'not_found', line: 2 },
  { what: '-D N past the end', text: filter('-D FOO 2'), kind: 'not_found', line: 2 },
  { what: '-D N of a built-in chain not used yet', text: filter('-D OUTPUT 1'), kind: 'not_found', line: 2 },
  { what: '-D by spec, no such rule', text: filter('-D FOO -j DROP'), kind: 'not_found', line: 2 },
  { what: '-D by spec in a missing chain', text: filter('-D NOPE -j DROP'), kind: 'not_found', line: 2 },
  { what: '-F of a missing chain', text: filter('-F NOPE'), kind: 'not_found', line: 2 },
  { what: '-Z of a missing chain', text: filter('-Z NOPE'), kind: 'not_found', line: 2 },
  { what: '-Z of a built-in chain not used yet', text: filter('-Z OUTPUT'), kind: 'not_found', line: 2 },
  { what: '-X of a missing chain', text: filter('-X NOPE'), kind: 'not_found', line: 2 },
  { what: '-X twice', text: filter('-X EMPTY', '-X EMPTY'), kind: 'not_found', line: 3 },
  { what: '-X of a built-in chain not used yet', text: filter('-X FORWARD'), kind: 'not_found', line: 2 },
  { what: '-E of a missing chain', text: filter('-E NOPE X'), kind: 'not_found', line: 2 },
  {
    what: 'jump to a missing chain (COMMIT line)',
    text: filter('-A INPUT -j NOPE', '-N X'),
    kind: 'not_found',
    line: 4,
  },
  {
    what: 'goto a missing chain (COMMIT line)',
    text: filter('-A INPUT -g NOPE'),
    kind: 'not_found',
    line: 3,
  },
  {
    what: 'jump to a chain created later',
    text: filter('-A INPUT -j LATER', '-N LATER'),
    kind: 'not_found',
    line: 4,
  },
  {
    what: 'the new name of -E is not usable yet',
    text: filter('-E EMPTY N', '-A N -j DROP'),
    kind: 'not_found',
    line: 3,
  },
  // already exists
  { what: '-N of an existing chain', text: filter('-N FOO'), kind: 'already_exists', line: 2 },
  { what: '-N of a built-in name', text: filter('-N OUTPUT'), kind: 'already_exists', line: 2 },
  { what: '-N twice', text: filter('-N A', '-N A'), kind: 'already_exists', line: 3 },
  { what: '-E to an existing name', text: filter('-E FOO BAR'), kind: 'already_exists', line: 2 },
  { what: '-E to a built-in name', text: filter('-E FOO FORWARD'), kind: 'already_exists', line: 2 },
  // busy and other kernel refusals
  { what: '-X of a referenced chain', text: filter('-X FOO'), kind: 'failed', line: 2 },
  { what: '-X of a chain with rules', text: filter('-X BAR'), kind: 'failed', line: 2 },
  { what: '-X of every chain, some busy', text: filter('-X'), kind: 'failed', line: 2 },
  { what: '-X of a built-in chain with policy DROP', text: filter('-X INPUT'), kind: 'failed', line: 2 },
  {
    what: '-X of a built-in chain with rules',
    text: filter('-P INPUT ACCEPT', '-X INPUT'),
    kind: 'failed',
    line: 3,
  },
  { what: '-E of a chain created in the batch', text: filter('-N A', '-E A B'), kind: 'not_found', line: 3 },
  { what: 'a loop reachable from INPUT', text: filter('-A FOO -j FOO'), kind: 'failed', line: 2 },
  { what: 'a jump to a built-in chain', text: filter('-A FOO -j INPUT'), kind: 'failed', line: 2 },
  { what: '-R past the end', text: filter('-R FOO 2 -j DROP'), kind: 'not_found', line: 2 },
  {
    what: 'a later command error wins over a kernel error',
    text: filter('-X FOO', '-A NOPE'),
    kind: 'not_found',
    line: 3,
  },
  // invalid input
  { what: '-I past the end', text: filter('-I FOO 3 -j DROP'), kind: 'invalid_input', line: 2 },
  { what: '-I at 0', text: filter('-I FOO 0 -j DROP'), kind: 'invalid_input', line: 2 },
  { what: '-P on a user chain', text: filter('-P FOO DROP'), kind: 'invalid_input', line: 2 },
  { what: '-P on a missing chain', text: filter('-P NOPE DROP'), kind: 'invalid_input', line: 2 },
  { what: '-P with a bad policy', text: filter('-P INPUT REJECT'), kind: 'invalid_input', line: 2 },
  {
    what: 'a built-in declared with a bad policy',
    text: filter(':INPUT RETURN [0:0]'),
    kind: 'invalid_input',
    line: 2,
  },
  {
    what: '-E of a built-in chain (refused by the fake)',
    text: filter('-E INPUT X'),
    kind: 'invalid_input',
    line: 2,
  },
  { what: 'an unknown option', text: filter('-A INPUT --bogus'), kind: 'invalid_input', line: 2 },
  { what: 'an unknown match', text: filter('-A INPUT -m nosuch -j DROP'), kind: 'invalid_input', line: 2 },
  {
    what: 'options for an unknown target',
    text: filter('-A INPUT -j NOPE --foo 1'),
    kind: 'invalid_input',
    line: 2,
  },
  { what: 'a bad address', text: filter('-A INPUT -s 999.1.1.1 -j DROP'), kind: 'invalid_input', line: 2 },
  { what: 'MASQUERADE outside nat', text: filter('-A OUTPUT -j MASQUERADE'), kind: 'invalid_input', line: 2 },
  {
    what: 'a reading error wins over an earlier command error',
    text: filter('-A NOPE', '-A INPUT --x'),
    kind: 'invalid_input',
    line: 3,
  },
  { what: 'missing COMMIT', text: '*filter\n-N A\n', kind: 'invalid_input', line: 3 },
  { what: 'unknown table', text: '*nosuch\nCOMMIT\n', kind: 'invalid_input', line: 1 },
  { what: 'a table inside a table', text: '*filter\n*nat\nCOMMIT\n', kind: 'invalid_input', line: 2 },
  { what: 'a declaration without policy', text: filter(':FOO'), kind: 'invalid_input', line: 2 },
  // failed (iptables says only "line N failed")
  { what: 'a command outside a table', text: '-A INPUT -j ACCEPT\n', kind: 'failed', line: 1 },
  { what: 'COMMIT outside a table', text: '*filter\nCOMMIT\nCOMMIT\n', kind: 'failed', line: 3 },
];

describe('FakeExecutor: errors', () => {
  it.each(errors)('$what -> $kind at line $line', async ({ text, kind, line }) => {
    const fake = await withBase();
    const before = await fake.save('ipv4');
    const e = await failure(fake.restore('ipv4', text, { noflush: true }));
    expect({ kind: e.kind, line: e.line }).toEqual({ kind, line });
    expect(e.message).toMatch(/^iptables-restore failed/);
    expect(e.argv).toEqual(['iptables-restore', '-w', '10', '--noflush']);
    // All or nothing: the failing block changed nothing.
    expect(await fake.save('ipv4')).toBe(before);
  });

  it('quotes the failing line and keeps iptables-like stderr', async () => {
    const fake = await withBase();
    const e = await failure(fake.restore('ipv4', filter('-N A', '-A NOPE -j ACCEPT'), { noflush: true }));
    expect(e.lineText).toBe('-A NOPE -j ACCEPT');
    expect(e.stderr).toBe('iptables-restore: line 3 failed: No chain/target/match by that name.\n');
    expect(e.exitCode).toBe(1);
    expect(e.isNotFound()).toBe(true);
    const v6 = await failure(new FakeExecutor().restore('ipv6', filter('-A INPUT -j NOPE')));
    expect(v6.stderr).toMatch(/^ip6tables-restore v1\.8\.9 \(nf_tables\): Chain 'NOPE' does not exist\n/);
    expect(v6.exitCode).toBe(2);
  });

  it('commits table by table: a later failing block leaves earlier ones applied', async () => {
    const fake = new FakeExecutor();
    const text = `${filter('-A INPUT -j ACCEPT')}*nat\n-A NOPE -j ACCEPT\nCOMMIT\n*raw\n-N R\nCOMMIT\n`;
    const e = await failure(fake.restore('ipv4', text));
    expect([e.kind, e.line]).toEqual(['not_found', 5]);
    expect(await fake.save('ipv4')).toBe(
      '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n',
    );
    const parse = await failure(
      fake.restore('ipv4', `*raw\n-N R\nCOMMIT\n*nat\n-A OUTPUT --bogus\nCOMMIT\n`),
    );
    expect([parse.kind, parse.line]).toEqual(['invalid_input', 5]);
    expect(await fake.save('ipv4', { table: 'raw' })).toContain(':R - [0:0]');
  });

  it('refuses a NUL byte like the real executor', async () => {
    const e = await failure(new FakeExecutor().restore('ipv4', '*filter\n\0\nCOMMIT\n'));
    expect(e.kind).toBe('invalid_input');
  });
});

describe('FakeExecutor: --test', () => {
  it('validates reading only and changes nothing', async () => {
    const fake = await withBase();
    const before = await fake.save('ipv4');
    const result = await fake.restore('ipv4', filter('-N FOO', '-A NOPE', '-X INPUT', '-A INPUT -j DROP'), {
      noflush: true,
      test: true,
    });
    expect(result.pid).toBeUndefined();
    expect(await fake.save('ipv4')).toBe(before);
    const e = await failure(fake.restore('ipv4', filter('-A INPUT --bogus'), { test: true }));
    expect([e.kind, e.line]).toEqual(['invalid_input', 2]);
    const missing = await failure(fake.restore('ipv4', '*filter\n', { test: true }));
    expect([missing.kind, missing.line]).toEqual(['invalid_input', 2]);
  });
});

describe('FakeExecutor: API for tests', () => {
  it('counts calls and logs restores', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', filter('-N A'), { noflush: true });
    await failure(fake.restore('ipv6', filter('-X A')));
    await fake.save('ipv4');
    expect(fake.calls).toEqual({ save: 1, restore: 2, info: 0 });
    expect(fake.restores).toEqual([
      { family: 'ipv4', text: filter('-N A'), options: { noflush: true } },
      { family: 'ipv6', text: filter('-X A'), options: {} },
    ]);
  });

  it('reports a distinct pid per restore through the result and onSpawn', async () => {
    const fake = new FakeExecutor();
    const spawned: number[] = [];
    const a = await fake.restore('ipv4', filter('-N A'), { onSpawn: (pid) => spawned.push(pid) });
    const b = await fake.restore('ipv4', filter('-N B'), { onSpawn: (pid) => spawned.push(pid) });
    expect(a.pid).toBeTypeOf('number');
    expect(b.pid).not.toBe(a.pid);
    expect(spawned).toEqual([a.pid, b.pid]);
  });

  it('failNextRestore fails the next matching restore once, without changing anything', async () => {
    const fake = new FakeExecutor();
    const boom = new ExecError({ kind: 'lock_timeout', message: 'held', argv: [] });
    fake.failNextRestore(boom, (call) => call.family === 'ipv6');
    await fake.restore('ipv4', filter('-N A'));
    await expect(fake.restore('ipv6', filter('-N A'))).rejects.toBe(boom);
    expect(await fake.save('ipv6')).toBe('');
    await fake.restore('ipv6', filter('-N A'));
    expect(await fake.save('ipv6')).toContain(':A - [0:0]');
  });

  it('onRestore can fail calls by returning an error', async () => {
    const fake = new FakeExecutor({
      onRestore: (call) => (call.text.includes('BAD') ? new Error('injected') : undefined),
    });
    await fake.restore('ipv4', filter('-N GOOD'));
    await expect(fake.restore('ipv4', filter('-N BAD'))).rejects.toThrow('injected');
    expect(await fake.save('ipv4')).not.toContain('BAD');
    fake.onRestore = undefined;
    await fake.restore('ipv4', filter('-N BAD'), { noflush: true });
    expect(await fake.save('ipv4')).toContain(':BAD - [0:0]');
  });

  it('rejects aborted calls and reports its backend', async () => {
    const fake = new FakeExecutor();
    const signal = AbortSignal.abort(new Error('stop'));
    expect((await failure(fake.restore('ipv4', filter('-N A'), { signal }))).kind).toBe('aborted');
    expect((await failure(fake.save('ipv4', { signal }))).kind).toBe('aborted');
    expect(await fake.save('ipv4')).toBe('');
    expect(await fake.info('ipv4')).toEqual({ backend: 'nf_tables', version: '1.8.9' });
    expect(await new FakeExecutor({ info: { backend: 'legacy', version: '1.8.7' } }).info('ipv6')).toEqual({
      backend: 'legacy',
      version: '1.8.7',
    });
  });
});
