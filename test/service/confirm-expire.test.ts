/**
 * Commit-confirmed changes and expiring rules (pending.ts, deferred.ts) on the fake kernel:
 * a change applied with confirmWithin rolls its own diff back at the deadline unless
 * confirmed, keeps other clients' changes, survives an abandoned process; a rule with a TTL
 * is deleted when due, shows its expiry in reads, and is not expired twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import type { GuardConfig } from '../../src/service/guard.js';
import type { Operation } from '../../src/service/operations.js';
import { kernelRules } from '../helpers/service.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pcl-confirm-'));
  dirs.push(d);
  return d;
}

async function start(fake: FakeExecutor, dir: string | undefined, guard?: GuardConfig) {
  const s = new FirewallService({
    executor: fake,
    pollIntervalMs: 0,
    families: ['ipv4'],
    ...(dir ? { stateDir: dir } : {}),
    ...(guard ? { guard } : {}),
  });
  await s.start();
  return s;
}

const input = { family: 'ipv4' as const, table: 'filter' as const, chain: 'INPUT' };
const append = (spec: string, extra: object = {}): Operation => ({
  op: 'append',
  ...input,
  rule: { spec },
  ...extra,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function policy(fake: FakeExecutor): Promise<string> {
  return /^:INPUT (\S+)/m.exec(await fake.save('ipv4'))?.[1] ?? 'missing';
}

/** Waits (bounded) until `cond` holds: the observation is retried, not the assertion. */
async function until(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(50);
  }
}

async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DomainError);
  return e as DomainError;
}

