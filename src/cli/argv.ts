/**
 * Reads the command line. Two shapes:
 *
 * - iptables' own (`portcullis [-t nat] -A CHAIN RULE-SPEC`, `portcullis -nvL INPUT`), read
 *   the way iptables 1.8.9's getopt loop reads it (iptables/xshared.c `do_parse`): options
 *   in any order, bundled short flags, a command's optional CHAIN and RULENUM taken from the
 *   next word unless it starts with `-` or `!`, and every other option kept, in order, as
 *   a word of the rule. Words that belong to a rule option (`--comment -n`) stay with it
 *   (rule-arity.ts).
 * - a command word (`save`, `restore --test`, `trace -p tcp ...`) with the options of the
 *   command table (commands.ts).
 *
 * The options every command takes (commands.ts COMMON_OPTIONS) are read in both. Nothing
 * here talks to the service; errors are usage errors (exit 2).
 */
import type { AnyExtension } from '../domain/extensions/define.js';
import type { Family, TableName } from './api.js';
import {
  COMMANDS,
  COMMON_OPTIONS,
  COMPAT_OPTIONS,
  type CommandDef,
  findCommand,
  type OptionDef,
  TABLES,
} from './commands.js';
import type { ConnectionFlags } from './connection.js';
import { CliError, EXIT, usage } from './errors.js';
import { extensionOptionArity, loadedBy, RULE_OPTIONS } from './rule-arity.js';

export type Verb =
  | 'append'
  | 'check'
  | 'delete'
  | 'insert'
  | 'replace'
  | 'list'
  | 'list-rules'
  | 'flush'
  | 'zero'
  | 'new-chain'
  | 'delete-chain'
  | 'policy'
  | 'rename';

/** What every command shares. */
export interface Common {
  readonly family: Family;
  readonly json: boolean;
  readonly help: boolean;
  readonly version: boolean;
  readonly allowLockout: boolean;
  /** Commit-confirmed: changes roll back after this many seconds unless `portcullis confirm ID`. */
  readonly confirmWithin?: number;
  readonly connection: ConnectionFlags;
}

export interface IptablesCommand {
  readonly kind: 'iptables';
  readonly verb: Verb;
  /** The command as typed (`-A`), for messages and help. */
  readonly option: string;
  readonly table: TableName;
  readonly chain?: string;
  readonly position?: number;
  readonly policy?: string;
  readonly newName?: string;
  /** The rule's words, as argv gave them. */
  readonly ruleWords: readonly string[];
  readonly numeric: boolean;
  readonly verbose: boolean;
  readonly exact: boolean;
  readonly lineNumbers: boolean;
}

export interface WordCommand {
  readonly kind: 'command';
  readonly name: string;
  /** Option values by key (`true` for flags). */
  readonly options: ReadonlyMap<string, string | true>;
  readonly operands: readonly string[];
}

export interface Invocation {
  readonly common: Common;
  /** Undefined: no command given (help or version only). */
  readonly command: IptablesCommand | WordCommand | undefined;
  /** The command help was asked for, if any. */
  readonly helpFor: CommandDef | undefined;
}

interface Letter {
  readonly verb: Verb;
  /** The chain: required, optional, or none. */
  readonly chain: 'required' | 'optional';
}

const LETTERS: Readonly<Record<string, Letter>> = {
  A: { verb: 'append', chain: 'required' },
  C: { verb: 'check', chain: 'required' },
  D: { verb: 'delete', chain: 'required' },
  I: { verb: 'insert', chain: 'required' },
  R: { verb: 'replace', chain: 'required' },
  L: { verb: 'list', chain: 'optional' },
  S: { verb: 'list-rules', chain: 'optional' },
  F: { verb: 'flush', chain: 'optional' },
  Z: { verb: 'zero', chain: 'optional' },
  N: { verb: 'new-chain', chain: 'required' },
  X: { verb: 'delete-chain', chain: 'optional' },
  P: { verb: 'policy', chain: 'required' },
  E: { verb: 'rename', chain: 'required' },
};

