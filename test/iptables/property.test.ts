/**
 * Property: every valid rule we can model survives the kernel unchanged.
 *
 * A seeded generator builds a few hundred random valid rules (typed JSON, as the
 * APIs receive it) per family and table, over the stable typed matches and
 * targets and the rule-level fields. For each batch:
 *
 *   normalizeRule -> writeTable -> restore -> save(1) -> parseSave -> writeTable -> restore -> save(2)
 *
 * and then: the parsed models equal the generated ones, ruleText(model) is the
 * text iptables-save printed after `-A CHAIN `, and save(2) equals save(1).
 * One restore per family and table keeps the whole test to seconds.
 *
 * The seed is fixed so CI is deterministic; set PORTCULLIS_PROPERTY_SEED=<n> to
 * explore others (every failure message starts with the seed to reproduce it).
 */
import { expect, it } from 'vitest';
import type { Family, TableName } from '../../src/domain/family.js';
import type { Chain, Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { writeTable } from '../../src/iptables/restore-writer.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { executorFor, ruleLines } from '../helpers/roundtrip.js';
import { generatedChains, generatedTable, type Json, prng, rule } from '../helpers/rule-gen.js';

const SEED = Number(process.env.PORTCULLIS_PROPERTY_SEED ?? 20261122) >>> 0;
const RULES_PER_BATCH = 60;

// --------------------------------------------------------------- the test

const BATCHES: ReadonlyArray<readonly [Family, TableName]> = [
  ['ipv4', 'filter'],
  ['ipv4', 'nat'],
  ['ipv4', 'mangle'],
  ['ipv4', 'raw'],
  ['ipv6', 'filter'],
  ['ipv6', 'nat'],
  ['ipv6', 'mangle'],
  ['ipv6', 'raw'],
];

interface Generated {
  readonly chain: string;
  readonly input: Json;
  readonly model: Rule;
}

function generate(seed: number, family: Family, table: TableName): Generated[] {
  const r = prng(seed);
  const chains = generatedChains(table);
  const out: Generated[] = [];
  for (let i = 0; i < RULES_PER_BATCH; i++) {
    const chain = r.pick(chains);
    const input = rule(r, family, table, chain);
    let model: Rule;
    try {
      model = normalizeRule(input, family);
    } catch (e) {
      throw new Error(
        `seed ${seed} (${family}/${table}) generated a rule normalizeRule refuses: ${JSON.stringify(input)}: ${(e as Error).message}`,
      );
    }
    out.push({ chain, input, model });
  }
  return out;
}

const comparable = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

describeKernel('property: generated rules survive restore -> save -> parse -> write unchanged', () => {
  const ns = useNetns('ptest-prop');

  it.each(BATCHES)(`%s %s (seed ${SEED})`, async (family, table) => {
    const seed =
      (SEED ^ (family === 'ipv4' ? 0x1000 : 0x2000) ^ BATCHES.findIndex((b) => b[1] === table)) >>> 0;
    const generated = generate(seed, family, table);
    const exec = executorFor(ns());
    const where = `seed ${seed} (${family}/${table}; PORTCULLIS_PROPERTY_SEED=${SEED})`;

    const text1 = writeTable(generatedTable(table, generated));
    try {
      await exec.restore(family, text1);
    } catch (e) {
      const line = (e as { line?: number }).line;
      const bad = line === undefined ? undefined : text1.split('\n')[line - 1];
      throw new Error(
        `${where}: the kernel refused a generated rule: ${(e as Error).message}\n  line: ${bad}`,
      );
    }
    const saved1 = await exec.save(family, { table });
    const parsed = parseSave(saved1, family).tables.find((t) => t.name === table);
    const lines = ruleLines(saved1, table);

    const problems: string[] = [];
    for (const chain of generatedChains(table)) {
      const expected = generated.filter((g) => g.chain === chain);
      const back = parsed?.chains.find((c) => c.name === chain)?.rules ?? [];
      const printed = lines.get(chain) ?? [];
      if (back.length !== expected.length)
        problems.push(`${chain}: ${expected.length} rules written, ${back.length} read back`);
      expected.forEach((g, i) => {
        const ours = ruleText(g.model);
        const theirs = printed[i];
        const sameModel = JSON.stringify(back[i]) === JSON.stringify(g.model);
        if (ours !== theirs || !sameModel) {
          problems.push(
            [
              `${chain}[${i}] input: ${JSON.stringify(g.input)}`,
              `  ours:   ${ours}`,
              `  kernel: ${theirs}`,
              ...(sameModel
                ? []
                : [`  model:  ${JSON.stringify(g.model)}`, `  parsed: ${JSON.stringify(back[i])}`]),
            ].join('\n'),
          );
        }
      });
    }
    expect(problems, `${where}\n${problems.join('\n')}`).toEqual([]);

    // Second trip: what we parsed, written again, reads back as the same text.
    await exec.restore(family, writeTable(parsed as { name: TableName; chains: Chain[] }));
    const saved2 = await exec.save(family, { table });
    expect(comparable(saved2), where).toBe(comparable(saved1));
  });
});
