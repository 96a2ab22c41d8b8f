/**
 * The e2e hosts: a `server` network namespace (where Portcullis manages the firewall and the
 * services listen) and client namespaces, each joined to the server by its own veth pair:
 *
 *   client1 eth0 192.0.2.2/30  2001:db8:1::2/64  <->  server c1 192.0.2.1/30  2001:db8:1::1/64
 *   client2 eth0 192.0.2.6/30  2001:db8:2::2/64  <->  server c2 192.0.2.5/30  2001:db8:2::1/64
 *
 * Point-to-point links (no bridge) keep every packet on one path: client -> server INPUT.
 * IPv6 addresses are added with `nodad` (usable at once) and neighbours are pinned
 * (`nud permanent`) on both sides: with `ip6tables -P INPUT DROP` the server drops neighbour
 * solicitations and advertisements too (they are ICMPv6, not part of any connection), and a
 * test about TCP and ping should not depend on how long a neighbour cache entry lives.
 *
 * In every namespace an agent (agent.mjs) listens and connects on request: the server's
 * listens on 22 (ssh) and 80 (http), each client's on 8080 (for connections the server opens).
 * Every wait is bounded; `destroy()` kills the agents by pid and deletes the namespaces, and
 * is safe to call after a partial setup or twice. The namespaces and links are built by
 * src/sandbox/topology.ts, which `npm run demo` uses too.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type CommandResult, runCommand } from '../../src/sandbox/command.js';
import { Namespaces } from '../../src/sandbox/topology.js';

const AGENT = join(import.meta.dirname, 'agent.mjs');
/** How long an agent may live at most, should the test process die without killing it. */
const AGENT_LIFETIME_MS = 10 * 60_000;
const COMMAND_TIMEOUT_MS = 15_000;

export type Family = 'ipv4' | 'ipv6';

export interface ConnectResult {
  readonly connected: boolean;
  readonly ms: number;
  readonly error?: string;
}

/** A running agent.mjs inside one namespace. */
export class Agent {
  private nextId = 1;
  private readonly pending = new Map<number, (msg: Record<string, unknown>) => void>();
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const waiter = this.pending.get(msg.id as number);
      if (waiter) {
        this.pending.delete(msg.id as number);
        waiter(msg);
      }
    });
    child.stderr.resume();
    this.exited = new Promise((res) => child.once('exit', () => res()));
  }

  static async start(netns: string): Promise<Agent> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, AGENT, String(AGENT_LIFETIME_MS)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const agent = new Agent(child);
    const ready = new Promise<void>((res) => agent.pending.set(0, () => res()));
    const failed = new Promise<never>((_, rej) => {
      child.once('error', rej);
      child.once('exit', (code) =>
        rej(new Error(`the agent in ${netns} exited (${String(code)}) before it was ready`)),
      );
    });
    try {
      await withTimeout(Promise.race([ready, failed]), COMMAND_TIMEOUT_MS, `the agent in ${netns} to start`);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private request(msg: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const answer = new Promise<Record<string, unknown>>((res) => this.pending.set(id, res));
    this.child.stdin.write(`${JSON.stringify({ id, ...msg })}\n`);
    return withTimeout(answer, timeoutMs, `agent ${String(msg.cmd)}`).finally(() => this.pending.delete(id));
  }

  async listen(port: number): Promise<void> {
    const r = await this.request({ cmd: 'listen', port }, COMMAND_TIMEOUT_MS);
    if (r.ok !== true) throw new Error(`listen on ${port} failed: ${String(r.error)}`);
  }

  /** A TCP connection that counts only when the listener's greeting arrived within `timeoutMs`. */
  async connect(host: string, port: number, timeoutMs: number): Promise<ConnectResult> {
    const r = await this.request({ cmd: 'connect', host, port, timeoutMs }, timeoutMs + COMMAND_TIMEOUT_MS);
    return {
      connected: r.connected === true,
      ms: Number(r.ms),
      ...(typeof r.error === 'string' ? { error: r.error } : {}),
    };
  }

  /** Closes stdin (the agent exits), then kills it by pid if it has not exited within 2 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface Host {
  /** The namespace name. */
  readonly netns: string;
  readonly agent: Agent;
}

export interface Client extends Host {
  readonly label: string;
  /** The client's own addresses. */
  readonly address: Readonly<Record<Family, string>>;
  /** The server's address on this client's link. */
  readonly server: Readonly<Record<Family, string>>;
}

/** Ports the agents listen on. */
export const PORTS = { ssh: 22, http: 80, client: 8080 } as const;

