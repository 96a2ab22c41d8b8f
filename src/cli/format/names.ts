/**
 * Names `iptables -L` prints without `-n`: services for ports (getservbyport, from
 * /etc/services), users and groups for the owner match (getpwuid / getgrgid, from /etc/passwd
 * and /etc/group). Read from the files once, on first use, by the process that prints — the
 * same files iptables would consult on this host. Addresses are not resolved: iptables asks
 * DNS for every address, which can take seconds per rule; we print them as numbers (what
 * iptables prints too when the lookup fails), and `anywhere` for 0/0 as it does.
 */
import { readFileSync } from 'node:fs';

export interface Names {
  /** The service name of a port for `tcp`/`udp`/..., as getservbyport gives it. */
  service(port: number, protocol: string): string | undefined;
  user(uid: number): string | undefined;
  group(gid: number): string | undefined;
}

/** No names at all: `-n`, and tests. */
export const NUMERIC_NAMES: Names = {
  service: () => undefined,
  user: () => undefined,
  group: () => undefined,
};

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** `/etc/services`: the first name for each port/protocol. */
export function parseServices(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const [, name, port, protocol] = /^(\S+)\s+(\d+)\/(\S+)/.exec(line) ?? [];
    if (name === undefined || port === undefined || protocol === undefined) continue;
    const key = `${port}/${protocol.toLowerCase()}`;
    if (!out.has(key)) out.set(key, name);
  }
  return out;
}

/** `/etc/passwd` or `/etc/group`: the first name for each id. */
export function parseIdFile(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const [name, , idText] = line.split(':');
    if (name === undefined || idText === undefined || !/^\d+$/.test(idText)) continue;
    const id = Number(idText);
    if (!out.has(id)) out.set(id, name);
  }
  return out;
}

/** Names from this host's files, read on first use. */
export function systemNames(): Names {
  let services: Map<string, string> | undefined;
  let users: Map<number, string> | undefined;
  let groups: Map<number, string> | undefined;
  return {
    service(port, protocol) {
      services ??= parseServices(readOr('/etc/services'));
      return services.get(`${port}/${protocol}`);
    },
    user(uid) {
      users ??= parseIdFile(readOr('/etc/passwd'));
      return users.get(uid);
    },
    group(gid) {
      groups ??= parseIdFile(readOr('/etc/group'));
      return groups.get(gid);
    },
  };
}
