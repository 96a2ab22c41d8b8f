import { describe, expect, it } from 'vitest';
import type { Family } from '../../src/domain/family.js';
import { ExecError } from '../../src/exec/executor.js';
import type { Operation } from '../../src/service/operations.js';
import {
  expectError,
  host,
  kernel,
  kernelRules,
  seedInput,
  startSeeded,
  startService,
} from '../helpers/service.js';

const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

describe.each(FAMILIES)('FirewallService batching and failure isolation (%s)', (family) => {
  const at = { family, table: 'filter', chain: 'INPUT' } as const;
  const append = (n: number): Operation => ({
    op: 'append',
    ...at,
    rule: { spec: `-s ${host(family, n).addr} -j DROP` },
  });
  const text = (n: number) => `-s ${host(family, n).canonical} -j DROP`;
  const input = seedInput(family);

  it('group commit: 100 concurrent appends land in few restores, in submission order', async () => {
    const { fake, service } = await startSeeded();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => service.apply([append(i + 1)])));
    expect(fake.calls.restore).toBeLessThanOrEqual(3);
    const expected = Array.from({ length: 100 }, (_, i) => text(i + 1));
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, ...expected]);
    // Each caller got its own result: its rule, its position, its revision.
    expect(results.map((r) => r.results[0]?.rule?.text)).toEqual(expected);
    expect(results.map((r) => r.results[0]?.rule?.position)).toEqual(expected.map((_, i) => i + 4));
    expect(results.map((r) => r.revision)).toEqual(expected.map((_, i) => i + 2));
    expect(service.revision).toBe(101);
    const ids = (await service.getChain(family, 'filter', 'INPUT')).chain.rules.slice(3).map((r) => r.id);
    expect(results.map((r) => r.results[0]?.rule?.id)).toEqual(ids);
  });

  it('10 concurrent appends, one refused by the kernel: only that one fails, the other 9 land', async () => {
    const { fake, service } = await startSeeded();
    const ops = Array.from({ length: 10 }, (_, i) =>
      i === 6
        ? ({ op: 'append', ...at, rule: { spec: '-o eth0 -j MASQUERADE' } } as Operation)
        : append(i + 1),
    );
    const settled = await Promise.allSettled(ops.map((op) => service.apply([op])));
    expect(settled.map((s) => s.status)).toEqual(ops.map((_, i) => (i === 6 ? 'rejected' : 'fulfilled')));
    const reason = (settled[6] as PromiseRejectedResult).reason;
    expect(reason).toMatchObject({ code: 'invalid_argument' });
    expect(reason.details).toMatchObject({ input: '-A INPUT -o eth0 -j MASQUERADE' });
    expect(fake.calls.restore).toBeLessThanOrEqual(3);
    const landed = [1, 2, 3, 4, 5, 6, 8, 9, 10].map(text);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, ...landed]);
    expect((await service.getChain(family, 'filter', 'INPUT')).chain.rules.map((r) => r.text)).toEqual([
      ...input,
      ...landed,
    ]);
    expect(service.revision).toBe(10);
    // The queue keeps going.
    expect((await service.apply([append(50)])).revision).toBe(11);
  });

  it('a kernel error blaming one job’s line fails that job alone; the rest are applied', async () => {
    const { fake, service } = await startSeeded();
    // Line 1 is *filter; job k's command is line k + 2.
    fake.failNextRestore(
      new ExecError({
        kind: 'invalid_input',
        message: 'iptables-restore failed at line 5',
        argv: ['iptables-restore'],
        exitCode: 2,
        stderr: 'iptables-restore: line 5 failed: Invalid argument\n',
        line: 5,
        lineText: `-A INPUT ${text(4)}`,
      }),
    );
    const settled = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => service.apply([append(i + 1)])),
    );
    expect(settled.map((s) => s.status)).toEqual(settled.map((_, i) => (i === 3 ? 'rejected' : 'fulfilled')));
    expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({
      code: 'invalid_argument',
      details: { line: 5, input: `-A INPUT ${text(4)}` },
    });
    expect(fake.calls.restore).toBe(2);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([
      ...input,
      ...[1, 2, 3, 5, 6, 7, 8, 9, 10].map(text),
    ]);
  });

  it('a failure that blames no line is isolated by retrying jobs one by one', async () => {
    const { fake, service } = await startSeeded();
    fake.failNextRestore(
      new ExecError({ kind: 'lock_timeout', message: 'another app holds the xtables lock', argv: [] }),
    );
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => service.apply([append(i + 1)])));
    expect(results.map((r) => r.revision)).toEqual([2, 3, 4, 5, 6]);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, ...[1, 2, 3, 4, 5].map(text)]);
    expect(fake.calls.restore).toBe(6);
  });

  it('a job whose lone restore fails gets the error; the next batch is not stalled', async () => {
    const { fake, service } = await startSeeded();
    fake.failNextRestore(new ExecError({ kind: 'timeout', message: 'iptables-restore timed out', argv: [] }));
    await expectError(service.apply([append(1)]), 'unavailable');
    expect(service.revision).toBe(1);
    expect((await service.apply([append(2)])).revision).toBe(2);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, text(2)]);
  });

  it('a job that fails planning does not disturb the other jobs of its batch', async () => {
    const { fake, service } = await startSeeded();
    const settled = await Promise.allSettled([
      service.apply([append(1)]),
      service.apply([{ op: 'delete', ...at, target: { id: 'ffffffffffffffff' } }]),
      service.apply([append(1), { op: 'append', ...at, chain: 'NOPE', rule: { spec: '-j DROP' } }]),
      service.apply([append(2)]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(fake.calls.restore).toBe(1);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, text(1), text(2)]);
  });

  it('concurrent ensures of one rule add it once', async () => {
    const { fake, service } = await startSeeded();
    const ensure: Operation = { op: 'ensure', ...at, rule: { spec: `-s ${host(family, 1).addr} -j DROP` } };
    const results = await Promise.all([
      service.apply([ensure]),
      service.apply([ensure]),
      service.apply([ensure]),
    ]);
    expect(results.map((r) => [r.revision, r.results[0]?.existed])).toEqual([
      [2, false],
      [2, true],
      [2, true],
    ]);
    expect(new Set(results.map((r) => r.results[0]?.rule?.id)).size).toBe(1);
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...input, text(1)]);
  });

  it('jobs in one batch see each other: create a chain, then fill it and jump to it', async () => {
    const { fake, service } = await startSeeded();
    await Promise.all([
      service.apply([{ op: 'createChain', family, table: 'filter', chain: 'WEB' }]),
      service.apply([{ op: 'append', family, table: 'filter', chain: 'WEB', rule: { spec: '-j ACCEPT' } }]),
      service.apply([{ op: 'append', ...at, rule: { spec: '-p tcp --dport 80 -j WEB' } }]),
    ]);
    expect(fake.calls.restore).toBe(1);
    expect(await kernelRules(fake, family, 'WEB')).toEqual(['-j ACCEPT']);
  });

  it('jobs in one batch after a rename use the new name (iptables sees a rename only after COMMIT)', async () => {
    const { fake, service } = await startSeeded();
    const results = await Promise.all([
      service.apply([{ op: 'renameChain', family, table: 'filter', chain: 'EMPTY', newName: 'SPARE' }]),
      service.apply([{ op: 'append', family, table: 'filter', chain: 'SPARE', rule: { spec: '-j RETURN' } }]),
      service.apply([{ op: 'createChain', family, table: 'filter', chain: 'EMPTY' }]),
    ]);
    expect(results.map((r) => r.revision)).toEqual([2, 3, 4]);
    expect(fake.calls.restore).toBe(1);
    expect(await kernelRules(fake, family, 'SPARE')).toEqual(['-j RETURN']);
    expect(service.listChains(family, 'filter').chains.map((c) => c.name)).toEqual([
      'INPUT',
      'FORWARD',
      'OUTPUT',
      'EMPTY',
      'LOG_AND_DROP',
      'SPARE',
    ]);
  });

  it('a rename whose later block the kernel refuses is rolled back', async () => {
    const { fake, service } = await startSeeded();
    const before = await kernel(fake, family);
    await expectError(
      service.apply([
        { op: 'renameChain', family, table: 'filter', chain: 'EMPTY', newName: 'SPARE' },
        { op: 'append', family, table: 'filter', chain: 'SPARE', rule: { spec: '-j MASQUERADE' } },
      ]),
      'invalid_argument',
    );
    expect(await kernel(fake, family)).toBe(before);
    expect(service.revision).toBe(1);
    expect(service.listChains(family, 'filter').chains.map((c) => c.name)).toContain('EMPTY');
  });

  it('an aborted request is not applied', async () => {
    const { fake, service } = await startSeeded();
    await expectError(service.apply([append(1)], { signal: AbortSignal.abort() }), 'aborted');
    expect(fake.calls.restore).toBe(0);
  });

  it('a full queue answers resource_exhausted', async () => {
    const { fake, service } = await startService({ queue: { maxDepth: 2 } });
    const settled = await Promise.allSettled([1, 2, 3].map((n) => service.apply([append(n)])));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'resource_exhausted' });
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([text(1), text(2)]);
  });
});