const LONG_LETTERS: Readonly<Record<string, string>> = {
  '--append': 'A',
  '--check': 'C',
  '--delete': 'D',
  '--insert': 'I',
  '--replace': 'R',
  '--list': 'L',
  '--list-rules': 'S',
  '--flush': 'F',
  '--zero': 'Z',
  '--new-chain': 'N',
  '--new': 'N',
  '--delete-chain': 'X',
  '--policy': 'P',
  '--rename-chain': 'E',
};

const RULE_VERBS: ReadonlySet<Verb> = new Set(['append', 'check', 'delete', 'insert', 'replace']);

function findOption(defs: readonly OptionDef[], name: string): OptionDef | undefined {
  return defs.find((d) => d.names.includes(name));
}

/** iptables' `xs_has_arg`: argv[i] when it exists and starts with neither `-` nor `!`. */
function argOf(argv: readonly string[], i: number): string | undefined {
  const w = argv[i];
  return w !== undefined && !w.startsWith('-') && !w.startsWith('!') ? w : undefined;
}

/** iptables' parse_rulenumber: a whole number from 1. */
function ruleNumber(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > 2147483647)
    throw usage(`invalid rule number "${text}"`);
  return Number(text);
}

class CommonState {
  family: Family | undefined;
  json = false;
  help = false;
  version = false;
  allowLockout = false;
  confirmWithin: number | undefined;
  connection: Record<string, string> = {};

  /** Applies one of the common options (COMMON_OPTIONS, COMPAT_OPTIONS) with its value. */
  apply(def: OptionDef, value: string | undefined): void {
    switch (def.key) {
      case 'ipv4':
      case 'ipv6':
        this.setFamily(def.key);
        return;
      case 'family': {
        const v = value === '4' ? 'ipv4' : value === '6' ? 'ipv6' : value;
        if (v !== 'ipv4' && v !== 'ipv6') throw usage(`--family must be ipv4 or ipv6, not "${value}"`);
        this.setFamily(v);
        return;
      }
      case 'json':
        this.json = true;
        return;
      case 'help':
        this.help = true;
        return;
      case 'version':
        this.version = true;
        return;
      case 'allowLockout':
        this.allowLockout = true;
        return;
      case 'confirm': {
        const n = /^[0-9]{1,5}$/.test(value ?? '') ? Number(value) : Number.NaN;
        if (!(n >= 1 && n <= 86400)) throw usage(`--confirm takes seconds from 1 to 86400, not "${value}"`);
        this.confirmWithin = n;
        return;
      }
      case 'wait':
      case 'waitInterval':
        return;
      default:
        if (value !== undefined) this.connection[def.key] = value;
    }
  }

  private setFamily(family: Family): void {
    if (this.family !== undefined && this.family !== family)
      throw usage('give one family: -4 (ipv4) or -6 (ipv6)');
    this.family = family;
  }

  result(): Common {
    const c = this.connection;
    const connection: ConnectionFlags = {
      ...(c.url === undefined ? {} : { url: c.url }),
      ...(c.socket === undefined ? {} : { socket: c.socket }),
      ...(c.tokenFile === undefined ? {} : { tokenFile: c.tokenFile }),
      ...(c.cacert === undefined ? {} : { cacert: c.cacert }),
      ...(c.cert === undefined ? {} : { cert: c.cert }),
      ...(c.key === undefined ? {} : { key: c.key }),
    };
    return {
      family: this.family ?? 'ipv4',
      json: this.json,
      help: this.help,
      version: this.version,
      allowLockout: this.allowLockout,
      ...(this.confirmWithin === undefined ? {} : { confirmWithin: this.confirmWithin }),
      connection,
    };
  }
}

const SHARED: readonly OptionDef[] = [...COMMON_OPTIONS, ...COMPAT_OPTIONS];

/**
 * Reads a long option `--name[=value]` or a lone short one against `defs`: the def, its
 * value, and the index after it; undefined when the word is not one of `defs`.
 */
