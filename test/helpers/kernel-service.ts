/**
 * Helpers for FirewallService tests on a real kernel firewall: per suite, a fresh network
 * namespace, the kernel adapters opened in it (`openKernel({ netns })`: on nf_tables the nft
 * change feed and rule handles, or without them with `useNft: false`), and a started service
 * managing both families. `afterAll` closes the service and deletes the namespace even when
 * tests (or the setup itself) failed.
 *
 * The kernel is read back with `iptables-save` / `ip6tables-save` run inside the namespace by
 * `ip netns exec` — a process independent of the service's executor — so assertions are about
 * what the kernel holds, not what the service believes.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import type { Family, TableName } from '../../src/domain/family.js';
import type { Ruleset } from '../../src/domain/model.js';
import type { Executor, RestoreOptions, SaveOptions } from '../../src/exec/executor.js';
import { type KernelAdapters, openKernel } from '../../src/exec/kernel.js';
import { parseSave } from '../../src/iptables/save-parser.js';
import { FirewallService, type FirewallServiceOptions } from '../../src/service/firewall-service.js';
import { createNetns, type Netns } from './kernel.js';

export interface KernelServiceSetup {
  /** Use the nft change feed and handles when the backend allows. @default true */
  readonly useNft?: boolean;
  /** Without a feed: how often the service compares the kernel with its model (ms). @default 200 */
  readonly pollIntervalMs?: number;
  /** Namespace name prefix. @default 'psvc' */
  readonly prefix?: string;
  readonly queue?: FirewallServiceOptions['queue'];
  /** Told about the service's work (persistence, audit, metrics tests). */
  readonly observer?: FirewallServiceOptions['observer'];
  /** The service's state directory (change journal, pending confirmations, expiries). */
  readonly stateDir?: string;
  /** How long the service waits for the feed to report its own commits (ms). @default the service's */
  readonly feedTimeoutMs?: number;
}

/** Counts what the service's executor was asked to do. */
export interface ExecutorCalls {
  restore: number;
  save: number;
  /** Each restore's family, text and what came of it (`ok`, or the error the executor threw). */
  readonly restores: { family: Family; text: string; outcome?: string }[];
}

export interface KernelService {
  readonly ns: Netns;
  readonly adapters: KernelAdapters;
  readonly service: FirewallService;
  readonly calls: ExecutorCalls;
  /**
   * `iptables-save` / `ip6tables-save` inside the namespace (no counters unless asked), without
   * its `# Generated/Completed ... on <date>` comment lines, so two saves of the same ruleset
   * are byte-identical.
   */
  save(family: Family, options?: { table?: TableName; counters?: boolean }): Promise<string>;
  /** The kernel's ruleset as the production parser reads it. */
  kernelRuleset(family: Family): Promise<Ruleset>;
  /** `iptables` / `ip6tables` with `args` inside the namespace, as another process would; throws on failure. */
  iptables(family: Family, args: readonly string[]): Promise<void>;
  /** `iptables-restore --noflush` / `ip6tables-restore --noflush` of `text` inside the namespace, as another process would. */
  externalRestore(family: Family, text: string): Promise<void>;
  /** The `-A CHAIN` rule texts of one chain in the kernel, in order. */
  kernelRules(family: Family, chain: string, table?: TableName): Promise<string[]>;
  /**
   * Sends `count` UDP datagrams to the loopback address (127.0.0.1 / ::1) port `port` inside the
   * namespace, so rules count real packets. (ip6tables-nft 1.8.9 ignores `-c` and restore
   * `--counters`: counters cannot be set on ipv6 rules, only earned.)
   */
  sendUdp(family: Family, count: number, port?: number): Promise<void>;
}

const SAVE: Readonly<Record<Family, string>> = { ipv4: 'iptables-save', ipv6: 'ip6tables-save' };
const IPTABLES: Readonly<Record<Family, string>> = { ipv4: 'iptables', ipv6: 'ip6tables' };

/** An executor that counts calls and records restore texts, passing everything through. */
function counting(inner: Executor, calls: ExecutorCalls): Executor {
  return {
    save: (family: Family, options?: SaveOptions) => {
      calls.save++;
      return inner.save(family, options);
    },
    restore: (family: Family, text: string, options?: RestoreOptions) => {
      calls.restore++;
      const call: { family: Family; text: string; outcome?: string } = { family, text };
      calls.restores.push(call);
      return inner.restore(family, text, options).then(
        (result) => {
          call.outcome = 'ok';
          return result;
        },
        (error: unknown) => {
          const e = error as { message?: string; stderr?: string };
          call.outcome = `failed: ${(e.stderr ?? '').trim() || e.message}`;
          throw error;
        },
      );
    },
    info: (family: Family) => inner.info(family),
    listRules: (family, table, chain, options) => inner.listRules(family, table, chain, options),
  };
}

