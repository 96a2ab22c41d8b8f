/**
 * Domain error codes -> gRPC status codes, with the details a client acts on:
 * google.rpc.Status in `grpc-status-details-bin` (ErrorInfo reason = domain
 * code, metadata.field; BadRequest for INVALID_ARGUMENT) and the
 * `portcullis-code` / `portcullis-field` trailers. Internal errors never leak
 * their message.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecError } from '../../../src/exec/executor.js';
import type { FirewallService as Desc } from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import type { PromiseClient } from '../../../src/transport/grpc/client.js';
import {
  type GrpcFixture,
  type GrpcSetup,
  grpcError,
  startGrpc,
  statusDetails,
  until,
  WRITE_TOKEN,
} from './helpers.js';

const w = { token: WRITE_TOKEN };
const spec = (value: string) => ({ kind: { case: 'spec' as const, value } });
const append = (c: PromiseClient<typeof Desc>, rule = '-j ACCEPT', chain = 'INPUT') =>
  c.appendRule({ chain, rule: spec(rule) }, w);

let f: GrpcFixture | undefined;
afterEach(async () => {
  await f?.close();
  f = undefined;
});

interface Case {
  readonly code: string;
  readonly status: grpc.status;
  readonly field?: string;
  readonly setup?: GrpcSetup;
  readonly call: (f: GrpcFixture) => Promise<unknown>;
  readonly metadata?: Record<string, string>;
  /** The finer reason (ErrorInfo metadata `reason`, trailer `portcullis-reason`), when there is one. */
  readonly reason?: string;
}

const execError = (kind: 'aborted' | 'timeout') =>
  new ExecError({ kind, message: `iptables-restore ${kind}`, argv: ['iptables-restore'] });

const CASES: Case[] = [
  {
    code: 'invalid_argument',
    status: grpc.status.INVALID_ARGUMENT,
    field: 'rule.matches[0].dport',
    call: (f) =>
      f.client.appendRule(
        {
          chain: 'INPUT',
          rule: {
            kind: {
              case: 'rule',
              value: { protocol: 'tcp', matches: [{ module: 'tcp', options: { dport: '99999' } }] },
            },
          },
        },
        w,
      ),
  },
  {
    code: 'not_found',
    status: grpc.status.NOT_FOUND,
    field: 'chain',
    call: (f) => append(f.client, '-j ACCEPT', 'NOPE'),
  },
  {
    code: 'already_exists',
    status: grpc.status.ALREADY_EXISTS,
    call: (f) => f.client.createChain({ chain: 'EMPTY' }, w),
  },
  {
    code: 'failed_precondition',
    status: grpc.status.FAILED_PRECONDITION,
    field: 'expectedRevision',
    metadata: { currentRevision: '1', expectedRevision: '7' },
    reason: 'revision_mismatch',
    call: (f) => f.client.createChain({ chain: 'NEW', expectedRevision: 7n }, w),
  },
  {
    code: 'aborted',
    status: grpc.status.ABORTED,
    call: (f) => {
      f.gate.fail = execError('aborted');
      return append(f.client);
    },
  },
  {
    code: 'unavailable',
    status: grpc.status.UNAVAILABLE,
    call: (f) => {
      f.gate.fail = execError('timeout');
      return append(f.client);
    },
  },
  {
    code: 'unavailable',
    status: grpc.status.UNAVAILABLE,
    setup: { started: false },
    call: (f) => f.client.getStatus({}, w).then(() => f.client.getTable({}, w)),
  },
  {
    code: 'resource_exhausted',
    status: grpc.status.RESOURCE_EXHAUSTED,
    setup: { queue: { maxDepth: 1 } },
    call: async (f) => {
      let release = () => {};
      let arrived = false;
      f.gate.hold = new Promise<void>((r) => {
        release = r;
      });
      f.gate.onArrive = () => {
        arrived = true;
      };
      const first = append(f.client, '-s 198.51.100.1 -j DROP');
      await until('the first write reaches the executor', () => arrived);
      const second = append(f.client, '-s 198.51.100.2 -j DROP');
      await until('the second write waits in the queue', () => f.service.status().queueDepth === 1);
      try {
        return await append(f.client, '-s 198.51.100.3 -j DROP');
      } finally {
        release();
        await Promise.all([first, second]);
      }
    },
  },
];

