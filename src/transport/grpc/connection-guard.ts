/**
 * Connection-level guards of the gRPC door, which grpc-js does not offer as options:
 *
 * - a cap on simultaneous connections (more are closed on arrival);
 * - a header timeout: a connection must complete its first call's headers in time (a
 *   slowloris client dribbling the HTTP/2 preface or HEADERS is cut off); afterwards a
 *   connection without calls is closed by grpc-js's own idle timeout
 *   (`grpc.max_connection_idle_ms`, set by server.ts);
 * - a request timeout: a call must deliver its whole request (message and half-close) in
 *   time, or the stream is reset;
 * - repeated `authorization` headers: Node's HTTP/2 layer keeps only the first, silently;
 *   here every value is kept, so that authentication sees them all and refuses;
 * - the size refusal names the limit and the option that raises it: grpc-js's own
 *   "Received message larger than max" RESOURCE_EXHAUSTED is rewritten with the same
 *   message, code and details as every other refusal (status.ts).
 *
 * grpc-js creates its HTTP/2 servers itself when it binds; `guardConnections` wraps the
 * (internal) factory method of one grpc.Server instance. The exact grpc-js version is pinned
 * in package.json, and test/transport/limits.test.ts fails if the hook stops working.
 */
import type { Http2Server, IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { constants as h2 } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { DomainError } from '../../domain/errors.js';
import type { ConnectionLimits } from '../connection-limits.js';
import { bodyTooLargeMessage } from '../errors.js';
import { errorStatus } from './status.js';

export interface GuardOptions {
  readonly limits: ConnectionLimits;
  /** The largest request message, in bytes (grpc.max_receive_message_length). */
  readonly maxMessageBytes: number;
}

const GRPC_SIZE_REFUSAL = /^Received message (larger than max|that decompresses to a size larger than)/;

function rewriteSizeRefusal(headers: OutgoingHttpHeaders, maxMessageBytes: number): OutgoingHttpHeaders {
  if (String(headers['grpc-status']) !== String(grpc.status.RESOURCE_EXHAUSTED)) return headers;
  let message: string;
  try {
    message = decodeURI(String(headers['grpc-message'] ?? ''));
  } catch {
    return headers;
  }
  if (!GRPC_SIZE_REFUSAL.test(message)) return headers;
  const status = errorStatus(
    new DomainError('resource_exhausted', bodyTooLargeMessage(maxMessageBytes, 'request message'), {
      details: { limitBytes: maxMessageBytes },
    }),
  );
  return { ...headers, 'grpc-message': encodeURI(status.details), ...status.metadata.toHttp2Headers() };
}

function guardStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[] | undefined,
  options: GuardOptions,
): void {
  // Every authorization value, not just the first (grpc-js turns an array into several).
  const values: string[] = [];
  for (let i = 0; rawHeaders !== undefined && i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'authorization') values.push(rawHeaders[i + 1] as string);
  }
  if (values.length > 1) (headers as Record<string, unknown>).authorization = values;

  const timer = setTimeout(() => {
    if (!stream.destroyed && !stream.closed) stream.close(h2.NGHTTP2_CANCEL);
  }, options.limits.requestTimeoutMs);
  timer.unref();
  const done = () => clearTimeout(timer);
  stream.once('end', done);
  stream.once('close', done);

  const respond = stream.respond.bind(stream);
  stream.respond = (h?: OutgoingHttpHeaders, o?: Parameters<typeof respond>[1]) =>
    respond(h === undefined ? h : rewriteSizeRefusal(h, options.maxMessageBytes), o);
  const sendTrailers = stream.sendTrailers.bind(stream);
  stream.sendTrailers = (h: OutgoingHttpHeaders) =>
    sendTrailers(rewriteSizeRefusal(h, options.maxMessageBytes));
}

function guardHttp2Server(server: Http2Server, options: GuardOptions): void {
  server.maxConnections = options.limits.maxConnections;
  server.on('session', (session) => {
    const timer = setTimeout(() => session.destroy(), options.limits.headerTimeoutMs);
    timer.unref();
    const done = () => clearTimeout(timer);
    session.once('stream', done);
    session.once('close', done);
  });
  // Before grpc-js's own listener, which reads the headers.
  server.prependListener(
    'stream',
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders?: string[]) =>
      guardStream(stream, headers, rawHeaders, options),
  );
}

/** Applies the guards to every HTTP/2 server `server` creates when it binds. Call before binding. */
export function guardConnections(server: grpc.Server, options: GuardOptions): void {
  const internal = server as unknown as { createHttp2Server?: (credentials: unknown) => Http2Server };
  const create = internal.createHttp2Server;
  if (typeof create !== 'function') {
    throw new TypeError(
      'grpc-js no longer has Server#createHttp2Server: the connection guards cannot be installed (see connection-guard.ts)',
    );
  }
  internal.createHttp2Server = function (this: grpc.Server, credentials: unknown): Http2Server {
    const created = create.call(this, credentials);
    guardHttp2Server(created, options);
    return created;
  };
}
