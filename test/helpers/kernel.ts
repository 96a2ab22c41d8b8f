/**
 * Helpers for tests that touch a kernel firewall. Such tests never run in the machine's
 * own network namespace: each suite creates its own (`ip netns add ptest-<pid>-<random>`)
 * and deletes it afterwards, even when tests fail.
 *
 * Availability is decided once, synchronously, when this module loads, so that
 * `describeKernel` can choose at collection time between running, skipping (with the reason
 * printed) and failing (when CI or PORTCULLIS_REQUIRE_KERNEL=1 demands kernel tests).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type CommandResult, runCommand } from '../../src/sandbox/command.js';

const COMMAND_TIMEOUT_MS = 30_000;

function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function runSync(argv: readonly string[]): { ok: boolean; detail: string } {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000, env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) return { ok: false, detail: `${argv.join(' ')}: ${r.error.message}` };
  if (r.status !== 0) {
    return { ok: false, detail: `${argv.join(' ')} exited with ${String(r.status)}: ${r.stderr.trim()}` };
  }
  return { ok: true, detail: '' };
}

function probe(): { available: boolean; reason?: string } {
  if (process.platform !== 'linux')
    return { available: false, reason: `kernel tests need Linux, not ${process.platform}` };
  if (process.getuid?.() !== 0)
    return { available: false, reason: 'kernel tests need root (CAP_NET_ADMIN): run as root' };
  const version = runSync(['iptables-restore', '--version']);
  if (!version.ok) {
    return {
      available: false,
      reason: `iptables-restore is not runnable (install the Debian package iptables): ${version.detail}`,
    };
  }
  const name = uniqueName('ptest-probe');
  const add = runSync(['ip', 'netns', 'add', name]);
  if (!add.ok) {
    return {
      available: false,
      reason: `cannot create a network namespace (need iproute2 and CAP_SYS_ADMIN): ${add.detail}`,
    };
  }
  const del = runSync(['ip', 'netns', 'del', name]);
  if (!del.ok)
    return { available: false, reason: `cannot delete the probe network namespace ${name}: ${del.detail}` };
  return { available: true };
}

/** Whether kernel tests can run here, and if not, why. Computed once at module load. */
export const kernel: { available: boolean; reason?: string } = Object.freeze(probe());

/** Kernel tests must run (and fail when they cannot) in CI or when PORTCULLIS_REQUIRE_KERNEL=1. */
export const kernelRequired: boolean =
  process.env.CI === 'true' || process.env.PORTCULLIS_REQUIRE_KERNEL === '1';

/**
 * `describe` for kernel tests: runs the suite when the kernel is available. Otherwise, when
 * kernel tests are required, registers a test that fails with the reason; else skips the suite
 * and prints the reason.
 */
export function describeKernel(name: string, fn: () => void): void {
  if (kernel.available) {
    describe(name, fn);
    return;
  }
  const reason = kernel.reason ?? 'kernel not available';
  if (kernelRequired) {
    describe(name, () => {
      it('needs a kernel firewall in a network namespace', () => {
        throw new Error(
          `kernel tests are required (CI=true or PORTCULLIS_REQUIRE_KERNEL=1) but cannot run: ${reason}`,
        );
      });
    });
    return;
  }
  console.warn(`[kernel] skipping "${name}": ${reason}`);
  describe.skip(name, fn);
}

export interface Netns {
  name: string;
  /** Run `argv` inside the namespace (`ip netns exec NAME ...`), with optional stdin. */
  exec(argv: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number | null }>;
  /** Delete the namespace. Safe to call twice. */
  destroy(): Promise<void>;
}

function run(argv: readonly string[], input?: string): Promise<CommandResult> {
  return runCommand(argv, { input: input ?? '', timeoutMs: COMMAND_TIMEOUT_MS, rejectOnTimeout: true });
}

/** Creates `ip netns add <prefix>-<pid>-<random>` and brings `lo` up. Registers nothing globally. */
export async function createNetns(prefix = 'ptest'): Promise<Netns> {
  const name = uniqueName(prefix);
  const add = await run(['ip', 'netns', 'add', name]);
  if (add.code !== 0)
    throw new Error(`ip netns add ${name} failed (${String(add.code)}): ${add.stderr.trim()}`);
  let destroyed = false;
  const netns: Netns = {
    name,
    exec: (argv, input) => run(['ip', 'netns', 'exec', name, ...argv], input),
    destroy: async () => {
      if (destroyed) return;
      const del = await run(['ip', 'netns', 'del', name]);
      if (del.code !== 0 && !/No such file or directory/.test(del.stderr)) {
        throw new Error(`ip netns del ${name} failed (${String(del.code)}): ${del.stderr.trim()}`);
      }
      destroyed = true;
    },
  };
  try {
    const lo = await run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    if (lo.code !== 0) throw new Error(`ip -n ${name} link set lo up failed: ${lo.stderr.trim()}`);
  } catch (err) {
    await netns.destroy();
    throw err;
  }
  return netns;
}

/**
 * For vitest: creates a namespace in `beforeAll` and deletes it in `afterAll` (which runs even
 * when tests fail). Call inside a `describe`/`describeKernel` body; use the getter in tests.
 */
export function useNetns(prefix?: string): () => Netns {
  let netns: Netns | undefined;
  beforeAll(async () => {
    netns = await createNetns(prefix);
  });
  afterAll(async () => {
    await netns?.destroy();
    netns = undefined;
  });
  return () => {
    if (netns === undefined)
      throw new Error('useNetns(): the namespace exists only while the suite runs (beforeAll..afterAll)');
    return netns;
  };
}
