/**
 * Presets: the seed articles as one call each. They are recipes written in the
 * API's own language (rule specs, as an operator types them), not part of the
 * service core: the facade only applies what they expand into.
 * A preset expands into an
 * ordinary transaction (so it is dry-runnable, guarded, journaled, audited,
 * commit-confirmable), built from `ensure` and declarative operations so that
 * running it twice changes nothing.
 *
 * - rateLimit (the secure-server article; firewalld#70): per-source limiting of new
 *   connections to a port. With `recent` (the article's way): a LOG-then-DROP (or REJECT)
 *   chain, `recent --set` on new connections, `recent --update --seconds S --hitcount H`
 *   jumping to that chain, then ACCEPT. With `hashlimit`: one rule jumping to the chain above
 *   H new connections per period from one source, then ACCEPT.
 * - harden (the hardening article): accept loopback, ESTABLISHED/RELATED, ICMPv6 neighbour
 *   and router discovery (ipv6), SSH from the given sources or anywhere, then policy DROP on
 *   INPUT: in that order, in one transaction, so no step can lock anyone out (the guard
 *   checks the whole).
 */
import { invalid } from '../domain/errors.js';
import type { Family } from '../domain/family.js';
import { checkChainName, checkUint } from '../domain/validate.js';
import { quoteString } from '../iptables/tokenize.js';
import type { Operation } from '../service/operations.js';
import { parseCidr } from '../simulate/ip.js';

export interface RateLimitParams {
  readonly families?: readonly Family[];
  readonly port: number;
  /** @default 'tcp' */
  readonly protocol?: 'tcp' | 'udp';
  /** The window. @default 60 */
  readonly seconds?: number;
  /** New connections allowed per window from one source; more are dropped. @default 4 */
  readonly hitcount?: number;
  /** The chain that logs and drops. @default 'LOG_AND_DROP' */
  readonly chain?: string;
  /** @default 'INPUT' */
  readonly inputChain?: string;
  /** Log prefix; '' for no LOG rule. @default 'iptables deny: ' */
  readonly logPrefix?: string;
  /** @default 7 */
  readonly logLevel?: number;
  /** @default 'DROP' */
  readonly action?: 'DROP' | 'REJECT';
  /** @default 'recent' */
  readonly method?: 'recent' | 'hashlimit';
  /** The recent list or hashlimit table name. @default 'DEFAULT' (recent), 'pcl_<proto>_<port>' (hashlimit) */
  readonly name?: string;
}

export interface HardenParams {
  readonly families?: readonly Family[];
  /** @default 22 */
  readonly sshPort?: number;
  /** Addresses or CIDRs SSH is allowed from; empty: from anywhere. @default [] */
  readonly allowSshFrom?: readonly string[];
}

/** What the preset needs to know of the current ruleset. */
export interface PresetContext {
  readonly families: readonly Family[];
  /** The policy of a built-in chain of filter, undefined when the table is not there yet. */
  policy(family: Family, chain: string): string | undefined;
}

const HASHLIMIT_UNITS: Readonly<Record<number, string>> = {
  1: 'second',
  60: 'minute',
  3600: 'hour',
  86400: 'day',
};

function familiesOf(given: unknown, ctx: PresetContext): readonly Family[] {
  if (given === undefined) return ctx.families;
  const list = Array.isArray(given) ? given : [];
  const families = ctx.families.filter((f) => list.includes(f));
  if (list.length === 0 || families.length !== new Set(list).size)
    throw invalid(
      'families',
      `families must be a non-empty list of managed families (${ctx.families.join(', ')})`,
    );
  return families;
}

function oneOf<T extends string>(value: unknown, words: readonly T[], field: string, fallback: T): T {
  if (value === undefined) return fallback;
  const found = words.find((w) => w === value);
  if (found === undefined) throw invalid(field, `${field} must be one of ${words.join(', ')}`);
  return found;
}