/** Opens a namespace, the kernel adapters and a started service (both families). Cleans up on failure. */
export async function startKernelService(setup: KernelServiceSetup = {}): Promise<KernelService> {
  const ns = await createNetns(setup.prefix ?? 'psvc');
  let service: FirewallService | undefined;
  try {
    const adapters = await openKernel({
      netns: ns.name,
      ...(setup.useNft === false ? { useNft: false } : {}),
    });
    const calls: ExecutorCalls = { restore: 0, save: 0, restores: [] };
    service = new FirewallService({
      executor: counting(adapters.executor, calls),
      ...(adapters.feed ? { feed: adapters.feed } : {}),
      ...(adapters.handles ? { handles: adapters.handles } : {}),
      families: ['ipv4', 'ipv6'],
      pollIntervalMs: setup.pollIntervalMs ?? 200,
      ...(setup.queue ? { queue: setup.queue } : {}),
      ...(setup.observer ? { observer: setup.observer } : {}),
      ...(setup.stateDir ? { stateDir: setup.stateDir } : {}),
      ...(setup.feedTimeoutMs !== undefined ? { feedTimeoutMs: setup.feedTimeoutMs } : {}),
    });
    await service.start();
    // The nft feed goes live beside the start (kernel-sync.ts); tests want it, and the handles
    // its first re-read learns, in place before they begin.
    if (adapters.feed) {
      for (let i = 0; i < 600 && service.status().watch !== 'nft-monitor' && !service.status().feedLost; i++)
        await new Promise((r) => setTimeout(r, 50));
      await service.reload();
    }
    const save = async (family: Family, options: { table?: TableName; counters?: boolean } = {}) => {
      const argv = [SAVE[family]];
      if (options.table) argv.push('-t', options.table);
      if (options.counters) argv.push('-c');
      const r = await ns.exec(argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`);
      return r.stdout
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n');
    };
    const svc = service;
    return {
      ns,
      adapters,
      service: svc,
      calls,
      save,
      kernelRuleset: async (family) => parseSave(await save(family), family),
      iptables: async (family, args) => {
        const r = await ns.exec([IPTABLES[family], '-w', ...args]);
        if (r.code !== 0)
          throw new Error(
            `${IPTABLES[family]} ${args.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`,
          );
      },
      externalRestore: async (family, text) => {
        const argv = [`${IPTABLES[family]}-restore`, '-w', '--noflush'];
        const r = await ns.exec(argv, text);
        if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`);
      },
      sendUdp: async (family, count, port = 9) => {
        const address = family === 'ipv4' ? '127.0.0.1' : '::1';
        const script = `
          const s = require('node:dgram').createSocket(${JSON.stringify(family === 'ipv4' ? 'udp4' : 'udp6')});
          let left = ${Math.max(0, Math.min(1000, Math.floor(count)))};
          const next = () => left-- > 0 ? s.send('x', ${port}, ${JSON.stringify(address)}, next) : s.close();
          next();`;
        const r = await ns.exec([process.execPath, '-e', script]);
        if (r.code !== 0) throw new Error(`sending UDP in ${ns.name} failed: ${r.stderr.trim()}`);
      },
      kernelRules: async (family, chain, table = 'filter') => {
        const prefix = `-A ${chain} `;
        return (await save(family, { table }))
          .split('\n')
          .filter((l) => l.startsWith(prefix))
          .map((l) => l.slice(prefix.length));
      },
    };
  } catch (err) {
    await service?.close().catch(() => undefined);
    await ns.destroy();
    throw err;
  }
}

/** Closes the service, then deletes the namespace (even when closing failed). */
export async function stopKernelService(k: KernelService | undefined): Promise<void> {
  if (!k) return;
  try {
    await k.service.close();
  } finally {
    await k.ns.destroy();
  }
}

/**
 * For vitest: a kernel service per suite (created in `beforeAll`, closed and its namespace
 * deleted in `afterAll`). Call inside a `describeKernel` body; use the getter in tests.
 */
export function useKernelService(setup: KernelServiceSetup = {}): () => KernelService {
  let k: KernelService | undefined;
  beforeAll(async () => {
    k = await startKernelService(setup);
  });
  afterAll(async () => {
    const current = k;
    k = undefined;
    await stopKernelService(current);
  });
  return () => {
    if (k === undefined) throw new Error('useKernelService(): the service exists only while the suite runs');
    return k;
  };
}

/** Tables in name order, so rulesets compare regardless of the order iptables-save prints tables in. */
export function sortedTables(ruleset: Ruleset): Ruleset {
  return {
    ...ruleset,
    tables: [...ruleset.tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}

/** Asserts that the service's model of each family equals what the kernel holds now. */
export async function expectModelMatchesKernel(
  k: KernelService,
  families: readonly Family[] = ['ipv4', 'ipv6'],
): Promise<void> {
  for (const family of families) {
    const kernel = sortedTables(await k.kernelRuleset(family));
    const model = sortedTables(k.service.getRuleset(family).ruleset);
    expect(model, `model of ${family} equals the kernel`).toEqual(kernel);
  }
}

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. Bounded. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  ms = 5000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until the model equals the kernel (after an external change the service re-reads it). */
export async function settled(k: KernelService, ms = 5000): Promise<void> {
  await waitFor(
    'model equals the kernel',
    async () => {
      for (const family of ['ipv4', 'ipv6'] as const) {
        const kernel = JSON.stringify(sortedTables(await k.kernelRuleset(family)));
        const model = JSON.stringify(sortedTables(k.service.getRuleset(family).ruleset));
        if (kernel !== model) return undefined;
      }
      return true;
    },
    ms,
    50,
  );
}
