import type { Counters, Rule, Ruleset, Table } from '../domain/model.js';
import { checkChainName } from '../domain/validate.js';
import { checkPolicy, checkTable } from './commands.js';
import { ruleTokens } from './rule-writer.js';
import { renderTokens } from './tokenize.js';

export interface WriteRestoreOptions {
  /** Write packet/byte counters (for `iptables-restore --counters`). Default false. */
  readonly counters?: boolean;
}

function counterText(c: Counters | undefined): string {
  return c ? `[${c.packets}:${c.bytes}]` : '[0:0]';
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
