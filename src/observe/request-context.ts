/**
 * The request a piece of work belongs to. Each front door runs a request's
 * whole handling inside `requestContext.run(...)`, so everything logged while
 * the request is served (by the door, the service, an error handler) carries
 * its id without passing it along by hand (the logger reads it, logger.ts).
 *
 * A request id comes from the client (`X-Request-Id` on REST, `x-request-id`
 * metadata on gRPC) when it is a plain token of at most 128 characters; any
 * other value is replaced by a fresh UUID. The id is returned to the client,
 * put in the change events and in the audit log.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

export interface RequestContext {
  readonly requestId: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The header (REST) and metadata key (gRPC) carrying the request id. */
export const REQUEST_ID_HEADER = 'x-request-id';

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$/;

/** The client's request id when it is acceptable, else a new one. */
export function requestIdFrom(sent: string | undefined): string {
  return sent !== undefined && CLIENT_ID.test(sent) ? sent : randomUUID();
}

/** The id of the request being served, if any. */
export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}
