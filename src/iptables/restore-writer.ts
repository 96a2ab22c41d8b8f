/**
 * Model -> `iptables-restore` input.
 *
 * `writeRestore` gives the full form: every table block with its chains and
 * rules, replacing the tables it names. `RestoreBuilder` gives the
 * `--noflush` form: a list of commands per table (`-A`, `-I`, `-D CHAIN N`,
 * `-R`, `-N`, `-X`, `-F`, `-P`, `-E`, `-Z`) applied in one transaction;
 * tables with no commands are left out (as calico's restore buffer does),
 * and an empty builder renders as the empty string. Every value has been
 * validated by the model, and tokens are quoted as iptables-save quotes them.
 */
import { invalid } from '../domain/errors.js';
import type { Token } from '../domain/extensions/define.js';
import { isTableName, type TableName } from '../domain/family.js';
import type { Counters, Policy, Rule, Ruleset, Table } from '../domain/model.js';
import { checkChainName, checkUint, checkUserChainName } from '../domain/validate.js';
import { ruleTokens } from './rule-writer.js';
import { renderTokens } from './tokenize.js';

export interface WriteRestoreOptions {
  /** Write packet/byte counters (for `iptables-restore --counters`). Default false. */
  readonly counters?: boolean;
}

function counterText(c: Counters | undefined): string {
  return c ? `[${c.packets}:${c.bytes}]` : '[0:0]';
}

function checkTable(table: unknown): TableName {
  if (!isTableName(table)) throw invalid('table', `table must be filter, nat, mangle, raw or security`);
  return table;
}

function checkPolicy(policy: unknown, field: string): Policy {
  if (policy !== 'ACCEPT' && policy !== 'DROP') throw invalid(field, `${field} must be ACCEPT or DROP`);
  return policy;
}

/** A 1-based rule position. */
function checkPosition(position: unknown): string {
  return String(checkUint(position, 'position', 1, 0x7fffffff));
}

/** One rule line: `-A CHAIN <canonical rule>`. */
export function ruleLine(chain: string, rule: Rule, withCounters = false): string {
  checkChainName(chain);
  const prefix = withCounters && rule.counters ? `${counterText(rule.counters)} ` : '';
  return `${prefix}${renderTokens([{ text: '-A' }, { text: chain }, ...ruleTokens(rule)])}`;
}

export function writeTable(table: Table, options: WriteRestoreOptions = {}): string {
  const lines = [`*${checkTable(table.name)}`];
  for (const chain of table.chains) {
    checkChainName(chain.name);
    if (chain.policy !== undefined) checkPolicy(chain.policy, `${chain.name}.policy`);
    lines.push(
      `:${chain.name} ${chain.policy ?? '-'} ${options.counters ? counterText(chain.counters) : '[0:0]'}`,
    );
  }
  for (const chain of table.chains)
    for (const rule of chain.rules) lines.push(ruleLine(chain.name, rule, options.counters));
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** Full restore text for every table of the ruleset (the tables it lists are replaced). */
export function writeRestore(ruleset: Ruleset, options: WriteRestoreOptions = {}): string {
  return ruleset.tables.map((t) => writeTable(t, options)).join('');
}

/** Builds `--noflush` restore input, table by table. */
export class RestoreBuilder {
  private readonly tables = new Map<TableName, string[]>();

  private push(table: TableName, tokens: Token[]): this {
    checkTable(table);
    const line = renderTokens(tokens);
    let lines = this.tables.get(table);
    if (!lines) {
      lines = [];
      this.tables.set(table, lines);
    }
    lines.push(line);
    return this;
  }

  append(table: TableName, chain: string, rule: Rule): this {
    checkChainName(chain);
    return this.push(table, [{ text: '-A' }, { text: chain }, ...ruleTokens(rule)]);
  }
  /** Insert at 1-based `position`. */
  insert(table: TableName, chain: string, position: number, rule: Rule): this {
    return this.push(table, [
      { text: '-I' },
      { text: checkChainName(chain) },
      { text: checkPosition(position) },
      ...ruleTokens(rule),
    ]);
  }
  /** Replace the rule at 1-based `position`. */
  replace(table: TableName, chain: string, position: number, rule: Rule): this {
    return this.push(table, [
      { text: '-R' },
      { text: checkChainName(chain) },
      { text: checkPosition(position) },
      ...ruleTokens(rule),
    ]);
  }
  /** Delete the rule at 1-based `position` (never by spec: that costs a full chain scan per rule). */
  deleteAt(table: TableName, chain: string, position: number): this {
    return this.push(table, [
      { text: '-D' },
      { text: checkChainName(chain) },
      { text: checkPosition(position) },
    ]);
  }
  newChain(table: TableName, chain: string): this {
    return this.push(table, [{ text: '-N' }, { text: checkUserChainName(chain) }]);
  }
  deleteChain(table: TableName, chain: string): this {
    return this.push(table, [{ text: '-X' }, { text: checkUserChainName(chain) }]);
  }
  flush(table: TableName, chain?: string): this {
    return this.push(
      table,
      chain === undefined ? [{ text: '-F' }] : [{ text: '-F' }, { text: checkChainName(chain) }],
    );
  }
  policy(table: TableName, chain: string, policy: Policy): this {
    return this.push(table, [
      { text: '-P' },
      { text: checkChainName(chain) },
      { text: checkPolicy(policy, 'policy') },
    ]);
  }
  rename(table: TableName, chain: string, newName: string): this {
    return this.push(table, [
      { text: '-E' },
      { text: checkUserChainName(chain) },
      { text: checkUserChainName(newName, 'newName') },
    ]);
  }
  zero(table: TableName, chain?: string): this {
    return this.push(
      table,
      chain === undefined ? [{ text: '-Z' }] : [{ text: '-Z' }, { text: checkChainName(chain) }],
    );
  }

  get isEmpty(): boolean {
    return this.tables.size === 0;
  }

  /** The restore text; empty when nothing was added. */
  toString(): string {
    let out = '';
    for (const [table, lines] of this.tables) out += `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
    return out;
  }
}
