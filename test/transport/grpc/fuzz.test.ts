/**
 * Hostile bytes at the gRPC door: a few thousand seeded random, truncated and mutated
 * messages, invalid UTF-8 in string fields, bad varints and deeply nested Structs, sent with
 * a raw grpc-js client (identity serializers) to several RPCs. No status may be INTERNAL or
 * UNKNOWN; a message that does not decode must be INVALID_ARGUMENT. Reproducible: the seed
 * is fixed (PORTCULLIS_FUZZ_SEED overrides it), and the first failures print their bytes.
 */
import { create, type DescMessage, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AppendRuleRequestSchema,
  ApplyRequestSchema,
  CreateChainRequestSchema,
  DeleteRuleRequestSchema,
  GetChainRequestSchema,
  ReplaceTableRequestSchema,
} from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import { MAX_NESTING_DEPTH } from '../../../src/transport/nesting.js';
import { type GrpcFixture, startGrpc, WRITE_TOKEN } from './helpers.js';

const SEED = Number(process.env.PORTCULLIS_FUZZ_SEED ?? 20240808);
const MESSAGES = 3000;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Target {
  readonly rpc: string;
  readonly schema: DescMessage;
  /** Valid requests to truncate and mutate. */
  readonly samples: readonly Uint8Array[];
}

const rule = (spec: string) => ({ kind: { case: 'spec' as const, value: spec } });

function nestedOptions(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 'x' };
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

const TARGETS: readonly Target[] = [
  {
    rpc: 'AppendRule',
    schema: AppendRuleRequestSchema,
    samples: [
      toBinary(
        AppendRuleRequestSchema,
        create(AppendRuleRequestSchema, { chain: 'INPUT', rule: rule('-j ACCEPT') }),
      ),
      toBinary(
        AppendRuleRequestSchema,
        create(AppendRuleRequestSchema, {
          chain: 'EMPTY',
          rule: {
            kind: {
              case: 'rule',
              value: {
                protocol: 'tcp',
                matches: [{ module: 'tcp', options: { dport: '22' } }],
                target: { kind: { case: 'jump', value: 'ACCEPT' } },
              },
            },
          },
        }),
      ),
    ],
  },
  {
    rpc: 'CreateChain',
    schema: CreateChainRequestSchema,
    samples: [toBinary(CreateChainRequestSchema, create(CreateChainRequestSchema, { chain: 'FUZZ' }))],
  },
  {
    rpc: 'DeleteRule',
    schema: DeleteRuleRequestSchema,
    samples: [
      toBinary(
        DeleteRuleRequestSchema,
        create(DeleteRuleRequestSchema, {
          chain: 'INPUT',
          target: { case: 'position', value: 1 },
        }),
      ),
    ],
  },
  {
    rpc: 'GetChain',
    schema: GetChainRequestSchema,
    samples: [toBinary(GetChainRequestSchema, create(GetChainRequestSchema, { chain: 'INPUT' }))],
  },
  {
    rpc: 'ReplaceTable',
    schema: ReplaceTableRequestSchema,
    samples: [
      toBinary(
        ReplaceTableRequestSchema,
        create(ReplaceTableRequestSchema, {
          table: 'raw',
          chains: [{ name: 'PREROUTING', rules: [rule('-s 198.51.100.0/24 -j ACCEPT')] }],
        }),
      ),
    ],
  },
  {
    rpc: 'Apply',
    schema: ApplyRequestSchema,
    samples: [
      toBinary(
        ApplyRequestSchema,
        create(ApplyRequestSchema, {
          dryRun: true,
          operations: [{ kind: { case: 'createChain', value: { chain: 'TMP' } } }],
        }),
      ),
    ],
  },
];

type Kind = 'random' | 'truncated' | 'mutated' | 'bad-utf8' | 'bad-varint' | 'deep';

