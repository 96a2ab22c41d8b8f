/**
 * A kernel read keeps each rule as the text iptables-save printed and parses it when first
 * looked at (scanSave, stateFromSave); a re-read reuses what the model holds. Properties, over
 * generated rules with hostile text in two tables and both families:
 * - the lazy model is exactly what parsing the whole save gives (rules, texts, ids), and a read
 *   parses nothing until a rule is looked at;
 * - after random edits (rules removed, duplicated with ids by occurrence, moved to another
 *   chain, new ones), a re-read with the previous model equals a fresh parse, and rules the
 *   previous model had parsed are not parsed again;
 * - the model's save text (written from texts) is what writing the parsed rules gives.
 * And a rule this version cannot read: the read succeeds, the background check reports it
 * (status, observer) and what needs that rule fails with a clear error.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import type { Family, TableName } from '../../src/domain/family.js';
import type { Chain, Rule } from '../../src/domain/model.js';
import type { SaveOptions } from '../../src/exec/executor.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { writeRestore } from '../../src/iptables/restore-writer.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { parseSave, scanSave } from '../../src/iptables/save-parser.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { LockoutGuard, sources } from '../../src/service/guard.js';
import {
  adoptRule,
  checkReadable,
  type FamilyState,
  lazyRuleset,
  parsedEntries,
  type RuleEntry,
  stateFromRuleset,
  stateFromSave,
  stateText,
  toRuleset,
  uncheckedEntries,
} from '../../src/service/state.js';
import { generatedRuleset, prng } from '../helpers/rule-gen.js';
import { seed } from '../helpers/service.js';

const TABLES: readonly TableName[] = ['filter', 'mangle'];

function ruleset(seedNumber: number, size: number, family: Family = 'ipv4'): string {
  return generatedRuleset(seedNumber, size, family, TABLES);
}

/** Random line edits of a save text: drop, duplicate, move between chains, take from `other`. */
function edit(seedNumber: number, text: string, other: string): string {
  const r = prng(seedNumber);
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
    [...t.chains.values()].map((c) => [
      c.name,
      c.policy,
      c.entries.map((e) => [e.text, e.id, JSON.stringify(e.rule)]),
    ]),
  ]);
}

const lazy = (text: string, family: Family, previous?: FamilyState) =>
  stateFromSave(family, scanSave(text, family), undefined, previous);
const eager = (text: string, family: Family) => stateFromRuleset(parseSave(text, family));
/** Rules whose line has a text after `-A CHAIN ` (a rule with no options is parsed at once). */
const withText = (s: FamilyState) =>
  [...s.tables.values()].reduce(
    (n, t) =>
      n + [...t.chains.values()].reduce((m, c) => m + c.entries.filter((e) => e.text !== '').length, 0),
    0,
  );
const ruleCount = (s: FamilyState) =>
  [...s.tables.values()].reduce(
    (n, t) => n + [...t.chains.values()].reduce((m, c) => m + c.entries.length, 0),
    0,
  );

