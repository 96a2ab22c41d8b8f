/**
 * `iptables-save` text -> model. A small state machine, strict like the
 * kubernetes parser it is modelled on: a line is either a comment, a table
 * header (`*filter`), a chain declaration (`:INPUT ACCEPT [0:0]`), a rule
 * (`[p:b] -A CHAIN ...`) or `COMMIT`, and anything else is an error that
 * names the line and what was expected there.
 */
import { preview } from '../domain/address.js';
import { DomainError } from '../domain/errors.js';
import { BUILTIN_CHAINS, type Family, isTableName, type TableName } from '../domain/family.js';
import type { Counters, Policy, Rule, Ruleset, Table } from '../domain/model.js';
import { checkChainName } from '../domain/validate.js';
import { parseRuleArgs } from './rule-parser.js';
import { splitRestoreWords, type Word } from './tokenize.js';

export interface ParseSaveOptions {
  /** Keep packet/byte counters (from `iptables-save -c`). Default false. */
  readonly counters?: boolean;
}

const COUNTERS = /^\[(\d{1,20}):(\d{1,20})\]$/;

const MAX_U64 = 2n ** 64n - 1n;

/** A 64-bit counter in decimal, or undefined. */
function counterValue(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^\d{1,20}$/.test(text)) return undefined;
  const v = BigInt(text);
  return v <= MAX_U64 ? v : undefined;
}

function parseCounters(text: string): Counters | undefined {
  const m = COUNTERS.exec(text);
  const packets = counterValue(m?.[1]);
  const bytes = counterValue(m?.[2]);
  return packets === undefined || bytes === undefined ? undefined : { packets, bytes };
}

interface ChainDraft<R> {
  name: string;
  policy: Policy | undefined;
  counters: Counters | undefined;
  rules: R[];
}

/** A table of a save whose rules are kept as read (see scanSave). */
export interface SavedTable<R> {
  readonly name: TableName;
  readonly chains: readonly SavedChain<R>[];
}
export interface SavedChain<R> {
  readonly name: string;
  readonly policy?: Policy;
  readonly counters?: Counters;
  readonly rules: readonly R[];
}

/** How one rule line becomes a rule of the result (the walker has checked everything around it). */
type RuleLine<R> = (
  line: string,
  n: number,
  table: TableName,
  chains: ReadonlyMap<string, ChainDraft<R>>,
  fail: (n: number, message: string, cause?: unknown) => never,
) => { chain: ChainDraft<R>; rule: R };

export function parseSave(text: string, family: Family, options: ParseSaveOptions = {}): Ruleset {
  const tables = walkSave<Rule>(text, !!options.counters, (line, n, table, chains, fail) =>
    parseLine(line, n, family, table, chains, !!options.counters, fail),
  );
  return Object.freeze({ family, tables: Object.freeze(tables as Table[]) });
}

/**
 * A rule of a save as scanSave reads it: the text iptables-save printed after `-A CHAIN `
 * (by definition the rule's canonical text, the model's key; not parsed yet), or the parsed
 * rule when the line was written in another form (`--append`, counters).
 */
export type SavedRule = string | Rule;

/**
 * The structure of a save (tables, chains, policies, which rule lines belong where) checked
 * as parseSave checks it, without parsing rule lines in iptables-save's own form: the model
 * keys rules on that text (ids, diffs, restores), and parses it when a rule is first looked
 * at (state.ts). A 50,000-rule save is read in milliseconds instead of a second. Sound
 * because parsing iptables-save's text of a rule and writing it again gives that text back
 * (the lossless property: test/iptables/property.test.ts, lossless.test.ts).
 */
export function scanSave(text: string, family: Family): readonly SavedTable<SavedRule>[] {
  return walkSave<SavedRule>(text, false, (line, n, table, chains, fail) => {
    const fast = fastLine(line, chains);
    if (fast) return { chain: fast.chain, rule: fast.text };
    return parseLine(line, n, family, table, chains, false, fail);
  });
}

/** `-A CHAIN TEXT` with CHAIN declared: the chain and TEXT, else undefined. */
function fastLine<R>(
  line: string,
  chains: ReadonlyMap<string, ChainDraft<R>>,
): { chain: ChainDraft<R>; text: string } | undefined {
  if (!line.startsWith('-A ')) return undefined;
  const space = line.indexOf(' ', 3);
  if (space < 0 || line.charCodeAt(space + 1) === 32) return undefined;
  const chain = chains.get(line.slice(3, space));
  return chain === undefined ? undefined : { chain, text: line.slice(space + 1) };
}

/**
 * Parses one rule's text as iptables-save printed it after `-A CHAIN ` (what scanSave kept),
 * in the table whose chains are `isChain` (a jump to a chain and a target extension read alike).
 */
export function parseRuleText(
  text: string,
  family: Family,
  table: TableName,
  chain: string,
  isChain: (name: string) => boolean,
): Rule {
  return parseRuleArgs(splitRestoreWords(text, 1), family, {
    mode: 'save',
    field: `${table}/${chain}`,
    isChain,
  });
}

