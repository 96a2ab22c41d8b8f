/**
 * protobuf-es v2 generates messages and service descriptors but no grpc-js
 * stubs. This adapter turns a generated `GenService` into a grpc-js
 * `ServiceDefinition` (binary codec from the descriptors, path
 * `/${typeName}/${method.name}`), usable by `grpc.Server#addService` and by
 * `grpc.makeGenericClientConstructor`, and turns a handler object typed from
 * the descriptor (unary and server-streaming methods) into a grpc-js
 * implementation. Handlers are plain async functions: they get the decoded
 * request and a context (metadata, an AbortSignal that fires when the client
 * cancels), return (or, for streams, `send`) message shapes, and throw to fail
 * the call; `toStatus` decides what a thrown value becomes on the wire.
 *
 * Requests are decoded lazily, inside the call, not by grpc-js: a deserializer that throws
 * becomes `INTERNAL: Error deserializing request` in grpc-js, while a message that does not
 * decode (random bytes, truncation, bad varints, invalid UTF-8) is the client's mistake,
 * INVALID_ARGUMENT. Decoding runs after `before` (authentication), so an unauthenticated
 * caller costs no parsing; then the nesting limit (../nesting.ts) is checked before the
 * handler sees the message.
 */

import { X509Certificate } from 'node:crypto';
import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';
import { DomainError } from '../../domain/errors.js';
import { REQUEST_ID_HEADER, requestContext, requestIdFrom } from '../../observe/request-context.js';
import { MAX_NESTING_DEPTH, nestingExceeds, nestingTooDeep } from '../nesting.js';
import { decodeStringsExactly } from './exact-strings.js';

decodeStringsExactly();

/** What a handler knows about its call. */
export interface CallContext {
  /** The method called (its `name` is the RPC name, e.g. `AppendRule`). */
  readonly method: DescMethod;
  /** Request metadata (headers). */
  readonly metadata: grpc.Metadata;
  /** Aborted when the client cancels the call or its deadline passes. */
  readonly signal: AbortSignal;
  /** Set by `before` (e.g. the authenticated caller). */
  principal?: string;
  /** The client's address as grpc-js reports it (`ipv4:192.0.2.1:5000`, ...). */
  readonly peer?: string;
  /** The `:authority` the client dialed (`host:port`): the port it reached us on. */
  readonly host?: string;
  /** The call's id: the client's `x-request-id` when acceptable, else a new one (sent back in the headers). */
  readonly requestId: string;
  /** The client certificate, when TLS verified it against the client CA. */
  readonly certificate?: X509Certificate;
  /** Who called, for the audit log (token name, certificate subject); set by `before`. */
  identity?: string;
}

/**
 * A reply of message type `O` already encoded (encode-views.ts: the rule-carrying reads,
 * written by hand because protobuf-es's reflection was most of their cost); sent as it is.
 */
export class Encoded<O extends DescMessage = DescMessage> {
  declare readonly message?: O;
  constructor(readonly bytes: Uint8Array) {}
}

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => Promise<MessageInitShape<O> | Encoded<O>> | MessageInitShape<O> | Encoded<O>;

/** `send` queues a message and returns how many messages wait to be written (0 when the client keeps up). */
export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  send: (message: MessageInitShape<O>) => number,
  context: CallContext,
) => Promise<void>;

/** Handlers for every method of a generated service, typed from its descriptor. */
export type ServiceHandlers<S extends GenService<GenServiceMethods>> = {
  [K in keyof S['method']]: S['method'][K]['methodKind'] extends 'unary'
    ? UnaryHandler<S['method'][K]['input'], S['method'][K]['output']>
    : S['method'][K]['methodKind'] extends 'server_streaming'
      ? ServerStreamingHandler<S['method'][K]['input'], S['method'][K]['output']>
      : never;
};

/** A gRPC status as grpc-js sends it. */
export interface StatusLike {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata?: grpc.Metadata;
}

export interface ImplementOptions {
  /** Runs before every handler (e.g. authentication); throw to fail the call. */
  readonly before?: (context: CallContext) => void | Promise<void>;
  /** Turns anything a handler (or `before`) throws into a status. */
  readonly toStatus: (error: unknown, context: CallContext) => StatusLike;
  /** Called once per call when it ends, with the status code sent (CANCELLED when the client left). */
  readonly onEnd?: (context: CallContext, code: grpc.status, ms: number) => void;
}

function codec(desc: DescMessage) {
  return {
    serialize: (value: MessageInitShape<DescMessage> | Encoded): Buffer => {
      const bytes = value instanceof Encoded ? value.bytes : toBinary(desc, create(desc, value));
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes: Buffer): MessageShape<DescMessage> => fromBinary(desc, bytes),
  };
}

/**
 * Message levels protobuf-es may descend while decoding. Each level of JSON in a Struct is
 * two messages (Value, Struct or ListValue), so this lets a request through to the nesting
 * check unless it is far deeper than the limit anyway.
 */
const DECODE_RECURSION_LIMIT = 2 * MAX_NESTING_DEPTH + 32;