describe('commit-confirmed', () => {
  it('answers with an id and a deadline, lists it, and a confirmed change stays past its deadline', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    const r = await s.apply(
      [append('-p tcp -m tcp --dport 80 -j ACCEPT'), { op: 'setPolicy', ...input, policy: 'DROP' }],
      {
        confirmWithin: 1,
      },
    );
    expect(r.confirmation?.id).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.parse(r.confirmation?.deadline ?? '') - Date.now()).toBeLessThanOrEqual(1000);
    expect(s.listConfirmations().map((c) => c.id)).toEqual([r.confirmation?.id]);
    await s.confirm(r.confirmation?.id ?? '');
    expect(s.listConfirmations()).toEqual([]);
    await sleep(1300);
    expect(await policy(fake)).toBe('DROP');
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual(['-p tcp -m tcp --dport 80 -j ACCEPT']);
    await refusal(s.confirm(r.confirmation?.id ?? ''));
    await s.close();
  });

  it('rolls back its own diff at the deadline, keeping what other clients changed meanwhile', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    await s.apply([append('-s 192.0.2.1/32 -j ACCEPT')]);
    const events: string[] = [];
    s.subscribe((e) => events.push(`${e.client}:${e.changes.map((c) => c.type).join(',')}`));
    await s.apply(
      [append('-p tcp -m tcp --dport 80 -j ACCEPT'), { op: 'setPolicy', ...input, policy: 'DROP' }],
      {
        confirmWithin: 1,
      },
    );
    await s.apply([append('-s 192.0.2.2/32 -j ACCEPT')]);
    await until(async () => events.some((e) => e.startsWith('rollback:')));
    expect(await policy(fake)).toBe('ACCEPT');
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([
      '-s 192.0.2.1/32 -j ACCEPT',
      '-s 192.0.2.2/32 -j ACCEPT',
    ]);
    expect(s.listConfirmations()).toEqual([]);
    expect(events.at(-1)).toBe('rollback:policy.set,rule.deleted');
    expect((await s.getChain('ipv4', 'filter', 'INPUT')).chain.policy).toBe('ACCEPT');
    await s.close();
  });

  it('cancel rolls back now; extend moves the deadline', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    const a = await s.apply([append('-p udp -m udp --dport 53 -j ACCEPT')], { confirmWithin: 60 });
    const report = await s.cancelConfirmation(a.confirmation?.id ?? '');
    expect(report.skipped).toEqual([]);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([]);
    const b = await s.apply([append('-p udp -m udp --dport 123 -j ACCEPT')], { confirmWithin: 1 });
    const extended = await s.extendConfirmation(b.confirmation?.id ?? '', 60);
    expect(Date.parse(extended.deadline) - Date.now()).toBeGreaterThan(50_000);
    await sleep(1300);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual(['-p udp -m udp --dport 123 -j ACCEPT']);
    await s.close();
  });

  it('undoes what still applies when another client already removed part of the change', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    const a = await s.apply(
      [append('-p tcp -m tcp --dport 80 -j ACCEPT'), { op: 'setPolicy', ...input, policy: 'DROP' }],
      {
        confirmWithin: 60,
      },
    );
    await s.apply([
      { op: 'delete', ...input, target: { rule: { spec: '-p tcp -m tcp --dport 80 -j ACCEPT' } } },
    ]);
    const report = await s.cancelConfirmation(a.confirmation?.id ?? '');
    expect(report.skipped).toHaveLength(1);
    expect(await policy(fake)).toBe('ACCEPT');
    await s.close();
  });

  it('accepts a change the lockout guard refuses when it carries confirmWithin, and names the cut paths', async () => {
    const fake = new FakeExecutor();
    const guard: GuardConfig = { sshPorts: [22], sshSources: [], apiPorts: [], adminSources: [] };
    const s = await start(fake, stateDir(), guard);
    await refusal(s.apply([{ op: 'setPolicy', ...input, policy: 'DROP' }]));
    const r = await s.apply([{ op: 'setPolicy', ...input, policy: 'DROP' }], { confirmWithin: 1 });
    expect(r.confirmation?.lockouts.map((l) => l.path)).toContain('ssh tcp/22 NEW from anywhere (ipv4)');
    expect(await policy(fake)).toBe('DROP');
    // The rollback itself is never refused by the guard.
    await until(async () => (await policy(fake)) === 'ACCEPT');
    expect(await policy(fake)).toBe('ACCEPT');
    await s.close();
  });

  it('survives a service that was down at the deadline: the next start rolls back before it is ready', async () => {
    const fake = new FakeExecutor();
    const dir = stateDir();
    const first = await start(fake, dir);
    await first.apply([{ op: 'setPolicy', ...input, policy: 'DROP' }], { confirmWithin: 1 });
    // The service is down at the deadline (its timers went with it; the record stays on disk).
    await first.close();
    await sleep(1100);
    const second = await start(fake, dir);
    expect(second.status().ready).toBe(true);
    expect(await policy(fake)).toBe('ACCEPT');
    expect(second.listConfirmations()).toEqual([]);
    await second.close();
  });

  it('needs a state directory and a window from 1 s to a day', async () => {
    const s = await start(new FakeExecutor(), undefined);
    expect((await refusal(s.apply([append('-j ACCEPT')], { confirmWithin: 5 }))).code).toBe(
      'failed_precondition',
    );
    const s2 = await start(new FakeExecutor(), stateDir());
    expect((await refusal(s2.apply([append('-j ACCEPT')], { confirmWithin: 0 }))).field).toBe(
      'confirmWithin',
    );
    expect((await refusal(s2.apply([append('-j ACCEPT')], { confirmWithin: 86_401 }))).field).toBe(
      'confirmWithin',
    );
    expect((await refusal(s2.confirm('nope'))).code).toBe('invalid_argument');
    expect((await refusal(s2.confirm('0123456789abcdef'))).code).toBe('not_found');
    await s.close();
    await s2.close();
  });
});

