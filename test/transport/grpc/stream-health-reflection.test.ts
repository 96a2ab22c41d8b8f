/**
 * Watch (events in revision order; a cancelled stream unsubscribes), the
 * standard health service, server reflection, and a stock client nobody here
 * wrote: `buf curl --protocol grpc` (the pinned @bufbuild/buf) through
 * reflection, without the .proto.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from '../../../src/gen/grpc/health/v1/health_pb.js';
import { Origin } from '../../../src/gen/portcullis/v1/rule_pb.js';
import type { EventHub } from '../../../src/service/events.js';
import { createPromiseClient } from '../../../src/transport/grpc/client.js';
import {
  buf,
  type GrpcFixture,
  kernelRules,
  READ_TOKEN,
  startGrpc,
  take,
  until,
  WRITE_TOKEN,
} from './helpers.js';

const spec = (value: string) => ({ kind: { case: 'spec' as const, value } });

/** How many listeners the service's event hub has (the Watch subscriptions). */
function listeners(f: GrpcFixture): number {
  // Private state: the hub lives on the service's model (it was on the service itself before).
  const s = f.service as unknown as { hub?: EventHub; model?: { hub?: EventHub } };
  const hub = s.model?.hub ?? s.hub;
  if (hub === undefined) throw new Error('cannot find the service event hub');
  return hub.size;
}

let f: GrpcFixture;
beforeAll(async () => {
  f = await startGrpc();
});
afterAll(async () => {
  await f.close();
});

describe('gRPC Watch', () => {
  it('streams committed changes in revision order', async () => {
    const stream = f.client.watch({}, { token: READ_TOKEN });
    stream.on('error', () => {});
    const base = listeners(f);
    const events = take(stream, 3);
    await until('the Watch subscribed', () => listeners(f) >= 1 && base >= 0);
    const start = f.service.revision;
    await f.client.createChain({ chain: 'WATCHED' }, { token: WRITE_TOKEN });
    await f.client.appendRule({ chain: 'WATCHED', rule: spec('-j RETURN') }, { token: WRITE_TOKEN });
    await f.client.deleteRule(
      { chain: 'WATCHED', target: { case: 'position', value: 1 } },
      { token: WRITE_TOKEN },
    );
    const got = await events;
    expect(got.map((m) => m.event?.revision)).toEqual([1, 2, 3].map((d) => BigInt(start + d)));
    expect(got.map((m) => m.event?.changes.map((c) => c.type))).toEqual([
      ['chain.created'],
      ['rule.added'],
      ['rule.deleted'],
    ]);
    expect(got.every((m) => m.event?.origin === Origin.SERVICE && m.event.client === 'grpc')).toBe(true);
    expect(got[0]?.event?.time?.seconds).toBeGreaterThan(0n);
    stream.cancel();
  });

  it('a cancelled Watch unsubscribes from the service', async () => {
    await until('earlier streams are gone', () => listeners(f) === 0);
    const streams = [0, 1].map(() => {
      const s = f.client.watch({}, { token: READ_TOKEN });
      s.on('error', () => {});
      return s;
    });
    await until('two subscriptions', () => listeners(f) === 2);
    streams[0]?.cancel();
    await until('one subscription left', () => listeners(f) === 1);
    streams[1]?.cancel();
    await until('no subscription left', () => listeners(f) === 0);
  });

  it('a Watch refused for auth never subscribes', async () => {
    const s = f.client.watch({}, {});
    const err = await new Promise<grpc.ServiceError>((resolve) => s.on('error', resolve));
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(listeners(f)).toBe(0);
  });
});