function generate(rand: () => number, n: number): { target: Target; kind: Kind; bytes: Uint8Array }[] {
  const int = (max: number) => Math.floor(rand() * max);
  const out: { target: Target; kind: Kind; bytes: Uint8Array }[] = [];
  const kinds: Kind[] = ['random', 'truncated', 'mutated', 'bad-utf8', 'bad-varint', 'deep'];
  for (let i = 0; i < n; i++) {
    const target = TARGETS[int(TARGETS.length)] as Target;
    const kind = kinds[i % kinds.length] as Kind;
    const sample = target.samples[int(target.samples.length)] as Uint8Array;
    let bytes: Uint8Array;
    switch (kind) {
      case 'random':
        bytes = Uint8Array.from({ length: int(120) }, () => int(256));
        break;
      case 'truncated':
        bytes = sample.slice(0, Math.max(0, int(sample.length)));
        break;
      case 'mutated': {
        bytes = sample.slice();
        for (let k = 1 + int(4); k > 0 && bytes.length > 0; k--) bytes[int(bytes.length)] = int(256);
        break;
      }
      case 'bad-utf8': {
        // Field 3 (chain on AppendRule, CreateChain...; a string or message elsewhere) with
        // bytes that are not UTF-8; field 2 (table) likewise.
        const bad = [0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80][int(7)] as number;
        const field = [0x12, 0x1a][int(2)] as number;
        bytes = Uint8Array.from([field, 3, 0x41, bad, 0x42]);
        break;
      }
      case 'bad-varint':
        // Field 1 (varint) with 11 continuation bytes: no valid varint is that long.
        bytes = Uint8Array.from([0x08, ...Array.from({ length: 11 }, () => 0x80 | int(128))]);
        break;
      case 'deep': {
        const depth = MAX_NESTING_DEPTH + 1 + int(200);
        bytes = toBinary(
          AppendRuleRequestSchema,
          create(AppendRuleRequestSchema, {
            chain: 'INPUT',
            rule: {
              kind: {
                case: 'rule',
                value: { matches: [{ module: 'comment', options: nestedOptions(depth) as never }] },
              },
            },
          }),
        );
        out.push({ target: TARGETS[0] as Target, kind, bytes });
        continue;
      }
    }
    out.push({ target, kind, bytes });
  }
  return out;
}

function decodes(schema: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromBinary(schema, bytes, { recursionLimit: 1000 });
    return true;
  } catch {
    return false;
  }
}

function call(client: grpc.Client, rpc: string, bytes: Uint8Array): Promise<grpc.status> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${WRITE_TOKEN}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `/portcullis.v1.FirewallService/${rpc}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      md,
      { deadline: Date.now() + 10_000 },
      (err) => resolve(err ? (err.code as grpc.status) : grpc.status.OK),
    );
  });
}

describe('the gRPC door under malformed messages', () => {
  let f: GrpcFixture;
  let client: grpc.Client;
  beforeAll(async () => {
    f = await startGrpc();
    client = new grpc.Client(f.address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await f.close();
  });

  it(`${MESSAGES} seeded hostile messages: never INTERNAL or UNKNOWN; undecodable ones are INVALID_ARGUMENT`, async () => {
    const cases = generate(prng(SEED), MESSAGES);
    const counts: Record<string, number> = {};
    const failures: string[] = [];
    let undecodable = 0;
    const CONCURRENCY = 16;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < cases.length; i = next++) {
          const c = cases[i] as (typeof cases)[number];
          const status = await call(client, c.target.rpc, c.bytes);
          const name = grpc.status[status] ?? String(status);
          counts[name] = (counts[name] ?? 0) + 1;
          const bad = c.kind === 'deep' || !decodes(c.target.schema, c.bytes);
          if (bad) undecodable++;
          const ok =
            status !== grpc.status.INTERNAL &&
            status !== grpc.status.UNKNOWN &&
            (!bad || status === grpc.status.INVALID_ARGUMENT);
          if (!ok && failures.length < 10) {
            failures.push(
              `${c.target.rpc} ${c.kind} ${Buffer.from(c.bytes).toString('hex').slice(0, 160)} -> ${name}`,
            );
          }
        }
      }),
    );
    console.log(
      `gRPC fuzz (seed ${SEED}): ${cases.length} messages, ${undecodable} undecodable or too deep; statuses ${JSON.stringify(counts)}`,
    );
    expect(failures, `seed ${SEED}`).toEqual([]);
    expect(counts.INVALID_ARGUMENT ?? 0).toBeGreaterThanOrEqual(undecodable);
  });
});
