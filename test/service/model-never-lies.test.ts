/**
 * The model never lies: reproductions of what issue 8 found, on the fake
 * executor (which is as strict as the kernel: test/exec/conformance.test.ts).
 * The same scenarios run on a real kernel in test/service/kernel/model-never-lies.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FAMILIES } from '../../src/domain/family.js';
import { ExecError } from '../../src/exec/executor.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import type { Operation } from '../../src/service/operations.js';
import { filter, kernel, kernelRules, seedInput, startSeeded } from '../helpers/service.js';

describe.each(FAMILIES)('the model never lies (%s)', (family) => {
  it('a policy set and counters zeroed in one transaction: the kernel has the policy', async () => {
    const { fake, service } = await startSeeded([family]);
    await service.apply([
      { op: 'setPolicy', family, table: 'filter', chain: 'INPUT', policy: 'DROP' },
      { op: 'zeroCounters', family, table: 'filter', chain: 'INPUT' },
    ]);
    expect(await kernel(fake, family)).toContain(':INPUT DROP');
    expect(service.getRuleset(family).ruleset.tables[0]?.chains[0]?.policy).toBe('DROP');
  });

  it('a policy and a zero of the whole table, batched from separate requests', async () => {
    const { fake, service } = await startSeeded([family]);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // A slow first job keeps the queue busy so the next two go into one batch.
    const slow = service.apply([{ op: 'createChain', family, table: 'filter', chain: 'SLOW' }]);
    const originalRestore = fake.restore.bind(fake);
    let first = true;
    fake.restore = async (...args) => {
      if (first) {
        first = false;
        await gate;
      }
      return originalRestore(...args);
    };
    await new Promise((r) => setTimeout(r, 10));
    const policy = service.apply([
      { op: 'setPolicy', family, table: 'filter', chain: 'FORWARD', policy: 'DROP' },
    ]);
    const zero = service.apply([{ op: 'zeroCounters', family, table: 'filter' }]);
    release();
    await Promise.all([slow, policy, zero]);
    expect(fake.calls.restore).toBe(2);
    expect(await kernel(fake, family)).toContain(':FORWARD DROP');
  });

  it('create and rename of the same chain in one transaction works', async () => {
    const { fake, service } = await startSeeded([family]);
    const r = await service.apply([
      { op: 'createChain', family, table: 'filter', chain: 'NEWC' },
      { op: 'append', family, table: 'filter', chain: 'NEWC', rule: { spec: '-j ACCEPT' } },
      { op: 'renameChain', family, table: 'filter', chain: 'NEWC', newName: 'REN' },
      { op: 'append', family, table: 'filter', chain: 'INPUT', rule: { spec: '-j REN' } },
    ]);
    expect(r.revision).toBeGreaterThan(1);
    const text = await kernel(fake, family);
    expect(text).toContain(':REN - ');
    expect(text).not.toContain('NEWC');
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([...seedInput(family), '-j REN']);
    expect(service.getRulesetText(family).text).toBe(text.replace(/^#.*\n/gm, ''));
  });

  /** A transaction whose filter part commits and whose nat part jumps to GONE (which another process removed). */
  const filterThenGone: Operation[] = [
    { op: 'append', family, table: 'filter', chain: 'INPUT', rule: { spec: '-p tcp --dport 80 -j ACCEPT' } },
    { op: 'append', family, table: 'nat', chain: 'PREROUTING', rule: { spec: '-j GONE' } },
  ];

  it('a failed multi-table transaction puts back only its own changes', async () => {
    const { fake, service } = await startSeeded([family]);
    // Another process adds rules the model has not seen yet (no change feed here).
    await fake.restore(family, filter('-A INPUT -p udp -m udp --dport 53 -j ACCEPT'), { noflush: true });
    await fake.restore(family, '*nat\n:GONE - [0:0]\nCOMMIT\n', { noflush: true });
    await service.reload();
    await fake.restore(family, filter('-A INPUT -p udp -m udp --dport 54 -j ACCEPT'), { noflush: true });
    // ...and deletes the nat chain the transaction's second part jumps to.
    await fake.restore(family, '*nat\n-X GONE\nCOMMIT\n', { noflush: true });
    await expect(service.apply(filterThenGone)).rejects.toMatchObject({ code: 'not_found' });
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([
      ...seedInput(family),
      '-p udp -m udp --dport 53 -j ACCEPT',
      '-p udp -m udp --dport 54 -j ACCEPT',
    ]);
  });

  // What the service reads must be the kernel as soon as a failed change's error reaches the
  // caller, not after a re-read queued behind it: a client that reads right after an error
  // acts on what it reads (the differential test, under CPU load, read the model in between).
  // The fake's reads are made to take a little time, as the kernel's do, so that a re-read left
  // for later is still under way when the error arrives.
  const modelIsKernel = async (
    fake: Parameters<typeof kernel>[0],
    service: { getRulesetText: (f: typeof family) => { text: string } },
  ) => expect(service.getRulesetText(family).text).toBe((await kernel(fake, family)).replace(/^#.*\n/gm, ''));
  const slowSaves = (fake: Parameters<typeof kernel>[0]) => {
    const save = fake.save.bind(fake);
    fake.save = async (...args) => {
      await new Promise((r) => setTimeout(r, 30));
      return save(...args);
    };
  };

  it('a refusal because another process removed a chain: the model shows the kernel when the error returns', async () => {
    const { fake, service } = await startSeeded([family]);
    await fake.restore(family, filter(':GONE - [0:0]'), { noflush: true });
    await service.reload();
    await fake.restore(family, filter('-X GONE'), { noflush: true });
    slowSaves(fake);
    await expect(
      service.apply([{ op: 'append', family, table: 'filter', chain: 'INPUT', rule: { spec: '-j GONE' } }]),
    ).rejects.toMatchObject({ code: 'not_found' });
    await modelIsKernel(fake, service);
  });

  it('a failed transaction whose undo fails too: the model shows the kernel when the error returns', async () => {
    const { fake, service } = await startSeeded([family]);
    await fake.restore(family, '*nat\n:GONE - [0:0]\nCOMMIT\n', { noflush: true });
    await service.reload();
    await fake.restore(family, '*nat\n-X GONE\nCOMMIT\n', { noflush: true });
    slowSaves(fake);
    // The undo of the committed filter part (its first line deletes the rule added) fails.
    fake.failNextRestore(
      new ExecError({
        kind: 'failed',
        message: 'iptables-restore: line 2 failed',
        argv: [],
        exitCode: 4,
        stderr: 'iptables-restore: line 2 failed',
        line: 2,
      }),
      (call) => call.text.startsWith('*filter\n-D INPUT'),
    );
    await expect(service.apply(filterThenGone)).rejects.toMatchObject({ code: 'not_found' });
    // The filter part stayed in the kernel (its undo failed): the model says so.
    expect(await kernelRules(fake, family, 'INPUT')).toEqual([
      ...seedInput(family),
      '-p tcp -m tcp --dport 80 -j ACCEPT',
    ]);
    await modelIsKernel(fake, service);
  });

  it('a failed multi-family transaction puts back only its own changes', async () => {
    if (family === 'ipv6') return;
    const { fake, service } = await startSeeded(['ipv4', 'ipv6']);
    await fake.restore('ipv4', filter('-A INPUT -p udp -m udp --dport 53 -j ACCEPT'), { noflush: true });
    await fake.restore('ipv6', filter('-X EMPTY'), { noflush: true });
    await expect(
      service.apply([
        {
          op: 'append',
          family: 'ipv4',
          table: 'filter',
          chain: 'INPUT',
          rule: { spec: '-p tcp --dport 80 -j ACCEPT' },
        },
        { op: 'append', family: 'ipv6', table: 'filter', chain: 'INPUT', rule: { spec: '-j EMPTY' } },
      ]),
    ).rejects.toMatchObject({ code: 'not_found' });
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([
      ...seedInput('ipv4'),
      '-p udp -m udp --dport 53 -j ACCEPT',
    ]);
    // And the model is re-read, so it shows what the kernel has.
    await service.reload();
    expect(service.getRulesetText('ipv4').text).toBe((await kernel(fake, 'ipv4')).replace(/^#.*\n/gm, ''));
    expect(parseSave(await kernel(fake, 'ipv6'), 'ipv6').tables[0]?.chains.map((c) => c.name)).not.toContain(
      'EMPTY',
    );
  });
});
