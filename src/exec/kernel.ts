/**
 * Opens the kernel adapters for one network namespace (or the host's): the
 * iptables executor always, and on the nf_tables backend with `nft` present
 * the change feed and rule handles that make deletes fast and race-free and
 * external changes visible at once. On legacy (or without nft) the service
 * falls back to deletes by spec and a periodic check.
 */
import { spawnSync } from 'node:child_process';
import { ChildProcessExecutor, type ChildProcessExecutorOptions } from './child-process-executor.js';
import type { BackendInfo, ChangeFeed, Executor, RuleHandles } from './executor.js';
import { NftRuleHandles } from './nft-handles.js';
import { NftChangeFeed } from './nft-monitor.js';

export interface KernelAdapters {
  readonly executor: Executor;
  readonly backend: BackendInfo;
  /** Present on nf_tables when `nft` is installed. */
  readonly feed?: ChangeFeed;
  readonly handles?: RuleHandles;
  /** Why feed and handles are absent, when they are. */
  readonly degraded?: string;
}

export interface OpenKernelOptions extends ChildProcessExecutorOptions {
  /** Use the nft feed and handles when possible. @default true */
  readonly useNft?: boolean;
}

function nftAvailable(): boolean {
  const r = spawnSync('nft', ['--version'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0;
}

export async function openKernel(options: OpenKernelOptions = {}): Promise<KernelAdapters> {
  const executor = new ChildProcessExecutor(options);
  const backend = await executor.info('ipv4');
  const netns = options.netns === undefined ? {} : { netns: options.netns };
  if (options.useNft === false) return { executor, backend, degraded: 'nft use disabled by configuration' };
  if (backend.backend !== 'nf_tables') {
    return {
      executor,
      backend,
      degraded: 'the legacy iptables backend has no change feed: external changes are polled',
    };
  }
  if (!nftAvailable()) {
    return {
      executor,
      backend,
      degraded:
        'nft is not installed (Debian package nftables): deletes go by spec, external changes are polled',
    };
  }
  // Listing a table's handles takes seconds at 50k rules (nft prints rule by rule): allow for it.
  return {
    executor,
    backend,
    feed: new NftChangeFeed(netns),
    handles: new NftRuleHandles({ ...netns, timeoutMs: 120_000 }),
  };
}
