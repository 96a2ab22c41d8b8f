/**
 * The lockout guard, trace and lint through both doors: a refused change is 409 /
 * FAILED_PRECONDITION with reason `lockout` and the paths in the details, nothing reaches the
 * kernel, allowLockout lets it through; a caller over TCP is protected on the port it used;
 * trace and lint answer with read scope; every REST response matches the OpenAPI document.
 */
import * as grpc from '@grpc/grpc-js';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FirewallService as FirewallServiceDesc } from '../../src/gen/portcullis/v1/firewall_service_pb.js';
import { Family as FamilyEnum, Policy as PolicyEnum } from '../../src/gen/portcullis/v1/rule_pb.js';
import type { GuardConfig } from '../../src/service/guard.js';
import { createPromiseClient } from '../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../src/transport/grpc/server.js';
import { createApp } from '../../src/transport/http/app.js';
import { type ServiceFixture, startService } from '../helpers/service.js';
import { bind, grpcError } from './grpc/helpers.js';
import { authenticator, checked, READ, WRITE } from './http/helpers.js';

const SSH: GuardConfig = { sshPorts: [22], sshSources: [], apiPorts: [], adminSources: [] };
const POLICY = '/v1/tables/filter/chains/INPUT/policy';

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

async function rest(guard: GuardConfig = SSH): Promise<ServiceFixture & { api: () => request.Agent }> {
  const fx = await startService({ families: ['ipv4', 'ipv6'], guard });
  open.push(() => fx.service.close());
  const app = createApp({ service: fx.service, auth: authenticator(), requireAuth: true, logger: () => {} });
  return { ...fx, api: () => request.agent(app) };
}

async function rpc(guard: GuardConfig = SSH) {
  const fx = await startService({ families: ['ipv4', 'ipv6'], guard });
  const server = createGrpcServer({
    service: fx.service,
    auth: authenticator(),
    requireAuth: true,
    logger: () => {},
  });
  const port = await bind(server);
  const client = createPromiseClient(FirewallServiceDesc, `127.0.0.1:${port}`);
  open.push(async () => {
    client.close();
    server.forceShutdown();
    await fx.service.close();
  });
  const md = (token: string) => ({ metadata: { authorization: `Bearer ${token}` } });
  return { ...fx, client, port, write: md('write-token-0123456789'), read: md('read-token-0123456789') };
}

describe('REST', () => {
  it('refuses a lockout with 409, reason lockout and the paths; nothing reaches the kernel', async () => {
    const { api, fake } = await rest();
    const r = checked(await api().put(POLICY).set('Authorization', WRITE).send({ policy: 'DROP' }));
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'failed_precondition', reason: 'lockout' });
    expect(r.body.details.lockouts[0]).toEqual({
      path: 'ssh tcp/22 NEW from anywhere (ipv4)',
      family: 'ipv4',
      after: 'DROP',
      cutBy: 'the DROP policy of filter INPUT',
    });
    expect(r.body.detail).toMatch(/would lock you out/);
    expect(fake.restores).toHaveLength(0);
  });

  it('lets it through with ?allowLockout=true, and a transaction with allowLockout', async () => {
    const { api } = await rest();
    const r = checked(
      await api().put(`${POLICY}?allowLockout=true`).set('Authorization', WRITE).send({ policy: 'DROP' }),
    );
    expect(r.status).toBe(200);
    const tx = checked(
      await api()
        .post('/v1/transactions')
        .set('Authorization', WRITE)
        .send({
          operations: [{ op: 'setPolicy', family: 'ipv6', chain: 'INPUT', policy: 'DROP' }],
          allowLockout: true,
        }),
    );
    expect(tx.status).toBe(200);
  });

  it('a dry run reports the lockouts and the findings a change adds instead of refusing', async () => {
    const { api } = await rest();
    const r = checked(
      await api()
        .post('/v1/transactions')
        .set('Authorization', WRITE)
        .send({ operations: [{ op: 'setPolicy', chain: 'INPUT', policy: 'DROP' }], dryRun: true }),
    );
    expect(r.status).toBe(200);
    expect(r.body.lockouts.map((l: { path: string }) => l.path)).toContain(
      'ssh tcp/22 NEW from anywhere (ipv4)',
    );
    expect(r.body.findings.map((f: { code: string }) => f.code)).toContain('input-drop-without-established');
  });

  it('protects the caller: its own address to the port it reached the API on', async () => {
    const { api } = await rest({ sshPorts: [], sshSources: [], apiPorts: [], adminSources: [] });
    const r = checked(await api().put(POLICY).set('Authorization', WRITE).send({ policy: 'DROP' }));
    expect(r.status).toBe(409);
    expect(r.body.details.lockouts[0].path).toMatch(/^caller tcp\/\d+ NEW from 127\.0\.0\.1 \(ipv4\)$/);
  });

  it('does not protect callers when the API is not behind the managed firewall', async () => {
    const { api } = await rest({
      sshPorts: [],
      sshSources: [],
      apiPorts: [],
      adminSources: [],
      protectCallers: false,
    });
    expect(checked(await api().put(POLICY).set('Authorization', WRITE).send({ policy: 'DROP' })).status).toBe(
      200,
    );
  });

  it('traces (current and proposed) and lints with a read token', async () => {
    const { api } = await rest();
    const packet = { family: 'ipv4', hook: 'INPUT', protocol: 'tcp', destinationPort: 22, tcpFlags: ['SYN'] };
    await api()
      .post('/v1/tables/filter/chains/INPUT/rules')
      .set('Authorization', WRITE)
      .send({ spec: '-p tcp --dport 22 -j ACCEPT' })
      .expect(201);
    const now = checked(await api().post('/v1/trace').set('Authorization', READ).send({ packet }));
    expect(now.status).toBe(200);
    expect(now.body).toMatchObject({ revision: 2, proposed: false, definite: true, verdict: 'ACCEPT' });
    expect(now.body.managed.outcomes[0].decidedBy).toMatchObject({
      kind: 'rule',
      table: 'filter',
      chain: 'INPUT',
      position: 1,
      matched: 'yes',
      ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
    });
    const proposed = checked(
      await api()
        .post('/v1/trace')
        .set('Authorization', READ)
        .send({
          packet: { ...packet, destinationPort: 80 },
          operations: [{ op: 'setPolicy', chain: 'INPUT', policy: 'DROP' }],
        }),
    );
    expect(proposed.body).toMatchObject({ proposed: true, definite: true, verdict: 'DROP' });
    const lint = checked(await api().get('/v1/lint').set('Authorization', READ));
    expect(lint.status).toBe(200);
    expect(lint.body).toEqual({ revision: 2, findings: [] });
  });

  it('refuses a bad packet with 400 naming the field, and never with 5xx', async () => {
    const { api } = await rest();
    const cases: [unknown, string][] = [
      [{ family: 'ipv4', hook: 'INPUT', destinationPort: 22, source: '2001:db8::1' }, 'packet.source'],
      [{ family: 'ipv4', hook: 'INPUT', outInterface: 'eth0' }, 'packet.outInterface'],
      [{ family: 'ipv4', hook: 'UP' }, 'packet.hook'],
      [{ family: 'ipv4', hook: 'INPUT', bogus: 1 }, 'packet.bogus'],
      [{ family: 'ipv4', hook: 'INPUT', ipsets: { a: ['not an address'] } }, 'packet.ipsets.a[0]'],
    ];
    for (const [packet, field] of cases) {
      const r = checked(await api().post('/v1/trace').set('Authorization', READ).send({ packet }));
      expect(r.status, JSON.stringify(packet)).toBe(400);
      expect(r.body.field ?? r.body.errors?.[0]?.field, JSON.stringify(packet)).toBe(field);
    }
  });
});

