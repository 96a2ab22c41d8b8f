/**
 * `--help` text, from the command table (commands.ts): an overview of every command, and
 * per command its synopsis, what it does, its options and an example.
 */
import { COMMANDS, COMMON_OPTIONS, type CommandDef, type OptionDef } from './commands.js';

function optionLines(options: readonly OptionDef[]): string[] {
  const rows = options.map(
    (o) => [`${o.names.join(', ')}${o.arg === undefined ? '' : ` ${o.arg}`}`, o.help] as const,
  );
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}

export function commandHelp(def: CommandDef): string {
  const lines = [
    `Usage: ${def.synopsis}`,
    '',
    def.summary,
    ...(def.reads ? ["With --json, prints the API's JSON answer instead."] : []),
  ];
  if (def.options.length > 0) lines.push('', 'Options:', ...optionLines(def.options));
  lines.push('', def.examples.length > 1 ? 'Examples:' : 'Example:', ...def.examples.map((e) => `  ${e}`));
  lines.push('', 'Every command also takes the common options: portcullis --help lists them.');
  return `${lines.join('\n')}\n`;
}

export function overviewHelp(): string {
  const iptables = COMMANDS.filter((c) => c.kind === 'iptables');
  const words = COMMANDS.filter((c) => c.kind === 'command');
  const width = Math.max(...COMMANDS.map((c) => c.names.join(', ').length));
  const row = (c: CommandDef) =>
    `  ${c.names.join(', ').padEnd(width)}  ${c.summary.split('. ')[0]?.replace(/\.$/, '')}`;
  return `${[
    'Usage: portcullis [-4|-6] [-t TABLE] COMMAND [CHAIN] [RULE-SPEC] [options]',
    '       portcullis [-4|-6] WORD [options]',
    '',
    'iptables through the Portcullis service: the same verbs, options and exit statuses as',
    'iptables, with every change batched, checked and recorded by the service.',
    '',
    'iptables commands:',
    ...iptables.map(row),
    '',
    'Other commands:',
    ...words.map(row),
    '',
    'Common options:',
    ...optionLines(COMMON_OPTIONS),
    '',
    'Exit status: 0 done; 1 the change or read failed; 2 bad usage or a rule the service',
    'refuses; 3 no such table; 4 the service cannot be reached or refuses the token.',
    '',
    'Example:',
    '  portcullis -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT && portcullis -L INPUT -n',
    '',
    "portcullis COMMAND --help (or portcullis help COMMAND) shows a command's options and examples.",
  ].join('\n')}\n`;
}
