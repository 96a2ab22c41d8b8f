/**
 * End to end on real packets: the two seed articles (../shared/seeds) applied through
 * Portcullis — the real service process (`src/main.ts --netns`), through REST and again
 * through gRPC — and judged by what connections and pings between network namespaces do.
 *
 * Hosts (topology.ts): `server` (Portcullis manages its firewall; TCP services on 22 and 80;
 * the kernel answers ping) and `client1`, `client2` on veth links, 192.0.2.0/24 and
 * 2001:db8::/32. Every scenario starts from a reset and ends with one, and checks that the
 * reset brought back the baseline and every connection. The LOG target writes nothing from a
 * child namespace, so logging is proven by the LOG rule's counters read through the API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/sandbox/command.js';
import { describeKernel } from '../helpers/kernel.js';
import {
  ApiError,
  type Family,
  type FirewallClient,
  GrpcClient,
  RestClient,
  type Transport,
  type TxOp,
} from './clients.js';
import { type PortcullisProcess, startPortcullis } from './portcullis.js';
import {
  ALLOW_ESTABLISHED,
  ALLOW_ND,
  ALLOW_SSH,
  fixture,
  HARDENED_INPUT,
  hardenedFixture,
  hardenedInput,
  hardeningOps,
  LOG_AND_DROP,
  type RuleForm,
  rule,
  SSH_LIMIT_RULES,
  sshLimitListing,
  withoutComments,
} from './seeds.js';
import { type Client, PORTS, Topology } from './topology.js';

/** A connection that should work gets this long; on a veth link it takes a few ms. */
const CONNECT_MS = 3000;
/**
 * A connection that should be dropped is given up after this long. Below the first SYN
 * retransmission (1 s), so one attempt is one SYN: the `recent` hit count stays exact.
 */
const DROPPED_MS = 800;

const TRANSPORTS: readonly Transport[] = ['rest', 'grpc'];
const FAMILIES: readonly Family[] = ['ipv4', 'ipv6'];

interface Reach {
  readonly ping: boolean;
  readonly ssh: boolean;
  readonly http: boolean;
  /** A connection the server opens to the client's listener. */
  readonly out: boolean;
}
const ALL_OPEN: Reach = { ping: true, ssh: true, http: true, out: true };
/** After the whole hardening article: only SSH comes in, and replies to the server's own connections. */
const HARDENED: Reach = { ping: false, ssh: true, http: false, out: true };

/**
 * An open baseline in iptables-save text: tables holding only built-in chains, each with
 * policy ACCEPT, and no rules. (A fresh namespace has no tables at all; after a reset the
 * tables that were used remain, empty.)
 */
function expectOpen(save: string, what: string): void {
  const lines = save.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const unexpected = lines.filter(
    (l) =>
      !/^\*(filter|nat|mangle|raw|security)$/.test(l) &&
      l !== 'COMMIT' &&
      !/^:[A-Z]+ ACCEPT \[\d+:\d+\]$/.test(l),
  );
  expect(unexpected, `${what}: lines other than tables, ACCEPT policies and COMMIT`).toEqual([]);
  for (const l of lines) {
    const chain = /^:(\S+)/.exec(l)?.[1];
    if (chain) expect(BUILTIN_CHAINS, `${what}: chain ${chain}`).toContain(chain);
  }
}
const BUILTIN_CHAINS = ['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING'];

