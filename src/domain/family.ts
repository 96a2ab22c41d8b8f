/**
 * Address families and tables Portcullis manages. Kept in their own module so
 * that every layer (codec, executor, service) shares one definition.
 */

/** An address family: `ipv4` is driven with `iptables-*`, `ipv6` with `ip6tables-*`. */
export type Family = 'ipv4' | 'ipv6';
export const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

/** The tables iptables knows, in the order `iptables-save` prints them is irrelevant: we keep this order. */
export type TableName = 'filter' | 'nat' | 'mangle' | 'raw' | 'security';
export const TABLES: readonly TableName[] = ['filter', 'nat', 'mangle', 'raw', 'security'];

/** Built-in chains of each table, in the order `iptables-save` prints them. */
export const BUILTIN_CHAINS: Readonly<Record<TableName, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export function isFamily(value: unknown): value is Family {
  return value === 'ipv4' || value === 'ipv6';
}

export function isTableName(value: unknown): value is TableName {
  return typeof value === 'string' && (TABLES as readonly string[]).includes(value);
}

export function isBuiltinChain(table: TableName, chain: string): boolean {
  return BUILTIN_CHAINS[table].includes(chain);
}