function readDefined(
  defs: readonly OptionDef[],
  argv: readonly string[],
  i: number,
): { def: OptionDef; value: string | undefined; next: number } | undefined {
  const word = argv[i] ?? '';
  const eq = word.startsWith('--') ? word.indexOf('=') : -1;
  const name = eq === -1 ? word : word.slice(0, eq);
  const def = findOption(defs, name);
  if (def === undefined) return undefined;
  // -w / --wait take an optional number of seconds, as in iptables.
  if (def.key === 'wait') {
    if (eq !== -1) return { def, value: word.slice(eq + 1), next: i + 1 };
    const n = argv[i + 1];
    return n !== undefined && /^[0-9]+(\.[0-9]+)?$/.test(n)
      ? { def, value: n, next: i + 2 }
      : { def, value: undefined, next: i + 1 };
  }
  if (def.arg === undefined) {
    if (eq !== -1) throw usage(`option ${name} takes no value`);
    return { def, value: undefined, next: i + 1 };
  }
  if (eq !== -1) return { def, value: word.slice(eq + 1), next: i + 1 };
  const value = argv[i + 1];
  if (value === undefined) throw usage(`option ${name} requires an argument (${def.arg})`);
  return { def, value, next: i + 2 };
}

/** A table name; iptables exits 3 for a table that does not exist. */
function checkTable(value: string): TableName {
  const t = TABLES.find((x) => x === value);
  if (t === undefined)
    throw new CliError(EXIT.table, `table "${value}" does not exist (${TABLES.join(', ')})`);
  return t;
}

/** A command word's options and operands. */
function parseWordCommand(def: CommandDef, argv: readonly string[], common: CommonState): WordCommand {
  const options = new Map<string, string | true>();
  const operands: string[] = [];
  const defs = [...SHARED, ...def.options];
  let i = 0;
  for (let word = argv[i]; word !== undefined; word = argv[i]) {
    if (word === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith('-') && word !== '-') {
      const read = readDefined(defs, argv, i);
      if (read === undefined) throw usage(`unknown option "${word}" for ${def.name}`);
      if (def.options.includes(read.def)) options.set(read.def.key, read.value ?? true);
      else common.apply(read.def, read.value);
      i = read.next;
      continue;
    }
    operands.push(word);
    i++;
  }
  return { kind: 'command', name: def.name, options, operands };
}

interface IptablesState {
  letter?: string;
  option?: string;
  chain?: string;
  position?: number;
  policy?: string;
  newName?: string;
  table?: TableName;
  numeric: boolean;
  verbose: boolean;
  exact: boolean;
  lineNumbers: boolean;
  ruleWords: string[];
  loaded: AnyExtension[];
}

/** The command option `letter` with its inline argument; returns the index after its words. */
function takeCommand(
  st: IptablesState,
  letter: string,
  typed: string,
  inline: string | undefined,
  argv: readonly string[],
  i: number,
): number {
  const def = LETTERS[letter];
  if (def === undefined) throw usage(`unknown option "${typed}"`);
  if (st.letter !== undefined) throw usage(`cannot use ${typed} with -${st.letter}: one command at a time`);
  st.letter = letter;
  st.option = `-${letter}`;
  let at = i;
  if (def.chain === 'required') {
    const chain = inline ?? argv[at];
    if (chain === undefined) throw usage(`option ${typed} requires an argument (CHAIN)`);
    if (inline === undefined) at++;
    st.chain = chain;
  } else if (inline !== undefined) {
    st.chain = inline;
  } else {
    const chain = argOf(argv, at);
    if (chain !== undefined) {
      st.chain = chain;
      at++;
    }
  }
  /** The next word as a rule number, when it is one (iptables' xs_has_arg). */
  const optionalNumber = (): number | undefined => {
    const n = argOf(argv, at);
    if (n === undefined) return undefined;
    at++;
    return ruleNumber(n);
  };
  const required = (message: string): string => {
    const v = argOf(argv, at);
    if (v === undefined) throw usage(message);
    at++;
    return v;
  };
  switch (letter) {
    case 'I':
      st.position = optionalNumber() ?? 1;
      break;
    case 'R':
      st.position = ruleNumber(required('-R requires a rule number'));
      break;
    case 'D':
    case 'L':
    case 'S':
    case 'Z': {
      const n = letter === 'D' || st.chain !== undefined ? optionalNumber() : undefined;
      if (n !== undefined) st.position = n;
      break;
    }
    case 'P':
      st.policy = required('-P requires a chain and a policy');
      break;
    case 'E':
      st.newName = required('-E requires old-chain-name and new-chain-name');
      break;
  }
  return at;
}

