/**
 * The auth matrix: every FirewallService RPC with no token, a read token and
 * a write token. Reads and Watch need read scope, everything else write; a
 * refused call changes nothing, and no log line carries a token.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FirewallService as Desc } from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import { READ_METHODS } from '../../../src/transport/grpc/server.js';
import { type GrpcFixture, READ_TOKEN, startGrpc, take, WRITE_TOKEN } from './helpers.js';

const UNARY = Object.entries(Desc.method)
  .filter(([, m]) => m.methodKind === 'unary')
  .map(([localName, m]) => ({ localName, name: m.name }));

type Who = 'none' | 'read' | 'write' | 'bad';
const TOKENS: Record<Who, string | undefined> = {
  none: undefined,
  read: READ_TOKEN,
  write: WRITE_TOKEN,
  bad: 'not-a-token',
};

function expected(name: string, who: Who): grpc.status | 'allowed' {
  if (who === 'none' || who === 'bad') return grpc.status.UNAUTHENTICATED;
  if (who === 'read' && !READ_METHODS.has(name)) return grpc.status.PERMISSION_DENIED;
  return 'allowed';
}

const MATRIX = UNARY.flatMap((m) =>
  (['none', 'bad', 'read', 'write'] as Who[]).map((who) => ({ ...m, who })),
);

describe('gRPC auth matrix (requireAuth)', () => {
  let f: GrpcFixture;
  beforeAll(async () => {
    f = await startGrpc();
  });
  afterAll(async () => {
    await f.close();
  });

  it('covers all 33 unary RPCs; reads are exactly the Get*/List* methods, Verify, Trace and Lint', () => {
    expect(UNARY).toHaveLength(33);
    expect([...READ_METHODS].sort()).toEqual([
      'GetChain',
      'GetRule',
      'GetRuleset',
      'GetStatus',
      'GetTable',
      'Lint',
      'ListAuditEntries',
      'ListChains',
      'ListConfirmations',
      'Trace',
      'Verify',
      'Watch',
    ]);
  });

  it.each(MATRIX)('$name with $who token', async ({ localName, name, who }) => {
    const before = await f.fake.save('ipv4');
    const call = (f.client as unknown as Record<string, (r: object, o: object) => Promise<unknown>>)[
      localName
    ];
    const token = TOKENS[who];
    const outcome = await (call as (r: object, o: object) => Promise<unknown>)(
      {},
      token === undefined ? {} : { token },
    ).then(
      () => 'ok' as const,
      (e: grpc.ServiceError) => e,
    );
    const want = expected(name, who);
    if (want === 'allowed') {
      // Empty requests may be refused by the service (e.g. no chain), but never for auth.
      if (outcome !== 'ok') {
        expect([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]).not.toContain(outcome.code);
      }
    } else {
      expect(outcome).not.toBe('ok');
      expect((outcome as grpc.ServiceError).code).toBe(want);
      const code = want === grpc.status.UNAUTHENTICATED ? 'unauthenticated' : 'permission_denied';
      expect((outcome as grpc.ServiceError).metadata.get('portcullis-code')).toEqual([code]);
      expect(await f.fake.save('ipv4'), 'a refused call changes nothing').toBe(before);
    }
  });

  it.each([
    ['none', grpc.status.UNAUTHENTICATED],
    ['bad', grpc.status.UNAUTHENTICATED],
  ] as const)('Watch with %s token is refused', async (who, code) => {
    const token = TOKENS[who];
    const stream = f.client.watch({}, token === undefined ? {} : { token });
    const err = await new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
    expect(err.code).toBe(code);
  });

  it.each(['read', 'write'] as const)('Watch with a %s token streams events', async (who) => {
    const stream = f.client.watch({}, { token: TOKENS[who] as string });
    stream.on('error', () => {});
    const events = take(stream, 1);
    await new Promise((r) => setTimeout(r, 50));
    await f.client.createChain({ chain: `W${who.toUpperCase()}` }, { token: WRITE_TOKEN });
    expect((await events)[0]?.event?.changes[0]).toMatchObject({ type: 'chain.created' });
    stream.cancel();
  });

  it('metadata "authorization" accepts the bearer scheme only', async () => {
    const err = await f.client
      .getStatus({}, { metadata: { authorization: `Basic ${READ_TOKEN}` } })
      .catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it('no log line holds a token; lines name the caller', () => {
    const all = f.logs.join('\n');
    expect(all).not.toContain(READ_TOKEN);
    expect(all).not.toContain(WRITE_TOKEN);
    expect(all).not.toContain('not-a-token');
    expect(all).toMatch(/portcullis\.v1\.FirewallService\/GetStatus OK .*caller=reader/);
    expect(all).toMatch(/AppendRule PERMISSION_DENIED .*caller=reader/);
  });
});

describe('gRPC without requireAuth (local socket)', () => {
  it('calls need no token', async () => {
    const f = await startGrpc({ requireAuth: false });
    try {
      await expect(f.client.createChain({ chain: 'LOCAL' }, {})).resolves.toMatchObject({ revision: 2n });
    } finally {
      await f.close();
    }
  });
});
