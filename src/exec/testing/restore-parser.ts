/**
 * `iptables-restore` input -> table blocks of commands. Pure. Test support: the
 * fake executor (fake-executor.ts) reads its input with it; production code only
 * writes restore input (src/iptables/restore-builder.ts), never reads it. It reads
 * rules with the production codec (rule parser, tokenizer), so what it accepts is
 * what the writer emits.
 *
 * Restore input is a superset of iptables-save output: besides `*table`,
 * `:CHAIN POLICY [p:b]` declarations, `-A` rules and `COMMIT`, a block may hold
 * any table command (`-I`, `-R`, `-D`, `-N`, `-X`, `-F`, `-Z`, `-P`, `-E`).
 * This parser checks only what iptables-restore itself rejects while reading
 * (syntax, rule options, rule numbers); whether a chain or rule exists is for
 * whoever applies the commands. Every error is a DomainError invalid_argument
 * whose `details` carry the 1-based `line`, its `text`, and a `problem`:
 * `outside_table` (a command or COMMIT before `*table`; iptables says only
 * "line N failed"), `missing_commit` (the input ends inside a table; `line` is
 * one past the last line, as iptables counts), or `syntax`.
 */
import { preview } from '../../domain/address.js';
import { DomainError } from '../../domain/errors.js';
import { type Family, isTableName, type TableName } from '../../domain/family.js';
import type { Counters, Rule } from '../../domain/model.js';
import { checkChainName } from '../../domain/validate.js';
import { parseRuleArgs } from '../../iptables/rule-parser.js';
import { splitRestoreWords, type Word } from '../../iptables/tokenize.js';

interface At {
  /** 1-based line of the input. */
  readonly line: number;
}

export type RestoreCommand =
  /** `:NAME POLICY [p:b]`: the policy text as written (`ACCEPT`, `DROP`, `-`, or anything). */
  | (At & {
      readonly op: 'declare';
      readonly chain: string;
      readonly policy: string;
      readonly counters?: Counters;
    })
  | (At & { readonly op: 'append'; readonly chain: string; readonly rule: Rule })
  /** `-I CHAIN [N]`: `position` defaults to 1. */
  | (At & { readonly op: 'insert'; readonly chain: string; readonly position: number; readonly rule: Rule })
  | (At & { readonly op: 'replace'; readonly chain: string; readonly position: number; readonly rule: Rule })
  | (At & { readonly op: 'deleteAt'; readonly chain: string; readonly position: number })
  | (At & { readonly op: 'deleteRule'; readonly chain: string; readonly rule: Rule })
  | (At & { readonly op: 'newChain'; readonly chain: string })
  /** `-X [CHAIN]`, `-F [CHAIN]`, `-Z [CHAIN]`: no chain means every chain of the table. */
  | (At & { readonly op: 'deleteChain' | 'flush' | 'zero'; readonly chain?: string })
  | (At & { readonly op: 'policy'; readonly chain: string; readonly policy: string })
  | (At & { readonly op: 'rename'; readonly chain: string; readonly newName: string });

/** One `*table` ... `COMMIT` block as read (restore-builder.ts' RestoreBlock is one being written). */
export interface ParsedBlock {
  readonly table: TableName;
  /** Line of `*table`. */
  readonly line: number;
  /** Line of its `COMMIT`. */
  readonly commitLine: number;
  readonly commands: readonly RestoreCommand[];
}

export type RestoreProblem = 'outside_table' | 'missing_commit' | 'syntax';

export interface ParseRestoreOptions {
  /**
   * Tells `-j NAME` without options apart: a jump to a user chain (true) or a
   * target extension without options (false). Default: every name that is not a
   * typed target is a chain.
   */
  readonly isChain?: (name: string) => boolean;
}

export interface PartialRestore {
  /** The blocks read completely before the first error, in input order. */
  readonly blocks: readonly ParsedBlock[];
  /** The first error, if any; it lies in the block after the last of `blocks` (or outside any block). */
  readonly error?: DomainError;
}

const COUNTERS = /^\[(\d{1,20}):(\d{1,20})\]$/;
const RULE_NUMBER = /^\d+$/;

const COMMAND_FLAGS: Readonly<Record<string, string>> = {
  '-A': 'A',
  '--append': 'A',
  '-I': 'I',
  '--insert': 'I',
  '-R': 'R',
  '--replace': 'R',
  '-D': 'D',
  '--delete': 'D',
  '-N': 'N',
  '--new-chain': 'N',
  '-X': 'X',
  '--delete-chain': 'X',
  '-F': 'F',
  '--flush': 'F',
  '-Z': 'Z',
  '--zero': 'Z',
  '-P': 'P',
  '--policy': 'P',
  '-E': 'E',
  '--rename-chain': 'E',
};

