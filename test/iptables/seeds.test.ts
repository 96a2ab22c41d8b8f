/**
 * The two seed scenarios end to end through the codec and a real kernel.
 *
 * test/fixtures/seeds/*.save are what iptables-save 1.8.9 (nf_tables) printed
 * after the seed articles' commands were run with iptables / ip6tables in a
 * fresh network namespace. Each one must survive parse -> write -> restore ->
 * save byte for byte (ignoring `#` lines and counters), and each command line
 * pasted from the article must parse to the same rule as the fixture holds.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import type { Family } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import { writeRestore } from '../../src/iptables/restore-writer.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { executorFor } from '../helpers/roundtrip.js';

const FIXTURES = new URL('../fixtures/seeds/', import.meta.url);

function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

/** Save text without `#` lines and with every counter zeroed. */
function comparable(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');
}

interface PastedCommand {
  /** Exactly as the article prints it (typographic dashes and quotes, wrapped lines). */
  readonly pasted: string;
  readonly chain: string;
  /** Index of the rule in that chain of the fixture. */
  readonly index: number;
}

interface Scenario {
  readonly name: string;
  readonly fixture: string;
  readonly policies: Readonly<Record<string, string>>;
  readonly commands: readonly PastedCommand[];
}

// From ../shared/seeds/secure-server-with-iptables.txt, verbatim.
const SSH_BRUTE_FORCE: readonly PastedCommand[] = [
  {
    pasted:
      'sudo iptables -A INPUT -p tcp -m tcp –dport 22 -m state –state NEW -m recent   –set –name DEFAULT –rsource',
    chain: 'INPUT',
    index: 0,
  },
  {
    pasted:
      'sudo iptables -A INPUT  -p tcp -m tcp –dport 22 -m state –state NEW -m recent\n\n    –update –seconds 60 –hitcount 4 –name DEFAULT –rsource -j LOG_AND_DROP',
    chain: 'INPUT',
    index: 1,
  },
  { pasted: 'sudo iptables -A INPUT  -p tcp -m tcp –dport 22 -j ACCEPT', chain: 'INPUT', index: 2 },
  {
    pasted: 'sudo iptables -A LOG_AND_DROP -j LOG –log-prefix “iptables deny: ” –log-level 7',
    chain: 'LOG_AND_DROP',
    index: 0,
  },
  { pasted: 'sudo iptables -A LOG_AND_DROP -j DROP', chain: 'LOG_AND_DROP', index: 1 },
];

// ../shared/seeds/hardening-server-iptables.txt shows its commands as images; its text
// spells them out: allow tcp port 22 (-m tcp --dport 22 -j ACCEPT), -P INPUT DROP, and
// accept connections that are ESTABLISHED or RELATED.
const HARDENING: readonly PastedCommand[] = [
  { pasted: 'iptables -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT', chain: 'INPUT', index: 0 },
  {
    pasted: 'iptables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    chain: 'INPUT',
    index: 1,
  },
];

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'ssh-bruteforce',
    fixture: 'ssh-bruteforce',
    policies: { INPUT: 'ACCEPT' },
    commands: SSH_BRUTE_FORCE,
  },
  { name: 'hardening', fixture: 'hardening', policies: { INPUT: 'DROP' }, commands: HARDENING },
];
const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/** What a careful operator makes of a line copied from the article. */
function repaired(pasted: string): { chain: string; spec: string } {
  const line = pasted
    .replace(/\s+/g, ' ')
    .replace(/[\u2012-\u2015]/g, '--')
    .replace(/[\u201c\u201d]/g, '"')
    .trim();
  const m = /^(?:sudo )?ip6?tables -A (\S+) (.*)$/.exec(line);
  if (!m) throw new Error(`not an append command: ${line}`);
  return { chain: m[1] as string, spec: m[2] as string };
}

describe('seed fixtures: the codec alone', () => {
  for (const scenario of SCENARIOS) {
    for (const family of FAMILIES) {
      const file = `${scenario.fixture}.${family}.save`;

      it(`${file}: writeRestore(parseSave(fixture)) is the fixture`, () => {
        const text = fixture(file);
        expect(writeRestore(parseSave(text, family))).toBe(comparable(text).replace(/\n+$/, '\n'));
      });

      it(`${file}: policies as the article sets them`, () => {
        const filter = parseSave(fixture(file), family).tables.find((t) => t.name === 'filter');
        for (const [chain, policy] of Object.entries(scenario.policies))
          expect(filter?.chains.find((c) => c.name === chain)?.policy).toBe(policy);
      });

      it(`${file}: each command line from the article parses to the fixture's rule`, () => {
        const filter = parseSave(fixture(file), family).tables.find((t) => t.name === 'filter');
        for (const cmd of scenario.commands) {
          const { chain, spec } = repaired(cmd.pasted);
          expect(chain).toBe(cmd.chain);
          const expected = filter?.chains.find((c) => c.name === chain)?.rules[cmd.index];
          expect(expected).toBeDefined();
          expect(parseRuleSpec(spec, family)).toEqual(expected);
        }
        const rulesInFixture = filter?.chains.reduce((n, c) => n + c.rules.length, 0);
        expect(rulesInFixture).toBe(scenario.commands.length);
      });
    }
  }

  it('the article text as pasted is refused with a pointer to the typographic dashes', () => {
    const pasted = (SSH_BRUTE_FORCE[0] as PastedCommand).pasted.replace(/^sudo iptables -A INPUT /, '');
    let error: unknown;
    try {
      parseRuleSpec(pasted, 'ipv4');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).code).toBe('invalid_argument');
    expect((error as DomainError).message).toContain('write --dport');
  });
});

describeKernel('seed fixtures: through the kernel', () => {
  const ns = useNetns('ptest-seeds');

  for (const scenario of SCENARIOS) {
    for (const family of FAMILIES) {
      const file = `${scenario.fixture}.${family}.save`;
      it(`${file}: parse -> write -> restore -> save is byte-identical`, async () => {
        const text = fixture(file);
        const model: Ruleset = parseSave(text, family);
        const exec = executorFor(ns());
        await exec.restore(family, writeRestore(model));
        const saved = await exec.save(family, { table: 'filter' });
        expect(comparable(saved)).toBe(comparable(text));
        expect(parseSave(saved, family)).toEqual(model);
      });
    }
  }
});
