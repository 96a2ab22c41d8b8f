/**
 * The kernel agreement lab: a server and a client network namespace of our
 * own, joined by two veth pairs (see plan.ts), a probe agent in each, and the
 * server's firewall driven only through `ip netns exec <server>`.
 *
 * Observation without touching the tested tables: raw PREROUTING lets only
 * the test sources through (and counts them: "the packet arrived"), security
 * INPUT (after filter) counts what filter let through ("delivered"). Both run
 * in every restore together with the mangle and filter tables under test.
 * Neighbours are pinned both ways, IPv6 duplicate address detection is off,
 * and the client's ICMP error rate limits are off so every RELATED probe gets
 * its error. `destroy()` stops the agents by pid and deletes both namespaces.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Family } from '../../../src/domain/family.js';
import type { Ruleset } from '../../../src/domain/model.js';
import { parseSave } from '../../../src/iptables/save-parser.js';
import { createNetns, type Netns } from '../../helpers/kernel.js';
import { CLIENT_HOSTS, hostAddress, LINKS, prefixLength, SERVER_HOSTS, TEST_SOURCES } from './plan.js';

const AGENT = join(import.meta.dirname, 'probe-agent.mjs');
const AGENT_LIFETIME_MS = 5 * 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

async function must(ns: Netns, argv: string[], input?: string): Promise<string> {
  const r = await ns.exec(argv, input);
  if (r.code !== 0)
    throw new Error(`${ns.name}: ${argv.join(' ')} failed (${String(r.code)}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A probe-agent.mjs inside one namespace: one JSON request per line, answers matched by id. */
