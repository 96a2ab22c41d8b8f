/**
 * What the gRPC door itself decides, mirroring REST (test/transport/http/door.test.ts): a
 * name is exactly the string sent (a leading U+FEFF is not dropped), two authorization
 * values are refused, a message over the size limit is RESOURCE_EXHAUSTED naming the limit
 * and --max-body-bytes, and a message nested deeper than the limit is INVALID_ARGUMENT
 * naming it. Undecodable messages: see fuzz.test.ts.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AppendRuleRequestSchema,
  FirewallService as Desc,
} from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import { createPromiseClient } from '../../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../../src/transport/grpc/server.js';
import { MAX_NESTING_DEPTH } from '../../../src/transport/nesting.js';
import { seedInput } from '../../helpers/service.js';
import {
  authenticator,
  bind,
  buf,
  type GrpcFixture,
  grpcError,
  kernelRules,
  startGrpc,
  statusDetails,
  WRITE_TOKEN,
} from './helpers.js';

const w = { token: WRITE_TOKEN };
const spec = (value: string) => ({ kind: { case: 'spec' as const, value } });

let f: GrpcFixture | undefined;
afterEach(async () => {
  await f?.close();
  f = undefined;
});

describe('names are exactly what was sent', () => {
  it('a chain name with a leading U+FEFF is refused, not taken for the chain without it', async () => {
    f = await startGrpc();
    await f.client.createChain({ chain: 'SBX' }, w);
    for (const chain of ['\ufeffSBX', 'SBX\ufeff']) {
      const e = await grpcError(f.client.appendRule({ chain, rule: spec('-j ACCEPT') }, w));
      expect({ code: e.code, field: e.metadata.get('portcullis-field')[0] }).toEqual({
        code: grpc.status.INVALID_ARGUMENT,
        field: 'chain',
      });
      // A read of the name is answered for exactly that name: there is no such chain.
      const g = await grpcError(f.client.getChain({ chain }, w));
      expect(g.code).toBe(grpc.status.NOT_FOUND);
    }
    expect(await kernelRules(f.fake, 'ipv4', 'SBX')).toEqual([]);
    // The server decodes the bytes it received: U+FEFF is there on the wire.
    const bytes = toBinary(AppendRuleRequestSchema, create(AppendRuleRequestSchema, { chain: '\ufeffSBX' }));
    expect(Buffer.from(bytes).includes(Buffer.from([0xef, 0xbb, 0xbf]))).toBe(true);
  });
});

describe('two authorization values', () => {
  it('are UNAUTHENTICATED whatever their order (a stock client sends both)', async () => {
    f = await startGrpc();
    for (const pair of [
      ['write-token', 'read-token'],
      ['read-token', 'write-token'],
    ]) {
      const r = await buf([
        'curl',
        '--protocol',
        'grpc',
        '--http2-prior-knowledge',
        '-H',
        `authorization: Bearer ${pair[0]}`,
        '-H',
        `authorization: Bearer ${pair[1]}`,
        '-d',
        JSON.stringify({ chain: 'INPUT', rule: { spec: '-j DROP' } }),
        `http://${f.address}/portcullis.v1.FirewallService/AppendRule`,
      ]);
      expect(r.code).not.toBe(0);
      const out = JSON.parse(r.stderr) as { code: string; message: string };
      expect(out.code).toBe('unauthenticated');
      expect(out.message).toContain('2 authorization metadata values');
    }
    expect(await kernelRules(f.fake, 'ipv4', 'INPUT')).toEqual(seedInput('ipv4'));
  });
});

describe('the size limit', () => {
  it('RESOURCE_EXHAUSTED names the limit in bytes and --max-body-bytes', async () => {
    f = await startGrpc();
    const server = createGrpcServer({
      service: f.service,
      auth: authenticator,
      requireAuth: true,
      maxMessageBytes: 4096,
    });
    const port = await bind(server);
    const client = createPromiseClient(Desc, `127.0.0.1:${port}`);
    try {
      const e = await grpcError(
        client.appendRule(
          { chain: 'INPUT', rule: spec(`-m comment --comment "${'x'.repeat(5000)}" -j DROP`) },
          w,
        ),
      );
      expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(e.details).toContain('the limit of 4096 bytes');
      expect(e.details).toContain('--max-body-bytes');
      expect(e.metadata.get('portcullis-code')).toEqual(['resource_exhausted']);
      expect(statusDetails(e).info?.metadata.limitBytes).toBe('4096');
      // Under the limit the same server answers.
      await client.appendRule({ chain: 'INPUT', rule: spec('-j DROP') }, w);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe('the nesting limit', () => {
  it(`a Struct nested more than ${MAX_NESTING_DEPTH} levels is INVALID_ARGUMENT naming the limit`, async () => {
    f = await startGrpc();
    for (const depth of [MAX_NESTING_DEPTH + 1, 300]) {
      let options: Record<string, unknown> = { leaf: 'x' };
      for (let i = 1; i < depth; i++) options = { a: options };
      const e = await grpcError(
        f.client.appendRule(
          {
            chain: 'INPUT',
            rule: {
              kind: { case: 'rule', value: { matches: [{ module: 'comment', options: options as never }] } },
            },
          },
          { ...w, metadata: { 'idempotency-key': `deep-${depth}` } },
        ),
      );
      expect(e.code, `${depth}: ${e.details}`).toBe(grpc.status.INVALID_ARGUMENT);
      expect(e.details).toContain(`more than ${MAX_NESTING_DEPTH} levels deep`);
    }
    expect(f.logs.filter((l) => l.includes('internal error'))).toEqual([]);
  });
});
