/**
 * Throwaway network namespaces joined by veth pairs: the hosts of `npm run demo`
 * (src/demo.ts) and of the end-to-end tests (test/e2e/topology.ts), built one way.
 * Nothing here touches the machine's own namespace: a veth pair is created inside
 * one of the namespaces with its peer moved straight into the other, so no link
 * name ever exists on the host.
 *
 * Who owns what: a Namespaces object owns the namespaces it added, and only those;
 * `destroy()` deletes them (newest first) and is safe after a partial setup or twice.
 */
import { mustRun, runCommand } from './command.js';

/** One end of a veth link. */
export interface LinkEnd {
  readonly netns: string;
  /** The interface name inside `netns`. */
  readonly dev: string;
  /** Addresses with prefix length (`192.0.2.1/30`, `2001:db8:1::1/64`). IPv6 ones are added without DAD. */
  readonly addresses: readonly string[];
}

export interface LinkOptions {
  /**
   * Pin each end's neighbour entries for the other end's addresses (`nud permanent`), so
   * that reachability does not depend on neighbour discovery (which a DROP policy may drop).
   * @default false
   */
  readonly pinNeighbours?: boolean;
}

export interface NetnsOptions {
  /** Turn off IPv6 duplicate address detection in the namespace (addresses usable at once). @default false */
  readonly noDad?: boolean;
}

export class Namespaces {
  readonly #names: string[] = [];

  /** The namespaces created so far, oldest first. */
  get names(): readonly string[] {
    return [...this.#names];
  }

  /** Creates namespace `name` with `lo` up. */
  async add(name: string, options: NetnsOptions = {}): Promise<string> {
    await mustRun(['ip', 'netns', 'add', name]);
    this.#names.push(name);
    await mustRun(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    if (options.noDad) {
      // Addresses usable at once, and no router solicitations or other chatter to wait for.
      await mustRun(['ip', 'netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0']);
      await mustRun([
        'ip',
        'netns',
        'exec',
        name,
        'sysctl',
        '-q',
        '-w',
        'net.ipv6.conf.default.accept_dad=0',
      ]);
    }
    return name;
  }

  /** Joins two namespaces with a veth pair, adds the addresses and brings both ends up. */
  async link(a: LinkEnd, b: LinkEnd, options: LinkOptions = {}): Promise<void> {
    // Created inside a's namespace, its peer moved into b's: no name exists on the host.
    await mustRun([
      'ip',
      '-n',
      a.netns,
      'link',
      'add',
      a.dev,
      'type',
      'veth',
      'peer',
      'name',
      b.dev,
      'netns',
      b.netns,
    ]);
    for (const end of [a, b]) {
      for (const address of end.addresses) {
        const nodad = address.includes(':') ? ['nodad'] : [];
        await mustRun(['ip', '-n', end.netns, 'addr', 'add', address, 'dev', end.dev, ...nodad]);
      }
    }
    for (const end of [a, b]) await mustRun(['ip', '-n', end.netns, 'link', 'set', end.dev, 'up']);
    if (!options.pinNeighbours) return;
    const macA = await linkAddress(a);
    const macB = await linkAddress(b);
    for (const [end, peer, lladdr] of [
      [a, b, macB],
      [b, a, macA],
    ] as const) {
      for (const address of peer.addresses) {
        const host = address.split('/')[0] as string;
        await mustRun([
          'ip',
          '-n',
          end.netns,
          'neigh',
          'replace',
          host,
          'lladdr',
          lladdr,
          'dev',
          end.dev,
          'nud',
          'permanent',
        ]);
      }
    }
  }

  /**
   * Deletes the namespaces, newest first (a namespace already gone counts as deleted);
   * collects every failure and throws them together.
   */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const ns of this.#names.splice(0).reverse()) {
      const r = await runCommand(['ip', 'netns', 'del', ns]).catch((e: unknown) => ({
        code: -1,
        stderr: String(e),
      }));
      if (r.code !== 0 && !/No such file/.test(r.stderr))
        errors.push(new Error(`ip netns del ${ns}: ${r.stderr}`));
    }
    if (errors.length > 0) throw new AggregateError(errors, 'deleting the network namespaces failed');
  }
}

/** The MAC address of a link end. */
async function linkAddress(end: LinkEnd): Promise<string> {
  const out = await mustRun(['ip', '-n', end.netns, '-j', 'link', 'show', end.dev]);
  const parsed = JSON.parse(out) as { address?: string }[];
  const address = parsed[0]?.address;
  if (!address) throw new Error(`no link-layer address for ${end.dev} in ${end.netns}`);
  return address;
}
