/**
 * Start-up checks before anything listens: the privilege (CAP_NET_ADMIN, not uid 0),
 * the namespace, and the iptables programs (`openKernel` runs `iptables --version`).
 * Every failure is one {@link StartupError} sentence saying what to do; the entry point
 * prints it and exits 1.
 */
import { existsSync } from 'node:fs';
import { CAP_NET_ADMIN, hasCapability } from '../capabilities.js';
import type { Config } from '../config.js';
import { ExecError } from '../exec/executor.js';
import { type KernelAdapters, openKernel } from '../exec/kernel.js';

/** Start-up failed for a reason other than configuration: exit code 1, one sentence. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export const NOT_ROOT =
  'portcullis needs root (CAP_NET_ADMIN) to manage iptables: run it as root, or try it safely with --netns NAME as root.';

function netnsMissing(name: string): string {
  return `network namespace ${name} does not exist: create it with \`ip netns add ${name}\`, or fix --netns.`;
}

/** Checks CAP_NET_ADMIN and the namespace, then opens the kernel adapters (which runs `iptables --version`). */
export async function preflight(config: Config): Promise<KernelAdapters> {
  if (!hasCapability(CAP_NET_ADMIN)) throw new StartupError(NOT_ROOT);
  if (config.netns !== undefined && !existsSync(`/run/netns/${config.netns}`)) {
    throw new StartupError(netnsMissing(config.netns));
  }
  try {
    return await openKernel({
      ...(config.netns === undefined ? {} : { netns: config.netns }),
      probeFamily: config.families[0] ?? 'ipv4',
    });
  } catch (err) {
    if (err instanceof ExecError) {
      if (err.kind === 'binary_missing') {
        const what =
          /\bip\b/.test(err.argv[0] ?? '') && /iproute2/.test(err.message) ? 'iproute2' : 'iptables';
        throw new StartupError(
          `portcullis needs the iptables programs (iptables, iptables-save, iptables-restore), which are not installed: install the Debian package ${what} (apt-get install ${what}).`,
        );
      }
      if (err.kind === 'permission_denied') throw new StartupError(NOT_ROOT);
      if (config.netns !== undefined && /Cannot open network namespace/.test(err.stderr)) {
        throw new StartupError(netnsMissing(config.netns));
      }
      throw new StartupError(`portcullis cannot run iptables: ${err.message.replace(/\.$/, '')}.`);
    }
    throw err;
  }
}
