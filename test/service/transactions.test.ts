import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import type { Operation, RuleInput } from '../../src/service/operations.js';
import {
  expectError,
  filter,
  host,
  kernel,
  kernelRules,
  seed,
  seedInput,
  startSeeded,
  startService,
} from '../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describe.each(FAMILIES)('FirewallService transactions (%s)', (family) => {
  const f = { family, table: 'filter' } as const;
  const drop = (n: number): RuleInput => ({ spec: `-s ${host(family, n).addr} -j DROP` });
  const dropText = (n: number) => `-s ${host(family, n).canonical} -j DROP`;
  const input = seedInput(family);

  it('applies several operations in one restore and one revision', async () => {
    const { fake, service } = await startSeeded();
    const r = await service.apply(
      [
        { op: 'createChain', ...f, chain: 'WEB' },
        { op: 'append', ...f, chain: 'WEB', rule: { spec: '-p tcp --dport 443 -j ACCEPT' } },
        { op: 'insert', ...f, chain: 'INPUT', position: 1, rule: { spec: '-j WEB' } },
        { op: 'delete', ...f, chain: 'INPUT', target: { position: 4 } },
      ],
      { origin: 'rest' },
    );
    expect(r.revision).toBe(2);
    expect(r.results.map((x) => x.op)).toEqual(['createChain', 'append', 'insert', 'delete']);
    expect(r.results[2]?.rule).toMatchObject({ position: 1, text: '-j WEB' });
    expect(r.results[3]?.deleted?.text).toBe(input[2]);
    expect(fake.calls.restore).toBe(1);
    expect(fake.restores[0]?.text).toBe(
      [
        '*filter',
        '-N WEB',
        '-A WEB -p tcp -m tcp --dport 443 -j ACCEPT',
        '-I INPUT 1 -j WEB',
        `-D INPUT -s ${family === 'ipv4' ? '192.0.2.0/24' : '2001:db8::/32'} -j DROP`,
        'COMMIT',
        '',
      ].join('\n'),
    );
    expect(await kernelRules(fake, family, 'INPUT')).toEqual(['-j WEB', input[0], input[1]]);
    expect(await kernelRules(fake, family, 'WEB')).toEqual(['-p tcp -m tcp --dport 443 -j ACCEPT']);
  });

  it('is all-or-nothing: a last invalid operation changes nothing and keeps the revision', async () => {
    const { fake, service } = await startSeeded();
    const before = await kernel(fake, family);
    const e = await expectError(
      service.apply([
        { op: 'createChain', ...f, chain: 'WEB' },
        { op: 'append', ...f, chain: 'WEB', rule: drop(1) },
        { op: 'append', ...f, chain: 'MISSING', rule: drop(2) },
      ]),
      'not_found',
      'operations[2].chain',
    );
    expect(e.message).toMatch(/MISSING/);
    expect(await kernel(fake, family)).toBe(before);
    expect(fake.calls.restore).toBe(0);
    expect(service.revision).toBe(1);
    await expectError(service.getChain(family, 'filter', 'WEB'), 'not_found');
  });

  it('is all-or-nothing when the kernel refuses the last operation', async () => {
    const { fake, service } = await startSeeded();
    const before = await kernel(fake, family);
    await expectError(
      service.apply([
        { op: 'append', ...f, chain: 'INPUT', rule: drop(1) },
        { op: 'append', ...f, chain: 'INPUT', rule: { spec: '-j MASQUERADE' } },
      ]),
      'invalid_argument',
    );
    expect(await kernel(fake, family)).toBe(before);
    expect(service.revision).toBe(1);
    expect((await service.getChain(family, 'filter', 'INPUT')).chain.rules.map((r) => r.text)).toEqual(input);
  });

  it('is all-or-nothing across tables: a table committed before the failing one is put back', async () => {
    const { fake, service } = await startService({
      seed: {
        [family]: `${seed(family)}*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n`,
      },
    });
    const before = await kernel(fake, family);
    await expectError(
      service.apply([
        { op: 'append', family, table: 'nat', chain: 'POSTROUTING', rule: { spec: '-o eth0 -j MASQUERADE' } },
        { op: 'append', ...f, chain: 'INPUT', rule: { spec: '-j MASQUERADE' } },
      ]),
      'invalid_argument',
    );
    expect(await kernel(fake, family)).toBe(before);
    expect(service.revision).toBe(1);
    expect(service.listChains(family, 'nat').chains.every((c) => c.rules === 0)).toBe(true);
  });

  it('is all-or-nothing across tables, also for a table that did not exist before', async () => {
    const { fake, service } = await startSeeded();
    const before = await kernel(fake, family);
    expect(before).not.toContain('*nat');
    await expectError(
      service.apply([
        { op: 'append', family, table: 'nat', chain: 'POSTROUTING', rule: { spec: '-o eth0 -j MASQUERADE' } },
        { op: 'append', ...f, chain: 'INPUT', rule: { spec: '-j MASQUERADE' } },
      ]),
      'invalid_argument',
    );
    expect(await kernel(fake, family)).toBe(before);
    expect(service.getRuleset(family).ruleset.tables.map((t) => t.name)).toEqual(['filter']);
  });

  it('a later operation sees the earlier ones (positions, new chains)', async () => {
    const { fake, service } = await startSeeded();
    await service.apply([
      { op: 'append', ...f, chain: 'INPUT', rule: drop(1) },
      { op: 'delete', ...f, chain: 'INPUT', target: { position: 4 } },
      { op: 'renameChain', ...f, chain: 'EMPTY', newName: 'SPARE' },
      { op: 'append', ...f, chain: 'SPARE', rule: drop(2) },
    ]);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual(input);
    expect(await kernelRules(fake, family, 'SPARE')).toEqual([dropText(2)]);
    // iptables sees the rename only at COMMIT: what follows it goes into a second block.
    expect(fake.restores[0]?.text).toBe(
      [
        '*filter',
        `-A INPUT ${dropText(1)}`,
        `-D INPUT ${dropText(1)}`,
        '-E EMPTY SPARE',
        'COMMIT',
        '*filter',
        `-A SPARE ${dropText(2)}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('refuses an empty transaction and an unknown operation', async () => {
    const { service } = await startSeeded();
    await expectError(service.apply([]), 'invalid_argument', 'operations');
    await expectError(service.apply('x' as never), 'invalid_argument', 'operations');
    await expectError(service.apply([{ op: 'explode', ...f } as never]), 'invalid_argument', 'op');
    await expectError(
      service.apply([{ op: 'flushChain', ...f, chain: 'EMPTY' }, { op: 'explode' } as never]),
      'invalid_argument',
      'operations[1].op',
    );
    expect(service.revision).toBe(1);
  });

  describe('dry run', () => {
    it('returns the restore text and the diff, and changes nothing', async () => {
      const { fake, service } = await startSeeded();
      const before = await kernel(fake, family);
      const ops: Operation[] = [
        { op: 'append', ...f, chain: 'INPUT', rule: drop(1) },
        { op: 'setPolicy', ...f, chain: 'INPUT', policy: 'DROP' },
      ];
      const r = await service.apply(ops, { dryRun: true });
      expect(r.dryRun).toBe(true);
      expect(r.restoreText).toEqual({
        [family]: `*filter\n-A INPUT ${dropText(1)}\n-P INPUT DROP\nCOMMIT\n`,
      });
      expect(r.changes).toEqual([
        expect.objectContaining({ type: 'rule.added', chain: 'INPUT', position: 4, text: dropText(1) }),
        { type: 'policy.set', family, table: 'filter', chain: 'INPUT', policy: 'DROP' },
      ]);
      expect(r.results[0]?.rule).toMatchObject({ position: 4, text: dropText(1) });
      expect(r.revision).toBe(2);
      expect(fake.calls.restore).toBe(0);
      expect(await kernel(fake, family)).toBe(before);
      expect(service.revision).toBe(1);
      // Applying the same ops for real gives the same rule id the dry run predicted.
      const real = await service.apply(ops);
      expect(real.results[0]?.rule?.id).toBe(r.results[0]?.rule?.id);
      expect(fake.restores[0]?.text).toBe(r.restoreText?.[family]);
    });

    it('reports planning errors and a stale expected revision like a real apply', async () => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'append', ...f, chain: 'NOPE', rule: drop(1) }], { dryRun: true }),
        'not_found',
      );
      await expectError(
        service.apply([{ op: 'flushChain', ...f, chain: 'INPUT' }], { dryRun: true, expectedRevision: 7 }),
        'failed_precondition',
        'expectedRevision',
      );
    });

    it('of an ensure that finds its rule has no restore text and keeps the revision', async () => {
      const { service } = await startSeeded();
      const r = await service.apply(
        [{ op: 'ensure', ...f, chain: 'INPUT', rule: { spec: '-i lo -j ACCEPT' } }],
        {
          dryRun: true,
        },
      );
      expect(r).toMatchObject({ revision: 1, restoreText: {}, changes: [], results: [{ existed: true }] });
    });
  });

  describe('replaceChain (declarative)', () => {
    it('appending one rule to the current list sends a single -A', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'replaceChain', ...f, chain: 'INPUT', rules: [...input.map((spec) => ({ spec })), drop(1)] },
      ]);
      expect(fake.restores.map((r) => r.text)).toEqual([`*filter\n-A INPUT ${dropText(1)}\nCOMMIT\n`]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, dropText(1)]);
    });

    it('removing a middle rule sends a single -D; inserting one sends a single -I', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        {
          op: 'replaceChain',
          ...f,
          chain: 'INPUT',
          rules: [input[0], input[2]].map((spec) => ({ spec: spec as string })),
        },
      ]);
      await service.apply([
        {
          op: 'replaceChain',
          ...f,
          chain: 'INPUT',
          rules: [{ spec: input[0] as string }, drop(5), { spec: input[2] as string }],
        },
      ]);
      expect(fake.restores.map((r) => r.text)).toEqual([
        `*filter\n-D INPUT ${input[1]}\nCOMMIT\n`,
        `*filter\n-I INPUT 2 ${dropText(5)}\nCOMMIT\n`,
      ]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([input[0], dropText(5), input[2]]);
    });

    it('keeps the order when a rule to remove has an identical copy earlier in the chain', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'replaceChain', ...f, chain: 'EMPTY', rules: [drop(1), drop(2), drop(1)] }]);
      await service.apply([{ op: 'replaceChain', ...f, chain: 'EMPTY', rules: [drop(1), drop(2)] }]);
      expect(await kernelRules(fake, family, 'EMPTY')).toEqual([dropText(1), dropText(2)]);
      const model = (await service.getChain(family, 'filter', 'EMPTY')).chain.rules.map((r) => r.text);
      expect(model).toEqual([dropText(1), dropText(2)]);
      await service.apply([
        { op: 'replaceChain', ...f, chain: 'EMPTY', rules: [drop(1), drop(3), drop(1), drop(4)] },
      ]);
      await service.apply([{ op: 'replaceChain', ...f, chain: 'EMPTY', rules: [drop(1), drop(3), drop(4)] }]);
      expect(await kernelRules(fake, family, 'EMPTY')).toEqual([dropText(1), dropText(3), dropText(4)]);
    });

    it('the same list changes nothing (no restore, same revision)', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([
        { op: 'replaceChain', ...f, chain: 'INPUT', rules: input.map((spec) => ({ spec })) },
      ]);
      expect(r.revision).toBe(1);
      expect(r.changes).toEqual([]);
      expect(fake.calls.restore).toBe(0);
    });

    it('a large difference rebuilds the chain with -F and appends', async () => {
      const { fake, service } = await startSeeded();
      const many = Array.from({ length: 30 }, (_, i) => drop(i + 1));
      await service.apply([{ op: 'replaceChain', ...f, chain: 'INPUT', rules: many }]);
      const replaced = Array.from({ length: 30 }, (_, i) => drop(i + 101));
      await service.apply([{ op: 'replaceChain', ...f, chain: 'INPUT', rules: replaced }]);
      const text = fake.restores[1]?.text ?? '';
      expect(text.split('\n').slice(0, 3)).toEqual(['*filter', '-F INPUT', `-A INPUT ${dropText(101)}`]);
      expect(text).not.toMatch(/^-D /m);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual(
        Array.from({ length: 30 }, (_, i) => dropText(i + 101)),
      );
      const ids = (await service.getChain(family, 'filter', 'INPUT')).chain.rules.map((r) => r.text);
      expect(ids).toEqual(await kernelRules(fake, family, 'INPUT'));
    });

    it('creates a missing user chain; refuses jumps to missing chains', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'replaceChain', ...f, chain: 'NEW', rules: [drop(1), drop(2)] }]);
      expect(fake.restores[0]?.text).toBe(
        `*filter\n-N NEW\n-A NEW ${dropText(1)}\n-A NEW ${dropText(2)}\nCOMMIT\n`,
      );
      await expectError(
        service.apply([{ op: 'replaceChain', ...f, chain: 'NEW', rules: [{ spec: '-j GONE' }] }]),
        'not_found',
        'rules[0].rule.target',
      );
      await expectError(
        service.apply([{ op: 'replaceChain', ...f, chain: 'NEW', rules: 'x' as never }]),
        'invalid_argument',
        'rules',
      );
      expect(await kernelRules(fake, family, 'NEW')).toEqual([dropText(1), dropText(2)]);
    });
  });

  describe('replaceTable (declarative)', () => {
    it('makes the table exactly as described with minimal commands', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([
        {
          op: 'replaceTable',
          ...f,
          chains: [
            { name: 'INPUT', policy: 'DROP', rules: [...input.map((spec) => ({ spec })), drop(1)] },
            { name: 'LOG_AND_DROP', rules: [{ spec: '-j DROP' }] },
            { name: 'WEB', rules: [{ spec: '-p tcp --dport 80 -j ACCEPT' }] },
          ],
        },
      ]);
      expect(r.revision).toBe(2);
      expect(fake.restores.map((x) => x.text)).toEqual([
        [
          '*filter',
          '-N WEB',
          '-P INPUT DROP',
          `-A INPUT ${dropText(1)}`,
          '-A WEB -p tcp -m tcp --dport 80 -j ACCEPT',
          '-X EMPTY',
          'COMMIT',
          '',
        ].join('\n'),
      ]);
      const saved = parseSave(await kernel(fake, family), family);
      expect(saved.tables[0]?.chains.map((c) => [c.name, c.policy, c.rules.length])).toEqual([
        ['INPUT', 'DROP', 4],
        ['FORWARD', 'ACCEPT', 0],
        ['OUTPUT', 'ACCEPT', 0],
        ['LOG_AND_DROP', undefined, 1],
        ['WEB', undefined, 1],
      ]);
      expect(service.getRuleset(family).ruleset).toEqual(saved);
    });

    it('resets built-in chains it does not list to empty ACCEPT, and deletes unlisted user chains with their rules', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'setPolicy', ...f, chain: 'FORWARD', policy: 'DROP' }]);
      await service.apply([{ op: 'replaceTable', ...f, chains: [{ name: 'OUTPUT', rules: [drop(1)] }] }]);
      expect(await fake.save(family, { table: 'filter' })).toBe(
        filter(
          ':INPUT ACCEPT [0:0]',
          ':FORWARD ACCEPT [0:0]',
          ':OUTPUT ACCEPT [0:0]',
          `-A OUTPUT ${dropText(1)}`,
        ).replace('*filter\n', '*filter\n'),
      );
      expect(service.listChains(family, 'filter').chains.map((c) => c.name)).toEqual([
        'INPUT',
        'FORWARD',
        'OUTPUT',
      ]);
    });

    it('refuses a jump to a chain the new table lacks, duplicate chains, and a policy on a user chain', async () => {
      const { fake, service } = await startSeeded();
      const before = await kernel(fake, family);
      await expectError(
        service.apply([
          { op: 'replaceTable', ...f, chains: [{ name: 'INPUT', rules: [{ spec: '-j LOG_AND_DROP' }] }] },
        ]),
        'not_found',
        'chains[0].rules[0]',
      );
      await expectError(
        service.apply([
          {
            op: 'replaceTable',
            ...f,
            chains: [
              { name: 'A', rules: [] },
              { name: 'A', rules: [] },
            ],
          },
        ]),
        'invalid_argument',
        'chains[1].name',
      );
      await expectError(
        service.apply([{ op: 'replaceTable', ...f, chains: [{ name: 'A', policy: 'DROP', rules: [] }] }]),
        'invalid_argument',
        'chains[0].policy',
      );
      expect(await kernel(fake, family)).toBe(before);
    });
  });

  describe('reset', () => {
    it('returns every table to empty built-in chains with ACCEPT policies', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'setPolicy', ...f, chain: 'INPUT', policy: 'DROP' },
        { op: 'append', family, table: 'nat', chain: 'POSTROUTING', rule: { spec: '-o eth0 -j MASQUERADE' } },
      ]);
      const r = await service.apply([{ op: 'reset', family }]);
      expect(r.revision).toBe(3);
      const saved = parseSave(await kernel(fake, family), family);
      for (const t of saved.tables) {
        for (const c of t.chains) {
          expect(c.policy, `${t.name} ${c.name}`).toBe('ACCEPT');
          expect(c.rules, `${t.name} ${c.name}`).toEqual([]);
        }
      }
      expect(saved.tables.flatMap((t) => t.chains.map((c) => `${t.name}/${c.name}`))).toEqual([
        'filter/INPUT',
        'filter/FORWARD',
        'filter/OUTPUT',
        'nat/PREROUTING',
        'nat/INPUT',
        'nat/OUTPUT',
        'nat/POSTROUTING',
      ]);
      expect(service.getRuleset(family).ruleset).toEqual(saved);
      // The other family was not touched.
      const other = family === 'ipv4' ? 'ipv6' : 'ipv4';
      expect(await kernelRules(fake, other, 'INPUT')).toEqual(seedInput(other));
    });

    it('without a family resets both', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'reset' }]);
      for (const fam of FAMILIES) expect(await kernelRules(fake, fam, 'INPUT')).toEqual([]);
      expect(service.revision).toBe(2);
    });

    it('returns to a configured baseline ruleset', async () => {
      const baselineText = filter(
        ':INPUT DROP [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':SSH - [0:0]',
        '-A INPUT -i lo -j ACCEPT',
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -p tcp -m tcp --dport 22 -j SSH',
        '-A SSH -j ACCEPT',
      );
      const baseline = new Map([[family, parseSave(baselineText, family)]]);
      const { fake, service } = await startService({ seed: { [family]: seed(family) }, baseline });
      await service.apply([{ op: 'reset', family }]);
      expect(await kernel(fake, family)).toBe(baselineText);
      expect(service.getRuleset(family).ruleset).toEqual(parseSave(baselineText, family));
      // Reset again: already there, nothing to do.
      const r = await service.apply([{ op: 'reset', family }]);
      expect(r.changes).toEqual([]);
      expect(fake.calls.restore).toBe(1);
    });

    it('of one table leaves the others', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'append', family, table: 'raw', chain: 'OUTPUT', rule: { spec: '-j ACCEPT' } },
      ]);
      await service.apply([{ op: 'reset', family, table: 'raw' }]);
      expect(await kernelRules(fake, family, 'OUTPUT', 'raw')).toEqual([]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual(input);
    });
  });
});
