/**
 * A kube-proxy-shaped ruleset for the scale benchmarks: `rules` rules spread over user chains
 * of about 100 rules each (500,000 rules -> 5,000 chains), half in nat, half in filter.
 *
 * - nat: PREROUTING/OUTPUT jump to KUBE-SERVICES, which holds one rule per service (cluster IP,
 *   port, comment) jumping to the service's KUBE-SVC-* chain; each KUBE-SVC-* chain spreads
 *   traffic over its endpoints with `-m statistic --mode random --probability` and DNAT, as
 *   kube-proxy does; KUBE-MARK-MASQ and KUBE-POSTROUTING as kube-proxy writes them.
 * - filter: FORWARD jumps to KUBE-SERVICES, which holds one rule per load balancer jumping to its
 *   KUBE-FW-* chain: the allowed source ranges (ACCEPT), then DROP, as for
 *   loadBalancerSourceRanges. INPUT jumps to KUBE-FIREWALL.
 *
 * Addresses are 10/8 (cluster) and the 203.0.113.0/24 documentation range: nothing routes.
 */

export interface KubeRuleset {
  /** Restore text of both tables (loads them whole). */
  readonly text: string;
  readonly rules: number;
  readonly chains: number;
  /** A filter chain of the ruleset holding about 100 rules (where appends are measured). */
  readonly appendChain: string;
}

const svc = (i: number) => `KUBE-SVC-${i.toString(36).toUpperCase().padStart(12, '0')}`;
const fw = (i: number) => `KUBE-FW-${i.toString(36).toUpperCase().padStart(13, '0')}`;
const ip = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

export function kubeRuleset(rules: number, perChain = 100): KubeRuleset {
  const chains = Math.max(2, Math.round(rules / perChain));
  const half = Math.floor(chains / 2);
  const nat = [
    '*nat',
    ...[
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
    ],
    ...[':KUBE-MARK-MASQ - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-SERVICES - [0:0]'],
  ];
  const filter = [
    '*filter',
    ...[':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'],
    ...[':KUBE-FIREWALL - [0:0]', ':KUBE-SERVICES - [0:0]'],
  ];
  for (let i = 0; i < half; i++) nat.push(`:${svc(i)} - [0:0]`);
  for (let i = 0; i < chains - half; i++) filter.push(`:${fw(i)} - [0:0]`);
  let count = 0;
  const add = (to: string[], line: string) => {
    if (count >= rules) return;
    to.push(line);
    count++;
  };
  const portals = '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES';
  add(nat, `-A PREROUTING ${portals}`);
  add(nat, `-A OUTPUT ${portals}`);
  add(nat, '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING');
  add(nat, '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000');
  add(nat, '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN');
  add(nat, '-A KUBE-POSTROUTING -j MASQUERADE');
  add(filter, '-A INPUT -j KUBE-FIREWALL');
  add(filter, `-A FORWARD ${portals}`);
  add(filter, '-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP');
  // What is left, spread evenly over the chains (each chain also gets its jump).
  const body = Math.max(0, Math.floor((rules - count) / chains) - 1);
  for (let i = 0; i < half; i++) {
    const name = `ns-${i % 50}/svc-${i}:http`;
    add(
      nat,
      `-A KUBE-SERVICES -d ${ip(0x600000 + i)}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j ${svc(i)}`,
    );
    for (let e = 0; e < body; e++) {
      const left = body - e;
      const p = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(11)}` : '';
      add(
        nat,
        `-A ${svc(i)} -p tcp -m comment --comment "${name}"${p} -j DNAT --to-destination ${ip(0xf40000 + i * body + e)}:8080`,
      );
    }
  }
  for (let i = 0; i < chains - half; i++) {
    const name = `ns-${i % 50}/lb-${i}:https`;
    add(
      filter,
      `-A KUBE-SERVICES -d 203.0.113.${i % 256}/32 -p tcp -m comment --comment "${name} loadbalancer IP" -m tcp --dport ${1024 + Math.floor(i / 256)} -j ${fw(i)}`,
    );
    for (let e = 0; e < body - 1; e++) {
      add(
        filter,
        `-A ${fw(i)} -s ${ip(0x0c0000 + i * body + e)}/32 -m comment --comment "${name} allowed source" -j ACCEPT`,
      );
    }
    if (body > 0) add(filter, `-A ${fw(i)} -m comment --comment "${name} other sources" -j DROP`);
  }
  nat.push('COMMIT');
  filter.push('COMMIT', '');
  return { text: `${filter.join('\n')}${nat.join('\n')}\n`, rules: count, chains, appendChain: fw(0) };
}

/** One table of an iptables-save text, as the chains a ReplaceTable request lists. */
export interface ChainBody {
  readonly name: string;
  readonly policy?: string;
  readonly rules: { readonly spec: string }[];
}

export function tableChains(save: string, table: string): ChainBody[] {
  const out: { name: string; policy?: string; rules: { spec: string }[] }[] = [];
  const byName = new Map<string, { rules: { spec: string }[] }>();
  let inTable = false;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) inTable = line === `*${table}`;
    if (!inTable) continue;
    if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(' ');
      const c = { name, ...(policy === '-' ? {} : { policy }), rules: [] };
      out.push(c);
      byName.set(name, c);
    } else if (line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      byName.get(line.slice(3, sp))?.rules.push({ spec: line.slice(sp + 1) });
    }
  }
  return out;
}

/**
 * The same chains with 1% of their rules changed: in every tenth KUBE-FW chain, ten of the
 * allowed sources (from the 40th rule on) are replaced by others, until 1% is reached.
 * Returns the chains and how many rules changed.
 */
export function onePercentChange(
  chains: readonly ChainBody[],
  round = 0,
): { chains: ChainBody[]; changed: number } {
  const total = chains.reduce((n, c) => n + c.rules.length, 0);
  const want = Math.round(total / 100);
  let changed = 0;
  let seen = 0;
  const out = chains.map((c) => {
    if (!c.name.startsWith('KUBE-FW-') || changed >= want) return c;
    if (seen++ % 10 !== round % 10) return c;
    const rules = c.rules.map((r, i) => {
      if (i < 40 || i >= 50 || changed >= want || !r.spec.startsWith('-s 10.')) return r;
      changed++;
      return { spec: r.spec.replace(/^-s 10\./, '-s 11.') };
    });
    return { ...c, rules };
  });
  return { chains: out, changed };
}