/** A rule option at argv[i] and its words; returns the index after them. */
function takeRuleOption(st: IptablesState, word: string, argv: readonly string[], i: number): number {
  st.ruleWords.push(word);
  const eq = word.startsWith('--') ? word.indexOf('=') : -1;
  if (eq !== -1) return i + 1;
  const arity = RULE_OPTIONS.get(word) ?? extensionOptionArity(word, st.loaded) ?? 0;
  const args = argv.slice(i + 1, i + 1 + arity);
  if (args.length < arity) throw usage(`option ${word} requires an argument`);
  st.ruleWords.push(...args);
  const value = args[0];
  if (value !== undefined) {
    const ext = loadedBy(word, value);
    if (ext) st.loaded.push(ext);
  }
  return i + 1 + arity;
}

const LIST_FLAGS: Readonly<Record<string, 'numeric' | 'verbose' | 'exact'>> = {
  n: 'numeric',
  v: 'verbose',
  x: 'exact',
};

/** A word of short options (`-nvL`, `-tnat`, `-4`); returns the index after its words. */
function takeShortBundle(
  st: IptablesState,
  common: CommonState,
  word: string,
  argv: readonly string[],
  i: number,
): number {
  for (let j = 1; j < word.length; j++) {
    const c = word.charAt(j);
    const rest = word.slice(j + 1);
    const flag = LIST_FLAGS[c];
    if (flag !== undefined) {
      st[flag] = true;
      continue;
    }
    const shared = findOption(SHARED, `-${c}`);
    if (shared !== undefined && shared.arg === undefined && shared.key !== 'wait') {
      common.apply(shared, undefined);
      continue;
    }
    if (c === 't') {
      const value = rest !== '' ? rest : argv[i + 1];
      if (value === undefined) throw usage('option -t requires an argument (TABLE)');
      st.table = checkTable(value);
      return rest !== '' ? i + 1 : i + 2;
    }
    if (c === 'w' || c === 'W') {
      if (rest !== '') return i + 1;
      const n = argv[i + 1];
      return n !== undefined && /^[0-9]+(\.[0-9]+)?$/.test(n) ? i + 2 : i + 1;
    }
    if (LETTERS[c] !== undefined)
      return takeCommand(st, c, `-${c}`, rest === '' ? undefined : rest, argv, i + 1);
    if (j === 1 && RULE_OPTIONS.has(`-${c}`)) return takeRuleOption(st, word, argv, i);
    throw usage(`unknown option "-${c}"${word.length > 2 ? ` in "${word}"` : ''}`);
  }
  return i + 1;
}

function parseIptables(argv: readonly string[], common: CommonState): IptablesState {
  const st: IptablesState = {
    numeric: false,
    verbose: false,
    exact: false,
    lineNumbers: false,
    ruleWords: [],
    loaded: [],
  };
  let i = 0;
  for (let word = argv[i]; word !== undefined; word = argv[i]) {
    if (word.startsWith('--') && word.length > 2) {
      const shared = readDefined(SHARED, argv, i);
      if (shared !== undefined) {
        common.apply(shared.def, shared.value);
        i = shared.next;
        continue;
      }
      const eq = word.indexOf('=');
      const name = eq === -1 ? word : word.slice(0, eq);
      const inline = eq === -1 ? undefined : word.slice(eq + 1);
      const letter = LONG_LETTERS[name];
      if (letter !== undefined) {
        i = takeCommand(st, letter, name, inline, argv, i + 1);
        continue;
      }
      if (name === '--table') {
        const value = inline ?? argv[i + 1];
        if (value === undefined) throw usage('option --table requires an argument (TABLE)');
        st.table = checkTable(value);
        i += inline === undefined ? 2 : 1;
        continue;
      }
      if (name === '--numeric' || name === '--verbose' || name === '--exact') {
        st[name === '--numeric' ? 'numeric' : name === '--verbose' ? 'verbose' : 'exact'] = true;
        i++;
        continue;
      }
      if (name === '--line-numbers') {
        st.lineNumbers = true;
        i++;
        continue;
      }
      i = takeRuleOption(st, word, argv, i);
      continue;
    }
    if (word.startsWith('-') && word.length > 1) {
      i = takeShortBundle(st, common, word, argv, i);
      continue;
    }
    // `!` and bare words: part of the rule (the server's parser has the last word on them).
    st.ruleWords.push(word);
    i++;
  }
  return st;
}

