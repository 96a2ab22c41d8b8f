/**
 * The command line is read as iptables' getopt loop reads it: options anywhere, bundles,
 * optional CHAIN and RULENUM, rule words kept in order with the words their options take.
 */
import { describe, expect, it } from 'vitest';
import { type IptablesCommand, parseCommandLine, type WordCommand } from '../../src/cli/argv.js';
import { CliError } from '../../src/cli/errors.js';

function iptables(argv: string[]): IptablesCommand {
  const cmd = parseCommandLine(argv).command;
  if (cmd?.kind !== 'iptables') throw new Error(`not an iptables command: ${argv.join(' ')}`);
  return cmd;
}

function word(argv: string[]): WordCommand {
  const cmd = parseCommandLine(argv).command;
  if (cmd?.kind !== 'command') throw new Error(`not a command word: ${argv.join(' ')}`);
  return cmd;
}

function failure(argv: string[]): CliError {
  try {
    parseCommandLine(argv);
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

describe('iptables command lines', () => {
  it('reads the seed article line with its rule words in order', () => {
    const argv = ['-A', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '22', '-m', 'state', '--state', 'NEW'];
    expect(iptables(argv)).toMatchObject({
      verb: 'append',
      chain: 'INPUT',
      table: 'filter',
      ruleWords: ['-p', 'tcp', '-m', 'tcp', '--dport', '22', '-m', 'state', '--state', 'NEW'],
    });
  });

  it('takes -t, -4/-6 and list flags anywhere, also bundled', () => {
    expect(iptables(['-nvL', 'INPUT'])).toMatchObject({
      verb: 'list',
      chain: 'INPUT',
      numeric: true,
      verbose: true,
    });
    expect(iptables(['-L', '-n', '-t', 'nat', '--line-numbers', '-x'])).toMatchObject({
      table: 'nat',
      numeric: true,
      exact: true,
      lineNumbers: true,
    });
    expect(iptables(['-tnat', '-S'])).toMatchObject({ verb: 'list-rules', table: 'nat' });
    expect(iptables(['-A', 'INPUT', '-j', 'ACCEPT', '-t', 'raw']).table).toBe('raw');
    expect(parseCommandLine(['-6', '-L']).common.family).toBe('ipv6');
    expect(parseCommandLine(['--family=ipv6', '-L']).common.family).toBe('ipv6');
    expect(parseCommandLine(['-L']).common.family).toBe('ipv4');
    // iptables' getopt: an optional argument glued to -L is the chain.
    expect(iptables(['-LINPUT']).chain).toBe('INPUT');
  });

  it('takes CHAIN and RULENUM as iptables does', () => {
    expect(iptables(['-I', 'INPUT', '-j', 'ACCEPT'])).toMatchObject({
      position: 1,
      ruleWords: ['-j', 'ACCEPT'],
    });
    expect(iptables(['-I', 'INPUT', '3', '-j', 'ACCEPT']).position).toBe(3);
    expect(iptables(['-D', 'INPUT', '2'])).toMatchObject({ verb: 'delete', position: 2, ruleWords: [] });
    expect(iptables(['-D', 'INPUT', '-j', 'ACCEPT']).position).toBeUndefined();
    expect(iptables(['-R', 'INPUT', '1', '-j', 'DROP']).position).toBe(1);
    expect(iptables(['-L', 'INPUT', '2', '-n'])).toMatchObject({ chain: 'INPUT', position: 2 });
    expect(iptables(['-L', '-n']).chain).toBeUndefined();
    expect(iptables(['-P', 'INPUT', 'DROP'])).toMatchObject({
      verb: 'policy',
      chain: 'INPUT',
      policy: 'DROP',
    });
    expect(iptables(['-E', 'A', 'B'])).toMatchObject({ verb: 'rename', chain: 'A', newName: 'B' });
    expect(iptables(['--append', 'INPUT', '--jump', 'ACCEPT'])).toMatchObject({
      verb: 'append',
      chain: 'INPUT',
    });
    expect(iptables(['-X'])).toMatchObject({ verb: 'delete-chain' });
    expect(iptables(['-F', 'X']).chain).toBe('X');
  });

  it('keeps the words a rule option takes, even when they look like options', () => {
    expect(iptables(['-A', 'INPUT', '-m', 'comment', '--comment', '-n', '-j', 'DROP']).ruleWords).toEqual([
      '-m',
      'comment',
      '--comment',
      '-n',
      '-j',
      'DROP',
    ]);
    expect(iptables(['-A', 'INPUT', '-j', 'LOG', '--log-prefix', '-v ', '-n']).ruleWords).toEqual([
      '-j',
      'LOG',
      '--log-prefix',
      '-v ',
    ]);
    expect(
      iptables(['-A', 'INPUT', '-p', 'tcp', '!', '--tcp-flags', 'SYN,ACK', 'SYN', '-j', 'DROP']).ruleWords,
    ).toEqual(['-p', 'tcp', '!', '--tcp-flags', 'SYN,ACK', 'SYN', '-j', 'DROP']);
    expect(iptables(['-A', 'INPUT', '-m', 'comment', '--comment', '-h', '-j', 'DROP']).ruleWords).toContain(
      '-h',
    );
    // -w takes an optional number of seconds; it is accepted and ignored.
    expect(iptables(['-w', '5', '-A', 'INPUT', '-j', 'ACCEPT']).ruleWords).toEqual(['-j', 'ACCEPT']);
  });

  it.each<[string[], number, RegExp]>([
    [['-A'], 2, /requires an argument/],
    [['-A', 'INPUT', '-D', 'INPUT'], 2, /one command at a time/],
    [['-L', '-p', 'tcp'], 2, /takes no rule options/],
    [['-D', 'INPUT', '1', '-j', 'ACCEPT'], 2, /takes no rule specification/],
    [['-I', 'INPUT', '0', '-j', 'ACCEPT'], 2, /invalid rule number "0"/],
    [['-R', 'INPUT'], 2, /requires a rule number/],
    [['-P', 'INPUT'], 2, /requires a chain and a policy/],
    [['-E', 'A'], 2, /requires old-chain-name and new-chain-name/],
    [['-t', 'bogus', '-L'], 3, /table "bogus" does not exist/],
    [['-4', '-6', '-L'], 2, /one family/],
    [['-Q'], 2, /unknown option "-Q"/],
    [['-p', 'tcp'], 2, /no command specified/],
    [['bogus'], 2, /unknown command "bogus"/],
    [['save', '--bogus'], 2, /unknown option "--bogus" for save/],
    [['--url'], 2, /requires an argument/],
  ])('refuses %j with exit %i', (argv, code, message) => {
    const err = failure(argv);
    expect(err.exitCode).toBe(code);
    expect(err.message).toMatch(message);
  });
});

describe('command words', () => {
  it('reads restore with iptables-restore options (-t is --test there)', () => {
    const cmd = word(['restore', '-t', '--noflush', '-T', 'nat', 'rules.v4']);
    expect(Object.fromEntries(cmd.options)).toEqual({ test: true, noflush: true, table: 'nat' });
    expect(cmd.operands).toEqual(['rules.v4']);
  });

  it('takes common options before and after the word', () => {
    const inv = parseCommandLine(['-6', '--json', 'save', '-t', 'filter', '--socket', '/tmp/s']);
    expect(inv.common).toMatchObject({ family: 'ipv6', json: true, connection: { socket: '/tmp/s' } });
    expect(inv.command).toMatchObject({ kind: 'command', name: 'save' });
  });

  it('reads a packet for trace in iptables options', () => {
    const cmd = word(['trace', '-p', 'tcp', '-s', '198.51.100.7', '--dport', '22']);
    expect(Object.fromEntries(cmd.options)).toEqual({
      protocol: 'tcp',
      source: '198.51.100.7',
      destinationPort: '22',
    });
  });

  it('finds the help of a command', () => {
    expect(parseCommandLine(['-A', '--help']).helpFor?.name).toBe('-A');
    expect(parseCommandLine(['help', 'restore']).helpFor?.name).toBe('restore');
    expect(parseCommandLine(['save', '-h']).helpFor?.name).toBe('save');
    expect(parseCommandLine(['--help']).helpFor).toBeUndefined();
  });
});