export interface TopologyOptions {
  /** Namespace name prefix. @default 'pe2e' */
  readonly prefix?: string;
  /** How many clients (1 to 2). @default 2 */
  readonly clients?: number;
}

export class Topology {
  readonly id: string;
  private readonly namespaces = new Namespaces();
  private readonly agents: Agent[] = [];
  server!: Host;
  readonly clients: Client[] = [];

  private constructor(readonly prefix: string) {
    this.id = `${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** Builds the namespaces, links and agents; on any failure tears down what was built and throws. */
  static async create(options: TopologyOptions = {}): Promise<Topology> {
    const t = new Topology(options.prefix ?? 'pe2e');
    try {
      await t.build(options.clients ?? 2);
    } catch (err) {
      await t.destroy();
      throw err;
    }
    return t;
  }

  private addNetns(role: string): Promise<string> {
    return this.namespaces.add(`${this.prefix}-${role}-${this.id}`, { noDad: true });
  }

  private async build(count: number): Promise<void> {
    if (!(count >= 1 && count <= 2)) throw new RangeError(`clients must be 1 or 2, got ${count}`);
    const server = await this.addNetns('server');
    const links: Omit<Client, 'agent'>[] = [];
    for (let i = 1; i <= count; i++) {
      const netns = await this.addNetns(`client${i}`);
      const link = `c${i}`;
      const v4 = (n: number) => `192.0.2.${(i - 1) * 4 + n}`;
      const v6 = (n: number) => `2001:db8:${i}::${n}`;
      await this.namespaces.link(
        { netns: server, dev: link, addresses: [`${v4(1)}/30`, `${v6(1)}/64`] },
        { netns, dev: 'eth0', addresses: [`${v4(2)}/30`, `${v6(2)}/64`] },
        { pinNeighbours: true },
      );
      links.push({
        label: `client${i}`,
        netns,
        address: { ipv4: v4(2), ipv6: v6(2) },
        server: { ipv4: v4(1), ipv6: v6(1) },
      });
    }
    const start = async (ns: string): Promise<Agent> => {
      const a = await Agent.start(ns);
      this.agents.push(a);
      return a;
    };
    const [serverAgent, clientAgents] = await Promise.all([
      start(server),
      Promise.all(links.map((l) => start(l.netns))),
    ]);
    this.server = { netns: server, agent: serverAgent };
    for (const [i, l] of links.entries()) this.clients.push({ ...l, agent: clientAgents[i] as Agent });
    await serverAgent.listen(PORTS.ssh);
    await serverAgent.listen(PORTS.http);
    await Promise.all(clientAgents.map((a) => a.listen(PORTS.client)));
  }

  /** `ping -c 1 -W 1` from a client to the server's address on its link: whether a reply came. */
  async ping(client: Client, family: Family, waitSeconds = 1): Promise<boolean> {
    const argv = ['ip', 'netns', 'exec', client.netns, 'ping', family === 'ipv6' ? '-6' : '-4'];
    const r = await runCommand([
      ...argv,
      '-n',
      '-q',
      '-c',
      '1',
      '-W',
      String(waitSeconds),
      client.server[family],
    ]);
    if (r.code !== 0 && r.code !== 1)
      throw new Error(`ping failed to run (${String(r.code)}): ${r.stderr.trim()}`);
    return r.code === 0;
  }

  /** A TCP connection from a client to the server (its address on the client's link). */
  connect(client: Client, family: Family, port: number, timeoutMs: number): Promise<ConnectResult> {
    return client.agent.connect(client.server[family], port, timeoutMs);
  }

  /** A TCP connection the server opens to a client's listener (port 8080). */
  connectOut(client: Client, family: Family, timeoutMs: number): Promise<ConnectResult> {
    return this.server.agent.connect(client.address[family], PORTS.client, timeoutMs);
  }

  /** Runs argv inside the server namespace. */
  inServer(argv: readonly string[]): Promise<CommandResult> {
    return runCommand(['ip', 'netns', 'exec', this.server.netns, ...argv]);
  }

  /** Stops the agents and deletes the namespaces; collects every failure and throws them together. */
  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all(this.agents.splice(0).map((a) => a.stop().catch((e: unknown) => errors.push(e))));
    await this.namespaces.destroy().catch((e: unknown) => {
      errors.push(...(e instanceof AggregateError ? e.errors : [e]));
    });
    if (errors.length > 0) throw new AggregateError(errors, 'e2e topology teardown failed');
  }
}
