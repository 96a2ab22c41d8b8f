/**
 * Fake vs kernel: every case runs the same restore steps from an empty namespace on the
 * FakeExecutor and on iptables-restore v1.8.9 (nf_tables) in a test network namespace, and
 * asserts the same outcome (success, or ExecError kind + line) and the same ruleset after
 * every step. `expect` records what the kernel does, so a case also documents it.
 */
import { beforeEach, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { ChildProcessExecutor } from '../../src/exec/child-process-executor.js';
import { ExecError, type ExecErrorKind, type Executor } from '../../src/exec/executor.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';

type Outcome = 'ok' | { kind: ExecErrorKind; line: number | undefined };

interface Step {
  text: string;
  noflush?: boolean;
  test?: boolean;
  counters?: boolean;
  expect: Outcome;
}

interface Case {
  name: string;
  family?: Family;
  /** Compare saves with counters (`-c`). */
  counters?: boolean;
  steps: Step[];
}

const err = (kind: ExecErrorKind, line?: number): Outcome => ({ kind, line });
const filter = (...lines: string[]) => `*filter\n${lines.join('\n')}\nCOMMIT\n`;
/** A filter table with a referenced chain FOO, a chain BAR with rules, an empty chain EMPTY. */
const BASE: Step = {
  text: filter(
    ':INPUT DROP [0:0]',
    ':FOO - [0:0]',
    ':BAR - [0:0]',
    ':EMPTY - [0:0]',
    '-A INPUT -i lo -j ACCEPT',
    '-A INPUT -j FOO',
    '-A FOO -p tcp --dport 22 -j ACCEPT',
    '-A BAR -s 192.0.2.1 -j DROP',
    '-A BAR -j DROP',
  ),
  expect: 'ok',
};
const nf = (text: string, expectation: Outcome): Step => ({ text, noflush: true, expect: expectation });

const cases: Case[] = [
  // --- full restores and table existence
  { name: 'append to a built-in chain creates the table', steps: [nf(filter('-A INPUT -j ACCEPT'), 'ok')] },
  { name: 'full restore with policies, user chains and jumps', steps: [BASE] },
  { name: 'an empty block on an empty namespace creates nothing', steps: [{ text: filter(), expect: 'ok' }] },
  {
    name: 'a full restore of an empty block deletes the table, policies included',
    steps: [BASE, { text: filter(), expect: 'ok' }],
  },
  {
    name: 'a full restore replaces the table',
    steps: [BASE, { text: filter(':OUTPUT DROP [0:0]', '-A OUTPUT -o lo -j ACCEPT'), expect: 'ok' }],
  },
  {
    name: 'tables are printed in iptables-nft order with all built-in chains',
    steps: [
      {
        text: '*nat\n-N N1\nCOMMIT\n*raw\n-A OUTPUT -j ACCEPT\nCOMMIT\n*mangle\n-P FORWARD DROP\nCOMMIT\n*security\n-F INPUT\nCOMMIT\n',
        expect: 'ok',
      },
    ],
  },
  { name: '-F and -X without a chain create no table', steps: [nf(filter('-F', '-X', '-Z'), 'ok')] },
  {
    name: '-N then -X leaves an empty table that still exists',
    steps: [nf(filter('-N FOO', '-X FOO'), 'ok')],
  },
  // --- declarations with --noflush
  {
    name: 'noflush :USER flushes an existing user chain, keeps references to it',
    steps: [BASE, nf(filter(':FOO - [0:0]'), 'ok')],
  },
  {
    name: 'noflush :INPUT DROP sets the policy and keeps the rules',
    steps: [BASE, nf(filter(':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]'), 'ok')],
  },
  {
    name: 'noflush declaration of a built-in with a bad policy',
    steps: [BASE, nf(filter(':INPUT REJECT [0:0]'), err('invalid_input', 2))],
  },
  // --- -N / -X
  {
    name: '-N of an existing chain',
    steps: [BASE, nf(filter('-N NEW', '-N FOO'), err('already_exists', 3))],
  },
  { name: '-N of a built-in name', steps: [BASE, nf(filter('-N FORWARD'), err('already_exists', 2))] },
  { name: '-X of a referenced chain (kernel: busy)', steps: [BASE, nf(filter('-X FOO'), err('failed', 2))] },
  { name: '-X of a chain with rules (kernel: busy)', steps: [BASE, nf(filter('-X BAR'), err('failed', 2))] },
  { name: '-X of a missing chain', steps: [BASE, nf(filter('-X NOPE'), err('not_found', 2))] },
  { name: '-X of an empty chain', steps: [BASE, nf(filter('-X EMPTY'), 'ok')] },
  { name: '-X of every chain while some are busy', steps: [BASE, nf(filter('-X'), err('failed', 2))] },
  { name: '-F then -X of every chain', steps: [BASE, nf(filter('-F', '-X'), 'ok')] },
  {
    name: '-X after removing the last reference in the same batch',
    steps: [BASE, nf(filter('-D INPUT 2', '-F FOO', '-X FOO'), 'ok')],
  },
  {
    name: '-X of a built-in chain that does not exist yet',
    steps: [BASE, nf(filter('-X FORWARD'), err('not_found', 2))],
  },
  {
    name: '-X of a built-in chain with policy DROP',
    steps: [BASE, nf(filter('-F INPUT', '-X INPUT'), err('failed', 3))],
  },
  {
    name: '-X of an empty built-in chain with policy ACCEPT removes it',
    steps: [
      nf(filter('-F OUTPUT'), 'ok'),
      nf(filter('-X OUTPUT'), 'ok'),
      nf(filter('-X OUTPUT'), err('not_found', 2)),
    ],
  },
  {
    name: '-X of every chain removes empty ACCEPT built-in chains too',
    steps: [
      nf(filter('-F OUTPUT', '-P INPUT DROP'), 'ok'),
      nf(filter('-X'), 'ok'),
      nf(filter('-X OUTPUT'), err('not_found', 2)),
    ],
  },
  {
    name: '-X of a built-in chain: -P in the same block is not seen',
    steps: [BASE, nf(filter('-F INPUT', '-P INPUT ACCEPT', '-X INPUT'), err('failed', 4))],
  },
  // --- rules
  { name: '-A to a missing chain', steps: [BASE, nf(filter('-A NOPE -j ACCEPT'), err('not_found', 2))] },
  {
    name: '-I positions: front, middle, end; past the end',
    steps: [
      BASE,
      nf(filter('-I INPUT -p udp -j DROP', '-I INPUT 2 -p icmp -j ACCEPT', '-I INPUT 5 -j DROP'), 'ok'),
      nf(filter('-I INPUT 7 -j DROP'), err('invalid_input', 2)),
    ],
  },
  {
    name: '-R replaces; past the end fails',
    steps: [
      BASE,
      nf(filter('-R INPUT 2 -j EMPTY'), 'ok'),
      nf(filter('-R BAR 3 -j ACCEPT'), err('not_found', 2)),
    ],
  },
  { name: '-D N past the end', steps: [BASE, nf(filter('-D INPUT 3'), err('not_found', 2))] },
  {
    name: '-D 1 twice on a one-rule chain',
    steps: [BASE, nf(filter('-D FOO 1', '-D FOO 1'), err('not_found', 3))],
  },
  {
    name: '-D N on a built-in chain that does not exist yet',
    steps: [BASE, nf(filter('-D OUTPUT 1'), err('not_found', 2))],
  },
  {
    name: '-D by spec matches the canonical form',
    steps: [
      BASE,
      nf(filter('-D FOO -p tcp -m tcp --dport 22 -j ACCEPT', '-D BAR -s 192.0.2.1/32 -j DROP'), 'ok'),
    ],
  },
  {
    name: '-D by spec with no matching rule',
    steps: [BASE, nf(filter('-D BAR -j ACCEPT'), err('not_found', 2))],
  },
  {
    name: '-D by spec in a missing chain',
    steps: [BASE, nf(filter('-D NOPE -j ACCEPT'), err('not_found', 2))],
  },
  // --- jumps
  {
    name: 'jump to a missing chain is blamed on the COMMIT line',
    steps: [
      BASE,
      nf(filter('-A INPUT -j EMPTY', '-A INPUT -j NOPE', '-A EMPTY -j ACCEPT'), err('not_found', 5)),
    ],
  },
  {
    name: 'jump to a chain created later in the block',
    steps: [nf(filter('-A INPUT -j LATER', '-N LATER'), err('not_found', 4))],
  },
  { name: 'goto a missing chain', steps: [BASE, nf(filter('-A INPUT -g NOPE'), err('not_found', 3))] },
  {
    name: 'a loop not reachable from a built-in chain is accepted',
    steps: [BASE, nf(filter('-A EMPTY -j EMPTY', '-A BAR -j EMPTY'), 'ok')],
  },
  {
    name: 'a reachable chain jumping to itself (kernel: loop)',
    steps: [BASE, nf(filter('-A FOO -j FOO'), err('failed', 2))],
  },
  {
    name: 'a jump that makes a loop reachable (kernel: loop)',
    steps: [
      BASE,
      nf(
        filter('-A EMPTY -j BAR', '-A BAR -g EMPTY', '-A INPUT -j ACCEPT', '-A FOO -j EMPTY'),
        err('failed', 5),
      ),
    ],
  },
  {
    name: 'goto and jump between user chains',
    steps: [BASE, nf(filter('-A EMPTY -g BAR', '-A BAR -j FOO'), 'ok')],
  },
  // --- policies and renames
  { name: '-P on a user chain', steps: [BASE, nf(filter('-P FOO DROP'), err('invalid_input', 2))] },
  { name: '-P with a bad policy', steps: [BASE, nf(filter('-P INPUT RETURN'), err('invalid_input', 2))] },
  {
    name: '-P on a built-in chain that does not exist yet',
    steps: [BASE, nf(filter('-P OUTPUT DROP'), 'ok')],
  },
  { name: '-E renames a referenced chain and its references', steps: [BASE, nf(filter('-E FOO SSH'), 'ok')] },
  { name: '-E to an existing name', steps: [BASE, nf(filter('-E FOO BAR'), err('already_exists', 2))] },
  { name: '-E to a built-in name', steps: [BASE, nf(filter('-E EMPTY OUTPUT'), err('already_exists', 2))] },
  { name: '-E of a missing chain', steps: [BASE, nf(filter('-E NOPE X'), err('not_found', 2))] },
  {
    name: '-E is not seen by later commands of the same batch (new name missing)',
    steps: [BASE, nf(filter('-E EMPTY NEW', '-A NEW -j ACCEPT'), err('not_found', 3))],
  },
  {
    name: '-E is not seen by later commands of the same batch (old name still works)',
    steps: [BASE, nf(filter('-E EMPTY NEW', '-A EMPTY -j ACCEPT'), 'ok')],
  },
  // -Z of a chain (or the whole table) writes back the policy iptables read at the start
  // of the block: a -P earlier in the same block is undone (found by issue 8).
  {
    name: '-P then -Z of that chain in one block keeps the old policy',
    steps: [BASE, nf(filter('-P FORWARD DROP', '-Z FORWARD'), 'ok')],
  },
  {
    name: '-P then -Z of the table in one block keeps the old policies',
    steps: [BASE, nf(filter('-P INPUT ACCEPT', '-P OUTPUT DROP', '-Z'), 'ok')],
  },
  {
    name: '-Z then -P in one block sets the policy',
    steps: [BASE, nf(filter('-Z INPUT', '-P INPUT ACCEPT'), 'ok')],
  },
  {
    name: '-P, -Z, -P again in one block sets the policy',
    steps: [BASE, nf(filter('-P INPUT ACCEPT', '-Z', '-P INPUT ACCEPT'), 'ok')],
  },
  {
    name: '-P then -Z in separate blocks sets the policy',
    steps: [BASE, nf(`${filter('-P INPUT ACCEPT')}${filter('-Z INPUT')}`, 'ok')],
  },
  {
    name: '-P then -Z of a built-in chain created in the same block',
    steps: [nf(filter('-P OUTPUT DROP', '-Z OUTPUT'), 'ok')],
  },
  {
    name: '-E of a chain created in the same batch (kernel: not found)',
    steps: [BASE, nf(filter('-N NEW', '-E NEW NEWER'), err('not_found', 3))],
  },
  // --- all or nothing, line numbers
  {
    name: 'an invalid last line leaves the table unchanged',
    steps: [
      BASE,
      nf(
        filter('-A INPUT -j DROP', '-N OTHER', '-P OUTPUT DROP', '-A INPUT --bogus'),
        err('invalid_input', 5),
      ),
    ],
  },
  {
    name: 'a command error after a kernel error wins',
    steps: [BASE, nf(filter('-X BAR', '-A NOPE -j ACCEPT'), err('not_found', 3))],
  },
  {
    name: 'a reading error wins over an earlier command error',
    steps: [BASE, nf(filter('-A NOPE -j ACCEPT', '-A INPUT --bogus'), err('invalid_input', 3))],
  },
  {
    name: 'a failing second table leaves the first one applied',
    steps: [nf(`${filter('-A INPUT -j ACCEPT')}*nat\n-A NOPE -j ACCEPT\nCOMMIT\n`, err('not_found', 5))],
  },
  {
    name: 'a reading error in the second table leaves the first one applied',
    steps: [
      nf(`${filter('-N A')}*nat\n-A OUTPUT -m nosuchmatch -j ACCEPT\nCOMMIT\n`, err('invalid_input', 5)),
    ],
  },
  { name: 'missing COMMIT', steps: [nf('*filter\n-A INPUT -j ACCEPT\n', err('invalid_input', 3))] },
  { name: 'COMMIT outside a table', steps: [nf(`${filter('-N A')}COMMIT\n`, err('failed', 4))] },
  { name: 'unknown table', steps: [nf('*nosuch\nCOMMIT\n', err('invalid_input', 1))] },
  { name: 'a table header inside a table', steps: [nf('*filter\n*nat\nCOMMIT\n', err('invalid_input', 2))] },
  {
    name: 'comments and blank lines count as lines',
    steps: [nf('# a comment\n\n*filter\n# another\n\n-A NOPE -j ACCEPT\nCOMMIT\n', err('not_found', 6))],
  },
  { name: 'insert at rule 0', steps: [BASE, nf(filter('-I INPUT 0 -j ACCEPT'), err('invalid_input', 2))] },
  {
    name: 'MASQUERADE outside nat (kernel: invalid)',
    steps: [nf(filter('-A OUTPUT -j MASQUERADE'), err('invalid_input', 2))],
  },
  { name: 'a declaration without a policy', steps: [nf(filter(':FOO'), err('invalid_input', 2))] },
  // --- -F / -Z
  { name: '-F keeps policies and user chains', steps: [BASE, nf(filter('-F'), 'ok')] },
  { name: '-F of a built-in chain creates it', steps: [nf(filter('-F FORWARD'), 'ok')] },
  {
    name: '-Z of a built-in chain that does not exist yet',
    steps: [BASE, nf(filter('-Z OUTPUT'), err('not_found', 2))],
  },
  { name: '-Z of a user chain and of everything', steps: [BASE, nf(filter('-Z FOO', '-Z'), 'ok')] },
  // --- --test
  {
    name: '--test passes command errors and changes nothing',
    steps: [
      BASE,
      { text: filter('-N FOO', '-A NOPE -j ACCEPT', '-D INPUT 9', '-X INPUT'), test: true, expect: 'ok' },
    ],
  },
  {
    name: '--test reports reading errors',
    steps: [
      BASE,
      { text: filter('-A INPUT -p tcp --nosuch 1'), test: true, expect: err('invalid_input', 2) },
    ],
  },
  // --- counters
  {
    name: '--counters restores rule and policy counters',
    counters: true,
    steps: [
      {
        text: filter(':INPUT DROP [7:700]', '[5:100] -A INPUT -i lo -j ACCEPT', '-A INPUT -j DROP'),
        counters: true,
        expect: 'ok',
      },
    ],
  },
  // --- ipv6
  {
    name: 'ipv6: rules, user chains and a busy -X',
    family: 'ipv6',
    steps: [
      {
        text: filter(':FOO - [0:0]', '-A INPUT -s 2001:db8::1 -j FOO', '-A FOO -p ipv6-icmp -j ACCEPT'),
        expect: 'ok',
      },
      nf(filter('-X FOO'), err('failed', 2)),
      nf(filter('-D INPUT -s 2001:db8::1/128 -j FOO', '-F FOO', '-X FOO'), 'ok'),
    ],
  },
  {
    name: 'ipv6: jump to a missing chain and an IPv4 address',
    family: 'ipv6',
    steps: [
      nf(filter('-A INPUT -j NOPE'), err('not_found', 3)),
      nf(filter('-A INPUT -s 192.0.2.1 -j DROP'), err('invalid_input', 2)),
    ],
  },
];

const RESET = '*mangle\nCOMMIT\n*security\nCOMMIT\n*raw\nCOMMIT\n*filter\nCOMMIT\n*nat\nCOMMIT\n';

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof ExecError) return { kind: e.kind, line: e.line };
    throw e;
  }
}

