/**
 * The command table: every command and option the portcullis command knows, with its help
 * text and an example. It is the one source for `--help`, for the argument parser's list of
 * subcommand options, and for the bash completion script (completion.ts), so none of them
 * can drift from the others. Pure data.
 */

export interface OptionDef {
  /** Spellings, short first (`-t`, `--table`). */
  readonly names: readonly string[];
  /** Key under which the parser stores the value. */
  readonly key: string;
  /** The argument's name when the option takes one (`TABLE`). */
  readonly arg?: string;
  /** Values to offer in shell completion. */
  readonly values?: readonly string[];
  /** The argument is a file (shell completion offers file names). */
  readonly file?: boolean;
  readonly help: string;
}

export interface CommandDef {
  /** `-A` for iptables' verbs, the word for the others (`save`). */
  readonly name: string;
  /** Every spelling (`-A`, `--append`). */
  readonly names: readonly string[];
  readonly synopsis: string;
  readonly summary: string;
  /** Command lines shown under "Example". */
  readonly examples: readonly string[];
  /** Options of this command beyond the common ones. */
  readonly options: readonly OptionDef[];
  /** `iptables`: an iptables verb; `command`: a word of its own. */
  readonly kind: 'iptables' | 'command';
  /** The first operand is a chain (for completion). */
  readonly chainOperand?: boolean;
  /** It reads: `--json` prints the API's answer. */
  readonly reads?: boolean;
}

export const TABLES = ['filter', 'nat', 'mangle', 'raw', 'security'] as const;
export const FAMILIES = ['ipv4', 'ipv6'] as const;
export const POLICIES = ['ACCEPT', 'DROP'] as const;

/** Options every command takes. */
export const COMMON_OPTIONS: readonly OptionDef[] = [
  { names: ['-4', '--ipv4'], key: 'ipv4', help: 'IPv4 (iptables), the default.' },
  { names: ['-6', '--ipv6'], key: 'ipv6', help: 'IPv6 (ip6tables).' },
  { names: ['--family'], key: 'family', arg: 'FAMILY', values: FAMILIES, help: 'ipv4 or ipv6.' },
  { names: ['--json'], key: 'json', help: "Print the API's JSON answer instead of text." },
  {
    names: ['--socket'],
    key: 'socket',
    arg: 'PATH',
    file: true,
    help: 'Unix socket of the service (default PORTCULLIS_SOCKET, else /run/portcullis/portcullis.sock).',
  },
  {
    names: ['--url'],
    key: 'url',
    arg: 'URL',
    help: 'Talk to the service over TCP instead (default PORTCULLIS_URL); the token comes from PORTCULLIS_TOKEN.',
  },
  {
    names: ['--token-file'],
    key: 'tokenFile',
    arg: 'FILE',
    file: true,
    help: 'Read the bearer token from FILE instead of PORTCULLIS_TOKEN.',
  },
  {
    names: ['--cacert'],
    key: 'cacert',
    arg: 'FILE',
    file: true,
    help: 'CA certificate(s) to trust for an https URL.',
  },
  {
    names: ['--cert'],
    key: 'cert',
    arg: 'FILE',
    file: true,
    help: 'Client certificate for an https URL (with --key).',
  },
  { names: ['--key'], key: 'key', arg: 'FILE', file: true, help: 'Key of the client certificate.' },
  {
    names: ['--allow-lockout'],
    key: 'allowLockout',
    help: 'Apply a change even if the service finds it would cut SSH, the API or your own connection.',
  },
  {
    names: ['--confirm'],
    key: 'confirm',
    arg: 'SECONDS',
    help: 'Commit-confirmed: the change rolls back after SECONDS unless `portcullis confirm ID` (the ID is printed).',
  },
  { names: ['-h', '--help'], key: 'help', help: 'Show help (of the command, when one is given).' },
  { names: ['-V', '--version'], key: 'version', help: 'Print the version.' },
];

/** iptables' options kept for scripts; the service serializes changes itself. */
export const COMPAT_OPTIONS: readonly OptionDef[] = [
  { names: ['-w', '--wait'], key: 'wait', help: 'Accepted and ignored: the service orders every change.' },
  { names: ['-W', '--wait-interval'], key: 'waitInterval', arg: 'USEC', help: 'Accepted and ignored.' },
];