/** Decodes a request; what does not decode, or nests too deep, is INVALID_ARGUMENT. */
export function decodeRequest(desc: DescMessage, bytes: Uint8Array): MessageShape<DescMessage> {
  let message: MessageShape<DescMessage>;
  try {
    message = fromBinary(desc, bytes, { recursionLimit: DECODE_RECURSION_LIMIT });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (/recursion/i.test(why)) throw nestingTooDeep();
    throw new DomainError(
      'invalid_argument',
      `the request is not a valid ${desc.typeName} message (${why.slice(0, 120).replace(/\.$/, '')}): send the message the contract describes`,
    );
  }
  if (nestingExceeds(message)) throw nestingTooDeep();
  return message;
}

function methods(service: GenService<GenServiceMethods>): [string, DescMethod][] {
  return Object.entries(service.method) as [string, DescMethod][];
}

/**
 * The grpc-js definition of `service`, keyed by the methods' local names (`getRuleset`), for
 * servers and for `grpc.makeGenericClientConstructor` (requests may be message init shapes).
 * Client- and bidi-streaming methods are left out: nothing here uses them.
 */
export function serviceDefinition(service: GenService<GenServiceMethods>): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [localName, method] of methods(service)) {
    if (method.methodKind !== 'unary' && method.methodKind !== 'server_streaming') continue;
    const input = codec(method.input);
    const output = codec(method.output);
    def[localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === 'server_streaming',
      requestSerialize: input.serialize as (v: unknown) => Buffer,
      // The raw bytes: `implement` decodes them inside the call (see the file comment).
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: output.serialize as (v: unknown) => Buffer,
      responseDeserialize: output.deserialize,
      originalName: method.name,
    };
  }
  return def;
}

function contextFor(method: DescMethod, call: grpc.ServerUnaryCall<unknown, unknown>) {
  const controller = new AbortController();
  const context: CallContext = {
    method,
    metadata: call.metadata,
    signal: controller.signal,
    peer: call.getPeer(),
    host: call.getHost(),
    requestId: requestIdFrom(firstString(call.metadata.get(REQUEST_ID_HEADER))),
    ...verifiedCertificate(call),
  };
  const headers = new grpc.Metadata();
  headers.set(REQUEST_ID_HEADER, context.requestId);
  call.sendMetadata(headers);
  call.on('cancelled', () => controller.abort(new Error('the client cancelled the call')));
  return { context, controller };
}

function firstString(values: grpc.MetadataValue[]): string | undefined {
  const v = values[0];
  return typeof v === 'string' ? v : undefined;
}

/** The peer certificate grpc-js reports: only one TLS verified against the client CA. */
function verifiedCertificate(call: grpc.ServerUnaryCall<unknown, unknown>): {
  certificate?: X509Certificate;
} {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (raw === undefined) return {};
  try {
    return { certificate: new X509Certificate(raw) };
  } catch {
    return {};
  }
}

/** The grpc-js implementation of `handlers` (pass it with `serviceDefinition(service)` to `addService`). */
export function implement<S extends GenService<GenServiceMethods>>(
  service: S,
  handlers: ServiceHandlers<S>,
  options: ImplementOptions,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [localName, method] of methods(service)) {
    const handler = (handlers as Record<string, unknown>)[localName];
    if (typeof handler !== 'function') throw new TypeError(`Expected a handler for ${method.name}`);
    if (method.methodKind === 'unary') {
      const fn = handler as UnaryHandler<DescMessage, DescMessage>;
      impl[localName] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const started = performance.now();
        const { context } = contextFor(method, call);
        // The whole call runs in its request context: every log line of it carries its id.
        void requestContext.run({ requestId: context.requestId }, async () => {
          let code: grpc.status = grpc.status.OK;
          try {
            await options.before?.(context);
            const request = decodeRequest(method.input, call.request as Buffer);
            const response = await fn(request, context);
            if (call.cancelled) code = grpc.status.CANCELLED;
            else callback(null, response);
          } catch (error) {
            const status = options.toStatus(error, context);
            code = status.code;
            callback({ ...status, name: 'StatusError', message: status.details });
          }
          options.onEnd?.(context, code, performance.now() - started);
        });
      };
    } else if (method.methodKind === 'server_streaming') {
      const fn = handler as ServerStreamingHandler<DescMessage, DescMessage>;
      impl[localName] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const started = performance.now();
        const { context } = contextFor(method, call as unknown as grpc.ServerUnaryCall<unknown, unknown>);
        // The whole call runs in its request context: every log line of it carries its id.
        void requestContext.run({ requestId: context.requestId }, async () => {
          let code: grpc.status = grpc.status.OK;
          try {
            await options.before?.(context);
            await fn(
              decodeRequest(method.input, call.request as Buffer),
              (message) => {
                if (!call.cancelled && !call.writableEnded) call.write(message);
                return call.writableLength;
              },
              context,
            );
            if (call.cancelled) code = grpc.status.CANCELLED;
            else call.end();
          } catch (error) {
            if (call.cancelled) code = grpc.status.CANCELLED;
            else {
              const status = options.toStatus(error, context);
              code = status.code;
              call.emit('error', { ...status, name: 'StatusError', message: status.details });
            }
          }
          options.onEnd?.(context, code, performance.now() - started);
        });
      };
    }
  }
  return impl;
}
