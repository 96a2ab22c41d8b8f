/**
 * The caller of a change, when it came over TCP: the lockout guard protects its
 * own path (its address to the port it reached us on). Unix-socket callers have
 * none. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack socket
 * reports) are given as the IPv4 address the packets really carry.
 */
import { isIP } from 'node:net';
import type { ApplyOptions } from '../service/api.js';

export type Caller = NonNullable<ApplyOptions['caller']>;

export function callerOf(address: string | undefined, localPort: number | undefined): Caller | undefined {
  if (address === undefined || localPort === undefined || localPort <= 0) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped?.[1] ?? address.replace(/%.*$/, '');
  return isIP(plain) === 0 ? undefined : { address: plain, port: localPort };
}

/** A gRPC peer (`ipv4:192.0.2.1:5000`, `ipv6:[2001:db8::1]:5000`, `unix:...`) as a caller. */
export function callerOfPeer(peer: string | undefined, localPort: number | undefined): Caller | undefined {
  if (peer === undefined) return undefined;
  const m = /^(?:ipv4:|ipv6:)?\[?([0-9a-fA-F:.]+?)\]?:\d+$/.exec(peer);
  return m ? callerOf(m[1], localPort) : undefined;
}
