/**
 * The change journal: a change that commits in several parts is journaled with
 * marker chains, cleaned up when it completes or fails, and finished or undone
 * at the next start after a crash (store/change-journal.ts, service/recovery.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import { ChangeJournal } from '../../src/store/change-journal.js';
import { filter, kernelRules } from '../helpers/service.js';

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-journal-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(fake: FakeExecutor, dir: string): Promise<FirewallService> {
  const service = new FirewallService({ executor: fake, pollIntervalMs: 0, stateDir: dir });
  await service.start();
  return service;
}

const both = (spec4: string, spec6: string) =>
  [
    { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: spec4 } },
    { op: 'append', family: 'ipv6', table: 'filter', chain: 'INPUT', rule: { spec: spec6 } },
  ] as const;

describe('the change journal', () => {
  it('journals a change across families with marker chains, and leaves nothing behind', async () => {
    const fake = new FakeExecutor();
    const dir = stateDir();
    const service = await start(fake, dir);
    await service.apply([...both('-p tcp --dport 80 -j ACCEPT', '-p tcp --dport 80 -j ACCEPT')]);
    const restores = fake.restores.map((r) => r.text);
    expect(restores.some((t) => /^-N PCL-TX-[0-9a-f]{8}-0$/m.test(t))).toBe(true);
    expect(restores.some((t) => /^-X PCL-TX-/m.test(t))).toBe(true);
    for (const family of ['ipv4', 'ipv6'] as const) expect(await fake.save(family)).not.toContain('PCL-TX-');
    expect(() => readFileSync(new ChangeJournal(dir).path)).toThrow(/ENOENT/);
    expect(service.getRulesetText('ipv4').text).not.toContain('PCL-TX');
    await service.close();
  });

  it('does not journal a change of one table in one family (the kernel applies it whole)', async () => {
    const fake = new FakeExecutor();
    const service = await start(fake, stateDir());
    await service.apply([
      { op: 'append', family: 'ipv4', table: 'filter', chain: 'INPUT', rule: { spec: '-j ACCEPT' } },
      { op: 'setPolicy', family: 'ipv4', table: 'filter', chain: 'FORWARD', policy: 'DROP' },
    ]);
    expect(fake.restores.map((r) => r.text).join('')).not.toContain('PCL-TX-');
    expect(fake.calls.restore).toBe(1);
    await service.close();
  });

  it('a failing second part: the first is undone with its marker, the journal cleared', async () => {
    const fake = new FakeExecutor();
    const dir = stateDir();
    const service = await start(fake, dir);
    await expect(service.apply([...both('-p tcp --dport 80 -j ACCEPT', '-j NOPE')])).rejects.toMatchObject({
      code: 'not_found',
    });
    for (const family of ['ipv4', 'ipv6'] as const) expect(await fake.save(family)).not.toContain('PCL-TX-');
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([]);
    expect(() => readFileSync(new ChangeJournal(dir).path)).toThrow(/ENOENT/);
    await service.close();
  });

  it('refuses chain names that look like journal markers', async () => {
    const fake = new FakeExecutor();
    const service = await start(fake, stateDir());
    await expect(
      service.apply([{ op: 'createChain', family: 'ipv4', table: 'filter', chain: 'PCL-TX-abc' }]),
    ).rejects.toMatchObject({ code: 'invalid_argument', field: 'chain' });
    await service.close();
  });

  it('removes probe chains a crashed process left behind, before it is ready', async () => {
    const fake = new FakeExecutor();
    await fake.restore(
      'ipv4',
      filter('-N PCL-PROBE-4242', '-A PCL-PROBE-4242 -m string --string "x" --algo bm'),
      {
        noflush: true,
      },
    );
    const service = await start(fake, stateDir());
    expect(await fake.save('ipv4')).not.toContain('PCL-PROBE');
    expect(service.listChains('ipv4', 'filter').chains.map((c) => c.name)).toEqual([
      'INPUT',
      'FORWARD',
      'OUTPUT',
    ]);
    await expect(
      service.apply([{ op: 'createChain', family: 'ipv4', table: 'filter', chain: 'PCL-PROBE-1' }]),
    ).rejects.toMatchObject({ code: 'invalid_argument', field: 'chain' });
    await service.close();
  });

  describe('after a crash between parts', () => {
    const id = 'c0ffee00';
    async function crashed(dir: string, ipv6Committed: boolean, state: 'applying' | 'complete' = 'applying') {
      const fake = new FakeExecutor();
      // The ipv4 part committed (its rule and marker are in the kernel); ipv6 maybe.
      await fake.restore('ipv4', filter(`-N PCL-TX-${id}-0`, '-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT'), {
        noflush: true,
      });
      await fake.restore('ipv6', filter('-A INPUT -p udp -m udp --dport 53 -j ACCEPT'), { noflush: true });
      if (ipv6Committed)
        await fake.restore(
          'ipv6',
          filter(`-N PCL-TX-${id}-0`, '-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT'),
          {
            noflush: true,
          },
        );
      await new ChangeJournal(dir).write({
        id,
        state,
        blocks: [
          {
            family: 'ipv4',
            table: 'filter',
            marker: `PCL-TX-${id}-0`,
            undo: filter('-D INPUT -p tcp -m tcp --dport 80 -j ACCEPT', `-X PCL-TX-${id}-0`),
          },
          {
            family: 'ipv6',
            table: 'filter',
            marker: `PCL-TX-${id}-0`,
            undo: filter('-D INPUT -p tcp -m tcp --dport 80 -j ACCEPT', `-X PCL-TX-${id}-0`),
          },
        ],
      });
      return fake;
    }

    it('a half-applied change is undone before the service is ready', async () => {
      const dir = stateDir();
      const fake = await crashed(dir, false);
      const service = await start(fake, dir);
      expect(service.recovery).toEqual({ outcome: 'undone', id, undone: 1 });
      expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([]);
      expect(await kernelRules(fake, 'ipv6', 'INPUT')).toEqual(['-p udp -m udp --dport 53 -j ACCEPT']);
      for (const family of ['ipv4', 'ipv6'] as const) {
        expect(await fake.save(family)).not.toContain('PCL-TX-');
        expect(service.getRulesetText(family).text).not.toContain('PCL-TX-');
      }
      expect(() => readFileSync(new ChangeJournal(dir).path)).toThrow(/ENOENT/);
      await service.close();
    });

    it('saves taken before the repair (to be ready sooner) are not what the model is read from', async () => {
      const dir = stateDir();
      const fake = await crashed(dir, false);
      const early = new Map((['ipv4', 'ipv6'] as const).map((f) => [f, fake.save(f)]));
      const service = new FirewallService({
        executor: fake,
        pollIntervalMs: 0,
        stateDir: dir,
        firstSaves: early,
      });
      await service.start();
      expect(service.recovery?.outcome).toBe('undone');
      expect(service.getRulesetText('ipv4').text).toBe(await fake.save('ipv4'));
      expect(service.getRulesetText('ipv4').text).not.toContain('PCL-TX-');
      await service.close();
    });

    it('a change whose every part committed is kept whole', async () => {
      const dir = stateDir();
      const fake = await crashed(dir, true);
      const service = await start(fake, dir);
      expect(service.recovery?.outcome).toBe('whole');
      expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual(['-p tcp -m tcp --dport 80 -j ACCEPT']);
      expect(await kernelRules(fake, 'ipv6', 'INPUT')).toEqual([
        '-p udp -m udp --dport 53 -j ACCEPT',
        '-p tcp -m tcp --dport 80 -j ACCEPT',
      ]);
      for (const family of ['ipv4', 'ipv6'] as const)
        expect(await fake.save(family)).not.toContain('PCL-TX-');
      await service.close();
    });

    it('a change marked complete is kept whole even with markers already partly removed', async () => {
      const dir = stateDir();
      const fake = await crashed(dir, false, 'complete');
      const service = await start(fake, dir);
      expect(service.recovery?.outcome).toBe('whole');
      expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual(['-p tcp -m tcp --dport 80 -j ACCEPT']);
      expect(await fake.save('ipv4')).not.toContain('PCL-TX-');
      await service.close();
    });
  });
});