function finishIptables(st: IptablesState): IptablesCommand | undefined {
  const def = st.letter === undefined ? undefined : LETTERS[st.letter];
  if (def === undefined) {
    if (st.ruleWords.length > 0 || st.table !== undefined) throw usage('no command specified');
    return undefined;
  }
  if (st.ruleWords.length > 0) {
    if (!RULE_VERBS.has(def.verb))
      throw usage(`${st.option} takes no rule options (found "${st.ruleWords[0]}")`);
    if (def.verb === 'delete' && st.position !== undefined)
      throw usage('-D with a rule number takes no rule specification');
  }
  return {
    kind: 'iptables',
    verb: def.verb,
    option: st.option ?? '',
    table: st.table ?? 'filter',
    ...(st.chain === undefined ? {} : { chain: st.chain }),
    ...(st.position === undefined ? {} : { position: st.position }),
    ...(st.policy === undefined ? {} : { policy: st.policy }),
    ...(st.newName === undefined ? {} : { newName: st.newName }),
    ruleWords: st.ruleWords,
    numeric: st.numeric,
    verbose: st.verbose,
    exact: st.exact,
    lineNumbers: st.lineNumbers,
  };
}

/** The first word that is not a common option: a command word decides the shape. */
function commandWordAt(argv: readonly string[]): number {
  let i = 0;
  for (let word = argv[i]; word !== undefined; word = argv[i]) {
    if (!word.startsWith('-') || word === '-') return i;
    const read = readDefined(SHARED, argv, i);
    if (read === undefined) return -1;
    i = read.next;
  }
  return -1;
}

/** `-h` / `--help` anywhere: help of the first command named, or the overview. */
function helpRequest(argv: readonly string[]): Invocation | undefined {
  // Not when it is the value of a rule option (`--comment -h`).
  const asked = argv.some((w, i) => {
    if (w !== '-h' && w !== '--help') return false;
    const prev = argv[i - 1] ?? '';
    return !(
      RULE_OPTIONS.has(prev) ||
      (prev.startsWith('--') && findOption(SHARED, prev) === undefined && LONG_LETTERS[prev] === undefined)
    );
  });
  if (!asked) return undefined;
  let helpFor: CommandDef | undefined;
  for (const w of argv) {
    const letter = /^-[a-zA-Z0-9]+$/.test(w)
      ? [...w.slice(1)].find((c) => LETTERS[c] !== undefined)
      : undefined;
    helpFor =
      findCommand(w.split('=')[0] ?? w) ?? (letter === undefined ? undefined : findCommand(`-${letter}`));
    if (helpFor !== undefined && helpFor.name !== 'help') break;
  }
  const common = new CommonState();
  common.help = true;
  return { common: common.result(), command: undefined, helpFor };
}

export function parseCommandLine(argv: readonly string[]): Invocation {
  const help = helpRequest(argv);
  if (help !== undefined) return help;
  const common = new CommonState();
  const at = commandWordAt(argv);
  const word = argv[at];
  if (word !== undefined) {
    const def = COMMANDS.find((c) => c.kind === 'command' && c.name === word);
    if (def === undefined) throw usage(`unknown command "${word}"`);
    const rest = [...argv.slice(0, at), ...argv.slice(at + 1)];
    const cmd = parseWordCommand(def, rest, common);
    const result = common.result();
    if (def.name === 'help') {
      const topic = cmd.operands[0];
      const helpFor = topic === undefined ? undefined : findCommand(topic);
      if (topic !== undefined && helpFor === undefined)
        throw usage(`no help for "${topic}": unknown command`);
      return { common: { ...result, help: true }, command: undefined, helpFor };
    }
    return { common: result, command: cmd, helpFor: result.help ? def : undefined };
  }
  const st = parseIptables(argv, common);
  const result = common.result();
  if (result.help) {
    const helpFor = st.letter === undefined ? undefined : findCommand(`-${st.letter}`);
    return { common: result, command: undefined, helpFor };
  }
  return { common: result, command: finishIptables(st), helpFor: undefined };
}
