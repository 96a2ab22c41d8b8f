/**
 * Connection limits of the doors, the same four on REST and gRPC, so that idle or slow
 * clients cannot hold sockets (and file descriptors) forever and crowd out everyone else.
 * The option table (src/config.ts) sets them; the listeners apply them
 * (http/server.ts, grpc/connection-guard.ts).
 */
export interface ConnectionLimits {
  /**
   * Most milliseconds a client may take to send one whole request (headers and body; on
   * gRPC: the call's headers, message and half-close). Slower ones are cut off.
   * @default 30000
   */
  readonly requestTimeoutMs: number;
  /**
   * Most milliseconds from the start of a request (REST) or of a connection (gRPC) until its
   * headers are complete: a client dribbling headers (slowloris) is cut off.
   * @default 10000
   */
  readonly headerTimeoutMs: number;
  /**
   * Most milliseconds a connection may stay open with nothing in flight (keep-alive between
   * REST requests, a gRPC connection without calls, a socket that never sent a byte).
   * @default 30000
   */
  readonly idleTimeoutMs: number;
  /**
   * Most connections each listener holds at once; more are closed as soon as they arrive.
   * @default 1000
   */
  readonly maxConnections: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  requestTimeoutMs: 30_000,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  maxConnections: 1000,
};

/** Throws a TypeError naming the first limit that is not a positive whole number. */
export function checkConnectionLimits(limits: ConnectionLimits): void {
  for (const key of ['requestTimeoutMs', 'headerTimeoutMs', 'idleTimeoutMs', 'maxConnections'] as const) {
    const v = limits[key];
    if (!Number.isSafeInteger(v) || v < 1)
      throw new TypeError(`Expected \`${key}\` to be a whole number from 1, got ${String(v)}`);
  }
}