const TABLE_OPTION: OptionDef = {
  names: ['-t', '--table'],
  key: 'table',
  arg: 'TABLE',
  values: TABLES,
  help: 'The table (filter, nat, mangle, raw, security); filter by default.',
};

const LIST_OPTIONS: readonly OptionDef[] = [
  TABLE_OPTION,
  { names: ['-n', '--numeric'], key: 'numeric', help: 'Addresses, ports and protocols as numbers.' },
  { names: ['-v', '--verbose'], key: 'verbose', help: 'Counters and interfaces (-L); counters (-S).' },
  { names: ['-x', '--exact'], key: 'exact', help: 'Exact counters instead of K, M, G.' },
  { names: ['--line-numbers'], key: 'lineNumbers', help: 'Rule numbers in front of each rule.' },
];

const RULE_HELP = 'RULE-SPEC is what iptables takes after the chain, e.g. -p tcp --dport 22 -j ACCEPT.';

function verb(
  names: readonly [string, string],
  synopsis: string,
  summary: string,
  examples: readonly string[],
  extra: Partial<Pick<CommandDef, 'options' | 'reads'>> = {},
): CommandDef {
  return {
    name: names[0],
    names,
    synopsis: `portcullis ${synopsis}`,
    summary,
    examples,
    options: extra.options ?? [TABLE_OPTION],
    kind: 'iptables',
    chainOperand: true,
    ...(extra.reads ? { reads: true } : {}),
  };
}

function command(
  name: string,
  synopsis: string,
  summary: string,
  examples: readonly string[],
  options: readonly OptionDef[] = [],
  reads = false,
): CommandDef {
  return {
    name,
    names: [name],
    synopsis: `portcullis ${synopsis}`,
    summary,
    examples,
    options,
    kind: 'command',
    ...(reads ? { reads: true } : {}),
  };
}

const RESTORE_OPTIONS: readonly OptionDef[] = [
  { names: ['-t', '--test'], key: 'test', help: 'Check the file and plan the change; apply nothing.' },
  {
    names: ['-n', '--noflush'],
    key: 'noflush',
    help: 'Keep what the file does not mention (chains it declares are still emptied, as iptables-restore does).',
  },
  {
    names: ['-T', '--table'],
    key: 'table',
    arg: 'TABLE',
    values: TABLES,
    help: 'Only this table of the file.',
  },
  { names: ['-c', '--counters'], key: 'counters', help: 'Not supported: counters are never restored.' },
];

const TRACE_OPTIONS: readonly OptionDef[] = [
  {
    names: ['--hook'],
    key: 'hook',
    arg: 'HOOK',
    values: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
    help: 'Where the packet enters: INPUT by default.',
  },
  { names: ['-p', '--protocol'], key: 'protocol', arg: 'PROTO', help: 'Protocol name or number.' },
  { names: ['-s', '--source'], key: 'source', arg: 'ADDRESS', help: 'Source address.' },
  { names: ['-d', '--destination'], key: 'destination', arg: 'ADDRESS', help: 'Destination address.' },
  { names: ['-i', '--in-interface'], key: 'inInterface', arg: 'NAME', help: 'Interface it arrives on.' },
  { names: ['-o', '--out-interface'], key: 'outInterface', arg: 'NAME', help: 'Interface it leaves by.' },
  { names: ['--sport'], key: 'sourcePort', arg: 'PORT', help: 'Source port.' },
  { names: ['--dport'], key: 'destinationPort', arg: 'PORT', help: 'Destination port.' },
  {
    names: ['--state', '--ctstate'],
    key: 'ctState',
    arg: 'STATE',
    values: ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'UNTRACKED'],
    help: 'Conntrack state (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED).',
  },
  {
    names: ['--icmp-type', '--icmpv6-type'],
    key: 'icmpType',
    arg: 'TYPE',
    help: 'ICMP type, by name or number.',
  },
  {
    names: ['--tcp-flags'],
    key: 'tcpFlags',
    arg: 'FLAGS',
    help: 'TCP flags that are set, comma-separated (SYN,ACK).',
  },
  { names: ['--syn'], key: 'syn', help: 'A TCP SYN (flags SYN only).' },
  { names: ['--mark'], key: 'mark', arg: 'MARK', help: 'Packet mark.' },
  { names: ['-f', '--fragment'], key: 'fragment', help: 'A second or later fragment.' },
  { names: ['--length'], key: 'length', arg: 'BYTES', help: 'Layer-3 length.' },
];

