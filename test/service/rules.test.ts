import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import type { Operation, RuleRef } from '../../src/service/operations.js';
import { expectError, host, kernel, kernelRules, seedInput, startSeeded } from '../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describe.each(FAMILIES)('FirewallService rule operations (%s)', (family) => {
  const at = { family, table: 'filter', chain: 'INPUT' } as const;
  const drop = (n: number) => ({ spec: `-s ${host(family, n).addr} -j DROP` });
  const dropText = (n: number) => `-s ${host(family, n).canonical} -j DROP`;
  const input = seedInput(family);

  async function inputTexts(service: Awaited<ReturnType<typeof startSeeded>>['service']) {
    return (await service.getChain(family, 'filter', 'INPUT')).chain.rules.map((r) => r.text);
  }

  describe('append', () => {
    it('adds the rule at the end with one -A, and reports its id and position', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([{ op: 'append', ...at, rule: drop(1) }]);
      expect(r.revision).toBe(2);
      expect(r.results).toEqual([
        { op: 'append', rule: expect.objectContaining({ position: 4, text: dropText(1) }) },
      ]);
      expect(fake.restores).toEqual([
        {
          family,
          text: `*filter\n-A INPUT ${dropText(1)}\nCOMMIT\n`,
          options: { noflush: true, reuse: true },
        },
      ]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, dropText(1)]);
      const read = (await service.getChain(family, 'filter', 'INPUT')).chain.rules[3];
      expect(read).toEqual(r.results[0]?.rule);
      // The other family is untouched.
      const other = family === 'ipv4' ? 'ipv6' : 'ipv4';
      expect(await kernelRules(fake, other, 'INPUT')).toEqual(seedInput(other));
    });

    it('accepts a typed JSON rule and stores its canonical form', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([
        {
          op: 'append',
          ...at,
          rule: { protocol: 'tcp', matches: [{ module: 'tcp', dport: '443' }], target: { target: 'ACCEPT' } },
        },
      ]);
      expect(r.results[0]?.rule?.text).toBe('-p tcp -m tcp --dport 443 -j ACCEPT');
      expect((await kernelRules(fake, family, 'INPUT')).at(-1)).toBe('-p tcp -m tcp --dport 443 -j ACCEPT');
    });

    it('appends to a built-in chain of a table nobody used yet', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'append', family, table: 'mangle', chain: 'PREROUTING', rule: { spec: '-p udp -j ACCEPT' } },
      ]);
      expect(await kernelRules(fake, family, 'PREROUTING', 'mangle')).toEqual(['-p udp -j ACCEPT']);
      expect(service.listChains(family, 'mangle').chains.map((c) => [c.name, c.rules])).toEqual([
        ['PREROUTING', 1],
        ['INPUT', 0],
        ['FORWARD', 0],
        ['OUTPUT', 0],
        ['POSTROUTING', 0],
      ]);
    });

    it('appends a jump to an existing user chain', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'append', ...at, rule: { spec: '-p udp -j EMPTY' } }]);
      expect((await kernelRules(fake, family, 'INPUT')).at(-1)).toBe('-p udp -j EMPTY');
      expect(service.listChains(family, 'filter').chains.find((c) => c.name === 'EMPTY')?.references).toBe(1);
    });

    it('refuses a missing chain (not_found) and a jump to a missing chain (not_found), changing nothing', async () => {
      const { fake, service } = await startSeeded();
      const before = await kernel(fake, family);
      await expectError(
        service.apply([{ op: 'append', ...at, chain: 'NOPE', rule: drop(1) }]),
        'not_found',
        'chain',
      );
      await expectError(
        service.apply([{ op: 'append', ...at, rule: { spec: '-j NOPE' } }]),
        'not_found',
        'rule.target',
      );
      await expectError(
        service.apply([{ op: 'append', ...at, rule: { spec: '-g NOPE' } }]),
        'not_found',
        'rule.target',
      );
      expect(await kernel(fake, family)).toBe(before);
      expect(fake.calls.restore).toBe(0);
      expect(service.revision).toBe(1);
    });

    it('refuses a jump to a built-in chain', async () => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'append', ...at, rule: { jump: 'OUTPUT' } as never }]),
        'invalid_argument',
      );
    });
  });

  describe('insert', () => {
    it.each([
      [1, 0],
      [2, 1],
      [4, 3],
    ])('at position %i puts the rule there with -I', async (position, index) => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([{ op: 'insert', ...at, position, rule: drop(9) }]);
      expect(r.results[0]?.rule).toMatchObject({ position, text: dropText(9) });
      const expected = [...input];
      expected.splice(index, 0, dropText(9));
      expect(await kernelRules(fake, family, 'INPUT')).toEqual(expected);
      expect(await inputTexts(service)).toEqual(expected);
      expect(fake.restores[0]?.text).toBe(`*filter\n-I INPUT ${position} ${dropText(9)}\nCOMMIT\n`);
    });

    it.each([0, 5, -1, 1.5, '1', null, Number.NaN])(
      'refuses position %s with invalid_argument on position',
      async (position) => {
        const { fake, service } = await startSeeded();
        await expectError(
          service.apply([{ op: 'insert', ...at, position: position as number, rule: drop(9) }]),
          'invalid_argument',
          'position',
        );
        expect(fake.calls.restore).toBe(0);
        expect(await kernelRules(fake, family, 'INPUT')).toEqual(input);
      },
    );

    it('into an empty user chain at position 1', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'insert', family, table: 'filter', chain: 'EMPTY', position: 1, rule: drop(1) },
      ]);
      expect(await kernelRules(fake, family, 'EMPTY')).toEqual([dropText(1)]);
    });
  });

  describe('replace', () => {
    it('by position deletes the unique old rule by spec and inserts the new one in one transaction', async () => {
      const { fake, service } = await startSeeded();
      const old = (await service.getChain(family, 'filter', 'INPUT')).chain.rules[1];
      const r = await service.apply([{ op: 'replace', ...at, target: { position: 2 }, rule: drop(7) }]);
      expect(r.results[0]).toEqual({
        op: 'replace',
        rule: expect.objectContaining({ position: 2, text: dropText(7) }),
        deleted: old,
      });
      expect(fake.restores[0]?.text).toBe(
        `*filter\n-D INPUT ${input[1]}\n-I INPUT 2 ${dropText(7)}\nCOMMIT\n`,
      );
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([input[0], dropText(7), input[2]]);
    });

    it('of the last rule appends after the spec delete', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'replace', ...at, target: { position: 3 }, rule: drop(7) }]);
      expect(fake.restores[0]?.text).toBe(`*filter\n-D INPUT ${input[2]}\n-A INPUT ${dropText(7)}\nCOMMIT\n`);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([input[0], input[1], dropText(7)]);
    });

    it('by position uses -R when identical copies of the old rule exist (a spec delete would hit the first)', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'append', ...at, rule: { spec: input[1] as string } }]);
      const before = fake.restores.length;
      const r = await service.apply([{ op: 'replace', ...at, target: { position: 4 }, rule: drop(7) }]);
      expect(r.results[0]?.rule).toEqual(expect.objectContaining({ position: 4, text: dropText(7) }));
      expect(fake.restores[before]?.text).toBe(`*filter\n-R INPUT 4 ${dropText(7)}\nCOMMIT\n`);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([input[0], input[1], input[2], dropText(7)]);
    });

    it('by id', async () => {
      const { fake, service } = await startSeeded();
      const first = (await service.getChain(family, 'filter', 'INPUT')).chain.rules[0];
      await service.apply([{ op: 'replace', ...at, target: { id: first?.id as string }, rule: drop(8) }]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([dropText(8), input[1], input[2]]);
      expect(service.findRule(family, 'filter', first?.id as string)).toBeUndefined();
    });

    it('by rule content', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        {
          op: 'replace',
          ...at,
          target: { rule: { spec: '-i lo -j ACCEPT' } },
          rule: { spec: '-i lo+ -j ACCEPT' },
        },
      ]);
      expect((await kernelRules(fake, family, 'INPUT'))[0]).toBe('-i lo+ -j ACCEPT');
    });

    it.each<[string, RuleRef, string, string]>([
      ['an unknown id', { id: 'ffffffffffffffff' }, 'not_found', 'target.id'],
      ['a position past the end', { position: 4 }, 'not_found', 'target.position'],
      ['position 0', { position: 0 }, 'invalid_argument', 'target.position'],
      ['a rule that is not there', { rule: { spec: '-j REJECT' } }, 'not_found', 'target.rule'],
    ])('refuses %s', async (_name, target, code, field) => {
      const { fake, service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'replace', ...at, target, rule: drop(1) }]),
        code as never,
        field,
      );
      expect(await kernelRules(fake, family, 'INPUT')).toEqual(input);
    });
  });

  describe('delete', () => {
    it.each<[string, (ids: string[]) => RuleRef]>([
      ['id', (ids) => ({ id: ids[1] as string })],
      ['position', () => ({ position: 2 })],
      ['rule (spec)', () => ({ rule: { spec: '-p tcp --dport 22 -j LOG_AND_DROP' } })],
      [
        'rule (typed)',
        () => ({
          rule: {
            protocol: 'tcp',
            matches: [{ module: 'tcp', dport: 22 }],
            target: { jump: 'LOG_AND_DROP' },
          },
        }),
      ],
    ])('by %s removes that rule and reports it', async (_name, ref) => {
      const { fake, service } = await startSeeded();
      const rules = (await service.getChain(family, 'filter', 'INPUT')).chain.rules;
      const r = await service.apply([{ op: 'delete', ...at, target: ref(rules.map((x) => x.id)) }]);
      expect(r.results).toEqual([{ op: 'delete', deleted: rules[1] }]);
      expect(r.changes).toEqual([
        {
          type: 'rule.deleted',
          family,
          table: 'filter',
          chain: 'INPUT',
          position: 2,
          id: rules[1]?.id,
          text: input[1],
        },
      ]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([input[0], input[2]]);
      // Remaining rules keep their ids.
      expect((await service.getChain(family, 'filter', 'INPUT')).chain.rules.map((x) => x.id)).toEqual([
        rules[0]?.id,
        rules[2]?.id,
      ]);
      expect(
        service.listChains(family, 'filter').chains.find((c) => c.name === 'LOG_AND_DROP')?.references,
      ).toBe(0);
    });

    it.each<[string, RuleRef, string, string]>([
      ['an unknown id', { id: 'ffffffffffffffff' }, 'not_found', 'target.id'],
      ['a position past the end', { position: 4 }, 'not_found', 'target.position'],
      ['a rule that is not there', { rule: { spec: '-p udp -j ACCEPT' } }, 'not_found', 'target.rule'],
      ['position 0', { position: 0 }, 'invalid_argument', 'target.position'],
      ['position 1.5', { position: 1.5 }, 'invalid_argument', 'target.position'],
      ['an empty reference', {} as RuleRef, 'invalid_argument', 'target'],
    ])('refuses %s', async (_name, target, code, field) => {
      const { fake, service } = await startSeeded();
      await expectError(service.apply([{ op: 'delete', ...at, target }]), code as never, field);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual(input);
      expect(fake.calls.restore).toBe(0);
    });

    it('by id of the second of two identical rules leaves one copy', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'append', ...at, rule: drop(1) },
        { op: 'append', ...at, rule: drop(1) },
      ]);
      const rules = (await service.getChain(family, 'filter', 'INPUT')).chain.rules;
      expect(rules[3]?.id).not.toBe(rules[4]?.id);
      await service.apply([{ op: 'delete', ...at, target: { id: rules[4]?.id as string } }]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, dropText(1)]);
      // The copy left is now the first occurrence: it carries that id.
      expect((await service.getChain(family, 'filter', 'INPUT')).chain.rules[3]?.id).toBe(rules[3]?.id);
    });
  });

  describe('ensure', () => {
    it('adds a missing rule once; a second call finds it (existed: true, revision unchanged, no restore)', async () => {
      const { fake, service } = await startSeeded();
      const op: Operation = { op: 'ensure', ...at, rule: drop(3) };
      const first = await service.apply([op]);
      expect(first.revision).toBe(2);
      expect(first.results[0]).toMatchObject({ op: 'ensure', existed: false, rule: { position: 4 } });
      const restores = fake.calls.restore;
      const second = await service.apply([op]);
      expect(second).toEqual({
        revision: 2,
        results: [{ op: 'ensure', existed: true, rule: first.results[0]?.rule }],
        changes: [],
      });
      expect(fake.calls.restore).toBe(restores);
      expect(service.revision).toBe(2);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, dropText(3)]);
    });

    it('finds a rule whatever its spelling (canonical comparison)', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([
        { op: 'ensure', ...at, rule: { spec: '-p tcp --dport 22 -j LOG_AND_DROP' } },
      ]);
      expect(r.results[0]).toMatchObject({ existed: true, rule: { position: 2, text: input[1] } });
      expect(fake.calls.restore).toBe(0);
    });

    it('inserts at the given position when missing', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'ensure', ...at, position: 1, rule: drop(4) }]);
      expect((await kernelRules(fake, family, 'INPUT'))[0]).toBe(dropText(4));
    });
  });
});
