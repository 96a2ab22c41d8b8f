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
import type { Chain, Counters, Policy, Rule, Ruleset, Table } from '../domain/model.js';
import { checkChainName } from '../domain/validate.js';
import { parseRuleArgs } from './rule-parser.js';
import { splitRestoreWords, type Word } from './tokenize.js';

export interface ParseSaveOptions {
  /** Keep packet/byte counters (from `iptables-save -c`). Default false. */
  readonly counters?: boolean;
  /**
   * Rules already parsed, by table and canonical text (what follows `-A CHAIN `): a line
   * whose text is known is not parsed again (a re-read of 50,000 unchanged rules takes
   * milliseconds instead of a second). Sound because parsing a rule's canonical text gives
   * that rule back (the lossless property, test/iptables/property.test.ts); a line in any
   * other form is parsed.
   */
  readonly known?: (table: TableName, text: string) => Rule | undefined;
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

interface ChainDraft {
  name: string;
  policy: Policy | undefined;
  counters: Counters | undefined;
  rules: Rule[];
}

export function parseSave(text: string, family: Family, options: ParseSaveOptions = {}): Ruleset {
  const tables: Table[] = [];
  const seenTables = new Set<TableName>();
  let table: TableName | undefined;
  let tableLine = 0;
  let chains = new Map<string, ChainDraft>();
  const lines = text.split('\n');
  // Counters are per line: a known rule would drop them.
  const known = options.counters ? undefined : options.known;
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
        counters: options.counters ? c : undefined,
        rules: [],
      });
      continue;
    }
    if (known !== undefined && line.startsWith('-A ')) {
      const space = line.indexOf(' ', 3);
      const chain = space < 0 ? undefined : chains.get(line.slice(3, space));
      const rule = chain === undefined ? undefined : known(table, line.slice(space + 1));
      if (rule !== undefined) {
        (chain as ChainDraft).rules.push(rule);
        continue;
      }
    }
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
    const declared = chains;
    try {
      const rule = parseRuleArgs(words.slice(2), family, {
        mode: 'save',
        field: `${table}/${chainName}`,
        isChain: (c) => declared.has(c),
      });
      (chain as ChainDraft).rules.push(
        options.counters && counters ? Object.freeze({ ...rule, counters }) : rule,
      );
    } catch (e) {
      fail(n, (e as Error).message, e);
    }
  }
  if (table !== undefined) {
    const last = lines.length > 1 && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
    fail(
      last,
      `expected COMMIT to close table ${table} (opened at line ${tableLine}), found the end of the input`,
    );
  }
  return Object.freeze({ family, tables: Object.freeze(tables) });
}

function orderChains(table: TableName, chains: Map<string, ChainDraft>): Chain[] {
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