export const COMMANDS: readonly CommandDef[] = [
  verb(
    ['-A', '--append'],
    '[-t TABLE] -A CHAIN RULE-SPEC',
    `Append a rule to the end of CHAIN. ${RULE_HELP}`,
    ['portcullis -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT'],
  ),
  verb(
    ['-C', '--check'],
    '[-t TABLE] -C CHAIN RULE-SPEC',
    'Exit 0 when CHAIN has this rule, else 1 (a dry run of -D: over TCP it needs a write token).',
    ['portcullis -C INPUT -p tcp --dport 22 -j ACCEPT || portcullis -A INPUT -p tcp --dport 22 -j ACCEPT'],
  ),
  verb(
    ['-D', '--delete'],
    '[-t TABLE] -D CHAIN RULE-SPEC | -D CHAIN RULENUM',
    'Delete the matching rule, or the rule at RULENUM (1 is the first).',
    ['portcullis -D INPUT -p tcp --dport 22 -j ACCEPT', 'portcullis -D INPUT 3'],
  ),
  verb(
    ['-I', '--insert'],
    '[-t TABLE] -I CHAIN [RULENUM] RULE-SPEC',
    'Insert a rule at RULENUM (default 1, the head of the chain).',
    [
      'portcullis -I INPUT -i lo -j ACCEPT',
      'portcullis -I INPUT 2 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    ],
  ),
  verb(['-R', '--replace'], '[-t TABLE] -R CHAIN RULENUM RULE-SPEC', 'Replace the rule at RULENUM.', [
    'portcullis -R INPUT 1 -p tcp --dport 2222 -j ACCEPT',
  ]),
  verb(
    ['-L', '--list'],
    '[-t TABLE] -L [CHAIN [RULENUM]] [-n] [-v] [-x] [--line-numbers]',
    'List rules as iptables -L prints them (all chains, or CHAIN).',
    ['portcullis -L -n -v --line-numbers', 'portcullis -6 -L INPUT -n'],
    { options: LIST_OPTIONS, reads: true },
  ),
  verb(
    ['-S', '--list-rules'],
    '[-t TABLE] -S [CHAIN [RULENUM]] [-v]',
    'Print rules as iptables -S does: the lines that would create them.',
    ['portcullis -S', 'portcullis -t nat -S POSTROUTING'],
    { options: LIST_OPTIONS, reads: true },
  ),
  verb(
    ['-F', '--flush'],
    '[-t TABLE] -F [CHAIN]',
    'Delete every rule of CHAIN, or of every chain of the table.',
    ['portcullis -F LOG_AND_DROP'],
  ),
  verb(
    ['-Z', '--zero'],
    '[-t TABLE] -Z [CHAIN]',
    'Zero the packet and byte counters of CHAIN, or of the table.',
    ['portcullis -Z INPUT'],
  ),
  verb(['-N', '--new-chain'], '[-t TABLE] -N CHAIN', 'Create a user chain.', ['portcullis -N LOG_AND_DROP']),
  verb(
    ['-X', '--delete-chain'],
    '[-t TABLE] -X [CHAIN]',
    'Delete an empty, unreferenced user chain, or every user chain of the table.',
    ['portcullis -X LOG_AND_DROP'],
  ),
  verb(['-P', '--policy'], '[-t TABLE] -P CHAIN POLICY', "Set a built-in chain's policy (ACCEPT or DROP).", [
    'portcullis -P INPUT DROP',
  ]),
  verb(
    ['-E', '--rename-chain'],
    '[-t TABLE] -E OLD-CHAIN NEW-CHAIN',
    'Rename a user chain; rules that jump to it follow.',
    ['portcullis -E LOG_AND_DROP SSH_BLOCK'],
  ),
  command(
    'save',
    'save [-t TABLE]',
    'Print the ruleset as iptables-save text (without counters).',
    ['portcullis save > rules.v4', 'portcullis -6 save -t filter'],
    [TABLE_OPTION],
    true,
  ),
  command(
    'restore',
    'restore [--test] [--noflush] [-T TABLE] [FILE]',
    'Make the tables of an iptables-save file (stdin by default) the ruleset, in one atomic change.',
    ['portcullis restore < rules.v4', 'portcullis restore --test < rules.v4 && echo ok'],
    RESTORE_OPTIONS,
  ),
  command(
    'diff',
    'diff [--noflush] [-T TABLE] [FILE]',
    'Show what restore would change, applying nothing.',
    ['portcullis diff < rules.v4'],
    RESTORE_OPTIONS.filter((o) => o.key !== 'test'),
    true,
  ),
  command(
    'trace',
    'trace [--hook HOOK] [-p PROTO] [-s ADDR] [-d ADDR] [--dport PORT] ...',
    'Show the path and verdict of a packet through the ruleset (the simulator).',
    ['portcullis trace -p tcp -s 198.51.100.7 --dport 22'],
    TRACE_OPTIONS,
    true,
  ),
  command(
    'lint',
    'lint',
    'Report rules that can never match, duplicates, risky policies and the like.',
    ['portcullis lint'],
    [],
    true,
  ),
  command(
    'watch',
    'watch',
    'Print every change to the ruleset as it happens, one line each, until interrupted.',
    ['portcullis watch'],
    [],
    true,
  ),
  command(
    'status',
    'status',
    'Show the service: revision, backend, families, queue.',
    ['portcullis status'],
    [],
    true,
  ),
  command(
    'pending',
    'pending',
    'List changes applied with --confirm that wait for a confirmation, soonest deadline first.',
    ['portcullis pending'],
    [],
    true,
  ),
  command('confirm', 'confirm ID', 'Keep a change applied with --confirm.', [
    'portcullis --confirm 60 -P INPUT DROP && portcullis confirm 0123456789abcdef',
  ]),
  command('rollback', 'rollback ID', 'Undo a change applied with --confirm now (its own diff).', [
    'portcullis rollback 0123456789abcdef',
  ]),
  command(
    'limit',
    'limit PORT [--hitcount N] [--seconds S] [--method recent|hashlimit] [--action DROP|REJECT] [--test]',
    'Rate-limit new connections to a port per source: the secure-server article in one call.',
    ['portcullis limit ssh --hitcount 4 --seconds 60', 'portcullis limit 443 --method hashlimit --test'],
    [
      {
        names: ['--hitcount'],
        key: 'hitcount',
        arg: 'N',
        help: 'New connections per window from one source (4).',
      },
      { names: ['--seconds'], key: 'seconds', arg: 'S', help: 'The window in seconds (60).' },
      {
        names: ['--method'],
        key: 'method',
        arg: 'METHOD',
        values: ['recent', 'hashlimit'],
        help: 'recent (as in the article) or hashlimit.',
      },
      {
        names: ['--action'],
        key: 'action',
        arg: 'ACTION',
        values: ['DROP', 'REJECT'],
        help: 'What happens over the limit (DROP).',
      },
      {
        names: ['-p', '--protocol'],
        key: 'protocol',
        arg: 'PROTO',
        values: ['tcp', 'udp'],
        help: 'tcp (default) or udp.',
      },
      { names: ['--chain'], key: 'chain', arg: 'CHAIN', help: 'The LOG-then-DROP chain (LOG_AND_DROP).' },
      { names: ['--test'], key: 'test', help: 'Plan only: show what would change.' },
    ],
  ),
  command(
    'harden',
    'harden [--allow-ssh-from LIST] [--ssh-port N] [--test]',
    'Accept loopback, replies, ICMPv6 discovery and SSH, then policy DROP on INPUT, in one safe step.',
    ['portcullis harden --allow-ssh-from 192.0.2.0/24', 'portcullis --confirm 300 harden'],
    [
      {
        names: ['--allow-ssh-from'],
        key: 'allowSshFrom',
        arg: 'LIST',
        help: 'Addresses or CIDRs, comma-separated (anywhere).',
      },
      { names: ['--ssh-port'], key: 'sshPort', arg: 'PORT', help: 'The SSH port (22).' },
      { names: ['--test'], key: 'test', help: 'Plan only: show what would change.' },
    ],
  ),
  command('completion', 'completion bash', 'Print the bash completion script.', [
    'portcullis completion bash > /etc/bash_completion.d/portcullis',
  ]),
  command('help', 'help [COMMAND]', 'Show help of a command.', ['portcullis help -A']),
];

/** The command with this spelling (`-A`, `--append`, `save`). */
export function findCommand(name: string): CommandDef | undefined {
  return COMMANDS.find((c) => c.names.includes(name));
}
