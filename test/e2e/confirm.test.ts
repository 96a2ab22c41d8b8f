/**
 * Commit-confirmed with real packets: a change that cuts the client's SSH, applied with
 * confirmWithin, really cuts it; not confirmed, it is rolled back at the deadline and a new
 * connection succeeds; the same across a kill -9 of the service (the restarted service rolls
 * back a passed deadline before it is ready); a confirmed change stays past its deadline.
 * Presets through the API on the kernel: the rate limit admits three new connections a
 * minute, and harden runs twice with no change the second time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeKernel } from '../helpers/kernel.js';
import { type PortcullisProcess, startPortcullis } from './portcullis.js';
import { type Client, PORTS, Topology } from './topology.js';

const CONNECT_MS = 3000;
const DROPPED_MS = 800;
const WINDOW_S = 5;
const CUT_SSH = {
  operations: [{ op: 'setPolicy', chain: 'INPUT', policy: 'DROP' }],
  confirmWithin: WINDOW_S,
};

describeKernel('e2e: commit-confirmed and presets on real packets', () => {
  let topology: Topology | undefined;
  let portcullis: PortcullisProcess | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), 'pcl-e2e-confirm-'));
  let token = '';

  const topo = (): Topology => {
    if (!topology) throw new Error('no topology');
    return topology;
  };
  const client = (): Client => topo().clients[0] as Client;
  const service = (): PortcullisProcess => {
    if (!portcullis) throw new Error('no service');
    return portcullis;
  };

  async function start(): Promise<void> {
    portcullis = await startPortcullis({ netns: topo().server.netns, stateDir, ...(token ? { token } : {}) });
    token = portcullis.token;
  }

  beforeAll(async () => {
    topology = await Topology.create({ prefix: 'pconf', clients: 1 });
    await start();
  }, 120_000);

  afterAll(async () => {
    const errors: unknown[] = [];
    await portcullis?.stop().catch((e: unknown) => errors.push(e));
    await topology?.destroy().catch((e: unknown) => errors.push(e));
    rmSync(stateDir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'teardown failed');
  }, 60_000);

  async function api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${service().restUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async function ssh(expected: boolean): Promise<boolean> {
    return (await topo().connect(client(), 'ipv4', PORTS.ssh, expected ? CONNECT_MS : DROPPED_MS)).connected;
  }

  /** Whether SSH connects, observed until it does or `ms` pass (the rollback's own timing). */
  async function sshComesBack(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await ssh(true)) return true;
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  describe('commit-confirmed', () => {
    it('a change that cuts SSH, not confirmed, is rolled back at the deadline', async () => {
      const r = await api('POST', '/v1/transactions', CUT_SSH);
      expect(r.status).toBe(200);
      const confirmation = r.json.confirmation as { id: string; lockouts: { path: string }[] };
      expect(confirmation.lockouts.map((l) => l.path)).toContain('ssh tcp/22 NEW from anywhere (ipv4)');
      expect(await ssh(false)).toBe(false);
      expect(await sshComesBack(WINDOW_S * 1000 + 10_000)).toBe(true);
      expect((await api('GET', '/v1/confirmations')).json.confirmations).toEqual([]);
    }, 60_000);

    it('the same across a kill -9: the restarted service rolls back before it is ready', async () => {
      const r = await api('POST', '/v1/transactions', CUT_SSH);
      expect(r.status).toBe(200);
      expect(await ssh(false)).toBe(false);
      await service().kill();
      // Down past the deadline: nobody is there to roll back.
      await new Promise((res) => setTimeout(res, WINDOW_S * 1000 + 500));
      expect(await ssh(false)).toBe(false);
      await start();
      // Ready means rolled back: the first connection after start works.
      expect(await ssh(true)).toBe(true);
      const policy = await api('GET', '/v1/tables/filter/chains/INPUT');
      expect(policy.json).toMatchObject({ chain: { policy: 'ACCEPT' } });
    }, 120_000);

    it('a confirmed change stays past its deadline', async () => {
      await api('POST', '/v1/tables/filter/chains/INPUT/rules', {
        spec: '-p tcp -m tcp --dport 22 -j ACCEPT',
      });
      const r = await api('POST', '/v1/transactions', CUT_SSH);
      const id = (r.json.confirmation as { id: string }).id;
      expect((await api('POST', `/v1/confirmations/${id}`)).status).toBe(200);
      await new Promise((res) => setTimeout(res, WINDOW_S * 1000 + 1000));
      expect(await ssh(true)).toBe(true);
      expect(await topo().connect(client(), 'ipv4', PORTS.http, DROPPED_MS)).toMatchObject({
        connected: false,
      });
      expect((await api('POST', '/v1/reset')).status).toBe(200);
    }, 60_000);
  });

  describe('presets', () => {
    it('rate-limit admits three new SSH connections a minute per source and drops the fourth', async () => {
      const r = await api('POST', '/v1/presets/rate-limit', { port: 22, families: ['ipv4'] });
      expect(r.status).toBe(200);
      const seen: boolean[] = [];
      for (let i = 0; i < 4; i++) seen.push(await ssh(i < 3));
      expect(seen).toEqual([true, true, true, false]);
      const again = await api('POST', '/v1/presets/rate-limit', { port: 22, families: ['ipv4'] });
      expect(again.json.changes).toEqual([]);
      expect((await api('POST', '/v1/reset')).status).toBe(200);
    }, 60_000);

    it('harden: SSH connects, the web port is dropped, and a second run changes nothing', async () => {
      const r = await api('POST', '/v1/presets/harden', {});
      expect(r.status).toBe(200);
      expect(await ssh(true)).toBe(true);
      expect(await topo().connect(client(), 'ipv4', PORTS.http, DROPPED_MS)).toMatchObject({
        connected: false,
      });
      expect(await topo().connect(client(), 'ipv6', PORTS.ssh, CONNECT_MS)).toMatchObject({
        connected: true,
      });
      const again = await api('POST', '/v1/presets/harden', {});
      expect(again.json.changes).toEqual([]);
      expect((await api('POST', '/v1/reset')).status).toBe(200);
    }, 60_000);
  });
});
