/**
 * The address plan of the kernel agreement lab, shared by the lab (which
 * builds it) and the generator (which aims rules and packets at it): one
 * server and one client namespace joined by two veth links, documentation
 * addresses only.
 *
 *   client ca  192.0.2.{2,3,66}/25     2001:db8:a::{2,3,66}/64   <->  server sa  192.0.2.{1,10}/25     2001:db8:a::{1,10}/64
 *   client cb  198.51.100.{2,3,66}/25  2001:db8:b::{2,3,66}/64   <->  server sb  198.51.100.{1,10}/25  2001:db8:b::{1,10}/64
 */
import type { Family } from '../../../src/domain/family.js';

export interface Link {
  readonly server: string;
  readonly client: string;
  readonly v4: string;
  readonly v6: string;
}

export const LINKS: readonly Link[] = [
  { server: 'sa', client: 'ca', v4: '192.0.2.', v6: '2001:db8:a::' },
  { server: 'sb', client: 'cb', v4: '198.51.100.', v6: '2001:db8:b::' },
];

export const SERVER_HOSTS = [1, 10] as const;
export const CLIENT_HOSTS = [2, 3, 66] as const;

export function hostAddress(link: Link, family: Family, host: number): string {
  return family === 'ipv4' ? `${link.v4}${host}` : `${link.v6}${host.toString(16)}`;
}

export const prefixLength = (family: Family) => (family === 'ipv4' ? 25 : 64);

/** Source ranges the raw table lets through; everything else is dropped before the tested tables. */
export const TEST_SOURCES: Readonly<Record<Family, readonly string[]>> = {
  ipv4: ['192.0.2.0/24', '198.51.100.0/24'],
  ipv6: ['2001:db8::/32'],
};
