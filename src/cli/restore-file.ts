/**
 * An iptables-save / iptables-restore file as Portcullis operations, for `restore` and
 * `diff`. The file's lines are read with iptables' own tokenizer (splitRestoreWords, as
 * iptables-restore reads them); a rule's spec is the rest of its line exactly as written, so
 * the server reads the very words iptables-restore would.
 *
 * Without --noflush each table of the file replaces the table in the service as one
 * declarative `replaceTable` (the service computes the smallest change: rules already there
 * keep their ids and counters). The chains are those the file declares (`:CHAIN POLICY`
 * or `-N`), with their `-A` rules; a built-in chain the file does not declare is emptied,
 * as iptables-restore does. Commands other than `-A` (`-I`, `-D`, `-R`, `-F`, `-X`, `-Z`,
 * `-E`, and `-P`/`-N` after them) are applied after it, in order, in the same transaction.
 *
 * With --noflush (`noflush`), what the file does not mention stays: a declared user chain
 * is created, or emptied when it exists (iptables-restore does the same), a declared
 * built-in chain gets the policy the file gives it, and every command is applied in order.
 *
 * Either way every table of the file goes in one transaction: all or nothing, where
 * iptables-restore commits table by table. Counters (`[pkts:bytes]`) are read and ignored.
 */

import { DomainError } from '../domain/errors.js';
import { BUILTIN_CHAINS } from '../domain/family.js';
import { splitRestoreWords, type Word } from '../iptables/tokenize.js';
import type { Family, TableName } from './api.js';
import { POLICIES, TABLES } from './commands.js';
import { CliError, EXIT } from './errors.js';
import type { CliOperation, TableChain } from './operations.js';

/** One command line of a table block, its words kept as written. */
interface Line {
  readonly number: number;
  readonly words: readonly Word[];
}

interface Declared {
  readonly name: string;
  /** `-` for a user chain. */
  readonly policy: string;
  readonly line: number;
}

export interface RestoreTable {
  readonly name: TableName;
  readonly declared: readonly Declared[];
  readonly commands: readonly Line[];
}

function fail(line: number, message: string): CliError {
  return new CliError(EXIT.failed, `line ${line}: ${message}`);
}

function tableName(text: string, line: number): TableName {
  const t = TABLES.find((x) => x === text);
  if (t === undefined) throw fail(line, `table "${text}" does not exist (${TABLES.join(', ')})`);
  return t;
}

function words(text: string, line: number): Word[] {
  try {
    return splitRestoreWords(text, line);
  } catch (err) {
    if (err instanceof DomainError) throw new CliError(EXIT.failed, err.message);
    throw err;
  }
}

/** The tables of a restore file, each with its chain declarations and command lines. */
export function parseRestoreFile(text: string, only?: TableName): RestoreTable[] {
  const tables: RestoreTable[] = [];
  let current: { name: TableName; declared: Declared[]; commands: Line[]; start: number } | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const number = i + 1;
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      if (current !== undefined) throw fail(number, `table ${current.name} is not closed by COMMIT`);
      current = { name: tableName(line.slice(1).trim(), number), declared: [], commands: [], start: number };
      continue;
    }
    if (current === undefined)
      throw fail(number, `"${line.slice(0, 40)}" outside a table (start one with *filter)`);
    if (line === 'COMMIT') {
      if (only === undefined || current.name === only) {
        if (tables.some((t) => t.name === current?.name))
          throw fail(number, `table ${current.name} appears twice in the file`);
        tables.push({ name: current.name, declared: current.declared, commands: current.commands });
      }
      current = undefined;
      continue;
    }
    if (line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name === undefined || name === '' || policy === undefined)
        throw fail(number, 'a chain line is ":CHAIN POLICY [packets:bytes]"');
      current.declared.push({ name, policy, line: number });
      continue;
    }
    // `[pkts:bytes] -A ...` (iptables-save -c): counters are not restored.
    const body = line.replace(/^\[\d+:\d+\]\s+/, '');
    current.commands.push({ number, words: words(body, number) });
  }
  if (current !== undefined) throw fail(current.start, `table ${current.name} is not closed by COMMIT`);
  return tables;
}

/** The spec of a rule command: its words after `skip` leading words, as written. */
function specAfter(line: Line, skip: number): { spec: string } {
  return {
    spec: line.words
      .slice(skip)
      .map((w) => w.written)
      .join(' '),
  };
}

function value(line: Line, index: number, what: string): string {
  const w = line.words[index];
  if (w === undefined) throw fail(line.number, `${line.words[0]?.value ?? 'the command'} needs ${what}`);
  return w.value;
}

function policyOf(line: number, text: string): 'ACCEPT' | 'DROP' {
  const p = POLICIES.find((x) => x === text);
  if (p === undefined) throw fail(line, `bad policy "${text}" (ACCEPT or DROP)`);
  return p;
}

function position(line: Line, text: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(text) || Number(text) > 2147483647)
    throw fail(line.number, `invalid rule number "${text}"`);
  return Number(text);
}

/** A positive rule number at `index`, if the word there is one. */
function numberAt(line: Line, index: number): number | undefined {
  const w = line.words[index];
  return w !== undefined && /^[0-9]+$/.test(w.value) ? position(line, w.value) : undefined;
}