class LineError extends Error {
  constructor(
    readonly problem: RestoreProblem,
    message: string,
  ) {
    super(message);
  }
}

function syntax(message: string): never {
  throw new LineError('syntax', message);
}

function chainArg(token: string | undefined, what: string): string {
  if (token === undefined || token.startsWith('-')) syntax(`${what} needs a chain name`);
  try {
    return checkChainName(token, 'chain');
  } catch (e) {
    return syntax((e as Error).message);
  }
}

function ruleNumber(token: string): number {
  const n = Number.parseInt(token, 10);
  if (!RULE_NUMBER.test(token) || !Number.isSafeInteger(n) || n < 1)
    syntax(`invalid rule number "${preview(token)}" (rules are numbered from 1)`);
  return n;
}

function parseCommand(
  words: readonly Word[],
  line: number,
  table: TableName,
  family: Family,
  options: ParseRestoreOptions,
): RestoreCommand {
  const [flag, ...rest] = words.map((w) => w.value);
  const cmd = flag === undefined ? undefined : COMMAND_FLAGS[flag];
  if (cmd === undefined)
    syntax(`expected a command (-A, -I, -R, -D, -N, -X, -F, -Z, -P, -E), found "${preview(flag ?? '')}"`);
  /** The rule in the words from `rest[from]` on. */
  const rule = (from: number, chain: string): Rule => {
    try {
      return parseRuleArgs(words.slice(1 + from), family, {
        mode: 'save',
        field: `${table}/${chain}`,
        ...(options.isChain ? { isChain: options.isChain } : {}),
      });
    } catch (e) {
      return syntax((e as Error).message);
    }
  };
  const noMore = (args: string[]): void => {
    if (args.length > 0) syntax(`unexpected argument "${preview(args[0] as string)}" after ${flag}`);
  };
  switch (cmd) {
    case 'A': {
      const chain = chainArg(rest[0], flag as string);
      return { op: 'append', line, chain, rule: rule(1, chain) };
    }
    case 'I': {
      const chain = chainArg(rest[0], flag as string);
      const hasNumber = rest[1] !== undefined && !rest[1].startsWith('-') && rest[1] !== '!';
      const position = hasNumber ? ruleNumber(rest[1] as string) : 1;
      return { op: 'insert', line, chain, position, rule: rule(hasNumber ? 2 : 1, chain) };
    }
    case 'R': {
      const chain = chainArg(rest[0], flag as string);
      if (rest[1] === undefined || rest[1].startsWith('-')) syntax(`${flag} needs a rule number`);
      const position = ruleNumber(rest[1] as string);
      return { op: 'replace', line, chain, position, rule: rule(2, chain) };
    }
    case 'D': {
      const chain = chainArg(rest[0], flag as string);
      if (rest.length === 2 && !(rest[1] as string).startsWith('-') && rest[1] !== '!') {
        return { op: 'deleteAt', line, chain, position: ruleNumber(rest[1] as string) };
      }
      return { op: 'deleteRule', line, chain, rule: rule(1, chain) };
    }
    case 'N': {
      const chain = chainArg(rest[0], flag as string);
      noMore(rest.slice(1));
      return { op: 'newChain', line, chain };
    }
    case 'X':
    case 'F':
    case 'Z': {
      const op = cmd === 'X' ? 'deleteChain' : cmd === 'F' ? 'flush' : 'zero';
      if (rest.length === 0) return { op, line };
      const chain = chainArg(rest[0], flag as string);
      noMore(rest.slice(1));
      return { op, line, chain };
    }
    case 'P': {
      const chain = chainArg(rest[0], flag as string);
      const policy = rest[1];
      if (policy === undefined) syntax(`${flag} needs a policy`);
      noMore(rest.slice(2));
      return { op: 'policy', line, chain, policy: policy as string };
    }
    default: {
      const chain = chainArg(rest[0], flag as string);
      const newName = chainArg(rest[1], `${flag} ${chain}`);
      noMore(rest.slice(2));
      return { op: 'rename', line, chain, newName };
    }
  }
}

function parseDeclaration(text: string, line: number): RestoreCommand {
  const parts = text.slice(1).trim().split(/\s+/);
  const [name, policy, counters] = parts;
  if (name === undefined || name === '')
    syntax('expected a chain declaration ":NAME POLICY [packets:bytes]"');
  let chain: string;
  try {
    chain = checkChainName(name, 'chain');
  } catch (e) {
    return syntax((e as Error).message);
  }
  if (policy === undefined) syntax(`chain declaration of ${chain} has no policy`);
  const m = counters === undefined ? null : COUNTERS.exec(counters);
  const c = m ? { packets: BigInt(m[1] as string), bytes: BigInt(m[2] as string) } : undefined;
  return c
    ? { op: 'declare', line, chain, policy: policy as string, counters: c }
    : { op: 'declare', line, chain, policy: policy as string };
}

