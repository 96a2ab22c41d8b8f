/**
 * Helpers for FirewallService unit tests: a started service on a FakeExecutor
 * (optionally seeded with restore text), and short ways to read the fake's
 * state and to catch domain errors.
 */
import { expect } from 'vitest';
import { DomainError, type ErrorCode } from '../../src/domain/errors.js';
import type { Family } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import { FakeExecutor } from '../../src/exec/testing/fake-executor.js';
import type { CommandQueueOptions } from '../../src/queue/command-queue.js';
import { FirewallService } from '../../src/service/firewall-service.js';
import type { GuardConfig } from '../../src/service/guard.js';

export interface ServiceSetup {
  /** Restore text per family, applied to the fake (full restore) before the service starts. */
  readonly seed?: Partial<Record<Family, string>>;
  readonly baseline?: ReadonlyMap<Family, Ruleset>;
  readonly families?: readonly Family[];
  readonly queue?: CommandQueueOptions;
  readonly guard?: GuardConfig;
}

export interface ServiceFixture {
  readonly fake: FakeExecutor;
  readonly service: FirewallService;
}

/** A started service (no polling) on a fresh fake; the fake's call log starts empty. */
export async function startService(setup: ServiceSetup = {}): Promise<ServiceFixture> {
  const fake = new FakeExecutor();
  for (const [family, text] of Object.entries(setup.seed ?? {}) as [Family, string][]) {
    await fake.restore(family, text);
  }
  const service = new FirewallService({
    executor: fake,
    pollIntervalMs: 0,
    ...(setup.families ? { families: setup.families } : {}),
    ...(setup.baseline ? { baseline: setup.baseline } : {}),
    ...(setup.guard ? { guard: setup.guard } : {}),
    // The service must never enqueue from inside a batch: have the queue check it in tests.
    queue: { detectReentry: true, ...setup.queue },
  });
  await service.start();
  fake.calls.restore = 0;
  fake.calls.save = 0;
  fake.restores.length = 0;
  return { fake, service };
}

/** A `*filter` block of restore text. */
export function filter(...lines: string[]): string {
  return `*filter\n${lines.join('\n')}\nCOMMIT\n`;
}

/** The fake's save output for a family (what the kernel holds). */
export function kernel(fake: FakeExecutor, family: Family = 'ipv4'): Promise<string> {
  return fake.save(family);
}

/** The `-A CHAIN ...` lines of one chain in the fake's save output, without the `-A CHAIN ` prefix. */
export async function kernelRules(fake: FakeExecutor, family: Family, chain: string, table = 'filter') {
  const text = await fake.save(family, { table: table as never });
  const prefix = `-A ${chain} `;
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** The rejection of `p` (or of calling `fn`) as a DomainError; fails the test if it resolves. */
export async function rejection(p: Promise<unknown> | (() => unknown)): Promise<DomainError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a DomainError, but the call succeeded');
}

/** Expects `p` to fail with `code` (and `field`, when given); returns the error. */
export async function expectError(
  p: Promise<unknown> | (() => unknown),
  code: ErrorCode,
  field?: string | RegExp,
): Promise<DomainError> {
  const e = await rejection(p);
  expect({ code: e.code, message: e.message }).toMatchObject({ code });
  if (field !== undefined) {
    if (typeof field === 'string') expect(e.field).toBe(field);
    else expect(e.field).toMatch(field);
  }
  return e;
}

/** A documentation-range address for `n` (1..255) and its canonical form as iptables-save prints it. */
export function host(family: Family, n: number): { addr: string; canonical: string } {
  return family === 'ipv4'
    ? { addr: `198.51.100.${n}`, canonical: `198.51.100.${n}/32` }
    : { addr: `2001:db8:1::${n.toString(16)}`, canonical: `2001:db8:1::${n.toString(16)}/128` };
}

/**
 * The seed most service tests start from: INPUT with three rules (one jumps to
 * LOG_AND_DROP), LOG_AND_DROP with one rule, and EMPTY with none.
 */
export function seed(family: Family): string {
  const net = family === 'ipv4' ? '192.0.2.0/24' : '2001:db8::/32';
  return filter(
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':LOG_AND_DROP - [0:0]',
    ':EMPTY - [0:0]',
    '-A INPUT -i lo -j ACCEPT',
    '-A INPUT -p tcp -m tcp --dport 22 -j LOG_AND_DROP',
    `-A INPUT -s ${net} -j DROP`,
    '-A LOG_AND_DROP -j DROP',
  );
}

/** The canonical texts of the seed's INPUT rules. */
export function seedInput(family: Family): string[] {
  const net = family === 'ipv4' ? '192.0.2.0/24' : '2001:db8::/32';
  return ['-i lo -j ACCEPT', '-p tcp -m tcp --dport 22 -j LOG_AND_DROP', `-s ${net} -j DROP`];
}

/** A started service on the seed, for one family or both. */
export function startSeeded(families: readonly Family[] = ['ipv4', 'ipv6']): Promise<ServiceFixture> {
  return startService({ seed: Object.fromEntries(families.map((f) => [f, seed(f)])) });
}