describe('kernel reads parse rules lazily', () => {
  it.each([
    [1, 'ipv4'],
    [2, 'ipv4'],
    [3, 'ipv6'],
    [4, 'ipv6'],
  ] as const)('a read is what parsing the whole save gives (seed %i, %s)', (seedNumber, family) => {
    const text = ruleset(seedNumber, 150, family);
    const state = lazy(text, family);
    // Nothing was parsed by the read.
    expect(uncheckedEntries(state).length).toBe(withText(state));
    expect(ruleCount(state)).toBe(300);
    expect(withText(state)).toBeGreaterThan(290);
    // Its save text needs no parsing either, and is what writing the parsed rules gives.
    expect(stateText(state)).toBe(writeRestore(toRuleset(eager(text, family))));
    expect(uncheckedEntries(state).length).toBe(withText(state));
    expect(summary(state)).toEqual(summary(eager(text, family)));
  });

  it.each([1, 2, 3, 4, 5])(
    'a re-read after edits equals a fresh parse, reusing parsed rules (seed %i)',
    (n) => {
      const first = ruleset(n, 150);
      const previous = lazy(first, 'ipv4');
      // Look at every rule of the first read: the re-read should parse none of those again.
      const parsedBefore = new Map<string, Set<Rule>>();
      for (const t of previous.tables.values())
        for (const c of t.chains.values())
          for (const e of c.entries) {
            const key = `${t.name} ${e.text}`;
            parsedBefore.set(key, (parsedBefore.get(key) ?? new Set()).add(e.rule));
          }
      const second = edit(n, first, ruleset(n + 1000, 150));
      const reread = lazy(second, 'ipv4', previous);
      const unchecked = uncheckedEntries(reread);
      let reused = 0;
      for (const t of reread.tables.values())
        for (const c of t.chains.values())
          for (const e of c.entries) {
            const before = parsedBefore.get(`${t.name} ${e.text}`);
            // A rule with no options is parsed by the read (its line is not `-A CHAIN TEXT`).
            if (before === undefined || e.text === '') continue;
            expect(unchecked).not.toContain(e);
            expect(before.has(e.rule)).toBe(true);
            reused++;
          }
      expect(reused).toBeGreaterThan(200);
      // The lines taken from the other ruleset are new: not parsed yet.
      expect(unchecked.length).toBeGreaterThan(0);
      expect(summary(reread)).toEqual(summary(eager(second, 'ipv4')));
    },
  );

  it('a re-read keeps ids by (text, occurrence) and checks only what is new', () => {
    const text = ruleset(7, 100);
    const previous = lazy(text, 'ipv4');
    for (const e of uncheckedEntries(previous)) checkReadable(e);
    expect(uncheckedEntries(previous)).toEqual([]);
    const same = lazy(text, 'ipv4', previous);
    expect(uncheckedEntries(same)).toEqual([]);
    expect(summary(same)).toEqual(summary(previous));
  });

  it('a re-read reuses a parsed rule only where the chains read it alike (-j NAME: chain or target)', () => {
    const without = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j FOO\n-A INPUT -j ACCEPT\nCOMMIT\n';
    const withChain =
      '*filter\n:INPUT ACCEPT [0:0]\n:FOO - [0:0]\n-A INPUT -j FOO\n-A INPUT -j ACCEPT\nCOMMIT\n';
    for (const [first, second] of [
      [without, withChain],
      [withChain, without],
    ] as const) {
      const previous = lazy(first, 'ipv4');
      for (const e of previous.tables.get('filter')?.chains.get('INPUT')?.entries ?? []) void e.rule;
      const reread = lazy(second, 'ipv4', previous);
      expect(summary(reread)).toEqual(summary(eager(second, 'ipv4')));
      // Only the rule the chains cannot change was taken over: nothing is left to check.
      expect(uncheckedEntries(reread)).toEqual([]);
    }
    expect(
      eager(withChain, 'ipv4').tables.get('filter')?.chains.get('INPUT')?.entries[0]?.rule.target,
    ).toEqual({
      jump: 'FOO',
    });
  });

  it('takes over the rules a request parsed from the same texts: what parsing the save gives', () => {
    // A declarative replace parses the request's copy of every kept rule; the entries read from
    // the kernel take those (adoptRule) instead of parsing their texts again for the guard.
    for (const family of ['ipv4', 'ipv6'] as const) {
      const text = ruleset(11, 150, family);
      const state = lazy(text, family);
      for (const t of state.tables.values())
        for (const c of t.chains.values())
          for (const e of c.entries) {
            let parsed: Rule;
            try {
              parsed = parseRuleSpec(e.text, family);
            } catch {
              continue; // a request holding this text would have been refused
            }
            adoptRule(e, parsed);
          }
      expect(parsedEntries(state).length).toBeGreaterThan(withText(state) / 2);
      expect(summary(state)).toEqual(summary(eager(text, family)));
    }
    // -j NAME read as a target (no chain FOO at the read): a request's jump to FOO is not taken.
    const text = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j FOO\nCOMMIT\n';
    const state = lazy(text, 'ipv4');
    const [entry] = uncheckedEntries(state);
    adoptRule(entry as RuleEntry, parseRuleSpec('-j FOO', 'ipv4'));
    expect(parseRuleSpec('-j FOO', 'ipv4').target).toEqual({ jump: 'FOO' });
    expect(parsedEntries(state)).toEqual([]);
    expect(summary(state)).toEqual(summary(eager(text, 'ipv4')));
  });

  it('a replace of a table takes over the parse of every rule it keeps', async () => {
    const fake = new FakeExecutor();
    await fake.restore('ipv4', ruleset(5, 60), { noflush: false });
    const service = new FirewallService({ executor: fake, families: ['ipv4'], pollIntervalMs: 0 });
    await service.start();
    const model = (service as unknown as { model: { state: Map<Family, FamilyState> } }).model;
    const before = model.state.get('ipv4') as FamilyState;
    expect(parsedEntries(before)).toEqual([]);
    const filter = before.tables.get('filter');
    const chains = [...(filter?.chains.values() ?? [])].map((c) => ({
      name: c.name,
      ...(c.policy ? { policy: c.policy } : {}),
      rules: c.entries.map((e) => ({ spec: e.text })),
    }));
    const input = chains.find((c) => c.name === 'INPUT');
    input?.rules.push({ spec: '-s 192.0.2.77/32 -j DROP' });
    await service.apply([{ op: 'replaceTable', family: 'ipv4', table: 'filter', chains }]);
    const after = model.state.get('ipv4') as FamilyState;
    const kept = [...(after.tables.get('filter')?.chains.values() ?? [])].flatMap((c) =>
      c.entries.filter((e) => e.text !== '-s 192.0.2.77/32 -j DROP'),
    );
    expect(parsedEntries(after).length).toBe(kept.filter((e) => e.text !== '').length);
    await service.close();
  });

  it('the guard reads sources and recent lists from the texts: the same paths as from parsed rules', () => {
    const guard = new LockoutGuard(
      { sshPorts: [22], sshSources: [], apiPorts: [443], adminSources: ['198.51.100.0/24', '2001:db8::/48'] },
      ['ipv4', 'ipv6'],
    );
    let withSource = 0;
    let withRecent = 0;
    for (const n of [3, 17, 29]) {
      const states = new Map(
        (['ipv4', 'ipv6'] as const).map((family) => [family, lazy(ruleset(n, 200, family), family)] as const),
      );
      const eagerSets = new Map([...states].map(([f, st]) => [f, toRuleset(st)] as const));
      for (const rs of eagerSets.values())
        for (const t of rs.tables)
          for (const c of t.chains) {
            withSource += c.rules.filter(
              (r) => r.source !== undefined && !r.invert?.includes('source'),
            ).length;
            withRecent += c.rules.filter((r) => r.matches.some((m) => m.module === 'recent')).length;
          }
      const fresh = () =>
        new Map([...states].map(([f, st]) => [f, lazyRuleset(lazy(stateText(st), f))] as const));
      const lazySets = fresh();
      for (const [f, rs] of lazySets)
        for (const t of rs.tables)
          for (const c of t.chains)
            expect(sources(c), `${f} ${t.name} ${c.name}`).toEqual(
              sources(
                eagerSets
                  .get(f)
                  ?.tables.find((x) => x.name === t.name)
                  ?.chains.find((x) => x.name === c.name) as Chain,
              ),
            );
      const caller = [{ address: '192.0.2.9', port: 443 }];
      expect(guard.paths([fresh(), fresh()], caller)).toEqual(guard.paths([eagerSets, eagerSets], caller));
    }
    // The generated rulesets do hold both (the comparison above is not vacuous).
    expect(withSource).toBeGreaterThan(50);
    expect(withRecent).toBeGreaterThan(5);
  });

  it('the guard parses only the chains its packets walk', () => {
    const text = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':ASIDE - [0:0]',
      '-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '-A FORWARD -j ASIDE',
      ...Array.from(
        { length: 50 },
        (_, i) => `-A ASIDE -s 192.0.2.${i}/32 -p udp -m udp --dport ${i + 1} -j DROP`,
      ),
      'COMMIT',
      '',
    ].join('\n');
    const state = lazy(text, 'ipv4');
    const guard = new LockoutGuard({ sshPorts: [22], sshSources: [], apiPorts: [], adminSources: [] }, [
      'ipv4',
    ]);
    const rulesets = new Map([['ipv4', lazyRuleset(state)] as const]);
    const paths = guard.paths([rulesets, rulesets]);
    expect(guard.check(rulesets, rulesets, paths)).toEqual([]);
    // INPUT and OUTPUT were walked; FORWARD and ASIDE were not parsed, nor needed for sources.
    expect(uncheckedEntries(state).map((e) => e.text)).toEqual([
      '-j ASIDE',
      ...Array.from({ length: 50 }, (_, i) => `-s 192.0.2.${i}/32 -p udp -m udp --dport ${i + 1} -j DROP`),
    ]);
  });

  it('lines in another form (counters, --append) are parsed at once, to the same text', () => {
    const text =
      '*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n[5:300] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n--append X -j RETURN\n-A INPUT\n-A INPUT -j X\nCOMMIT\n';
    const state = lazy(text, 'ipv4');
    expect(uncheckedEntries(state).map((e) => e.text)).toEqual(['-j X']);
    expect(summary(state)).toEqual(summary(eager(text, 'ipv4')));
    expect(stateText(state)).toBe(writeRestore(toRuleset(eager(text, 'ipv4'))));
  });

  it('a rule this version cannot read: the read succeeds, reading that rule fails clearly', () => {
    const state = lazy('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m tcp --dport 22\nCOMMIT\n', 'ipv4');
    const [entry] = uncheckedEntries(state);
    expect(entry?.text).toBe('-m tcp --dport 22');
    expect(() => checkReadable(entry as never)).toThrow(
      /ipv4 filter\/INPUT .*cannot read.*tcp needs protocol tcp/,
    );
    let error: unknown;
    try {
      void entry?.rule;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('internal');
    // A structural error is still refused by the read itself.
    expect(() => scanSave('*filter\n-A INPUT -j ACCEPT\nCOMMIT\n', 'ipv4')).toThrow(/not declared/);
  });
});