describe('gRPC error mapping', () => {
  it.each(CASES)('$code -> status $status', async (c) => {
    f = await startGrpc(c.setup);
    const before = await f.fake.save('ipv4');
    const err = await grpcError(c.call(f));
    expect(err.code).toBe(c.status);
    expect(err.metadata.get('portcullis-code')).toEqual([c.code]);
    const { status, info, badRequest } = statusDetails(err);
    expect(status.code).toBe(c.status);
    expect(status.message).toBe(err.details);
    expect(info).toMatchObject({ reason: c.code, domain: 'portcullis' });
    if (c.field !== undefined) {
      expect(err.metadata.get('portcullis-field')).toEqual([c.field]);
      expect(info?.metadata.field).toBe(c.field);
    }
    if (c.metadata) expect(info?.metadata).toMatchObject(c.metadata);
    expect(err.metadata.get('portcullis-reason')).toEqual(c.reason === undefined ? [] : [c.reason]);
    expect(info?.metadata.reason).toBe(c.reason);
    if (c.code === 'invalid_argument') {
      expect(badRequest?.fieldViolations).toEqual([
        expect.objectContaining({ field: c.field, description: err.details }),
      ]);
      expect(err.details).toMatch(/dport/);
    } else {
      expect(badRequest).toBeUndefined();
    }
    if (c.code !== 'resource_exhausted' && c.setup?.started !== false) {
      expect(await f.fake.save('ipv4'), 'nothing changed in the kernel').toBe(before);
    }
  });

  it('internal errors get a generic message: nothing of the cause reaches the client, the log has it', async () => {
    f = await startGrpc();
    f.gate.fail = new Error('secret-path /etc/portcullis/tokens.json exploded');
    const err = await grpcError(append(f.client));
    expect(err.code).toBe(grpc.status.INTERNAL);
    expect(err.details).not.toMatch(/secret|tokens\.json/);
    const { info } = statusDetails(err);
    expect(info).toMatchObject({ reason: 'internal', metadata: {} });
    expect(JSON.stringify(err.metadata.toJSON())).not.toMatch(/secret/);
    expect(f.logs.some((l) => l.includes('secret-path'))).toBe(true);
  });

  it('an operation-less Apply and a Match with "module" inside its options are INVALID_ARGUMENT', async () => {
    f = await startGrpc();
    const empty = await grpcError(f.client.apply({ operations: [{}] }, w));
    expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(empty.metadata.get('portcullis-field')).toEqual(['operations[0]']);
    const none = await grpcError(f.client.apply({ operations: [] }, w));
    expect(none.code).toBe(grpc.status.INVALID_ARGUMENT);
    const odd = await grpcError(
      f.client.appendRule(
        {
          chain: 'INPUT',
          rule: {
            kind: { case: 'rule', value: { matches: [{ module: 'tcp', options: { module: 'udp' } }] } },
          },
        },
        w,
      ),
    );
    expect(odd.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(odd.metadata.get('portcullis-field')).toEqual(['rule.matches[0].options']);
  });

  it('a missing rule and an unset policy are refused by the service with its own messages', async () => {
    f = await startGrpc();
    const noRule = await grpcError(f.client.appendRule({ chain: 'INPUT' }, w));
    expect(noRule.code).toBe(grpc.status.INVALID_ARGUMENT);
    const noPolicy = await grpcError(f.client.setPolicy({ chain: 'INPUT' }, w));
    expect(noPolicy.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(noPolicy.metadata.get('portcullis-field')).toEqual(['policy']);
  });
});
