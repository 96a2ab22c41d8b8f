/**
 * Errors the two front doors raise themselves, built once so that REST and
 * gRPC report the same code, field, reason and message for the same mistake.
 * A `reason` refines a domain code where a client acts differently on it:
 * REST puts it in the problem's `reason`, gRPC in ErrorInfo metadata `reason`
 * and the `portcullis-reason` trailer.
 */
import { DomainError, type ErrorCode } from '../domain/errors.js';

export type ErrorReason =
  | 'revision_mismatch'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_use'
  | 'lockout';

/** A DomainError with a finer reason. */
export class ReasonedError extends DomainError {
  readonly reason: ErrorReason;
  constructor(
    code: ErrorCode,
    reason: ErrorReason,
    message: string,
    options: { field?: string; details?: Readonly<Record<string, unknown>> } = {},
  ) {
    super(code, message, options);
    this.name = 'ReasonedError';
    this.reason = reason;
  }
}

/**
 * The reason of an error, if it has one: its own, `revision_mismatch` for the service's
 * stale-revision error, `lockout` for the lockout guard's refusal (details.lockouts lists the paths).
 */
export function errorReason(e: DomainError): ErrorReason | undefined {
  if (e instanceof ReasonedError) return e.reason;
  if (e.code === 'failed_precondition' && e.field === 'expectedRevision') return 'revision_mismatch';
  if (e.code === 'failed_precondition' && e.details?.reason === 'lockout') return 'lockout';
  return undefined;
}

export const IDEMPOTENCY_FIELD = 'idempotencyKey';

export function idempotencyKeyInvalid(): DomainError {
  return new DomainError(
    'invalid_argument',
    'the idempotency key must be 1 to 255 visible ASCII characters',
    {
      field: IDEMPOTENCY_FIELD,
    },
  );
}

export function idempotencyKeyReused(): ReasonedError {
  return new ReasonedError(
    'invalid_argument',
    'idempotency_key_reused',
    'this idempotency key was already used for a different request: use a new key for a new request',
    { field: IDEMPOTENCY_FIELD },
  );
}

export function idempotencyKeyInUse(): ReasonedError {
  return new ReasonedError(
    'aborted',
    'idempotency_key_in_use',
    'a request with this idempotency key is still being applied: retry when it has finished',
    { field: IDEMPOTENCY_FIELD },
  );
}

/** An expected revision that can never match (REST: an unreadable If-Match). */
export function revisionMismatch(current: number, message: string): ReasonedError {
  return new ReasonedError('failed_precondition', 'revision_mismatch', message, {
    field: 'expectedRevision',
    details: { currentRevision: current },
  });
}

/** GetRule: no rule of `chain` has this id. */
export function ruleNotFound(id: string, chain: string): DomainError {
  return new DomainError('not_found', `no rule with id ${id.slice(0, 64)} in chain ${chain.slice(0, 64)}`, {
    field: 'id',
  });
}

/** Two or more Authorization headers (REST) or authorization metadata values (gRPC). */
export function duplicateAuthorization(count: number, what: string): string {
  return `this request carries ${count} ${what}: send exactly one, "Bearer <token>"`;
}

/** The option that raises the request size limit, named by every "too large" refusal. */
export const MAX_BODY_OPTION = '--max-body-bytes';

/** A request over the size limit: names the limit and the option that raises it. */
export function bodyTooLargeMessage(limit: number | undefined, what = 'request body'): string {
  const bytes = limit === undefined ? 'the size limit' : `the limit of ${limit} bytes`;
  return `the ${what} is over ${bytes}: split the change into several requests (a large table as several Apply calls, see the README) or raise the limit with ${MAX_BODY_OPTION} (PORTCULLIS_MAX_BODY_BYTES)`;
}