describe('gRPC health (grpc.health.v1, no token needed)', () => {
  it('the server and FirewallService are SERVING while the service is ready; unknown services are NOT_FOUND', async () => {
    const health = createPromiseClient(Health, f.address);
    try {
      expect((await health.check({})).status).toBe(Serving.SERVING);
      expect((await health.check({ service: 'portcullis.v1.FirewallService' })).status).toBe(Serving.SERVING);
      expect(Object.keys((await health.list({})).statuses).sort()).toEqual([
        '',
        'portcullis.v1.FirewallService',
      ]);
      const err = await health.check({ service: 'nope.Service' }).catch((e: grpc.ServiceError) => e);
      expect(err).toMatchObject({ code: grpc.status.NOT_FOUND });
      const watch = health.watch({});
      watch.on('error', () => {});
      expect((await take(watch, 1))[0]?.status).toBe(Serving.SERVING);
      watch.cancel();
    } finally {
      health.close();
    }
  });

  it('is NOT_SERVING before the service has read the kernel', async () => {
    const g = await startGrpc({ started: false });
    const health = createPromiseClient(Health, g.address);
    try {
      expect((await health.check({})).status).toBe(Serving.NOT_SERVING);
      const watch = health.watch({ service: 'portcullis.v1.FirewallService' });
      watch.on('error', () => {});
      expect((await take(watch, 1))[0]?.status).toBe(Serving.NOT_SERVING);
      const next = take(watch, 1);
      await g.service.start();
      expect((await next)[0]?.status).toBe(Serving.SERVING);
      watch.cancel();
    } finally {
      health.close();
      await g.close();
    }
  });
});

describe('gRPC reflection and a stock client (buf curl)', () => {
  const url = (path = '') => `http://${f.address}/${path}`;
  const base = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge'];

  it('lists every FirewallService method and the health service through reflection', async () => {
    const r = await buf([...base, '--list-methods', url()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const methods = r.stdout.trim().split('\n');
    expect(methods).toContain('grpc.health.v1.Health/Check');
    for (const name of ['GetRuleset', 'GetRule', 'AppendRule', 'DeleteRule', 'Apply', 'Reset', 'Watch']) {
      expect(methods).toContain(`portcullis.v1.FirewallService/${name}`);
    }
    expect(methods.filter((m) => m.startsWith('portcullis.v1.FirewallService/'))).toHaveLength(34);
  });

  it('AppendRule with typed JSON and a bearer token, then GetChain, as a stock client sees them', async () => {
    const body = {
      chain: 'INPUT',
      rule: {
        rule: {
          protocol: 'tcp',
          matches: [
            { module: 'tcp', options: { dport: '2222' } },
            { module: 'conntrack', options: { ctstate: ['NEW'] } },
          ],
          target: { jump: 'ACCEPT' },
        },
      },
    };
    const r = await buf([
      ...base,
      '-H',
      `authorization: Bearer ${WRITE_TOKEN}`,
      '-d',
      JSON.stringify(body),
      url('portcullis.v1.FirewallService/AppendRule'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      revision: string;
      rule: { text: string; position: number; id: string };
    };
    expect(out.rule.text).toBe('-p tcp -m tcp --dport 2222 -m conntrack --ctstate NEW -j ACCEPT');
    expect(typeof out.revision).toBe('string');
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toContain(out.rule.text);
    const read = await buf([
      ...base,
      '-H',
      `authorization: Bearer ${READ_TOKEN}`,
      '-d',
      '{"chain":"INPUT"}',
      url('portcullis.v1.FirewallService/GetChain'),
    ]);
    expect(read.code).toBe(0);
    const chain = JSON.parse(read.stdout) as { chain: { rules: { id: string }[] } };
    expect(chain.chain.rules.map((x) => x.id)).toContain(out.rule.id);
  });

  it('errors reach a stock client with their code; without a token it is unauthenticated', async () => {
    const denied = await buf([
      ...base,
      '-d',
      '{"chain":"INPUT","rule":{"spec":"-j ACCEPT"}}',
      url('portcullis.v1.FirewallService/AppendRule'),
    ]);
    expect(denied.code).not.toBe(0);
    expect(JSON.parse(denied.stderr)).toMatchObject({ code: 'unauthenticated' });
    const missing = await buf([
      ...base,
      '-H',
      `authorization: Bearer ${WRITE_TOKEN}`,
      '-d',
      '{"chain":"NOPE","rule":{"spec":"-j ACCEPT"}}',
      url('portcullis.v1.FirewallService/AppendRule'),
    ]);
    expect(missing.code).not.toBe(0);
    expect(JSON.parse(missing.stderr)).toMatchObject({
      code: 'not_found',
      message: expect.stringContaining('NOPE'),
    });
  });
});
