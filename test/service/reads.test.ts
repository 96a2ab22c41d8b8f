import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { expectError, kernelRules, seedInput, startSeeded } from '../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describe.each(FAMILIES)('FirewallService reads (%s)', (family) => {
  it('getRuleset returns the kernel ruleset as the model, with the revision', async () => {
    const { service } = await startSeeded();
    const { revision, ruleset } = service.getRuleset(family);
    expect(revision).toBe(1);
    expect(ruleset.family).toBe(family);
    expect(ruleset.tables.map((t) => t.name)).toEqual(['filter']);
    const filter = ruleset.tables[0];
    expect(filter?.chains.map((c) => [c.name, c.policy, c.rules.length])).toEqual([
      ['INPUT', 'ACCEPT', 3],
      ['FORWARD', 'ACCEPT', 0],
      ['OUTPUT', 'ACCEPT', 0],
      ['EMPTY', undefined, 0],
      ['LOG_AND_DROP', undefined, 1],
    ]);
    expect(filter?.chains[0]?.rules[1]?.target).toEqual({ jump: 'LOG_AND_DROP' });
  });

  it('getTable lists chains with rules, and an unused table as empty built-ins', async () => {
    const { service } = await startSeeded();
    const t = service.getTable(family, 'filter');
    expect(t.revision).toBe(1);
    expect(t.chains.map((c) => [c.name, c.builtin, c.rules.map((r) => r.text)])).toEqual([
      ['INPUT', true, seedInput(family)],
      ['FORWARD', true, []],
      ['OUTPUT', true, []],
      ['EMPTY', false, []],
      ['LOG_AND_DROP', false, ['-j DROP']],
    ]);
    const nat = service.getTable(family, 'nat');
    expect(nat.chains.map((c) => [c.name, c.policy, c.rules.length])).toEqual([
      ['PREROUTING', 'ACCEPT', 0],
      ['INPUT', 'ACCEPT', 0],
      ['OUTPUT', 'ACCEPT', 0],
      ['POSTROUTING', 'ACCEPT', 0],
    ]);
  });

  it('getChain gives each rule an id, its 1-based position and the text iptables-save prints', async () => {
    const { fake, service } = await startSeeded();
    const { revision, chain } = await service.getChain(family, 'filter', 'INPUT');
    expect(revision).toBe(1);
    expect(chain).toMatchObject({ name: 'INPUT', builtin: true, policy: 'ACCEPT' });
    expect(chain.rules.map((r) => r.position)).toEqual([1, 2, 3]);
    expect(chain.rules.map((r) => r.text)).toEqual(await kernelRules(fake, family, 'INPUT'));
    const ids = chain.rules.map((r) => r.id);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    // Ids are stable: the same ruleset read by another service gives the same ids.
    const again = await startSeeded();
    expect((await again.service.getChain(family, 'filter', 'INPUT')).chain.rules.map((r) => r.id)).toEqual(
      ids,
    );
    // And differ between families.
    const other = family === 'ipv4' ? 'ipv6' : 'ipv4';
    const otherIds = (await service.getChain(other, 'filter', 'INPUT')).chain.rules.map((r) => r.id);
    expect(otherIds.filter((id) => ids.includes(id))).toEqual([]);
  });

  it('getChain of a user chain has no policy; a built-in chain of an unused table reads as empty', async () => {
    const { service } = await startSeeded();
    const user = (await service.getChain(family, 'filter', 'LOG_AND_DROP')).chain;
    expect(user).toEqual({
      name: 'LOG_AND_DROP',
      builtin: false,
      rules: [expect.objectContaining({ position: 1, text: '-j DROP' })],
    });
    const raw = (await service.getChain(family, 'raw', 'PREROUTING')).chain;
    expect(raw).toEqual({ name: 'PREROUTING', builtin: true, policy: 'ACCEPT', rules: [] });
  });

  it('getChain with counters reads them from the kernel', async () => {
    const { fake, service } = await startSeeded();
    const saves = fake.calls.save;
    const { chain } = await service.getChain(family, 'filter', 'INPUT', { counters: true });
    expect(fake.calls.save).toBe(saves + 1);
    expect(chain.counters).toEqual({ packets: 0n, bytes: 0n });
    for (const r of chain.rules) expect(r.counters).toEqual({ packets: 0n, bytes: 0n });
  });

  it('getChain with counters refuses (aborted) when the kernel chain no longer matches the model', async () => {
    const { fake, service } = await startSeeded();
    await fake.restore(family, '*filter\n-A INPUT -j ACCEPT\nCOMMIT\n', { noflush: true });
    await expectError(service.getChain(family, 'filter', 'INPUT', { counters: true }), 'aborted', 'chain');
    // The mismatch schedules a re-read: the model catches up.
    await service.reload();
    expect((await service.getChain(family, 'filter', 'INPUT')).chain.rules).toHaveLength(4);
  });

  it('listChains counts rules and the rules that jump to each chain', async () => {
    const { service } = await startSeeded();
    expect(service.listChains(family, 'filter')).toEqual({
      revision: 1,
      chains: [
        { name: 'INPUT', builtin: true, policy: 'ACCEPT', rules: 3, references: 0 },
        { name: 'FORWARD', builtin: true, policy: 'ACCEPT', rules: 0, references: 0 },
        { name: 'OUTPUT', builtin: true, policy: 'ACCEPT', rules: 0, references: 0 },
        { name: 'EMPTY', builtin: false, rules: 0, references: 0 },
        { name: 'LOG_AND_DROP', builtin: false, rules: 1, references: 1 },
      ],
    });
  });

  it('findRule finds a rule by id anywhere in the table', async () => {
    const { service } = await startSeeded();
    const target = (await service.getChain(family, 'filter', 'LOG_AND_DROP')).chain.rules[0];
    expect(service.findRule(family, 'filter', target?.id as string)).toEqual({
      chain: 'LOG_AND_DROP',
      rule: target,
    });
    expect(service.findRule(family, 'filter', '0000000000000000')).toBeUndefined();
    expect(service.findRule(family, 'nat', target?.id as string)).toBeUndefined();
  });

  it('refuses unknown chains, tables and families with precise errors', async () => {
    const { service } = await startSeeded();
    await expectError(service.getChain(family, 'filter', 'NOPE'), 'not_found', 'chain');
    await expectError(() => service.getTable(family, 'bogus' as never), 'invalid_argument', 'table');
    await expectError(() => service.listChains('ipv5' as never, 'filter'), 'invalid_argument', 'family');
  });
});

