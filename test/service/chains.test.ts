import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { expectError, kernel, kernelRules, seedInput, startSeeded } from '../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/** The `:CHAIN POLICY` declarations of the filter table in the fake's save output. */
async function declared(fake: Awaited<ReturnType<typeof startSeeded>>['fake'], family: Family) {
  return (await fake.save(family, { table: 'filter' })).split('\n').filter((l) => l.startsWith(':'));
}

describe.each(FAMILIES)('FirewallService chain operations (%s)', (family) => {
  const filter = { family, table: 'filter' } as const;
  const input = seedInput(family);

  describe('createChain', () => {
    it('creates a user chain with -N; it reads back empty, in iptables-save order', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([{ op: 'createChain', ...filter, chain: 'ALLOW_WEB' }]);
      expect(r.changes).toEqual([{ type: 'chain.created', family, table: 'filter', chain: 'ALLOW_WEB' }]);
      expect(fake.restores[0]?.text).toBe('*filter\n-N ALLOW_WEB\nCOMMIT\n');
      expect(await declared(fake, family)).toContain(':ALLOW_WEB - [0:0]');
      expect((await service.getChain(family, 'filter', 'ALLOW_WEB')).chain).toEqual({
        name: 'ALLOW_WEB',
        builtin: false,
        rules: [],
      });
      // The model lists chains in the order the kernel prints them (user chains by name).
      const names = service.listChains(family, 'filter').chains.map((c) => `:${c.name}`);
      expect(names).toEqual((await declared(fake, family)).map((l) => l.split(' ')[0]));
    });

    it('creates a chain in a table nobody used yet', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'createChain', family, table: 'raw', chain: 'NOTRACK_WEB' }]);
      expect(await fake.save(family, { table: 'raw' })).toContain(':NOTRACK_WEB - [0:0]');
      expect(service.listChains(family, 'raw').chains.map((c) => c.name)).toEqual([
        'PREROUTING',
        'OUTPUT',
        'NOTRACK_WEB',
      ]);
    });

    it.each([
      ['an existing user chain', 'EMPTY', 'already_exists'],
      ['a built-in chain name', 'INPUT', 'already_exists'],
      ['the verdict ACCEPT', 'ACCEPT', 'invalid_argument'],
      ['the verdict RETURN', 'RETURN', 'invalid_argument'],
      ['an empty name', '', 'invalid_argument'],
      ['a name with a space', 'MY CHAIN', 'invalid_argument'],
      ['a name with a newline', 'A\n-F INPUT', 'invalid_argument'],
      ['a name starting with a dash', '-X', 'invalid_argument'],
      ['a 29-character name', 'C'.repeat(29), 'invalid_argument'],
      ['a name that is not a string', 42, 'invalid_argument'],
    ])('refuses %s', async (_what, chain, code) => {
      const { fake, service } = await startSeeded();
      const before = await kernel(fake, family);
      await expectError(
        service.apply([{ op: 'createChain', ...filter, chain: chain as string }]),
        code as never,
        'chain',
      );
      expect(await kernel(fake, family)).toBe(before);
      expect(fake.calls.restore).toBe(0);
      expect(service.revision).toBe(1);
    });

    it('accepts a 28-character name (the longest iptables allows)', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'createChain', ...filter, chain: 'C'.repeat(28) }]);
      expect(await declared(fake, family)).toContain(`:${'C'.repeat(28)} - [0:0]`);
    });
  });

  describe('deleteChain', () => {
    it('deletes an empty, unreferenced chain with -X', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'deleteChain', ...filter, chain: 'EMPTY' }]);
      expect(fake.restores[0]?.text).toBe('*filter\n-X EMPTY\nCOMMIT\n');
      expect(await declared(fake, family)).not.toContain(':EMPTY - [0:0]');
      await expectError(service.getChain(family, 'filter', 'EMPTY'), 'not_found');
    });

    it('refuses a chain that still has rules (failed_precondition), changing nothing', async () => {
      const { fake, service } = await startSeeded();
      // Unlink it first, so only its own rules are in the way.
      await service.apply([{ op: 'delete', ...filter, chain: 'INPUT', target: { position: 2 } }]);
      const before = await kernel(fake, family);
      const e = await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'LOG_AND_DROP' }]),
        'failed_precondition',
        'chain',
      );
      expect(e.details).toEqual({ rules: 1 });
      expect(await kernel(fake, family)).toBe(before);
    });

    it('refuses a chain that other rules jump to (failed_precondition), naming them', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'flushChain', ...filter, chain: 'LOG_AND_DROP' }]);
      const before = await kernel(fake, family);
      const e = await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'LOG_AND_DROP' }]),
        'failed_precondition',
        'chain',
      );
      expect(e.details).toEqual({ references: [{ chain: 'INPUT', position: 2 }] });
      expect(e.message).toMatch(/INPUT rule 2/);
      expect(await kernel(fake, family)).toBe(before);
    });

    it('with force flushes the chain, deletes the rules that jump to it, then deletes it', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([
        { op: 'append', ...filter, chain: 'OUTPUT', rule: { spec: '-p udp -j LOG_AND_DROP' } },
        { op: 'append', ...filter, chain: 'EMPTY', rule: { spec: '-g LOG_AND_DROP' } },
      ]);
      const r = await service.apply([{ op: 'deleteChain', ...filter, chain: 'LOG_AND_DROP', force: true }]);
      expect(r.changes.map((c) => [c.type, c.chain])).toEqual([
        ['rule.deleted', 'EMPTY'],
        ['rule.deleted', 'OUTPUT'],
        ['rule.deleted', 'INPUT'],
        ['chain.flushed', 'LOG_AND_DROP'],
        ['chain.deleted', 'LOG_AND_DROP'],
      ]);
      expect(await declared(fake, family)).not.toContain(':LOG_AND_DROP - [0:0]');
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([input[0], input[2]]);
      expect(await kernelRules(fake, family, 'OUTPUT')).toEqual([]);
      expect(await kernelRules(fake, family, 'EMPTY')).toEqual([]);
      expect(service.listChains(family, 'filter').chains.map((c) => [c.name, c.rules])).toEqual([
        ['INPUT', 2],
        ['FORWARD', 0],
        ['OUTPUT', 0],
        ['EMPTY', 0],
      ]);
    });

    it('refuses a built-in chain (invalid_argument) and a missing chain (not_found)', async () => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'INPUT', force: true }]),
        'invalid_argument',
        'chain',
      );
      await expectError(
        service.apply([{ op: 'deleteChain', ...filter, chain: 'NOPE' }]),
        'not_found',
        'chain',
      );
      expect(service.revision).toBe(1);
    });
  });

  describe('flushChain', () => {
    it('removes every rule with -F and keeps the policy', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'setPolicy', ...filter, chain: 'INPUT', policy: 'DROP' }]);
      const r = await service.apply([{ op: 'flushChain', ...filter, chain: 'INPUT' }]);
      expect(r.changes).toEqual([{ type: 'chain.flushed', family, table: 'filter', chain: 'INPUT' }]);
      expect(fake.restores.at(-1)?.text).toBe('*filter\n-F INPUT\nCOMMIT\n');
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([]);
      expect(await declared(fake, family)).toContain(':INPUT DROP [0:0]');
      const chain = (await service.getChain(family, 'filter', 'INPUT')).chain;
      expect(chain).toMatchObject({ policy: 'DROP', rules: [] });
      expect(
        service.listChains(family, 'filter').chains.find((c) => c.name === 'LOG_AND_DROP')?.references,
      ).toBe(0);
    });

    it('refuses a missing chain', async () => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'flushChain', ...filter, chain: 'NOPE' }]),
        'not_found',
        'chain',
      );
    });
  });

  describe('renameChain', () => {
    it('renames with -E; rules that jump to it follow; ids of its rules change', async () => {
      const { fake, service } = await startSeeded();
      const oldIds = (await service.getChain(family, 'filter', 'LOG_AND_DROP')).chain.rules.map((r) => r.id);
      const inputBefore = (await service.getChain(family, 'filter', 'INPUT')).chain.rules;
      const r = await service.apply([
        { op: 'renameChain', ...filter, chain: 'LOG_AND_DROP', newName: 'SSH_DROP' },
      ]);
      expect(r.changes).toEqual([
        { type: 'chain.renamed', family, table: 'filter', chain: 'LOG_AND_DROP', newName: 'SSH_DROP' },
      ]);
      expect(fake.restores[0]?.text).toBe('*filter\n-E LOG_AND_DROP SSH_DROP\nCOMMIT\n');
      // Kernel and model agree: the jump follows the rename.
      expect(await kernelRules(fake, family, 'INPUT')).toEqual([
        input[0],
        '-p tcp -m tcp --dport 22 -j SSH_DROP',
        input[2],
      ]);
      const inputAfter = (await service.getChain(family, 'filter', 'INPUT')).chain.rules;
      expect(inputAfter.map((x) => x.text)).toEqual(await kernelRules(fake, family, 'INPUT'));
      expect(inputAfter[1]?.rule.target).toEqual({ jump: 'SSH_DROP' });
      expect(inputAfter[1]?.id).not.toBe(inputBefore[1]?.id);
      expect([inputAfter[0]?.id, inputAfter[2]?.id]).toEqual([inputBefore[0]?.id, inputBefore[2]?.id]);
      const renamed = (await service.getChain(family, 'filter', 'SSH_DROP')).chain.rules;
      expect(renamed.map((x) => x.text)).toEqual(['-j DROP']);
      expect(renamed[0]?.id).not.toBe(oldIds[0]);
      expect(service.findRule(family, 'filter', oldIds[0] as string)).toBeUndefined();
      await expectError(service.getChain(family, 'filter', 'LOG_AND_DROP'), 'not_found');
      // The model equals what a fresh read of the kernel gives.
      const fresh = await startSeeded();
      await fresh.fake.restore(family, await kernel(fake, family));
      await fresh.service.reload();
      expect(fresh.service.getTable(family, 'filter').chains).toEqual(
        service.getTable(family, 'filter').chains,
      );
    });

    it('a goto follows the rename too', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'append', ...filter, chain: 'OUTPUT', rule: { spec: '-g EMPTY' } }]);
      await service.apply([{ op: 'renameChain', ...filter, chain: 'EMPTY', newName: 'SPARE' }]);
      expect(await kernelRules(fake, family, 'OUTPUT')).toEqual(['-g SPARE']);
      expect((await service.getChain(family, 'filter', 'OUTPUT')).chain.rules[0]?.rule.target).toEqual({
        goto: 'SPARE',
      });
    });

    it.each([
      ['a taken name', 'LOG_AND_DROP', 'EMPTY', 'already_exists', 'newName'],
      ['a built-in name', 'LOG_AND_DROP', 'OUTPUT', 'already_exists', 'newName'],
      ['a reserved name', 'LOG_AND_DROP', 'DROP', 'invalid_argument', 'newName'],
      ['an invalid name', 'LOG_AND_DROP', 'a b', 'invalid_argument', 'newName'],
      ['a missing chain', 'NOPE', 'OTHER', 'not_found', 'chain'],
      ['a built-in chain', 'INPUT', 'MY_INPUT', 'invalid_argument', 'chain'],
    ])('refuses %s', async (_what, chain, newName, code, field) => {
      const { fake, service } = await startSeeded();
      const before = await kernel(fake, family);
      await expectError(
        service.apply([{ op: 'renameChain', ...filter, chain, newName }]),
        code as never,
        field,
      );
      expect(await kernel(fake, family)).toBe(before);
      expect(service.revision).toBe(1);
    });
  });

  describe('setPolicy', () => {
    it('sets DROP then ACCEPT with -P', async () => {
      const { fake, service } = await startSeeded();
      const r = await service.apply([{ op: 'setPolicy', ...filter, chain: 'INPUT', policy: 'DROP' }]);
      expect(r.changes).toEqual([
        { type: 'policy.set', family, table: 'filter', chain: 'INPUT', policy: 'DROP' },
      ]);
      expect(fake.restores[0]?.text).toBe('*filter\n-P INPUT DROP\nCOMMIT\n');
      expect(await declared(fake, family)).toContain(':INPUT DROP [0:0]');
      expect(service.listChains(family, 'filter').chains[0]).toMatchObject({ name: 'INPUT', policy: 'DROP' });
      await service.apply([{ op: 'setPolicy', ...filter, chain: 'INPUT', policy: 'ACCEPT' }]);
      expect(await declared(fake, family)).toContain(':INPUT ACCEPT [0:0]');
      expect(service.revision).toBe(3);
    });

    it('sets a policy in a table nobody used yet', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'setPolicy', family, table: 'mangle', chain: 'FORWARD', policy: 'DROP' }]);
      expect(await fake.save(family, { table: 'mangle' })).toContain(':FORWARD DROP [0:0]');
      expect(service.listChains(family, 'mangle').chains.find((c) => c.name === 'FORWARD')?.policy).toBe(
        'DROP',
      );
    });

    it.each([
      ['a user chain', 'LOG_AND_DROP', 'DROP', 'chain'],
      ['a chain of another table', 'PREROUTING', 'DROP', 'chain'],
      ['the policy REJECT', 'INPUT', 'REJECT', 'policy'],
      ['a lowercase policy', 'INPUT', 'drop', 'policy'],
    ])('refuses %s (invalid_argument)', async (_what, chain, policy, field) => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'setPolicy', ...filter, chain, policy: policy as never }]),
        'invalid_argument',
        field,
      );
    });
  });

  describe('zeroCounters', () => {
    it('zeroes one chain with -Z CHAIN, or the table with -Z', async () => {
      const { fake, service } = await startSeeded();
      await service.apply([{ op: 'zeroCounters', ...filter, chain: 'INPUT' }]);
      await service.apply([{ op: 'zeroCounters', ...filter }]);
      expect(fake.restores.map((r) => r.text)).toEqual([
        '*filter\n-Z INPUT\nCOMMIT\n',
        '*filter\n-Z\nCOMMIT\n',
      ]);
      expect(await kernelRules(fake, family, 'INPUT')).toEqual(input);
    });

    it('refuses a missing chain, and a table not in use', async () => {
      const { service } = await startSeeded();
      await expectError(
        service.apply([{ op: 'zeroCounters', ...filter, chain: 'NOPE' }]),
        'not_found',
        'chain',
      );
      await expectError(
        service.apply([{ op: 'zeroCounters', family, table: 'security' }]),
        'not_found',
        'table',
      );
    });
  });
});