describe('expiring rules', () => {
  it('deletes a rule when its TTL is up, shows the expiry in reads, and keeps rules without one', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    await s.apply([
      append('-s 203.0.113.5/32 -j DROP', { ttlSeconds: 1 }),
      append('-s 203.0.113.6/32 -j DROP'),
    ]);
    const rules = (await s.getChain('ipv4', 'filter', 'INPUT')).chain.rules;
    expect(rules[0]?.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(rules[1]?.expiresAt).toBeUndefined();
    const events: string[] = [];
    s.subscribe((e) => events.push(`${e.client}`));
    // The kernel changes a moment before the model commits and the event goes out: wait for both.
    await until(async () => (await kernelRules(fake, 'ipv4', 'INPUT')).length === 1 && events.length > 0);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual(['-s 203.0.113.6/32 -j DROP']);
    expect(events).toEqual(['expiry']);
    await s.close();
  });

  it('batches expiries that fall due together', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    await s.apply(
      Array.from({ length: 20 }, (_, i) => append(`-s 203.0.113.${i + 1}/32 -j DROP`, { ttlSeconds: 1 })),
    );
    const restores = fake.restores.length;
    await until(async () => (await kernelRules(fake, 'ipv4', 'INPUT')).length === 0);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([]);
    // Twenty deletes, far fewer kernel transactions (each journaled: a change plus its marker clean-up).
    expect(fake.restores.length - restores).toBeLessThanOrEqual(8);
    await s.close();
  });

  it('does not expire a rule twice: one removed meanwhile is left alone, and the record goes', async () => {
    const fake = new FakeExecutor();
    const s = await start(fake, stateDir());
    await s.apply([append('-s 203.0.113.5/32 -j DROP', { ttlSeconds: 1 })]);
    await s.apply([{ op: 'delete', ...input, target: { rule: { spec: '-s 203.0.113.5/32 -j DROP' } } }]);
    await s.apply([append('-s 203.0.113.9/32 -j DROP')]);
    await sleep(1300);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual(['-s 203.0.113.9/32 -j DROP']);
    await s.close();
  });

  it('never picks an expiry twice while its delete is under way (an identical rule that is not due stays)', async () => {
    const fake = new FakeExecutor();
    // Batches of 4: the first batch's settle re-arms the timer while the rest are still queued.
    const s = new FirewallService({
      executor: fake,
      pollIntervalMs: 0,
      families: ['ipv4'],
      stateDir: stateDir(),
      queue: { maxBatch: 4 },
    });
    await s.start();
    const specs = Array.from({ length: 12 }, (_, i) => `-s 192.0.2.${i + 1}/32 -j DROP`);
    await s.apply(specs.map((spec) => append(spec, { ttlSeconds: 1 })));
    // A second copy of the last one, without an expiry: it must outlive the first.
    await s.apply([append(specs[11] as string)]);
    await until(async () => (await kernelRules(fake, 'ipv4', 'INPUT')).length <= 1);
    await sleep(300);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([specs[11]]);
    await s.close();
  });

  it('survives a restart', async () => {
    const fake = new FakeExecutor();
    const dir = stateDir();
    const first = await start(fake, dir);
    await first.apply([append('-s 203.0.113.5/32 -j DROP', { ttlSeconds: 1 })]);
    await first.close();
    await sleep(1100);
    const second = await start(fake, dir);
    expect(await kernelRules(fake, 'ipv4', 'INPUT')).toEqual([]);
    await second.close();
  });

  it('refuses a TTL out of range, an expiry in the past, and both at once', async () => {
    const s = await start(new FakeExecutor(), stateDir());
    expect((await refusal(s.apply([append('-j ACCEPT', { ttlSeconds: 0 })]))).field).toBe('ttlSeconds');
    expect((await refusal(s.apply([append('-j ACCEPT', { expiresAt: '2001-01-01T00:00:00Z' })]))).field).toBe(
      'expiresAt',
    );
    expect((await refusal(s.apply([append('-j ACCEPT', { expiresAt: 'tomorrow' })]))).field).toBe(
      'expiresAt',
    );
    expect(
      (await refusal(s.apply([append('-j ACCEPT', { ttlSeconds: 5, expiresAt: '2099-01-01T00:00:00Z' })])))
        .field,
    ).toBe('expiresAt');
    const noDir = await start(new FakeExecutor(), undefined);
    expect((await refusal(noDir.apply([append('-j ACCEPT', { ttlSeconds: 5 })]))).code).toBe(
      'failed_precondition',
    );
    await s.close();
    await noDir.close();
  });
});
