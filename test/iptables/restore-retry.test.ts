/**
 * Restore text that nf_tables' retry cannot turn into a lie.
 *
 * iptables-restore (nf_tables) commits a block as one transaction stamped with the ruleset
 * generation it read; when another process commits in between, the kernel answers ERESTART and
 * iptables re-reads the kernel and sends the block again (nft.c: nft_action, retry). On that
 * retry it skips a `-N C` whenever the kernel then holds C, even when the same block deleted C
 * first (`-X C ... -N C`): the block then deletes C and never creates it again. iptables-restore
 * reports success with C missing (or fails on the next line that needs C), while the service
 * believes what it planned: the model lies. Found by the differential test under CPU load.
 *
 * Here the service's own restore text (RestoreBuilder, as the batch runner renders it) runs
 * while another process commits as fast as it can, with a long block (many appends to a chain
 * of its own) so that a concurrent commit lands inside it; every attempt must succeed and leave
 * exactly what the same text leaves without the other process.
 */
import { expect, it } from 'vitest';
import { BUILTIN_CHAINS } from '../../src/domain/family.js';
import type { Rule } from '../../src/domain/model.js';
import { RestoreBuilder } from '../../src/iptables/restore-builder.js';
import { parseRuleSpec } from '../../src/iptables/rule-parser.js';
import { describeKernel, useNetns } from '../helpers/kernel.js';

const rule = (text: string): Rule => parseRuleSpec(text, 'ipv4');

/** Appends to PAD: they make the block long enough for another process's commit to land in it. */
const PADDING = 3000;
const ATTEMPTS = 8;

const SETUP = [
  '*mangle',
  ...BUILTIN_CHAINS.mangle.map((c) => `:${c} ACCEPT [0:0]`),
  ':C - [0:0]',
  ':D - [0:0]',
  ':PAD - [0:0]',
  '-A PREROUTING -s 192.0.2.1/32 -j ACCEPT',
  '-A PREROUTING ! -s 192.0.2.150/32 -j C',
  '-A C -j ACCEPT',
  'COMMIT',
  '',
].join('\n');

interface Case {
  readonly name: string;
  /** What the service would send (the padding is added after). */
  readonly build: (b: RestoreBuilder) => void;
}

const CASES: readonly Case[] = [
  {
    // deleteChain (force) and createChain of the same name in one batch.
    name: 'a chain deleted and created again',
    build: (b) =>
      b
        .delete('mangle', 'PREROUTING', rule('! -s 192.0.2.150/32 -j C'))
        .flush('mangle', 'C')
        .deleteChain('mangle', 'C')
        .newChain('mangle', 'C'),
  },
  {
    // The undo of the above (what a failed later block makes the batch runner send).
    name: 'a chain deleted and created again with its rule and jump',
    build: (b) =>
      b
        .delete('mangle', 'PREROUTING', rule('! -s 192.0.2.150/32 -j C'))
        .flush('mangle', 'C')
        .deleteChain('mangle', 'C')
        .newChain('mangle', 'C')
        .append('mangle', 'C', rule('-j ACCEPT'))
        .insert('mangle', 'PREROUTING', 2, rule('! -s 192.0.2.150/32 -j C')),
  },
  {
    // A reset of the table and a createChain of a chain it removes, batched.
    name: 'an empty chain deleted and created again, another created',
    build: (b) =>
      b
        .deleteChain('mangle', 'D')
        .newChain('mangle', 'E')
        .newChain('mangle', 'D')
        .append('mangle', 'D', rule('-j RETURN')),
  },
];

describeKernel("restore text survives nf_tables' retry after another process's commit", () => {
  const ns = useNetns('pretry');

  async function run(argv: string[], input?: string): Promise<string> {
    const r = await ns().exec(argv, input);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`);
    return r.stdout;
  }
  const save = async () =>
    (await run(['iptables-save', '-t', 'mangle'])).replace(/^#.*\n/gm, '').replace(/\[\d+:\d+\]/g, '[0:0]');

  for (const c of CASES) {
    it(c.name, async () => {
      await run(['iptables', '-w', '-N', 'EXT']).catch(() => undefined);
      const builder = new RestoreBuilder();
      c.build(builder);
      for (let i = 0; i < PADDING; i++)
        builder.append(
          'mangle',
          'PAD',
          rule(`-s 198.51.100.${(i % 250) + 1}/32 -p tcp --dport ${i + 1} -j RETURN`),
        );
      const text = builder.toString();
      // What the text does with nobody else committing.
      await run(['iptables-restore'], SETUP);
      await run(['iptables-restore', '-w', '--noflush'], text);
      const expected = await save();
      const outcomes: string[] = [];
      let beside = 0;
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        await run(['iptables-restore'], SETUP);
        let writing = true;
        let commits = 0;
        // Two other processes committing as fast as they can (bounded), in the filter table.
        const writer = async (source: string) => {
          for (let n = 0; writing && n < 2000; n++) {
            await run(['iptables', '-w', '-A', 'EXT', '-s', source, '-j', 'RETURN']);
            await run(['iptables', '-w', '-D', 'EXT', '-s', source, '-j', 'RETURN']);
            commits += 2;
          }
        };
        const writers = Promise.all([writer('198.51.100.7/32'), writer('198.51.100.8/32')]);
        await new Promise((r) => setTimeout(r, 20));
        const restored = await ns().exec(['iptables-restore', '-w', '--noflush'], text);
        writing = false;
        await writers;
        beside += commits;
        const got = await save();
        const ok = restored.code === 0 && got === expected;
        outcomes.push(
          ok
            ? `ok (${commits} commits beside it)`
            : restored.code !== 0
              ? `failed: ${restored.stderr.trim().split('\n').slice(0, 3).join(' / ')}`
              : `succeeded but the kernel differs: ${firstDifference(expected, got)}`,
        );
      }
      // The observation the test rests on: other processes did commit while the restores ran.
      expect(beside).toBeGreaterThan(ATTEMPTS);
      expect(
        outcomes.filter((o) => !o.startsWith('ok')),
        `text:\n${text.slice(0, 400)}\n${outcomes.join('\n')}`,
      ).toEqual([]);
    }, 120_000);
  }
});

function firstDifference(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++)
    if (x[i] !== y[i]) return `line ${i + 1}: expected ${x[i] ?? '(none)'}, kernel ${y[i] ?? '(none)'}`;
  return 'none';
}
