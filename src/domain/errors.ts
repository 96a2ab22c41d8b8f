/**
 * One error type for the whole domain. Every failure a caller can act on is a
 * `DomainError` with a stable machine-readable `code`, a message that says what
 * to fix, and, where one input field is to blame, that field's path. Transports
 * map `code` to an HTTP status or gRPC status; the kernel's own message and the
 * failing restore line are kept as `cause`.
 */

export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'aborted'
  | 'resource_exhausted'
  | 'unavailable'
  | 'internal';

export interface DomainErrorOptions {
  /** Path of the offending input field, e.g. `rule.matches[1].dport`. */
  field?: string;
  /** Structured detail a client can act on (current revision, failing line, ...). */
  details?: Readonly<Record<string, unknown>>;
  cause?: unknown;
}

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: DomainErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.code = code;
    this.field = options.field;
    this.details = options.details;
  }

  /** Same error, with its field path placed under `prefix` (e.g. `matches[2]`). */
  withFieldPrefix(prefix: string): DomainError {
    const field = this.field === undefined ? prefix : `${prefix}.${this.field}`;
    const copy = new DomainError(this.code, this.message, {
      field,
      ...(this.details === undefined ? {} : { details: this.details }),
      ...(this.cause === undefined ? {} : { cause: this.cause }),
    });
    return copy;
  }

  /** Wraps anything thrown into a DomainError; unknown errors become `internal`. */
  static from(error: unknown): DomainError {
    if (error instanceof DomainError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new DomainError('internal', message, { cause: error });
  }
}

/** Shorthand for the most common error: a bad input value. */
export function invalid(field: string | undefined, message: string): DomainError {
  return new DomainError('invalid_argument', message, field === undefined ? {} : { field });
}

export function isDomainError(error: unknown, code?: ErrorCode): error is DomainError {
  return error instanceof DomainError && (code === undefined || error.code === code);
}
