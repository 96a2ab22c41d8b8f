/**
 * A declarative replace sends most of a table back as the model holds it. A spec equal to the
 * text of a rule a request's validation accepted earlier (and the model keeps) is that rule,
 * without a parse (src/service/accepted-rules.ts). Over generated rules with hostile text, both
 * families, two tables:
 * - rules read from the kernel are never reused, even once parsed: a request's spec is parsed
 *   until a replace's own copy was adopted;
 * - after one replace, the next finds every rule it keeps: the very objects the model holds,
 *   each what parsing its spec gives, with its text known;
 * - the model after two replaces is what a fresh read of the kernel gives;
 * - a spec that only looks alike (other spacing, another order) is parsed, and a bad spec is
 *   refused even when the model holds rules.
 */
import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import type { Rule } from '../../src/domain/model.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import type { ValidOp } from '../../src/service/operations.js';
import { type FamilyState, stateFromRuleset } from '../../src/service/state.js';
import { type KnownRules, validateOperations } from '../../src/service/validate-operations.js';
import { generatedRuleset } from '../helpers/rule-gen.js';

type Inside = { model: { state: Map<Family, FamilyState> }; knownRules: KnownRules };

function specsOf(state: FamilyState, table: 'filter' | 'mangle') {
  return [...(state.tables.get(table)?.chains.values() ?? [])].map((c) => ({
    name: c.name,
    ...(c.policy ? { policy: c.policy } : {}),
    rules: c.entries.map((e) => ({ spec: e.text })),
  }));
}

/** The model's rules by text (the objects it holds, parsing what was not parsed yet). */
function modelRules(state: FamilyState, table: 'filter' | 'mangle'): Map<string, Set<Rule>> {
  const out = new Map<string, Set<Rule>>();
  for (const c of state.tables.get(table)?.chains.values() ?? [])
    for (const e of c.entries) out.set(e.text, (out.get(e.text) ?? new Set()).add(e.rule));
  return out;
}

const summary = (s: FamilyState) =>
  [...s.tables.values()].map((t) => [
    t.name,
    [...t.chains.values()].map((c) => [
      c.name,
      c.policy,
      c.entries.map((e) => [e.text, e.id, JSON.stringify(e.rule)]),
    ]),
  ]);

describe('a declarative replace reuses the rules the model accepted', () => {
  it.each(['ipv4', 'ipv6'] as const)('%s: generated rules, two replaces of two tables', async (family) => {
    const fake = new FakeExecutor();
    await fake.restore(family, generatedRuleset(23, 120, family, ['filter', 'mangle']), { noflush: false });
    const service = new FirewallService({ executor: fake, families: [family], pollIntervalMs: 0 });
    await service.start();
    try {
      const inside = service as unknown as Inside;
      const state = () => inside.model.state.get(family) as FamilyState;
      const validate = (table: 'filter' | 'mangle', extra: string) => {
        const chains = specsOf(state(), table);
        chains
          .find((c) => c.name === (table === 'filter' ? 'INPUT' : 'PREROUTING'))
          ?.rules.push({ spec: extra });
        const [op] = validateOperations(
          [{ op: 'replaceTable', family, table, chains }],
          [family],
          inside.knownRules,
        ) as Extract<ValidOp, { op: 'replaceTable' }>[];
        return { chains, op: op as Extract<ValidOp, { op: 'replaceTable' }> };
      };
      const extra = family === 'ipv4' ? '-s 192.0.2.7/32 -j DROP' : '-s 2001:db8::7/128 -j DROP';
      for (const table of ['filter', 'mangle'] as const) {
        // Read from the kernel and parsed there (a table read): nothing is reused.
        service.getTable(family, table);
        const first = validate(table, extra);
        const held = new Set([...modelRules(state(), table).values()].flatMap((x) => [...x]));
        const reusedAtFirst = first.op.chains.flatMap((c) => c.rules.filter((r) => held.has(r)));
        expect(reusedAtFirst).toEqual([]);
        expect(first.op.chains.every((c) => c.texts === undefined)).toBe(true);
        await service.apply([{ op: 'replaceTable', family, table, chains: first.chains }]);

        // The next replace: every kept rule is the model's own object, as its spec parses.
        const second = validate(table, extra.replace('7', '8'));
        const after = modelRules(state(), table);
        let reused = 0;
        for (const c of second.op.chains) {
          const specs = second.chains.find((x) => x.name === c.name)?.rules ?? [];
          c.rules.forEach((rule, j) => {
            const spec = (specs[j] as { spec: string }).spec;
            expect(rule, spec).toEqual(parseRuleSpec(spec, family));
            if (after.get(spec)?.has(rule)) {
              reused++;
              expect(c.texts?.[j]).toBe(spec);
            } else expect(c.texts?.[j]).toBeUndefined();
          });
        }
        const kept = second.chains.reduce((n, c) => n + c.rules.length, 0) - 1;
        // Rules with an untyped part take the kernel's form and are never accepted.
        expect(reused).toBeGreaterThan(kept * 0.8);
        expect(reused).toBeLessThanOrEqual(kept);
        await service.apply([{ op: 'replaceTable', family, table, chains: second.chains }]);
      }
      // The model says what the kernel holds.
      const fresh = stateFromRuleset(parseSave(await fake.save(family), family));
      expect(summary(state())).toEqual(summary(fresh));
    } finally {
      await service.close();
    }
  });

  it('a spec that only looks alike is parsed; a bad spec is refused while the model holds rules', async () => {
    const fake = new FakeExecutor();
    const service = new FirewallService({ executor: fake, families: ['ipv4'], pollIntervalMs: 0 });
    await service.start();
    try {
      const inside = service as unknown as Inside;
      const chains = [{ name: 'INPUT', rules: [{ spec: '-p tcp -m tcp --dport 22 -j ACCEPT' }] }];
      await service.apply([{ op: 'replaceTable', family: 'ipv4', table: 'filter', chains }]);
      const held = inside.model.state.get('ipv4')?.tables.get('filter')?.chains.get('INPUT')
        ?.entries[0]?.rule;
      const check = (spec: string) =>
        validateOperations(
          [
            {
              op: 'replaceTable',
              family: 'ipv4',
              table: 'filter',
              chains: [{ name: 'INPUT', rules: [{ spec }] }],
            },
          ],
          ['ipv4'],
          inside.knownRules,
        ) as Extract<ValidOp, { op: 'replaceTable' }>[];
      expect(check('-p tcp -m tcp --dport 22 -j ACCEPT')[0]?.chains[0]?.rules[0]).toBe(held);
      for (const spec of ['-p tcp  -m tcp --dport 22 -j ACCEPT', '-p tcp --dport 22 -j ACCEPT']) {
        const rule = check(spec)[0]?.chains[0]?.rules[0];
        expect(rule).not.toBe(held);
        expect(rule).toEqual(held);
      }
      expect(() => check('-p tcp -m tcp --dport 99999 -j ACCEPT')).toThrow(/port/);
      // A replace of one chain finds the rule too.
      const [one] = validateOperations(
        [
          {
            op: 'replaceChain',
            family: 'ipv4',
            table: 'filter',
            chain: 'INPUT',
            rules: [{ spec: '-p tcp -m tcp --dport 22 -j ACCEPT' }],
          },
        ],
        ['ipv4'],
        inside.knownRules,
      ) as Extract<ValidOp, { op: 'replaceChain' }>[];
      expect(one?.rules[0]).toBe(held);
    } finally {
      await service.close();
    }
  });
});