describeKernel('e2e: the seed articles through Portcullis on real packets', () => {
  let topology: Topology | undefined;
  let portcullis: PortcullisProcess | undefined;
  const clients = new Map<Transport, FirewallClient>();
  let baseline: Record<Family, string> | undefined;
  const suiteStarted = Date.now();

  const topo = (): Topology => {
    if (!topology) throw new Error('the e2e topology exists only while the suite runs');
    return topology;
  };
  const api = (t: Transport): FirewallClient => {
    const c = clients.get(t);
    if (!c) throw new Error(`no ${t} client: the service did not start`);
    return c;
  };
  const client = (i: 0 | 1): Client => topo().clients[i] as Client;

  beforeAll(async () => {
    const ping = await runCommand(['ping', '-V']).catch(() => ({ code: -1 }));
    if (ping.code !== 0) {
      throw new Error('the e2e tests need ping: install the Debian package iputils-ping');
    }
    topology = await Topology.create({ prefix: 'pe2e', clients: 2 });
    portcullis = await startPortcullis({ netns: topology.server.netns });
    clients.set('rest', new RestClient(portcullis.restUrl, portcullis.token));
    clients.set('grpc', new GrpcClient(portcullis.grpcAddress, portcullis.token));
    baseline = {
      ipv4: await api('rest').rulesetText('ipv4'),
      ipv6: await api('rest').rulesetText('ipv6'),
    };
  }, 120_000);

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    clients.clear();
    const errors: unknown[] = [];
    const code = await portcullis?.stop().catch((e: unknown) => errors.push(e));
    await topology?.destroy().catch((e: unknown) => errors.push(e));
    topology = undefined;
    console.info(`[e2e] suite took ${((Date.now() - suiteStarted) / 1000).toFixed(1)} s`);
    if (errors.length > 0) throw new AggregateError(errors, 'e2e teardown failed');
    if (code !== undefined && code !== 0 && portcullis) {
      throw new Error(`Portcullis exited with ${String(code)} on SIGTERM:\n${portcullis.log()}`);
    }
  }, 60_000);

  /**
   * Ping, ssh (22), http (80) from a client and a connection out to it, all at once. What is
   * expected to get through is given time to (CONNECT_MS, ping -W 3: the machine may be busy);
   * what is expected to be dropped is given up sooner (DROPPED_MS, ping -W 1).
   */
  async function reach(c: Client, family: Family, expected: Reach): Promise<Reach> {
    const t = topo();
    const ms = (open: boolean) => (open ? CONNECT_MS : DROPPED_MS);
    const [ping, ssh, http, out] = await Promise.all([
      t.ping(c, family, expected.ping ? 3 : 1),
      t.connect(c, family, PORTS.ssh, ms(expected.ssh)),
      t.connect(c, family, PORTS.http, ms(expected.http)),
      t.connectOut(c, family, ms(expected.out)),
    ]);
    return { ping, ssh: ssh.connected, http: http.connected, out: out.connected };
  }

  /** Expects `reach` to see exactly `expected`. */
  async function expectReach(c: Client, family: Family, expected: Reach): Promise<void> {
    expect(await reach(c, family, expected), `${c.label} ${family}`).toEqual(expected);
  }

  /** Every client, every family: everything reachable. */
  async function expectAllOpen(): Promise<void> {
    const cases = topo().clients.flatMap((c) => FAMILIES.map((f) => ({ c, f })));
    const seen = await Promise.all(
      cases.map(async ({ c, f }) => [`${c.label} ${f}`, await reach(c, f, ALL_OPEN)] as const),
    );
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(seen.map(([k]) => [k, ALL_OPEN])));
  }

  /**
   * Reset through `fw`, then: the baseline in both families (no rules, no user chains, every
   * policy ACCEPT: packet for packet the namespace's first state), no `recent` list left, all
   * traffic flows.
   */
  async function resetAndExpectBaseline(fw: FirewallClient): Promise<void> {
    await fw.reset();
    for (const f of FAMILIES) expectOpen(await fw.rulesetText(f), `${f} ruleset after reset`);
    // nf_tables frees a deleted rule's matches in a worker after the commit, so the kernel drops
    // an unused recent list a moment later: retry the observation (bounded), not the assertion.
    let lists = await topo().inServer(['ls', '/proc/net/xt_recent']);
    for (let i = 0; i < 50 && lists.stdout.trim() !== ''; i++) {
      await new Promise((r) => setTimeout(r, 100));
      lists = await topo().inServer(['ls', '/proc/net/xt_recent']);
    }
    expect(lists.stdout.trim(), 'recent lists left in the server after reset').toBe('');
    await expectAllOpen();
  }

  async function texts(fw: FirewallClient, family: Family, chain: string): Promise<string[]> {
    return (await fw.getChain(family, chain)).rules.map((r) => r.text);
  }

  it('starts from an empty baseline: every built-in chain ACCEPT, no rules, everything reachable', async () => {
    for (const f of FAMILIES) {
      const input = await api('rest').getChain(f, 'INPUT');
      expect(input).toEqual({ name: 'INPUT', policy: 'ACCEPT', rules: [] });
      expectOpen(baseline?.[f] ?? '', `${f} ruleset at start`);
    }
    await expectAllOpen();
  });

  describe.each(TRANSPORTS)('through %s', (transport) => {
    // ------------------------------------------------------------ 1. SSH brute-force limiting

    describe.each<RuleForm>(['spec', 'typed'])('SSH brute-force limiting (rules as %s)', (form) => {
      const family: Family = 'ipv4';
      // Each scenario starts from the baseline even when the one before failed half-way.
      beforeAll(() => api(transport).reset());

      it('applies the article: LOG_AND_DROP, recent --set / --update, ACCEPT 22, LOG then DROP', async () => {
        const fw = api(transport);
        await fw.createChain(family, LOG_AND_DROP);
        for (const seed of SSH_LIMIT_RULES) {
          const added = await fw.appendRule(family, seed.chain, rule(seed, form));
          expect(added.text).toBe(sshLimitListing(family)[seed.chain]?.[added.position - 1]);
        }
        const listing = sshLimitListing(family);
        expect(await texts(fw, family, 'INPUT')).toEqual(listing.INPUT);
        expect(await texts(fw, family, LOG_AND_DROP)).toEqual(listing[LOG_AND_DROP]);
        expect(withoutComments(await fw.rulesetText(family))).toBe(fixture('ssh-bruteforce', family));
      });

      it('admits three new SSH connections a minute per source, drops the fourth and later, counts LOG and DROP', async () => {
        const fw = api(transport);
        const t = topo();
        const [attacker, other] = [client(0), client(1)];
        const before = await fw.getChain(family, LOG_AND_DROP, { counters: true });
        expect(before.rules.map((r) => r.counters)).toEqual([
          { packets: 0n, bytes: 0n },
          { packets: 0n, bytes: 0n },
        ]);

        const outcomes: boolean[] = [];
        for (let attempt = 1; attempt <= 5; attempt++) {
          const r = await t.connect(attacker, family, PORTS.ssh, attempt <= 3 ? CONNECT_MS : DROPPED_MS);
          outcomes.push(r.connected);
        }
        expect(outcomes).toEqual([true, true, true, false, false]);

        // Another source address has its own count; other ports are not limited.
        expect((await t.connect(other, family, PORTS.ssh, CONNECT_MS)).connected).toBe(true);
        expect((await t.connect(attacker, family, PORTS.http, CONNECT_MS)).connected).toBe(true);

        const after = await fw.getChain(family, LOG_AND_DROP, { counters: true });
        const [log, drop] = after.rules;
        expect(log?.text).toBe('-j LOG --log-prefix "iptables deny: " --log-level 7');
        expect(drop?.text).toBe('-j DROP');
        // Attempts 4 and 5: at least one SYN each went through LOG, then DROP.
        expect(log?.counters?.packets).toBeGreaterThanOrEqual(2n);
        expect(drop?.counters?.packets).toBe(log?.counters?.packets);
        expect(drop?.counters?.bytes).toBe(log?.counters?.bytes);
        const input = await fw.getChain(family, 'INPUT', { counters: true });
        // --set saw all 6 new connections to 22 (5 from the attacker, 1 from the other client).
        expect(input.rules[0]?.counters?.packets).toBeGreaterThanOrEqual(6n);
      });

      it('reset restores the baseline and every connection works again', async () => {
        await resetAndExpectBaseline(api(transport));
        expect((await topo().connect(client(0), family, PORTS.ssh, CONNECT_MS)).connected).toBe(true);
      });
    });

    // ------------------------------------------------------------ 2 and 5. Hardening, IPv4 and IPv6

    describe.each(FAMILIES)('hardening (%s)', (family) => {
      // One door sends pasted spec strings, the other typed JSON.
      const form: RuleForm = transport === 'rest' ? 'spec' : 'typed';
      const other: Family = family === 'ipv4' ? 'ipv6' : 'ipv4';
      beforeAll(() => api(transport).reset());

      it('allow 22 then policy DROP: ping fails, SSH connects, other services and replies to outgoing connections are dropped', async () => {
        const fw = api(transport);
        if (family === 'ipv6')
          for (const nd of ALLOW_ND) await fw.appendRule(family, 'INPUT', rule(nd, form));
        await fw.appendRule(family, 'INPUT', rule(ALLOW_SSH, form));
        await fw.setPolicy(family, 'INPUT', 'DROP');
        const hardened: Reach = { ping: false, ssh: true, http: false, out: false };
        await Promise.all([
          expectReach(client(0), family, hardened),
          expectReach(client(1), family, hardened),
          // The other family's firewall is untouched.
          expectReach(client(0), other, ALL_OPEN),
        ]);
      });

      it('adding ESTABLISHED,RELATED lets replies to the server’s own connections in; pings and new connections to 80 stay dropped', async () => {
        const fw = api(transport);
        const added = await fw.appendRule(family, 'INPUT', rule(ALLOW_ESTABLISHED, form));
        expect(added.text).toBe(HARDENED_INPUT[1]);
        await expectReach(client(0), family, HARDENED);
      });

      it('lists exactly the rules and policy the article describes', async () => {
        const fw = api(transport);
        const input = await fw.getChain(family, 'INPUT');
        expect(input.policy).toBe('DROP');
        expect(input.rules.map((r) => r.text)).toEqual(hardenedInput(family));
        expect((await fw.getChain(family, 'FORWARD')).policy).toBe('ACCEPT');
        expect((await fw.getChain(family, 'OUTPUT')).policy).toBe('ACCEPT');
        expect(withoutComments(await fw.rulesetText(family))).toBe(hardenedFixture(family));
      });

      it('reset restores the baseline and every connection works again', async () => {
        await resetAndExpectBaseline(api(transport));
      });
    });

    // ------------------------------------------------------------ 4. Atomic transaction

    describe('atomic transaction', () => {
      beforeAll(() => api(transport).reset());
      const invalidLast: readonly { name: string; op: TxOp; code: string }[] = [
        {
          name: 'a rule with a port out of range',
          op: {
            op: 'append',
            family: 'ipv4',
            chain: 'INPUT',
            rule: { spec: '-p tcp --dport 65536 -j ACCEPT' },
          },
          code: 'invalid_argument',
        },
        {
          name: 'a rule for a chain that does not exist',
          op: { op: 'append', family: 'ipv4', chain: 'NO_SUCH_CHAIN', rule: { spec: '-j ACCEPT' } },
          code: 'not_found',
        },
      ];

      it.each(invalidLast)(
        'hardening rules and policy with $name last: refused, firewall and traffic exactly as before',
        async ({ op, code }) => {
          const fw = api(transport);
          const before = { ipv4: await fw.rulesetText('ipv4'), ipv6: await fw.rulesetText('ipv6') };
          const revision = await fw.revision();
          const ops: TxOp[] = [...hardeningOps('ipv4', 'spec'), ...hardeningOps('ipv6', 'typed'), op];
          const refused = await fw.transaction(ops).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(refused).toBeInstanceOf(ApiError);
          expect((refused as ApiError).code).toBe(code);
          expect(await fw.revision()).toBe(revision);
          expect({ ipv4: await fw.rulesetText('ipv4'), ipv6: await fw.rulesetText('ipv6') }).toEqual(before);
          await expectAllOpen();
        },
      );

      it('the same transaction without the invalid operation applies all of it at once', async () => {
        const fw = api(transport);
        const revision = await fw.revision();
        await fw.transaction([...hardeningOps('ipv4', 'spec'), ...hardeningOps('ipv6', 'typed')]);
        expect(await fw.revision()).toBeGreaterThan(revision);
        for (const f of FAMILIES) {
          expect(withoutComments(await fw.rulesetText(f))).toBe(hardenedFixture(f));
        }
        await Promise.all([
          expectReach(client(1), 'ipv4', HARDENED),
          expectReach(client(1), 'ipv6', HARDENED),
        ]);
        await resetAndExpectBaseline(fw);
      });
    });
  });
});
