/**
 * Domain errors -> gRPC status. The code follows the domain code; the message
 * is the domain message (what to fix), except for `internal`, whose message
 * is generic so that nothing internal leaks. Details a client can act on
 * travel in the `grpc-status-details-bin` trailer as a google.rpc.Status with
 * a google.rpc.ErrorInfo (reason = the domain code, domain = "portcullis",
 * metadata: "field" and the error's structured details) and, for
 * INVALID_ARGUMENT, a google.rpc.BadRequest field violation; a finer reason
 * (../errors.ts: revision_mismatch, idempotency_key_reused,
 * idempotency_key_in_use) goes in ErrorInfo metadata "reason". Simple clients
 * read the `portcullis-code`, `portcullis-field` and `portcullis-reason`
 * trailers. Code, field and reason are exactly what REST reports.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { DomainError, type ErrorCode } from '../../domain/errors.js';
import { BadRequestSchema, ErrorInfoSchema } from '../../gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../gen/google/rpc/status_pb.js';
import { type ErrorReason, errorReason } from '../errors.js';
import type { StatusLike } from './adapter.js';

/** `reason` of ErrorInfo for authentication failures. */
export type AuthCode = 'unauthenticated' | 'permission_denied';

/** A call refused before it reached the service: no or a bad token, or too little scope. */
export class AuthError extends Error {
  readonly code: AuthCode;
  constructor(code: AuthCode, message: string) {
    super(message);
    this.name = 'AuthError';
    this.code = code;
  }
}

export const ERROR_DOMAIN = 'portcullis';

export const GRPC_CODE: Readonly<Record<ErrorCode | AuthCode, grpc.status>> = {
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  already_exists: grpc.status.ALREADY_EXISTS,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  aborted: grpc.status.ABORTED,
  resource_exhausted: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  permission_denied: grpc.status.PERMISSION_DENIED,
};

const INTERNAL_MESSAGE = 'internal error: the request could not be completed (see the server log)';

/** ErrorInfo metadata values are strings: numbers and strings as they are, anything else as JSON. */
function metadataValues(details: Readonly<Record<string, unknown>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(details ?? {})) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : JSON.stringify(v);
  }
  return out;
}

/** The status for anything thrown by a handler. */
export function errorStatus(error: unknown): StatusLike & { readonly metadata: grpc.Metadata } {
  let reason: ErrorCode | AuthCode;
  let message: string;
  let field: string | undefined;
  let details: Readonly<Record<string, unknown>> | undefined;
  let why: ErrorReason | undefined;
  if (error instanceof AuthError) {
    reason = error.code;
    message = error.message;
  } else {
    const e = DomainError.from(error);
    reason = e.code;
    message = e.code === 'internal' ? INTERNAL_MESSAGE : e.message;
    field = e.code === 'internal' ? undefined : e.field;
    details = e.code === 'internal' ? undefined : e.details;
    why = e.code === 'internal' ? undefined : errorReason(e);
  }
  const code = GRPC_CODE[reason];
  const info = create(ErrorInfoSchema, {
    reason,
    domain: ERROR_DOMAIN,
    metadata: {
      ...metadataValues(details),
      ...(field === undefined ? {} : { field }),
      ...(why === undefined ? {} : { reason: why }),
    },
  });
  const packed = [anyPack(ErrorInfoSchema, info)];
  if (reason === 'invalid_argument') {
    packed.push(
      anyPack(
        BadRequestSchema,
        create(BadRequestSchema, { fieldViolations: [{ field: field ?? '', description: message }] }),
      ),
    );
  }
  const status = create(StatusSchema, { code, message, details: packed });
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(toBinary(StatusSchema, status)));
  metadata.set('portcullis-code', reason);
  if (why !== undefined) metadata.set('portcullis-reason', why);
  // Header values must be printable ASCII; a field path with anything else stays in the details only.
  if (field !== undefined && /^[\x20-\x7e]*$/.test(field)) metadata.set('portcullis-field', field);
  return { code, details: message, metadata };
}