/** One command line as an operation (`-A`, `-I`, `-D`, ...); undefined for none. */
function commandOp(line: Line, family: Family, table: TableName): CliOperation {
  const cmd = line.words[0]?.value ?? '';
  const base = { family, table };
  const chain = () => value(line, 1, 'a chain');
  switch (cmd) {
    case '-A':
    case '--append':
      return { op: 'append', ...base, chain: chain(), rule: specAfter(line, 2) };
    case '-I':
    case '--insert': {
      const at = numberAt(line, 2);
      return {
        op: 'insert',
        ...base,
        chain: chain(),
        position: at ?? 1,
        rule: specAfter(line, at === undefined ? 2 : 3),
      };
    }
    case '-R':
    case '--replace': {
      const at = numberAt(line, 2);
      if (at === undefined) throw fail(line.number, '-R needs a rule number');
      return { op: 'replace', ...base, chain: chain(), target: { position: at }, rule: specAfter(line, 3) };
    }
    case '-D':
    case '--delete': {
      const at = numberAt(line, 2);
      if (at !== undefined && line.words.length === 3)
        return { op: 'delete', ...base, chain: chain(), target: { position: at } };
      return { op: 'delete', ...base, chain: chain(), target: { rule: specAfter(line, 2) } };
    }
    case '-N':
    case '--new-chain':
      return { op: 'createChain', ...base, chain: chain() };
    case '-X':
    case '--delete-chain':
      return { op: 'deleteChain', ...base, chain: chain() };
    case '-F':
    case '--flush':
      return { op: 'flushChain', ...base, chain: chain() };
    case '-Z':
    case '--zero':
      return line.words.length > 1
        ? { op: 'zeroCounters', ...base, chain: chain() }
        : { op: 'zeroCounters', ...base };
    case '-P':
    case '--policy':
      return {
        op: 'setPolicy',
        ...base,
        chain: chain(),
        policy: policyOf(line.number, value(line, 2, 'a policy')),
      };
    case '-E':
    case '--rename-chain':
      return { op: 'renameChain', ...base, chain: chain(), newName: value(line, 2, 'a new name') };
    default:
      throw fail(line.number, `unknown command "${cmd}" (expected -A, -I, -D, -R, -N, -X, -F, -Z, -P or -E)`);
  }
}

/** The declarative replacement of one table, and the commands that must follow it. */
function flushOps(t: RestoreTable, family: Family): CliOperation[] {
  const builtins = BUILTIN_CHAINS[t.name];
  const chains = new Map<string, { policy?: 'ACCEPT' | 'DROP'; rules: { spec: string }[] }>();
  for (const d of t.declared) {
    const builtin = builtins.includes(d.name);
    if (builtin && d.policy === '-') throw fail(d.line, `chain ${d.name} is built in: give it a policy`);
    chains.set(d.name, { ...(builtin ? { policy: policyOf(d.line, d.policy) } : {}), rules: [] });
  }
  // Built-in chains exist without being declared (their policy then stays as it is).
  for (const b of builtins) if (!chains.has(b)) chains.set(b, { rules: [] });
  const after: CliOperation[] = [];
  for (const line of t.commands) {
    const cmd = line.words[0]?.value;
    const name = line.words[1]?.value;
    const target = name === undefined ? undefined : chains.get(name);
    if (after.length === 0 && (cmd === '-A' || cmd === '--append') && target !== undefined) {
      target.rules.push(specAfter(line, 2));
      continue;
    }
    if (
      after.length === 0 &&
      (cmd === '-N' || cmd === '--new-chain') &&
      name !== undefined &&
      !chains.has(name)
    ) {
      chains.set(name, { rules: [] });
      continue;
    }
    if (after.length === 0 && (cmd === '-A' || cmd === '--append') && name !== undefined)
      throw fail(line.number, `chain ${name} is not declared in table ${t.name} (add ":${name} - [0:0]")`);
    after.push(commandOp(line, family, t.name));
  }
  const tableChains: TableChain[] = [...chains].map(([name, c]) => ({
    name,
    ...(c.policy === undefined ? {} : { policy: c.policy }),
    rules: c.rules,
  }));
  return [{ op: 'replaceTable', family, table: t.name, chains: tableChains }, ...after];
}

/** --noflush: declared chains created or emptied, policies set, then every command in order. */
function noflushOps(t: RestoreTable, family: Family, existing: ReadonlySet<string>): CliOperation[] {
  const builtins = BUILTIN_CHAINS[t.name];
  const ops: CliOperation[] = [];
  for (const d of t.declared) {
    const base = { family, table: t.name, chain: d.name };
    if (builtins.includes(d.name)) {
      if (d.policy !== '-') ops.push({ op: 'setPolicy', ...base, policy: policyOf(d.line, d.policy) });
    } else if (existing.has(d.name)) ops.push({ op: 'flushChain', ...base });
    else ops.push({ op: 'createChain', ...base });
  }
  for (const line of t.commands) ops.push(commandOp(line, family, t.name));
  return ops;
}

/**
 * The operations that make the service hold the file's tables. `existing(table)` gives the
 * chains a table has now (needed with --noflush only).
 */
export async function restoreOperations(
  tables: readonly RestoreTable[],
  family: Family,
  noflush: boolean,
  existing: (table: TableName) => Promise<ReadonlySet<string>>,
): Promise<CliOperation[]> {
  const ops: CliOperation[] = [];
  for (const t of tables) {
    if (noflush) ops.push(...noflushOps(t, family, await existing(t.name)));
    else ops.push(...flushOps(t, family));
  }
  return ops;
}