describe('gRPC', () => {
  it('refuses a lockout with FAILED_PRECONDITION and reason lockout; allow_lockout lets it through', async () => {
    const { client, write, fake } = await rpc();
    const e = await grpcError(
      client.setPolicy(
        { family: FamilyEnum.IPV4, table: 'filter', chain: 'INPUT', policy: PolicyEnum.DROP },
        write,
      ),
    );
    expect(e.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e.metadata.get('portcullis-reason')).toEqual(['lockout']);
    expect(e.details).toMatch(/ssh tcp\/22 NEW from anywhere \(ipv4\) would be DROP/);
    expect(fake.restores).toHaveLength(0);
    const ok = await client.setPolicy(
      {
        family: FamilyEnum.IPV4,
        table: 'filter',
        chain: 'INPUT',
        policy: PolicyEnum.DROP,
        allowLockout: true,
      },
      write,
    );
    expect(ok.revision).toBe(2n);
  });

  it('protects the caller on the gRPC port', async () => {
    const { client, write, port } = await rpc({
      sshPorts: [],
      sshSources: [],
      apiPorts: [],
      adminSources: [],
    });
    const e = await grpcError(
      client.setPolicy(
        { family: FamilyEnum.IPV4, table: 'filter', chain: 'INPUT', policy: PolicyEnum.DROP },
        write,
      ),
    );
    expect(e.details).toContain(`caller tcp/${port} NEW from 127.0.0.1 (ipv4)`);
  });

  it('traces and lints with a read token; a dry run carries lockouts', async () => {
    const { client, read, write } = await rpc();
    const t = await client.trace(
      {
        packet: {
          family: FamilyEnum.IPV4,
          hook: 'INPUT',
          protocol: 'tcp',
          destinationPort: 22,
          tcpFlags: { values: ['SYN'] },
        },
      },
      read,
    );
    expect(t).toMatchObject({ definite: true, verdict: 'ACCEPT', proposed: false });
    const l = await client.lint({}, read);
    expect(l.findings).toEqual([]);
    const dry = await client.apply(
      {
        operations: [
          {
            kind: {
              case: 'setPolicy',
              value: { family: FamilyEnum.IPV6, table: 'filter', chain: 'INPUT', policy: PolicyEnum.DROP },
            },
          },
        ],
        dryRun: true,
      },
      write,
    );
    expect(dry.lockouts.map((x) => x.path)).toContain('ipv6 neighbour solicitation');
  });

  it('refuses a trace without a packet with INVALID_ARGUMENT, field packet', async () => {
    const { client, read } = await rpc();
    const e = await grpcError(client.trace({}, read));
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.metadata.get('portcullis-field')).toEqual(['packet']);
  });
});
