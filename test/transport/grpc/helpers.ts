/**
 * gRPC test fixture: a FirewallService on a FakeExecutor (seeded like the
 * service tests, optionally behind a gate that holds or fails restores), the
 * gRPC server on 127.0.0.1:0, and a typed promise client. Tokens: `read-token`
 * (read scope) and `write-token` (write scope).
 */
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import type { Family } from '../../../src/domain/family.js';
import type { Executor, RestoreOptions } from '../../../src/exec/executor.js';
import { FakeExecutor } from '../../../src/exec/testing/fake-executor.js';
import {
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
} from '../../../src/gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../../src/gen/google/rpc/status_pb.js';
import { FirewallService as FirewallServiceDesc } from '../../../src/gen/portcullis/v1/firewall_service_pb.js';
import type { CommandQueueOptions } from '../../../src/queue/command-queue.js';
import { type CommandResult, runCommand } from '../../../src/sandbox/command.js';
import { FirewallService } from '../../../src/service/firewall-service.js';
import { Authenticator, hashToken } from '../../../src/transport/auth.js';
import { createPromiseClient, type PromiseClient } from '../../../src/transport/grpc/client.js';
import { createGrpcServer } from '../../../src/transport/grpc/server.js';
import { seed } from '../../helpers/service.js';

export const READ_TOKEN = 'read-token';
export const WRITE_TOKEN = 'write-token';

export const authenticator = new Authenticator([
  { name: 'reader', sha256: hashToken(READ_TOKEN), scope: 'read' },
  { name: 'writer', sha256: hashToken(WRITE_TOKEN), scope: 'write' },
]);

/** Holds or fails the next restores of the wrapped executor. */
export interface Gate {
  /** When set, restore waits for this promise first. */
  hold?: Promise<void>;
  /** Called when a restore reaches the gate. */
  onArrive?: () => void;
  /** When set, restore throws this instead of running. */
  fail?: Error;
}

function gated(inner: Executor, gate: Gate): Executor {
  return {
    save: (family, options) => inner.save(family, options),
    info: (family) => inner.info(family),
    listRules: (family, table, chain, options) => inner.listRules(family, table, chain, options),
    restore: async (family: Family, text: string, options?: RestoreOptions) => {
      gate.onArrive?.();
      if (gate.hold) await gate.hold;
      if (gate.fail) throw gate.fail;
      return inner.restore(family, text, options);
    },
  };
}

export interface GrpcFixture {
  readonly fake: FakeExecutor;
  readonly service: FirewallService;
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  readonly client: PromiseClient<typeof FirewallServiceDesc>;
  readonly gate: Gate;
  readonly logs: string[];
  close(): Promise<void>;
}

export interface GrpcSetup {
  readonly requireAuth?: boolean;
  readonly queue?: CommandQueueOptions;
  /** Seed both families with the service tests' seed (INPUT, LOG_AND_DROP, EMPTY). @default true */
  readonly seeded?: boolean;
  /** Start the service before serving. @default true */
  readonly started?: boolean;
}

export function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

export async function startGrpc(setup: GrpcSetup = {}): Promise<GrpcFixture> {
  const fake = new FakeExecutor();
  if (setup.seeded !== false) {
    await fake.restore('ipv4', seed('ipv4'));
    await fake.restore('ipv6', seed('ipv6'));
  }
  const gate: Gate = {};
  const service = new FirewallService({
    executor: gated(fake, gate),
    pollIntervalMs: 0,
    ...(setup.queue ? { queue: setup.queue } : {}),
  });
  if (setup.started !== false) await service.start();
  const logs: string[] = [];
  const server = createGrpcServer({
    service,
    auth: authenticator,
    requireAuth: setup.requireAuth ?? true,
    logger: (line) => logs.push(line),
  });
  const port = await bind(server);
  const address = `127.0.0.1:${port}`;
  const client = createPromiseClient(FirewallServiceDesc, address);
  return {
    fake,
    service,
    server,
    port,
    address,
    client,
    gate,
    logs,
    close: async () => {
      client.close();
      server.forceShutdown();
      await service.close();
    },
  };
}

/** The rejection of a gRPC call; fails the test when the call succeeds. */
export async function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as grpc.ServiceError;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** The google.rpc.Status in the `grpc-status-details-bin` trailer, with its ErrorInfo and BadRequest. */
export function statusDetails(err: grpc.ServiceError) {
  const bin = err.metadata.get('grpc-status-details-bin')[0];
  expect(bin, 'grpc-status-details-bin trailer').toBeInstanceOf(Buffer);
  const status = fromBinary(StatusSchema, bin as Buffer);
  let info: ErrorInfo | undefined;
  let badRequest: ReturnType<typeof fromBinary<typeof BadRequestSchema>> | undefined;
  for (const any of status.details) {
    info ??= anyUnpack(any, ErrorInfoSchema);
    badRequest ??= anyUnpack(any, BadRequestSchema);
  }
  return { status, info, badRequest };
}

/** `-A CHAIN` lines of a chain in the fake kernel, without the prefix. */
export async function kernelRules(fake: FakeExecutor, family: Family, chain: string): Promise<string[]> {
  const prefix = `-A ${chain} `;
  return (await fake.save(family))
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
}

/** Collects `n` messages of a server stream (bounded by `ms`). */
export function take<T>(stream: grpc.ClientReadableStream<T>, n: number, ms = 5000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    const timer = setTimeout(
      () => reject(new Error(`only ${out.length} of ${n} messages within ${ms} ms`)),
      ms,
    );
    const onData = (m: T) => {
      out.push(m);
      if (out.length === n) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(out);
      }
    };
    stream.on('data', onData);
    stream.on('error', (e) => {
      clearTimeout(timer);
      if (out.length < n) reject(e);
    });
  });
}

/** Polls until `check` is true (bounded). */
export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const BUF = join(import.meta.dirname, '..', '..', '..', 'node_modules', '.bin', 'buf');

/** Runs `buf` with argv (no shell), bounded by a timeout. */
export function buf(args: readonly string[]): Promise<CommandResult> {
  return runCommand([BUF, ...args], { timeoutMs: 30_000, env: process.env });
}
