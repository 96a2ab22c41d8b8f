/**
 * Kernel round trip for rules: write them with our restore writer into a
 * namespace's table, read the table back with iptables-save, and parse it.
 */

import { BUILTIN_CHAINS, type Family, type TableName } from '../../src/domain/family.js';
import type { Chain, Rule, Ruleset } from '../../src/domain/model.js';
import { targetChain } from '../../src/domain/model.js';
import { ChildProcessExecutor } from '../../src/exec/child-process-executor.js';
import { writeTable } from '../../src/iptables/restore-writer.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import type { Netns } from './kernel.js';

/** `-A CHAIN rest` lines of one table of a save text, per chain, in order. */
export function ruleLines(saved: string, table: TableName): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) current = line.slice(1);
    if (current !== table) continue;
    const m = /^-A (\S+)(?: (.*))?$/s.exec(line);
    if (!m) continue;
    const list = out.get(m[1] as string) ?? [];
    list.push(m[2] ?? '');
    out.set(m[1] as string, list);
  }
  return out;
}

export function executorFor(ns: Netns): ChildProcessExecutor {
  return new ChildProcessExecutor({ netns: ns.name });
}

/** Restores `rules` into `table`/`chain` (replacing the table), returns what the kernel reads back for that chain. */
export async function roundTripRules(
  ns: Netns,
  family: Family,
  table: TableName,
  chain: string,
  rules: readonly Rule[],
): Promise<{ back: readonly Rule[]; saved: string; ruleset: Ruleset }> {
  const exec = executorFor(ns);
  const userChains = new Set<string>();
  if (!BUILTIN_CHAINS[table].includes(chain)) userChains.add(chain);
  for (const r of rules) {
    const c = targetChain(r);
    if (c) userChains.add(c);
  }
  const chains: Chain[] = [
    ...BUILTIN_CHAINS[table].map((name) => ({
      name,
      policy: 'ACCEPT' as const,
      rules: name === chain ? rules : [],
    })),
    ...[...userChains].map((name) => ({ name, rules: name === chain ? rules : [] })),
  ];
  await exec.restore(family, writeTable({ name: table, chains }));
  const saved = await exec.save(family, { table });
  const ruleset = parseSave(saved, family);
  const back =
    ruleset.tables.find((t) => t.name === table)?.chains.find((c) => c.name === chain)?.rules ?? [];
  return { back, saved, ruleset };
}