async function snapshot(exec: Executor, family: Family, counters: boolean) {
  return parseSave(await exec.save(family, { counters }), family, { counters });
}

describeKernel('FakeExecutor conforms to iptables-restore (nf_tables)', () => {
  const ns = useNetns('pconf');
  let real: ChildProcessExecutor;

  beforeEach(async () => {
    real = new ChildProcessExecutor({ netns: ns().name });
    for (const family of ['ipv4', 'ipv6'] as const) {
      await real.restore(family, RESET);
      expect(await real.save(family)).toBe('');
    }
  });

  it('has enough cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)('$name', async (c) => {
    const family = c.family ?? 'ipv4';
    const fake = new FakeExecutor();
    for (const [i, step] of c.steps.entries()) {
      const options = {
        noflush: step.noflush ?? false,
        test: step.test ?? false,
        counters: step.counters ?? false,
      };
      const kernelOutcome = await outcome(real.restore(family, step.text, options));
      const fakeOutcome = await outcome(fake.restore(family, step.text, options));
      const where = `step ${i + 1}: ${JSON.stringify(step.text)}`;
      expect(kernelOutcome, `kernel, ${where}`).toEqual(step.expect);
      expect(fakeOutcome, `fake, ${where}`).toEqual(kernelOutcome);
      const counters = c.counters ?? false;
      expect(await snapshot(fake, family, counters), `ruleset after ${where}`).toEqual(
        await snapshot(real, family, counters),
      );
    }
  });
});