export function rateLimitOps(p: RateLimitParams, ctx: PresetContext): Operation[] {
  const port = checkUint(p.port, 'port', 1, 65535);
  const protocol = oneOf(p.protocol, ['tcp', 'udp'] as const, 'protocol', 'tcp');
  const method = oneOf(p.method, ['recent', 'hashlimit'] as const, 'method', 'recent');
  const action = oneOf(p.action, ['DROP', 'REJECT'] as const, 'action', 'DROP');
  const seconds = checkUint(p.seconds ?? 60, 'seconds', 1, 86400);
  // xt_recent remembers 20 hits per address by default (ip_pkt_list_tot).
  const hitcount = checkUint(p.hitcount ?? 4, 'hitcount', 1, method === 'recent' ? 20 : 10000);
  const chain = checkChainName(p.chain ?? 'LOG_AND_DROP', 'chain');
  const inputChain = checkChainName(p.inputChain ?? 'INPUT', 'inputChain');
  const logLevel = checkUint(p.logLevel ?? 7, 'logLevel', 0, 7);
  const logPrefix = p.logPrefix ?? 'iptables deny: ';
  if (typeof logPrefix !== 'string' || logPrefix.length > 29)
    throw invalid('logPrefix', 'logPrefix must be text of at most 29 characters');
  const name = p.name ?? (method === 'recent' ? 'DEFAULT' : `pcl_${protocol}_${port}`);
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,31}$/.test(name))
    throw invalid('name', 'name must be 1 to 31 letters, digits, _ . or -');
  if (method === 'hashlimit' && HASHLIMIT_UNITS[seconds] === undefined)
    throw invalid('seconds', 'with method hashlimit, seconds must be 1, 60, 3600 or 86400');
  const dport = `-p ${protocol} -m ${protocol} --dport ${port}`;
  const drop = action === 'REJECT' ? '-j REJECT' : '-j DROP';
  const out: Operation[] = [];
  for (const family of familiesOf(p.families, ctx)) {
    const at = { family, table: 'filter' as const };
    const rule = (spec: string): Operation => ({ op: 'ensure', ...at, chain: inputChain, rule: { spec } });
    out.push({
      op: 'replaceChain',
      ...at,
      chain,
      rules: [
        ...(logPrefix === ''
          ? []
          : [{ spec: `-j LOG --log-prefix ${quoteString(logPrefix)} --log-level ${logLevel}` }]),
        { spec: drop },
      ],
    });
    if (method === 'recent') {
      out.push(rule(`${dport} -m state --state NEW -m recent --set --name ${name} --rsource`));
      out.push(
        rule(
          `${dport} -m state --state NEW -m recent --update --seconds ${seconds} --hitcount ${hitcount} --name ${name} --rsource -j ${chain}`,
        ),
      );
    } else {
      out.push(
        rule(
          `${dport} -m conntrack --ctstate NEW -m hashlimit --hashlimit-above ${hitcount}/${HASHLIMIT_UNITS[seconds]} --hashlimit-burst ${hitcount} --hashlimit-mode srcip --hashlimit-name ${name} -j ${chain}`,
        ),
      );
    }
    out.push(rule(`${dport} -j ACCEPT`));
  }
  return out;
}

const ND_TYPES = [133, 134, 135, 136];

export function hardenOps(p: HardenParams, ctx: PresetContext): Operation[] {
  const sshPort = checkUint(p.sshPort ?? 22, 'sshPort', 1, 65535);
  const from = p.allowSshFrom ?? [];
  if (!Array.isArray(from) || from.length > 64)
    throw invalid('allowSshFrom', 'allowSshFrom must be a list of at most 64 addresses or CIDRs');
  from.forEach((x, i) => {
    if (typeof x !== 'string' || (!parseCidr('ipv4', x) && !parseCidr('ipv6', x)))
      throw invalid(
        `allowSshFrom[${i}]`,
        `allowSshFrom[${i}] must be an address or CIDR such as 192.0.2.0/24`,
      );
  });
  const out: Operation[] = [];
  for (const family of familiesOf(p.families, ctx)) {
    const at = { family, table: 'filter' as const, chain: 'INPUT' };
    const rule = (spec: string): Operation => ({ op: 'ensure', ...at, rule: { spec } });
    out.push(rule('-i lo -j ACCEPT'));
    out.push(rule('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'));
    if (family === 'ipv6')
      for (const t of ND_TYPES) out.push(rule(`-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`));
    const sources = from.filter((s) => parseCidr(family, s) !== undefined);
    if (from.length === 0) out.push(rule(`-p tcp -m tcp --dport ${sshPort} -j ACCEPT`));
    else for (const s of sources) out.push(rule(`-s ${s} -p tcp -m tcp --dport ${sshPort} -j ACCEPT`));
    if (ctx.policy(family, 'INPUT') !== 'DROP') out.push({ op: 'setPolicy', ...at, policy: 'DROP' });
  }
  return out;
}