function parseLine<R>(
  line: string,
  n: number,
  family: Family,
  table: TableName,
  chains: ReadonlyMap<string, ChainDraft<R>>,
  withCounters: boolean,
  fail: (n: number, message: string, cause?: unknown) => never,
): { chain: ChainDraft<R>; rule: Rule } {
  let words: Word[];
  try {
    words = splitRestoreWords(line, n);
  } catch (e) {
    return fail(n, (e as Error).message.replace(/^line \d+: /, ''), e);
  }
  let tokens = words.map((w) => w.value);
  let counters: Counters | undefined;
  if (tokens[0]?.startsWith('[')) {
    counters = parseCounters(tokens[0]);
    if (!counters) fail(n, `expected counters [packets:bytes], found "${preview(tokens[0])}"`);
    tokens = tokens.slice(1);
    words = words.slice(1);
  } else if (tokens[0] === '-c') {
    const packets = counterValue(tokens[1]);
    const bytes = counterValue(tokens[2]);
    if (packets === undefined || bytes === undefined)
      fail(n, 'expected -c PACKETS BYTES (decimal numbers below 2^64)');
    counters = { packets: packets as bigint, bytes: bytes as bigint };
    tokens = tokens.slice(3);
    words = words.slice(3);
  }
  if (tokens[0] !== '-A' && tokens[0] !== '--append') {
    fail(
      n,
      `expected "-A CHAIN ...", a chain declaration, or COMMIT in table ${table}, found "${preview(line)}"`,
    );
  }
  const chainName = tokens[1];
  const chain = chainName === undefined ? undefined : chains.get(chainName);
  if (!chain)
    fail(n, `rule for chain "${preview(chainName ?? '')}", which is not declared in table ${table}`);
  try {
    const rule = parseRuleArgs(words.slice(2), family, {
      mode: 'save',
      field: `${table}/${chainName}`,
      isChain: (c) => chains.has(c),
    });
    return {
      chain: chain as ChainDraft<R>,
      rule: withCounters && counters ? Object.freeze({ ...rule, counters }) : rule,
    };
  } catch (e) {
    return fail(n, (e as Error).message, e);
  }
}

/** The save's state machine: headers, chain declarations, COMMIT; rule lines go to `ruleLine`. */
function walkSave<R>(text: string, withCounters: boolean, ruleLine: RuleLine<R>): SavedTable<R>[] {
  const tables: SavedTable<R>[] = [];
  const seenTables = new Set<TableName>();
  let table: TableName | undefined;
  let tableLine = 0;
  let chains = new Map<string, ChainDraft<R>>();
  const lines = text.split('\n');
  const fail = (n: number, message: string, cause?: unknown): never => {
    throw new DomainError('invalid_argument', `line ${n}: ${message}`, {
      details: { line: n, text: preview(lines[n - 1] ?? '', 200) },
      ...(cause === undefined ? {} : { cause }),
    });
  };

  for (let index = 0; index < lines.length; index++) {
    const n = index + 1;
    const line = (lines[index] as string).replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    if (table === undefined) {
      if (!line.startsWith('*')) fail(n, `expected a table header such as *filter, found "${preview(line)}"`);
      const name = line.slice(1);
      if (!isTableName(name))
        fail(n, `unknown table "${preview(name)}" (expected filter, nat, mangle, raw or security)`);
      const t = name as TableName;
      if (seenTables.has(t)) fail(n, `table ${t} appears twice`);
      seenTables.add(t);
      table = t;
      tableLine = n;
      chains = new Map();
      continue;
    }
    if (line === 'COMMIT') {
      const ordered = orderChains(table, chains);
      tables.push(Object.freeze({ name: table, chains: Object.freeze(ordered) }));
      table = undefined;
      continue;
    }
    if (line.startsWith(':')) {
      const parts = line.slice(1).split(/\s+/);
      const [name, policy, counters] = parts;
      if (parts.length < 2 || parts.length > 3 || name === undefined || policy === undefined) {
        fail(n, `expected a chain declaration ":NAME POLICY [packets:bytes]", found "${preview(line)}"`);
      }
      try {
        checkChainName(name, 'chain');
      } catch (e) {
        fail(n, (e as Error).message, e);
      }
      const builtin = BUILTIN_CHAINS[table].includes(name as string);
      if (builtin && policy !== 'ACCEPT' && policy !== 'DROP')
        fail(n, `built-in chain ${name} needs policy ACCEPT or DROP, found "${preview(policy as string)}"`);
      if (!builtin && policy !== '-')
        fail(n, `user chain ${name} must have policy "-", found "${preview(policy as string)}"`);
      if (chains.has(name as string)) fail(n, `chain ${name} declared twice`);
      const c = counters === undefined ? undefined : parseCounters(counters);
      if (counters !== undefined && c === undefined)
        fail(
          n,
          `expected counters [packets:bytes] (decimal numbers below 2^64), found "${preview(counters)}"`,
        );
      chains.set(name as string, {
        name: name as string,
        policy: builtin ? (policy as Policy) : undefined,
        counters: withCounters ? c : undefined,
        rules: [],
      });
      continue;
    }
    const { chain, rule } = ruleLine(line, n, table, chains, fail);
    chain.rules.push(rule);
  }
  if (table !== undefined) {
    const last = lines.length > 1 && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
    fail(
      last,
      `expected COMMIT to close table ${table} (opened at line ${tableLine}), found the end of the input`,
    );
  }
  return tables;
}

function orderChains<R>(table: TableName, chains: Map<string, ChainDraft<R>>): SavedChain<R>[] {
  const builtins = BUILTIN_CHAINS[table];
  const all = [...chains.values()];
  const ordered = [
    ...builtins.flatMap((b) => all.filter((c) => c.name === b)),
    ...all.filter((c) => !builtins.includes(c.name)),
  ];
  return ordered.map((c) =>
    Object.freeze({
      name: c.name,
      ...(c.policy ? { policy: c.policy } : {}),
      ...(c.counters ? { counters: c.counters } : {}),
      rules: Object.freeze(c.rules),
    }),
  );
}