describe('FirewallService hostile inputs', () => {
  const family = 'ipv4';
  const at = { family, table: 'filter', chain: 'INPUT' } as const;

  it.each<[string, Operation, string | RegExp]>([
    ['a spec with a newline', { op: 'append', ...at, rule: { spec: '-j ACCEPT\n-F INPUT' } }, /^rule\.spec/],
    ['a spec with a NUL', { op: 'append', ...at, rule: { spec: '-j ACCEPT\0' } }, /^rule\.spec/],
    [
      'a comment with a newline',
      { op: 'append', ...at, rule: { spec: '-m comment --comment "a\nCOMMIT" -j ACCEPT' } },
      /^rule\.spec/,
    ],
    [
      'a typed comment with a quote and newline',
      {
        op: 'append',
        ...at,
        rule: { matches: [{ module: 'comment', comment: 'x"\n-F INPUT' }], target: { target: 'ACCEPT' } },
      },
      /^rule\.matches\[0\]/,
    ],
    ['an unknown rule field', { op: 'append', ...at, rule: { protocol: 'tcp', bogus: 1 } }, 'rule.bogus'],
    ['spec mixed with fields', { op: 'append', ...at, rule: { spec: '-j ACCEPT', protocol: 'tcp' } }, 'rule'],
    ['a spec that is not a string', { op: 'append', ...at, rule: { spec: 42 } }, 'rule.spec'],
    ['a rule that is not an object', { op: 'append', ...at, rule: 'x' as never }, 'rule'],
    ['an unknown option', { op: 'append', ...at, rule: { spec: '-j ACCEPT --evil' } }, /^rule\.spec/],
    [
      'a chain with a newline',
      { op: 'append', ...at, chain: 'INPUT\n-F', rule: { spec: '-j ACCEPT' } },
      'chain',
    ],
    [
      'an unknown family',
      { op: 'append', ...at, family: 'ipx' as never, rule: { spec: '-j ACCEPT' } },
      'family',
    ],
    [
      'an unknown table',
      { op: 'append', ...at, table: 'evil' as never, rule: { spec: '-j ACCEPT' } },
      'table',
    ],
    [
      'an ipv6 address in ipv4',
      { op: 'append', ...at, rule: { spec: '-s 2001:db8::1 -j DROP' } },
      /^rule\.spec/,
    ],
    [
      'a newline in a new chain name',
      { op: 'renameChain', ...at, chain: 'EMPTY', newName: 'X\nY' },
      'newName',
    ],
    ['an operation that is not an object', null as never, /operation|^$/],
  ])('refuses %s with invalid_argument naming the field, changing nothing', async (_what, op, field) => {
    const { fake, service } = await startSeeded();
    const before = await kernel(fake, family);
    const e = await expectError(service.apply([op]), 'invalid_argument');
    if (typeof field === 'string') expect(e.field).toBe(field);
    else expect(e.field ?? '').toMatch(field);
    expect(e.message).not.toMatch(/\n/);
    expect(fake.calls.restore).toBe(0);
    expect(await kernel(fake, family)).toBe(before);
    expect(service.revision).toBe(1);
  });

  it('a hostile operation inside a transaction names its index', async () => {
    const { service } = await startSeeded();
    const e = await expectError(
      service.apply([
        { op: 'append', ...at, rule: { spec: '-j ACCEPT' } },
        { op: 'append', ...at, rule: { protocol: 'tcp', bogus: 1 } },
      ]),
      'invalid_argument',
    );
    expect(e.field).toBe('operations[1].rule.bogus');
  });

  it('a job the kernel refuses reports the failing input line', async () => {
    const { service } = await startSeeded();
    const e = await expectError(
      service.apply([{ op: 'append', ...at, rule: { spec: '-j MASQUERADE' } }]),
      'invalid_argument',
    );
    expect(e.details).toMatchObject({ line: 2, input: '-A INPUT -j MASQUERADE' });
  });
});
