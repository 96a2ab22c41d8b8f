/**
 * The typed rules a model holds share V8 hidden classes: every object of a rule (the rule, its
 * matches, its target, their option values) with the same keys in the same order has the same
 * map as the others, however it was made (a spec, a kernel save line, typed JSON). A map is
 * about 150 bytes with its descriptors; an object that gets one of its own (V8 does that for an
 * object made by a spread and then grown) costs that per object: at 500,000 rules this was
 * 150 MB of the model's memory (issue 15). Checked with V8's own %HaveSameMap over generated
 * rules of every typed match and target, both families, four tables.
 */
import { setFlagsFromString } from 'node:v8';
import { expect, it } from 'vitest';
import type { Family, TableName } from '../../src/domain/family.js';
import type { Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { generatedRuleset } from '../helpers/rule-gen.js';

const TABLES: readonly TableName[] = ['filter', 'nat', 'mangle', 'raw'];

setFlagsFromString('--allow-natives-syntax');
const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

/** Every object reachable from the rules, grouped by where it sits and its keys in order. */
function objectsByShape(rules: readonly Rule[]): Map<string, object[]> {
  const out = new Map<string, object[]>();
  const visit = (value: unknown, path: string) => {
    if (typeof value !== 'object' || value === null) return;
    const key = `${path} ${Array.isArray(value) ? '[]' : Object.keys(value).join(',')} ${Object.isFrozen(value)}`;
    const group = out.get(key) ?? [];
    out.set(key, group);
    group.push(value);
    if (Array.isArray(value)) for (const v of value) visit(v, `${path}[]`);
    else for (const [k, v] of Object.entries(value)) visit(v, `${path}.${k}`);
  };
  for (const r of rules) visit(r, 'rule');
  return out;
}

it.each(['ipv4', 'ipv6'] as const)('%s: objects of one shape share one hidden class', (family: Family) => {
  const text = generatedRuleset(909, 300, family, TABLES);
  const saved = parseSave(text, family).tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
  const lines = text.split('\n').filter((l) => l.startsWith('-A '));
  const fromSpecs: Rule[] = [];
  for (const line of lines) {
    try {
      fromSpecs.push(parseRuleSpec(line.slice(line.indexOf(' ', 3) + 1), family));
    } catch {
      // a jump to a chain of the save, or a form a request may not send: the save parse has it
    }
  }
  const typed = saved.map((r) => normalizeRule(JSON.parse(JSON.stringify(r)), family));
  expect(fromSpecs.length).toBeGreaterThan(lines.length / 2);
  const problems: string[] = [];
  let objects = 0;
  for (const [shape, group] of objectsByShape([...saved, ...fromSpecs, ...typed])) {
    objects += group.length;
    const odd = group.filter((o) => !sameMap(o, group[0] as object)).length;
    // Arrays of different element kinds (small integers, strings) have different maps by design.
    if (odd > 0 && !shape.includes(' [] '))
      problems.push(`${shape}: ${odd} of ${group.length} have another map`);
  }
  expect(objects).toBeGreaterThan(3000);
  expect(problems).toEqual([]);
});
