/**
 * Opens the kernel adapters for one network namespace (or the host's): the
 * iptables executor always, and on the nf_tables backend with `nft` present
 * the change feed and rule handles that make deletes fast and race-free and
 * external changes visible at once. On legacy (or without nft) the service
 * falls back to deletes by spec and a periodic check.
 */
import { spawnSync } from 'node:child_process';
import type { Family } from '../domain/family.js';
import { ChildProcessExecutor, type ChildProcessExecutorOptions } from './child-process-executor.js';
import type { BackendInfo, ChangeFeed, Executor, RuleHandles } from './executor.js';
import { NftRuleHandles } from './nft-handles.js';
import { NftChangeFeed } from './nft-monitor.js';

export interface KernelAdapters {
  readonly executor: Executor;
  /** What the probe family's iptables program reported (`iptables --version`). */
  readonly backend: BackendInfo;
  /** Present on nf_tables when `nft` is installed. */
  readonly feed?: ChangeFeed;
  readonly handles?: RuleHandles;
  /** Why feed and handles are absent, when they are. */
  readonly degraded?: string;
  /**
   * The other iptables backend, read only: iptables-legacy when the main one is nf_tables and
   * the other way round, when its programs are installed. The kernel filters packets through
   * the tables of both, so rules there must be seen (see the service's kernel sync).
   */
  readonly other?: { readonly backend: BackendInfo['backend']; readonly executor: Executor };
}

export interface OpenKernelOptions extends ChildProcessExecutorOptions {
  /** Use the nft feed and handles when possible. @default true */
  readonly useNft?: boolean;
  /** The family whose iptables program is asked for its version and backend. @default 'ipv4' */
  readonly probeFamily?: Family;
}

function nftAvailable(): boolean {
  const r = spawnSync('nft', ['--version'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0;
}

function installed(program: string): boolean {
  const r = spawnSync(program, ['--version'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0;
}

/** An executor for the other backend's save programs (legacy next to nf_tables, and the reverse). */
function otherBackend(
  main: BackendInfo['backend'],
  options: OpenKernelOptions,
): KernelAdapters['other'] | undefined {
  const backend = main === 'nf_tables' ? 'legacy' : 'nf_tables';
  const suffix = backend === 'legacy' ? 'legacy' : 'nft';
  if (!installed(`iptables-${suffix}-save`)) return undefined;
  const programs = (p: 'iptables' | 'ip6tables') => ({
    save: `${p}-${suffix}-save`,
    restore: `${p}-${suffix}-restore`,
    cli: `${p}-${suffix}`,
  });
  const { binaries: _, ...rest } = options;
  return {
    backend,
    executor: new ChildProcessExecutor({
      ...rest,
      binaries: { ipv4: programs('iptables'), ipv6: programs('ip6tables') },
    }),
  };
}

export async function openKernel(options: OpenKernelOptions = {}): Promise<KernelAdapters> {
  const { probeFamily = 'ipv4', ...executorOptions } = options;
  const probe = new ChildProcessExecutor(executorOptions);
  const backend = await probe.info(probeFamily);
  // On nf_tables batches go through one long-lived iptables-restore (restore-session.ts) unless
  // turned off; never on legacy, where that process would hold the xtables lock.
  const executor =
    backend.backend === 'nf_tables' && options.longLivedRestore !== false && installed('stdbuf')
      ? new ChildProcessExecutor({ ...executorOptions, longLivedRestore: true })
      : probe;
  const netns = options.netns === undefined ? {} : { netns: options.netns };
  const other = otherBackend(backend.backend, executorOptions);
  const base = { executor, backend, ...(other ? { other } : {}) };
  if (options.useNft === false) return { ...base, degraded: 'nft use disabled by configuration' };
  if (backend.backend !== 'nf_tables') {
    return {
      ...base,
      degraded: 'the legacy iptables backend has no change feed: external changes are polled',
    };
  }
  if (!nftAvailable()) {
    return {
      ...base,
      degraded:
        'nft is not installed (Debian package nftables): deletes go by spec, external changes are polled',
    };
  }
  // Listing a table's handles takes seconds at 50k rules (nft prints rule by rule): allow for it.
  return {
    ...base,
    feed: new NftChangeFeed(netns),
    handles: new NftRuleHandles({ ...netns, timeoutMs: 120_000 }),
  };
}
