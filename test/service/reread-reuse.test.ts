/**
 * A re-read reuses what the model already parsed (parseSave's `known`, makeEntries'
 * previous chain): property, over generated rules with hostile text in two tables, that
 * the result is exactly what a fresh parse gives (rules, texts, ids) after random edits:
 * rules removed, duplicated (ids by occurrence), moved to another chain or table, new
 * ones added.
 */
import { describe, expect, it } from 'vitest';
import type { TableName } from '../../src/domain/family.js';
import type { Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { writeTable } from '../../src/iptables/restore-writer.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { type FamilyState, knownRules, stateFromRuleset } from '../../src/service/state.js';
import { generatedChains, generatedTable, prng, rule } from '../helpers/rule-gen.js';

const TABLES: readonly TableName[] = ['filter', 'mangle'];

function ruleset(seed: number, size: number): string {
  const r = prng(seed);
  return TABLES.map((table) => {
    const generated: { chain: string; model: Rule }[] = [];
    for (let i = 0; i < size; i++) {
      const chain = r.pick(generatedChains(table));
      generated.push({
        chain,
        model: normalizeRule(rule(r, 'ipv4', table, chain, { hostile: true }), 'ipv4'),
      });
    }
    return writeTable(generatedTable(table, generated));
  }).join('');
}

/** Random line edits of a save text: drop, duplicate, move between chains, take from `other`. */
function edit(seed: number, text: string, other: string): string {
  const r = prng(seed);
  const foreign = other.split('\n').filter((l) => l.startsWith('-A '));
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('-A ')) {
      out.push(line);
      continue;
    }
    const roll = r.int(0, 9);
    if (roll === 0) continue;
    out.push(line);
    if (roll === 1) out.push(line);
    if (roll === 2 && foreign.length) {
      const f = r.pick(foreign);
      // Only into a chain of the same name (the line's own chain must be declared).
      if (f.split(' ')[1] === line.split(' ')[1]) out.push(f);
    }
  }
  return out.join('\n');
}

function summary(s: FamilyState) {
  return [...s.tables.values()].map((t) => [
    t.name,
    [...t.chains.values()].map((c) => [c.name, c.policy, c.entries.map((e) => [e.text, e.id, e.rule])]),
  ]);
}

describe('re-read reuse', () => {
  it.each([1, 2, 3, 4, 5])('gives what a fresh parse gives (seed %i)', (seed) => {
    const first = ruleset(seed, 150);
    const previous = stateFromRuleset(parseSave(first, 'ipv4'));
    const second = edit(seed, first, ruleset(seed + 1000, 150));
    const known = knownRules(previous);
    let hits = 0;
    const counting = (table: TableName, text: string) => {
      const r = known(table, text);
      if (r) hits++;
      return r;
    };
    const reused = parseSave(second, 'ipv4', { known: counting });
    const fresh = parseSave(second, 'ipv4');
    expect(reused).toEqual(fresh);
    expect(summary(stateFromRuleset(reused, undefined, previous))).toEqual(summary(stateFromRuleset(fresh)));
    // Most lines were reused; the ones from the other ruleset were not.
    expect(hits).toBeGreaterThan(200);
    expect(hits).toBeLessThan(second.split('\n').filter((l) => l.startsWith('-A ')).length);
  });

  it('a known rule with counters requested is parsed (counters belong to the line)', () => {
    const text = '*filter\n:INPUT ACCEPT [0:0]\n[5:300] -A INPUT -j ACCEPT\nCOMMIT\n';
    const previous = stateFromRuleset(parseSave(text, 'ipv4'));
    const rs = parseSave(text, 'ipv4', { counters: true, known: knownRules(previous) });
    expect(rs.tables[0]?.chains[0]?.rules[0]?.counters).toEqual({ packets: 5n, bytes: 300n });
  });
});
