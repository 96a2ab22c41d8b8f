/**
 * Lossless text, proven on the kernel: for generated rules covering every
 * typed match and target, with comments and log prefixes drawn from a hostile
 * alphabet (both quotes, backslashes, \' and \", spaces, #, $, Unicode, maximum
 * lengths in bytes), these are identical for every rule:
 *
 *   (a) the kernel's iptables-save line after restoring our restore text,
 *   (b) our text for the rule, as the service reports it after reading the kernel,
 *   (c) the rule obtained by sending (b) back as a spec (parsed, and through the
 *       service's EnsureRule, which must find the rule instead of adding a copy),
 *   (d) the rule obtained by parsing (a).
 *
 * And the whole ruleset as text (GetRuleset text/plain) equals `iptables-save`
 * of the namespace, table order included, comments and counters aside.
 * Strings the kernel cannot hold are refused up front naming the field.
 *
 * Seeded and reproducible: PORTCULLIS_LOSSLESS_SEED=<n> explores another seed,
 * PORTCULLIS_LOSSLESS_RULES=<n> changes the rules per table (default 260: 2,080
 * rules per run over two families and four tables).
 */
import { beforeAll, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import type { Family, TableName } from '../../src/domain/family.js';
import type { Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { writeTable } from '../../src/iptables/restore-writer.js';
import { checkRuleLine } from '../../src/iptables/rule-check.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { executorFor, ruleLines } from '../helpers/roundtrip.js';
import { generatedChains, generatedTable, type Json, prng, rule } from '../helpers/rule-gen.js';

const SEED = Number(process.env.PORTCULLIS_LOSSLESS_SEED ?? 20261129) >>> 0;
const PER_TABLE = Number(process.env.PORTCULLIS_LOSSLESS_RULES ?? 260);
const TABLES: readonly TableName[] = ['filter', 'nat', 'mangle', 'raw'];
const SETS: Readonly<Record<Family, readonly string[]>> = { ipv4: ['ptl-v4'], ipv6: ['ptl-v6'] };

interface Generated {
  readonly table: TableName;
  readonly chain: string;
  readonly input: Json;
  readonly model: Rule;
}

/**
 * Generated rules, and the ones we refuse as "iptables cannot read this back" with the
 * line iptables would be given (the test proves the kernel refuses them too).
 */
function generate(seed: number, family: Family): { rules: Generated[]; refused: string[] } {
  const r = prng(seed);
  const out: Generated[] = [];
  const refused: string[] = [];
  for (const table of TABLES) {
    const chains = generatedChains(table);
    for (let i = 0; i < PER_TABLE; i++) {
      const chain = r.pick(chains);
      const input = rule(r, family, table, chain, { hostile: true, extras: true, sets: SETS });
      let model: Rule;
      try {
        model = normalizeRule(input, family);
      } catch (e) {
        throw new Error(
          `seed ${seed} (${family}/${table}) generated a rule we refuse: ${JSON.stringify(input)}: ${(e as Error).message}`,
        );
      }
      try {
        checkRuleLine(model, family, 'rule');
      } catch (e) {
        if (/cannot be written so that iptables reads it back/.test((e as Error).message)) {
          refused.push(`*${table}\n-A ${chain} ${ruleText(model)}\nCOMMIT\n`);
          continue;
        }
        throw new Error(
          `seed ${seed} (${family}/${table}) generated a rule we refuse: ${JSON.stringify(input)}: ${(e as Error).message}`,
        );
      }
      out.push({ table, chain, input, model });
    }
  }
  return { rules: out, refused };
}

/** iptables-save output without its comment lines and with every counter as [0:0]. */
function comparable(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ' [0:0]'))
    .join('\n');
}

