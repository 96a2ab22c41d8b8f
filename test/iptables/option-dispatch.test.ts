/**
 * Differential, on the kernel: iptables hands an option to the newest loaded
 * module that knows its name, not to the match it is written after (see
 * src/domain/extensions/option-dispatch.ts). For every module written twice
 * with another module in between, drawn from fragments of every typed module
 * that shares an option name with another, plus unrelated ones: our domain
 * accepts the rule exactly when iptables-restore does, and an accepted rule is
 * printed back by iptables-save as our text. Both ways a rule comes in: an
 * operator's spec line, and typed JSON (the matches as separate objects, which
 * is where the bug was). Found by the property test's seed 90210
 * (`-m mark ... -m connmark ! --mark ... -m mark --mark ...` as typed JSON).
 */
import { expect, it } from 'vitest';
import { flagIndex } from '../../src/domain/extensions/define.js';
import { MATCH_SPECS } from '../../src/domain/extensions/index.js';
import type { Rule } from '../../src/domain/model.js';
import { normalizeRule } from '../../src/iptables/catalogue.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { ruleText } from '../../src/iptables/rule-writer.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';
import { ruleLines } from '../helpers/roundtrip.js';

/** Typed modules that share an option name with another typed module, and the names. */
function sharedFlags(): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  for (const [name, spec] of MATCH_SPECS)
    for (const flag of flagIndex(spec).keys()) owners.set(flag, [...(owners.get(flag) ?? []), name]);
  return new Map([...owners].filter(([, names]) => names.length > 1));
}

const SET = 'pdisp4';
/** Fragments per module: the sharing modules (each of their shared names) and bystanders. */
const FRAGMENTS: Readonly<Record<string, readonly string[]>> = {
  mark: ['-m mark --mark 0x1', '-m mark ! --mark 0x2/0xff'],
  connmark: ['-m connmark --mark 0x3', '-m connmark ! --mark 0x4/0xf0'],
  recent: [
    '-m recent --set --name r1 --mask 255.255.255.255 --rsource',
    '-m recent --rcheck --seconds 10 --name r2 --mask 255.255.255.255 --rsource',
  ],
  set: [`-m set --match-set ${SET} src`],
  comment: ['-m comment --comment c1'],
  length: ['-m length --length 10:20'],
  // tcp and udp share their port names, but one rule cannot need both protocols.
  tcp: ['-m tcp --dport 22'],
};

it('every shared option name among typed modules has fragments here', () => {
  const missing = [...sharedFlags()]
    .filter(([, names]) => !(names.includes('tcp') && names.includes('udp') && names.length === 2))
    .flatMap(([flag, names]) => names.filter((n) => !FRAGMENTS[n]).map((n) => `${n} (${flag})`));
  expect(missing).toEqual([]);
});

/** Our text for the rule, or why we refuse it. */
function outcome(read: () => Rule): { text?: string; why?: string } {
  try {
    return { text: ruleText(read()) };
  } catch (e) {
    return { why: (e as Error).message };
  }
}

interface Line {
  readonly text: string;
  readonly fragments: readonly string[];
}

/** Lines `A B A'`: a module twice with another in between, every fragment choice. */
function lines(): Line[] {
  const out: Line[] = [];
  for (const [a, aFrags] of Object.entries(FRAGMENTS)) {
    for (const [b, bFrags] of Object.entries(FRAGMENTS)) {
      if (a === b) continue;
      for (const first of aFrags)
        for (const between of bFrags)
          for (const again of aFrags)
            out.push({
              text: `-p tcp ${first} ${between} ${again} -j ACCEPT`,
              fragments: [first, between, again],
            });
    }
  }
  return out;
}

describeKernel('option dispatch: the domain accepts a rule exactly when iptables does', () => {
  const ns = useNetns('ptest-disp');

  it('agrees on every line, and an accepted line reads back as our text', async () => {
    const created = await ns().exec(['ipset', 'create', SET, 'hash:ip', 'family', 'inet']);
    expect(created.code, created.stderr).toBe(0);
    const all = lines();
    expect(all.length).toBeGreaterThan(100);
    const problems: string[] = [];
    let accepted = 0;
    let refused = 0;
    for (const { text: line, fragments } of all) {
      // The operator's line, and the same rule as typed JSON.
      const typed = {
        protocol: 'tcp',
        matches: fragments.map((f) => parseRuleSpec(`-p tcp ${f}`, 'ipv4').matches[0]),
        target: { target: 'ACCEPT' },
      };
      const spec = outcome(() => parseRuleSpec(line, 'ipv4'));
      const json = outcome(() => normalizeRule(typed, 'ipv4'));
      if (spec.text !== json.text) {
        problems.push(`${line}\n  spec: ${spec.text ?? spec.why}\n  json: ${json.text ?? json.why}`);
        continue;
      }
      const ours = spec.text;
      const why = spec.why;
      const restore = await ns().exec(
        ['iptables-restore', '--noflush'],
        `*filter\n:T - [0:0]\n-A T ${line}\nCOMMIT\n`,
      );
      const kernelOk = restore.code === 0;
      if (kernelOk !== (ours !== undefined)) {
        problems.push(
          `${line}\n  domain: ${ours === undefined ? `refused (${why})` : 'accepted'}\n  kernel: ${kernelOk ? 'accepted' : `refused (${restore.stderr.trim()})`}`,
        );
        continue;
      }
      if (!kernelOk) {
        refused++;
        continue;
      }
      accepted++;
      const saved = await ns().exec(['iptables-save', '-t', 'filter']);
      const back = ruleLines(saved.stdout, 'filter').get('T') ?? [];
      if (back.length !== 1 || back[0] !== ours)
        problems.push(`${line}\n  ours:   ${ours}\n  kernel: ${back.join(' | ')}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
    // Both kinds occur, so the comparison is not one-sided.
    expect(accepted).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(10);
  });
});