describe('FirewallService status and lifecycle', () => {
  it('status reports revision, families, backend, queue and readiness', async () => {
    const { service } = await startSeeded();
    expect(service.status()).toEqual({
      revision: 1,
      families: ['ipv4', 'ipv6'],
      backend: { backend: 'nf_tables', version: '1.8.9' },
      watch: 'none',
      queueDepth: 0,
      batches: 0,
      ready: true,
      lastExternalChange: undefined,
    });
  });

  it('asks iptables for its backend at start only when not told it already', async () => {
    const asked = new FakeExecutor();
    const a = new FirewallService({ executor: asked, pollIntervalMs: 0 });
    await a.start();
    expect(asked.calls.info).toBe(1);
    const told = new FakeExecutor();
    const b = new FirewallService({
      executor: told,
      backend: { backend: 'legacy', version: '1.8.7' },
      pollIntervalMs: 0,
    });
    await b.start();
    expect(told.calls.info).toBe(0);
    expect(b.status().backend).toEqual({ backend: 'legacy', version: '1.8.7' });
    await Promise.all([a.close(), b.close()]);
  });

  it('reads the model from saves already asked for, where given', async () => {
    const fake = new FakeExecutor();
    const given =
      '*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -j ACCEPT\nCOMMIT\n';
    const service = new FirewallService({
      executor: fake,
      pollIntervalMs: 0,
      firstSaves: new Map([['ipv4', Promise.resolve(given)]]),
    });
    await service.start();
    expect(fake.calls.save).toBe(1); // ipv6 only
    expect(service.getRulesetText('ipv4').text).toBe(given);
    const { chain } = await service.getChain('ipv4', 'filter', 'INPUT');
    expect([chain.policy, chain.rules.map((r) => r.text)]).toEqual(['DROP', ['-s 192.0.2.1/32 -j ACCEPT']]);
    await service.close();
  });

  it('manages only the families it is given', async () => {
    const { service } = await startSeeded(['ipv4']);
    const only = new FirewallService({ executor: new FakeExecutor(), families: ['ipv4'], pollIntervalMs: 0 });
    await only.start();
    expect(only.status().families).toEqual(['ipv4']);
    await expectError(() => only.getRuleset('ipv6'), 'invalid_argument', 'family');
    // Nor does it change the family it does not manage.
    const append = {
      op: 'append',
      family: 'ipv6',
      table: 'filter',
      chain: 'INPUT',
      rule: { spec: '-j DROP' },
    } as const;
    await expectError(only.apply([append]), 'invalid_argument', 'family');
    await expectError(only.apply([append], { dryRun: true }), 'invalid_argument', 'family');
    await expectError(
      only.apply([{ ...append, family: 'ipv4' }, append]),
      'invalid_argument',
      'operations[1].family',
    );
    expect(only.revision).toBe(1);
    expect(service.getRuleset('ipv4').ruleset.tables).toHaveLength(1);
    await only.close();
  });

  it('refuses reads and changes before start (unavailable), and changes after close', async () => {
    const service = new FirewallService({ executor: new FakeExecutor(), pollIntervalMs: 0 });
    expect(service.ready).toBe(false);
    await expectError(() => service.getRuleset('ipv4'), 'unavailable');
    await expectError(
      () => service.apply([{ op: 'flushChain', family: 'ipv4', table: 'filter', chain: 'INPUT' }]),
      'unavailable',
    );
    await service.start();
    expect(service.ready).toBe(true);
    await service.close();
    expect(service.ready).toBe(false);
    await expectError(
      service.apply([{ op: 'flushChain', family: 'ipv4', table: 'filter', chain: 'INPUT' }]),
      'unavailable',
    );
  });

  it('close lets queued changes finish', async () => {
    const { fake, service } = await startSeeded();
    const pending = service.apply([
      { op: 'append', family: 'ipv4', table: 'filter', chain: 'EMPTY', rule: { spec: '-j RETURN' } },
    ]);
    await service.close();
    expect((await pending).revision).toBe(2);
    expect(await kernelRules(fake, 'ipv4', 'EMPTY')).toEqual(['-j RETURN']);
  });

  it('refuses bad constructor options with TypeErrors', () => {
    expect(() => new FirewallService(undefined as never)).toThrow(TypeError);
    expect(() => new FirewallService({ executor: new FakeExecutor(), families: ['ipv7' as never] })).toThrow(
      /families/,
    );
    expect(() => new FirewallService({ executor: new FakeExecutor(), queue: { maxDepth: 0 } })).toThrow(
      /maxDepth/,
    );
  });
});