describeKernel('lossless text: every rule we print is valid input again, byte for byte', () => {
  const ns = useNetns('ptest-lossless');

  beforeAll(async () => {
    for (const [name, family] of [
      ['ptl-v4', 'inet'],
      ['ptl-v6', 'inet6'],
    ] as const) {
      const r = await ns().exec(['ipset', 'create', name, 'hash:ip', 'family', family]);
      if (r.code !== 0) throw new Error(`ipset create ${name} failed: ${r.stderr.trim()}`);
    }
  });

  it.each(['ipv4', 'ipv6'] as const)(
    `%s: ${PER_TABLE * TABLES.length} generated rules with hostile text (seed ${SEED})`,
    async (family) => {
      const seed = (SEED ^ (family === 'ipv4' ? 0x4a11 : 0x6b22)) >>> 0;
      const where = `seed ${seed} (${family}; PORTCULLIS_LOSSLESS_SEED=${SEED})`;
      const { rules: generated, refused } = generate(seed, family);
      const exec = executorFor(ns());
      const problems: string[] = [];

      // What we refuse because iptables would read it as another rule, iptables refuses too.
      for (const text of refused) {
        const accepted = await exec.restore(family, text, { noflush: true, test: true }).then(
          () => true,
          () => false,
        );
        if (accepted) problems.push(`we refuse, the kernel accepts: ${text}`);
      }

      // (c) before the kernel: our text read as a spec is the same rule.
      for (const g of generated) {
        const text = ruleText(g.model);
        let back: Rule | undefined;
        try {
          back = parseRuleSpec(text, family);
        } catch (e) {
          problems.push(`spec of our text refused: ${text}\n  ${(e as Error).message}`);
          continue;
        }
        if (JSON.stringify(back) !== JSON.stringify(g.model))
          problems.push(`spec of our text is another rule: ${text}\n  back: ${ruleText(back)}`);
      }
      expect(problems, `${where}\n${problems.slice(0, 20).join('\n')}`).toEqual([]);

      for (const table of TABLES) {
        const text = writeTable(
          generatedTable(
            table,
            generated.filter((g) => g.table === table),
          ),
        );
        try {
          await exec.restore(family, text);
        } catch (e) {
          const line = (e as { line?: number }).line;
          throw new Error(
            `${where}: the kernel refused ${table}: ${(e as Error).message}\n  line: ${line === undefined ? '?' : text.split('\n')[line - 1]}`,
          );
        }
      }
      const saved = await exec.save(family);
      const parsed = parseSave(saved, family);

      // (a) = (b) = ruleText, (d) = the model we wrote.
      for (const table of TABLES) {
        const lines = ruleLines(saved, table);
        const back = parsed.tables.find((t) => t.name === table);
        for (const chain of generatedChains(table)) {
          const expected = generated.filter((g) => g.table === table && g.chain === chain);
          const printed = lines.get(chain) ?? [];
          const models = back?.chains.find((c) => c.name === chain)?.rules ?? [];
          if (printed.length !== expected.length)
            problems.push(`${table}/${chain}: ${expected.length} written, ${printed.length} printed`);
          expected.forEach((g, i) => {
            const ours = ruleText(g.model);
            if (ours !== printed[i] || JSON.stringify(models[i]) !== JSON.stringify(g.model)) {
              problems.push(
                [
                  `${table}/${chain}[${i}] input: ${JSON.stringify(g.input)}`,
                  `  ours:   ${ours}`,
                  `  kernel: ${printed[i]}`,
                ].join('\n'),
              );
            }
          });
        }
      }
      expect(problems, `${where}\n${problems.slice(0, 20).join('\n')}`).toEqual([]);

      // Through the service: it reads the kernel; its texts are the kernel's lines, each text
      // sent back to EnsureRule finds its rule, and the text/plain ruleset is iptables-save.
      const service = new FirewallService({ executor: exec, families: [family], pollIntervalMs: 0 });
      await service.start();
      try {
        const revision = service.revision;
        const ensures: Promise<unknown>[] = [];
        for (const table of TABLES) {
          const lines = ruleLines(saved, table);
          for (const c of service.getTable(family, table).chains) {
            const printed = lines.get(c.name) ?? [];
            expect(
              c.rules.map((r) => r.text),
              `${where}: ${table}/${c.name}`,
            ).toEqual(printed);
            for (const r of c.rules) {
              ensures.push(
                service
                  .apply([{ op: 'ensure', family, table, chain: c.name, rule: { spec: r.text } }])
                  .then((res) => {
                    // Identical rules in one chain: ensure finds the first of them.
                    const first = c.rules.find((x) => x.text === r.text);
                    if (res.results[0]?.existed !== true || res.results[0]?.rule?.id !== first?.id)
                      problems.push(`ensure of ${table}/${c.name} "${r.text}" did not find ${first?.id}`);
                  }),
              );
            }
          }
        }
        await Promise.all(ensures);
        expect(problems, `${where}\n${problems.slice(0, 20).join('\n')}`).toEqual([]);
        expect(service.revision, 'no ensure changed anything').toBe(revision);
        expect(ensures.length).toBe(generated.length);
        expect(generated.length + refused.length).toBe(PER_TABLE * TABLES.length);
        expect(comparable(service.getRulesetText(family).text), where).toBe(
          comparable(await exec.save(family)),
        );
      } finally {
        await service.close();
      }
    },
  );
});

/** What the kernel cannot hold is refused up front, naming the field, in JSON and as a spec. */
it.each<[string, Json, string, string]>([
  ['comment with a newline', { matches: [{ module: 'comment', comment: 'a\nb' }] }, 'matches[0].comment', ''],
  ['comment with NUL', { matches: [{ module: 'comment', comment: 'a\u0000b' }] }, 'matches[0].comment', ''],
  [
    'comment with a C1 control',
    { matches: [{ module: 'comment', comment: 'a\u0085b' }] },
    'matches[0].comment',
    '',
  ],
  [
    'comment with a lone surrogate',
    { matches: [{ module: 'comment', comment: 'a\ud83d' }] },
    'matches[0].comment',
    '',
  ],
  [
    'comment of 256 bytes',
    { matches: [{ module: 'comment', comment: 'é'.repeat(128) }] },
    'matches[0].comment',
    `"${'é'.repeat(128)}"`,
  ],
  [
    'LOG prefix of 30 bytes',
    { target: { target: 'LOG', prefix: `${'🔥'.repeat(7)}xy` } },
    'target.prefix',
    `"${'🔥'.repeat(7)}xy"`,
  ],
  [
    'NFLOG prefix of 64 bytes',
    { target: { target: 'NFLOG', prefix: '"'.repeat(64) } },
    'target.prefix',
    `"${'\\"'.repeat(64)}"`,
  ],
])('refuses a %s, naming the field', (_what, input, field, specValue) => {
  let e: unknown;
  try {
    normalizeRule(input, 'ipv4');
  } catch (err) {
    e = err;
  }
  expect(e).toBeInstanceOf(DomainError);
  expect((e as DomainError).code).toBe('invalid_argument');
  expect((e as DomainError).field).toBe(`rule.${field}`);
  if (specValue === '') return;
  const spec =
    'matches' in input
      ? `-m comment --comment ${specValue}`
      : `-j ${(input.target as Json).target === 'LOG' ? 'LOG --log-prefix' : 'NFLOG --nflog-prefix'} ${specValue}`;
  let s: unknown;
  try {
    parseRuleSpec(spec, 'ipv4');
  } catch (err) {
    s = err;
  }
  expect(s, spec).toBeInstanceOf(DomainError);
  expect((s as DomainError).code).toBe('invalid_argument');
  expect((s as DomainError).field).toBe(`spec.${field}`);
});
