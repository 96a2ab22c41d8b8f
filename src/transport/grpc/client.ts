/**
 * A small promise-based grpc-js client typed from a generated service, built
 * on the same adapter definition as the server. For tests and tooling: unary
 * methods return a promise of the response message (rejecting with the
 * grpc-js ServiceError), server-streaming methods return the grpc-js stream.
 */
import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from './adapter.js';

export interface CallOptions {
  /** Sent as `authorization: Bearer TOKEN`. */
  readonly token?: string;
  /** Extra metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly deadline?: Date;
}

export type PromiseClient<S extends GenService<GenServiceMethods>> = {
  [K in keyof S['method']]: S['method'][K]['methodKind'] extends 'unary'
    ? (
        request: MessageInitShape<S['method'][K]['input']>,
        options?: CallOptions,
      ) => Promise<MessageShape<S['method'][K]['output']>>
    : S['method'][K]['methodKind'] extends 'server_streaming'
      ? (
          request: MessageInitShape<S['method'][K]['input']>,
          options?: CallOptions,
        ) => grpc.ClientReadableStream<MessageShape<S['method'][K]['output']>>
      : never;
} & { readonly raw: grpc.Client; close(): void };

function metadataOf(options: CallOptions | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (options?.token !== undefined) md.set('authorization', `Bearer ${options.token}`);
  for (const [k, v] of Object.entries(options?.metadata ?? {})) md.set(k, v);
  return md;
}

/** A client of `service` at `address` (e.g. `127.0.0.1:50051`), insecure (loopback and tests). */
export function createPromiseClient<S extends GenService<GenServiceMethods>>(
  service: S,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): PromiseClient<S> {
  const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service), service.typeName);
  const raw = new Ctor(address, credentials) as unknown as Record<string, (...args: unknown[]) => unknown> &
    grpc.Client;
  const out: Record<string, unknown> = { raw, close: () => raw.close() };
  for (const [localName, method] of Object.entries(service.method) as [
    string,
    { methodKind: string; output: DescMessage },
  ][]) {
    const fn = raw[localName] as (...args: unknown[]) => unknown;
    if (method.methodKind === 'unary') {
      out[localName] = (request: unknown, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          fn.call(
            raw,
            request,
            metadataOf(options),
            options?.deadline ? { deadline: options.deadline } : {},
            (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
          );
        });
    } else if (method.methodKind === 'server_streaming') {
      out[localName] = (request: unknown, options?: CallOptions) =>
        fn.call(raw, request, metadataOf(options), options?.deadline ? { deadline: options.deadline } : {});
    }
  }
  return out as PromiseClient<S>;
}