export class ProbeAgent {
  private nextId = 1;
  private readonly waiting = new Map<number, (msg: Record<string, unknown>) => void>();
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const w = this.waiting.get(msg.id as number);
      if (w) {
        this.waiting.delete(msg.id as number);
        w(msg);
      }
    });
    child.stderr.resume();
    this.exited = new Promise((res) => child.once('exit', () => res()));
  }

  static async start(netns: string): Promise<ProbeAgent> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, AGENT, String(AGENT_LIFETIME_MS)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const agent = new ProbeAgent(child);
    const ready = new Promise<void>((res) => agent.waiting.set(0, () => res()));
    try {
      await within(ready, REQUEST_TIMEOUT_MS, `the probe agent in ${netns} to start`);
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  async request(msg: Record<string, unknown>): Promise<void> {
    const id = this.nextId++;
    const answer = new Promise<Record<string, unknown>>((res) => this.waiting.set(id, res));
    this.child.stdin.write(`${JSON.stringify({ id, ...msg })}\n`);
    const r = await within(answer, REQUEST_TIMEOUT_MS, `probe ${String(msg.cmd)}`).finally(() =>
      this.waiting.delete(id),
    );
    if (r.ok !== true) throw new Error(`probe ${JSON.stringify(msg)} failed: ${String(r.error)}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** raw and security tables that observe the tested tables from outside. */
export function sentinelTables(family: Family): string {
  return [
    '*raw',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ...TEST_SOURCES[family].map((s) => `-A PREROUTING -s ${s} -j ACCEPT`),
    '-A PREROUTING -j DROP',
    'COMMIT',
    '*security',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A INPUT -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED',
    'COMMIT',
    '',
  ].join('\n');
}

export interface Observation {
  /** The whole ruleset with counters, as the kernel prints it. */
  readonly ruleset: Ruleset;
  /** Test packets that reached raw PREROUTING. */
  readonly arrived: bigint;
  /** Test packets that left filter INPUT alive (counted in security INPUT). */
  readonly delivered: bigint;
}

export class Lab {
  private constructor(
    readonly server: Netns,
    readonly client: Netns,
    readonly serverAgent: ProbeAgent,
    readonly clientAgent: ProbeAgent,
  ) {}

  static async create(): Promise<Lab> {
    const made: Netns[] = [];
    const agents: ProbeAgent[] = [];
    try {
      const server = await createNetns('psim-s');
      made.push(server);
      const client = await createNetns('psim-c');
      made.push(client);
      for (const ns of [server, client]) {
        for (const s of [
          'net.ipv6.conf.all.accept_dad=0',
          'net.ipv6.conf.default.accept_dad=0',
          'net.ipv6.conf.default.router_solicitations=0',
        ])
          await must(ns, ['sysctl', '-q', '-w', s]);
      }
      for (const s of [
        'net.ipv4.icmp_ratelimit=0',
        'net.ipv6.icmp.ratelimit=0',
        'net.ipv4.icmp_msgs_per_sec=100000',
        'net.ipv4.icmp_msgs_burst=100000',
      ])
        await must(client, ['sysctl', '-q', '-w', s]);
      for (const link of LINKS) {
        await must(server, [
          'ip',
          'link',
          'add',
          link.server,
          'type',
          'veth',
          'peer',
          'name',
          link.client,
          'netns',
          client.name,
        ]);
        for (const family of ['ipv4', 'ipv6'] as const) {
          const len = prefixLength(family);
          const flags = family === 'ipv6' ? ['nodad'] : [];
          for (const h of SERVER_HOSTS)
            await must(server, [
              'ip',
              'addr',
              'add',
              `${hostAddress(link, family, h)}/${len}`,
              'dev',
              link.server,
              ...flags,
            ]);
          for (const h of CLIENT_HOSTS)
            await must(client, [
              'ip',
              'addr',
              'add',
              `${hostAddress(link, family, h)}/${len}`,
              'dev',
              link.client,
              ...flags,
            ]);
        }
        await must(server, ['ip', 'link', 'set', link.server, 'up']);
        await must(client, ['ip', 'link', 'set', link.client, 'up']);
        const serverMac = await mac(server, link.server);
        const clientMac = await mac(client, link.client);
        for (const family of ['ipv4', 'ipv6'] as const) {
          for (const h of CLIENT_HOSTS)
            await must(server, [
              'ip',
              'neigh',
              'replace',
              hostAddress(link, family, h),
              'lladdr',
              clientMac,
              'dev',
              link.server,
              'nud',
              'permanent',
            ]);
          for (const h of SERVER_HOSTS)
            await must(client, [
              'ip',
              'neigh',
              'replace',
              hostAddress(link, family, h),
              'lladdr',
              serverMac,
              'dev',
              link.client,
              'nud',
              'permanent',
            ]);
        }
      }
      agents.push(await ProbeAgent.start(server.name));
      agents.push(await ProbeAgent.start(client.name));
      return new Lab(server, client, agents[0] as ProbeAgent, agents[1] as ProbeAgent);
    } catch (e) {
      await Promise.allSettled(agents.map((a) => a.stop()));
      for (const ns of made.reverse()) await ns.destroy().catch(() => {});
      throw e;
    }
  }

  /** Replaces the raw, security, mangle and filter tables of `family` (counters start at zero). */
  async load(family: Family, tested: string): Promise<void> {
    const cmd = family === 'ipv4' ? 'iptables-restore' : 'ip6tables-restore';
    const r = await this.server.exec([cmd, '-w', '5'], `${sentinelTables(family)}${tested}`);
    if (r.code !== 0)
      throw new Error(`${cmd} refused the ruleset (${String(r.code)}): ${r.stderr.trim()}\n${tested}`);
  }

  async observe(family: Family): Promise<Observation> {
    const text = await must(this.server, [family === 'ipv4' ? 'iptables-save' : 'ip6tables-save', '-c']);
    const ruleset = parseSave(text, family, { counters: true });
    const chain = (table: string, name: string) =>
      ruleset.tables.find((t) => t.name === table)?.chains.find((c) => c.name === name);
    const raw = chain('raw', 'PREROUTING')?.rules ?? [];
    const arrived = raw.slice(0, -1).reduce((n, r) => n + (r.counters?.packets ?? 0n), 0n);
    const delivered = chain('security', 'INPUT')?.rules[0]?.counters?.packets ?? 0n;
    return { ruleset, arrived, delivered };
  }

  async destroy(): Promise<void> {
    await Promise.allSettled([this.serverAgent.stop(), this.clientAgent.stop()]);
    const errors: unknown[] = [];
    for (const ns of [this.client, this.server]) await ns.destroy().catch((e: unknown) => errors.push(e));
    if (errors.length) throw new AggregateError(errors, 'kernel lab teardown failed');
  }
}

async function mac(ns: Netns, dev: string): Promise<string> {
  const parsed = JSON.parse(await must(ns, ['ip', '-j', 'link', 'show', dev])) as { address?: string }[];
  const address = parsed[0]?.address;
  if (!address) throw new Error(`no link-layer address for ${dev} in ${ns.name}`);
  return address;
}