/** Strips a `[p:b]` or `-c P B` counters prefix from a command line. */
/** How many leading words are counters (`[p:b]`, `-c P B`). */
function counterWords(tokens: readonly string[]): number {
  if (tokens[0]?.startsWith('[')) {
    if (!COUNTERS.test(tokens[0])) syntax(`expected counters [packets:bytes], found "${preview(tokens[0])}"`);
    return 1;
  }
  if (tokens[0] === '-c' || tokens[0] === '--set-counters') {
    if (!RULE_NUMBER.test(tokens[1] ?? '') || !RULE_NUMBER.test(tokens[2] ?? ''))
      syntax(`${tokens[0]} needs packets and bytes`);
    return 3;
  }
  return 0;
}

/** Counters of a command line's `[p:b]` / `-c P B` prefix, if any. */
export function lineCounters(tokens: readonly string[]): Counters | undefined {
  const m = tokens[0] === undefined ? null : COUNTERS.exec(tokens[0]);
  if (m) return { packets: BigInt(m[1] as string), bytes: BigInt(m[2] as string) };
  if ((tokens[0] === '-c' || tokens[0] === '--set-counters') && tokens[1] && tokens[2])
    return { packets: BigInt(tokens[1]), bytes: BigInt(tokens[2]) };
  return undefined;
}

/** Number of lines iptables-restore reads from `text` (a last line without newline counts). */
export function countLines(text: string): number {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  return body === '' ? 0 : body.split('\n').length;
}

/**
 * Parses as far as the input is valid: the complete blocks before the first
 * error, and that error. Appliers that commit table by table, as
 * iptables-restore does, apply `blocks` and then report `error`.
 */
export function parseRestorePartial(
  text: string,
  family: Family,
  options: ParseRestoreOptions = {},
): PartialRestore {
  const blocks: ParsedBlock[] = [];
  const lines = text.split('\n');
  const total = countLines(text);
  let current: { table: TableName; line: number; commands: RestoreCommand[] } | undefined;

  const error = (n: number, problem: RestoreProblem, message: string, cause?: unknown): PartialRestore => {
    const lineText = lines[n - 1];
    return {
      blocks,
      error: new DomainError('invalid_argument', `line ${n}: ${message}`, {
        details: { line: n, problem, ...(lineText === undefined ? {} : { text: preview(lineText, 200) }) },
        ...(cause === undefined ? {} : { cause }),
      }),
    };
  };

  for (let index = 0; index < total; index++) {
    const n = index + 1;
    const raw = lines[index] as string;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      if (current === undefined) {
        if (!line.startsWith('*')) {
          throw new LineError(
            'outside_table',
            `"${preview(line)}" is outside a table block: start one with *filter (or *nat, *mangle, *raw, *security)`,
          );
        }
        const name = line.slice(1).trim();
        if (!isTableName(name))
          syntax(`unknown table "${preview(name)}" (expected filter, nat, mangle, raw or security)`);
        current = { table: name as TableName, line: n, commands: [] };
        continue;
      }
      if (line === 'COMMIT') {
        blocks.push(
          Object.freeze({
            table: current.table,
            line: current.line,
            commitLine: n,
            commands: Object.freeze(current.commands),
          }),
        );
        current = undefined;
        continue;
      }
      if (line.startsWith('*'))
        syntax(`table ${current.table} is not closed with COMMIT before "${preview(line)}"`);
      if (line.startsWith(':')) {
        current.commands.push(parseDeclaration(line, n));
        continue;
      }
      let words: Word[];
      try {
        words = splitRestoreWords(line, n);
      } catch (e) {
        return syntax((e as Error).message.replace(/^line \d+: /, ''));
      }
      const tokens = words.map((w) => w.value);
      const counters = lineCounters(tokens);
      const command = parseCommand(words.slice(counterWords(tokens)), n, current.table, family, options);
      current.commands.push(
        counters && 'rule' in command
          ? { ...command, rule: Object.freeze({ ...command.rule, counters }) }
          : command,
      );
    } catch (e) {
      if (e instanceof LineError) return error(n, e.problem, e.message);
      throw e;
    }
  }
  if (current !== undefined)
    return error(total + 1, 'missing_commit', `table ${current.table} is not closed with COMMIT`);
  return { blocks };
}

/** Parses the whole input; throws the first error (a DomainError with `details.line`). */
export function parseRestore(
  text: string,
  family: Family,
  options: ParseRestoreOptions = {},
): readonly ParsedBlock[] {
  const { blocks, error } = parseRestorePartial(text, family, options);
  if (error) throw error;
  return blocks;
}