/** A kernel that also prints one rule this version cannot parse. */
class Unreadable extends FakeExecutor {
  override async save(family: Family, options: SaveOptions = {}): Promise<string> {
    const text = await super.save(family, options);
    return text.replace(':INPUT ACCEPT [0:0]\n', ':INPUT ACCEPT [0:0]\n-A INPUT -m tcp --dport 22\n');
  }
}

describe('a service on a kernel with an unreadable rule', () => {
  it('starts, reports it in status and to the observer, and fails only what needs that rule', async () => {
    const fake = new Unreadable();
    await fake.restore('ipv4', seed('ipv4'));
    const reports: { count: number; first: string }[] = [];
    const service = new FirewallService({
      executor: fake,
      families: ['ipv4'],
      pollIntervalMs: 0,
      queue: { detectReentry: true },
      observer: { unreadable: (e) => reports.push(e) },
    });
    await service.start();
    try {
      for (let i = 0; i < 300 && service.status().unreadable === undefined; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(service.status().unreadable).toMatch(/^1 rule\(s\) in the kernel cannot be read.*filter\/INPUT/);
      expect(reports).toHaveLength(1);
      // The model says what the kernel holds: the text is there.
      expect(service.getRulesetText('ipv4').text).toContain('-A INPUT -m tcp --dport 22\n');
      // Typed reads of INPUT need the rule: a clear internal error, not a wrong answer.
      expect(() => service.getRuleset('ipv4')).toThrow(/cannot read/);
    } finally {
      await service.close();
    }
  });
});
