/**
 * The lockout guard end to end, on real packets: Portcullis as a user runs it (the default
 * guard protects TCP 22 from anywhere), a server namespace with an SSH-like listener on 22 and
 * a web one on 80, and a client namespace on a veth link.
 *
 * The hardening article's steps in the wrong order (policy DROP before allowing SSH) are
 * refused through either door and SSH keeps connecting; in the right order they pass; the ipv6
 * variant without ICMPv6 neighbour discovery is refused with the reason; allowLockout applies
 * the change anyway, and then SSH is really cut, which is what the guard prevented.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeKernel } from '../helpers/kernel.js';
import {
  ApiError,
  type Family,
  type FirewallClient,
  GrpcClient,
  RestClient,
  type Transport,
} from './clients.js';
import { type PortcullisProcess, startPortcullis } from './portcullis.js';
import { type Client, PORTS, Topology } from './topology.js';

/** A connection expected to get through may take this long on a busy machine. */
const CONNECT_MS = 3000;
/** A connection expected to be dropped is given up after this long. */
const DROPPED_MS = 800;
const ALLOW_SSH = '-p tcp -m tcp --dport 22 -j ACCEPT';
const ND = [
  '-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT',
  '-p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT',
];

describeKernel('e2e: the lockout guard on real packets', () => {
  let topology: Topology | undefined;
  let portcullis: PortcullisProcess | undefined;
  const clients = new Map<Transport, FirewallClient>();

  const topo = (): Topology => {
    if (!topology) throw new Error('no topology');
    return topology;
  };
  const api = (t: Transport): FirewallClient => {
    const c = clients.get(t);
    if (!c) throw new Error(`no ${t} client`);
    return c;
  };
  const client = (): Client => topo().clients[0] as Client;

  beforeAll(async () => {
    topology = await Topology.create({ prefix: 'plock', clients: 1 });
    portcullis = await startPortcullis({ netns: topology.server.netns });
    clients.set('rest', new RestClient(portcullis.restUrl, portcullis.token));
    clients.set('grpc', new GrpcClient(portcullis.grpcAddress, portcullis.token));
  }, 120_000);

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    const errors: unknown[] = [];
    await portcullis?.stop().catch((e: unknown) => errors.push(e));
    await topology?.destroy().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, 'teardown failed');
  }, 60_000);

  /** Whether a new connection from the client to the server's port gets through. */
  async function connects(family: Family, port: number, expected: boolean): Promise<boolean> {
    const r = await topo().connect(client(), family, port, expected ? CONNECT_MS : DROPPED_MS);
    return r.connected;
  }

  async function refusal(p: Promise<unknown>): Promise<ApiError> {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }

  async function kernelInput(family: Family): Promise<string> {
    const save = await topo().inServer([
      family === 'ipv4' ? 'iptables-save' : 'ip6tables-save',
      '-t',
      'filter',
    ]);
    return /^:INPUT (\S+)/m.exec(save.stdout)?.[1] ?? 'missing';
  }

  describe.each<Transport>(['rest', 'grpc'])('through %s', (transport) => {
    beforeAll(() => api(transport).reset());

    it('policy DROP before SSH is allowed is refused with reason lockout; the kernel keeps ACCEPT; SSH connects', async () => {
      const fw = api(transport);
      const e = await refusal(fw.setPolicy('ipv4', 'INPUT', 'DROP'));
      expect(e.code).toBe('failed_precondition');
      expect(e.reason).toBe('lockout');
      expect(e.message).toMatch(
        /ssh tcp\/22 NEW from anywhere \(ipv4\) would be DROP, cut by the DROP policy of filter INPUT/,
      );
      expect(await kernelInput('ipv4')).toBe('ACCEPT');
      expect(await connects('ipv4', PORTS.ssh, true)).toBe(true);
    });

    it('in the article’s order (allow 22, then DROP) it passes: SSH connects, the web port is dropped', async () => {
      const fw = api(transport);
      await fw.appendRule('ipv4', 'INPUT', { spec: ALLOW_SSH });
      await fw.setPolicy('ipv4', 'INPUT', 'DROP');
      expect(await kernelInput('ipv4')).toBe('DROP');
      expect(await connects('ipv4', PORTS.ssh, true)).toBe(true);
      expect(await connects('ipv4', PORTS.http, false)).toBe(false);
      await fw.reset();
    });

    it('ipv6: policy DROP without ICMPv6 neighbour discovery is refused, naming it; with ND allowed it passes', async () => {
      const fw = api(transport);
      await fw.appendRule('ipv6', 'INPUT', { spec: ALLOW_SSH });
      const e = await refusal(fw.setPolicy('ipv6', 'INPUT', 'DROP'));
      expect(e.reason).toBe('lockout');
      expect(e.message).toMatch(/ipv6 neighbour (solicitation|advertisement) would be DROP/);
      expect(await kernelInput('ipv6')).toBe('ACCEPT');
      for (const spec of ND) await fw.appendRule('ipv6', 'INPUT', { spec });
      await fw.setPolicy('ipv6', 'INPUT', 'DROP');
      expect(await kernelInput('ipv6')).toBe('DROP');
      expect(await connects('ipv6', PORTS.ssh, true)).toBe(true);
      expect(await connects('ipv6', PORTS.http, false)).toBe(false);
      await fw.reset();
    });
  });

  it('allowLockout applies the refused change, and then SSH is really cut', async () => {
    const p = portcullis as PortcullisProcess;
    const res = await fetch(`${p.restUrl}/v1/tables/filter/chains/INPUT/policy?allowLockout=true`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${p.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ policy: 'DROP' }),
    });
    expect(res.status).toBe(200);
    expect(await kernelInput('ipv4')).toBe('DROP');
    expect(await connects('ipv4', PORTS.ssh, false)).toBe(false);
    await api('rest').reset();
    expect(await connects('ipv4', PORTS.ssh, true)).toBe(true);
  });
});
