/**
 * RFC 9457 problem documents. Every error response of the REST API is built
 * here, from a DomainError (the service), a validator error (the OpenAPI
 * schema), a body-parser error, or a ProblemError (the transport itself).
 * 5xx bodies never carry the error's message: it is logged instead.
 *
 * Codes, fields and reasons are the ones gRPC reports for the same mistake
 * (see ../errors.ts): a schema violation is `invalid_argument` like the
 * service's own refusals, `If-Match` is the field `expectedRevision` and
 * `Idempotency-Key` the field `idempotencyKey`. Only HTTP-level failures
 * (malformed JSON, media types, size, method) have codes of their own.
 */
import { DomainError, type ErrorCode } from '../../domain/errors.js';
import type { components } from '../../gen/openapi.js';
import { bodyTooLargeMessage, type ErrorReason, errorReason } from '../errors.js';

export type Problem = components['schemas']['Problem'];
export type ProblemCode = Problem['code'];
type ValidationError = components['schemas']['ValidationError'];

const TYPE_BASE = 'https://portcullis.dev/problems/';

const TITLES: Readonly<Record<ProblemCode, string>> = {
  invalid_argument: 'Invalid argument',
  not_found: 'Not found',
  already_exists: 'Already exists',
  failed_precondition: 'Failed precondition',
  aborted: 'Aborted',
  resource_exhausted: 'Too many requests',
  unavailable: 'Service unavailable',
  internal: 'Internal error',
  malformed_json: 'Malformed JSON',
  unsupported_media_type: 'Unsupported media type',
  payload_too_large: 'Payload too large',
  not_acceptable: 'Not acceptable',
  method_not_allowed: 'Method not allowed',
  unauthenticated: 'Unauthenticated',
  permission_denied: 'Permission denied',
};

const DOMAIN_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_argument: 400,
  not_found: 404,
  already_exists: 409,
  failed_precondition: 409,
  aborted: 409,
  resource_exhausted: 429,
  unavailable: 503,
  internal: 500,
};

/** Statuses that differ from the code's for a reason. */
const REASON_STATUS: Readonly<Record<ErrorReason, number>> = {
  revision_mismatch: 412,
  idempotency_key_reused: 422,
  idempotency_key_in_use: 409,
  lockout: 409,
};

/** Header names as fields: the names of the request fields they carry on gRPC too. */
const HEADER_FIELDS: Readonly<Record<string, string>> = {
  'if-match': 'expectedRevision',
  'idempotency-key': 'idempotencyKey',
};

/** A problem response: status, body and extra headers. */
export interface ProblemReply {
  readonly status: number;
  readonly body: Problem;
  readonly headers: Readonly<Record<string, string>>;
}

/** An error the transport raises itself (auth, content type, idempotency). */
export class ProblemError extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly field: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: ProblemCode,
    detail: string,
    options: { field?: string; headers?: Readonly<Record<string, string>> } = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.status = status;
    this.code = code;
    this.field = options.field;
    this.headers = options.headers ?? {};
  }
}

export function problem(
  status: number,
  code: ProblemCode,
  detail: string | undefined,
  extra: Partial<Omit<Problem, 'type' | 'title' | 'status' | 'code' | 'detail'>> = {},
): Problem {
  return {
    type: `${TYPE_BASE}${code}`,
    title: TITLES[code],
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...extra,
  };
}

/** Shape of the errors request validation throws (request-validation.ts; express-openapi-validator before it). */
interface ValidatorError {
  status: number;
  message: string;
  errors?: { path?: string; message?: string; errorCode?: string }[];
  /** For a 405: the methods the resource takes (request-validation.ts RequestInvalid). */
  allow?: readonly string[];
}

function isValidatorError(e: unknown): e is ValidatorError {
  return (
    e instanceof Error &&
    typeof (e as { status?: unknown }).status === 'number' &&
    Array.isArray((e as { errors?: unknown }).errors)
  );
}

/** Shape of body-parser errors. */
interface BodyParserError {
  type: string;
  status: number;
  /** entity.too.large: the limit in bytes. */
  limit?: number;
}

function isBodyParserError(e: unknown): e is BodyParserError {
  return e instanceof Error && typeof (e as { type?: unknown }).type === 'string' && 'status' in e;
}

/** `/body/rule/matches/0/dport` -> `rule.matches[0].dport`; `/query/family` -> `family`. */
export function fieldFromPath(path: string | undefined): { field: string | undefined; where: string } {
  if (!path) return { field: undefined, where: 'body' };
  const parts = path.replace(/^\./, '/').split(/[/.]/).filter(Boolean);
  const where = parts[0] ?? 'body';
  let field = '';
  for (const p of parts.slice(1)) {
    const seg = p.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) field += `[${seg}]`;
    else field += field === '' ? seg : `.${seg}`;
  }
  if (where === 'headers' && field)
    field =
      HEADER_FIELDS[field.toLowerCase()] ??
      field.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
  return { field: field === '' ? undefined : field, where };
}

/** The validator's message, with its `request/body/...` prefix removed. */
function cleanMessage(message: string | undefined): string {
  return (message ?? 'is invalid').replace(/^request\/\S+ /, '');
}

function fromValidator(e: ValidatorError): Omit<ProblemReply, 'headers'> {
  // `if`/`then`/`else` wrappers ("must match "then" schema") only repeat what the errors inside them say.
  const specific = (e.errors ?? []).filter((x) => !/^(if|oneOf)\./.test(x.errorCode ?? ''));
  const raw = specific.length > 0 ? specific : (e.errors ?? []);
  const errors: ValidationError[] = raw.slice(0, 50).map((x) => {
    const { field } = fieldFromPath(x.path);
    const code = x.errorCode?.replace(/\.openapi\.validation$/, '');
    return {
      ...(field === undefined ? {} : { field }),
      message: cleanMessage(x.message),
      ...(code ? { code } : {}),
    };
  });
  const first = raw[0];
  const { field } = fieldFromPath(first?.path);
  switch (e.status) {
    case 404:
      return {
        status: 404,
        body: problem(404, 'not_found', 'no such resource: see /openapi.yaml for the routes'),
      };
    case 405:
      return {
        status: 405,
        body: problem(405, 'method_not_allowed', 'this resource does not support the method'),
      };
    case 415:
      return {
        status: 415,
        body: problem(415, 'unsupported_media_type', 'the request body must be application/json'),
      };
    case 413:
      return { status: 413, body: problem(413, 'payload_too_large', bodyTooLargeMessage(undefined)) };
    case 406:
      return {
        status: 406,
        body: problem(406, 'not_acceptable', 'the requested media type cannot be produced'),
      };
    default: {
      const detail = errors
        .slice(0, 5)
        .map((x) => (x.field ? `${x.field}: ${x.message}` : x.message))
        .join('; ');
      return {
        status: 400,
        body: problem(400, 'invalid_argument', detail || 'the request does not match the API schema', {
          ...(field === undefined ? {} : { field }),
          errors,
        }),
      };
    }
  }
}

/**
 * Maps anything thrown while handling a request to a problem reply. `log` receives the details
 * of 5xx errors (which the body does not show).
 */
export function toProblem(error: unknown, log: (line: string) => void): ProblemReply {
  if (error instanceof ProblemError) {
    return {
      status: error.status,
      body: problem(
        error.status,
        error.code,
        error.message,
        error.field === undefined ? {} : { field: error.field },
      ),
      headers: error.headers,
    };
  }
  if (error instanceof DomainError) return fromDomain(error, log);
  if (isValidatorError(error)) {
    // A 405 names the methods the resource takes (RFC 9110: a 405 must send Allow).
    return {
      ...fromValidator(error),
      headers: error.status === 405 && error.allow ? { Allow: error.allow.join(', ') } : {},
    };
  }
  if (isBodyParserError(error)) {
    switch (error.type) {
      case 'entity.too.large':
        return {
          status: 413,
          body: problem(
            413,
            'payload_too_large',
            bodyTooLargeMessage(typeof error.limit === 'number' ? error.limit : undefined),
          ),
          headers: {},
        };
      case 'entity.parse.failed':
        return {
          status: 400,
          body: problem(400, 'malformed_json', 'the request body is not valid JSON (an object was expected)'),
          headers: {},
        };
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return {
          status: 415,
          body: problem(415, 'unsupported_media_type', 'the request body must be UTF-8 application/json'),
          headers: {},
        };
      case 'request.aborted':
      case 'request.size.invalid':
        return {
          status: 400,
          body: problem(400, 'invalid_argument', 'the request body was incomplete'),
          headers: {},
        };
      default:
        break;
    }
  }
  log(`internal error: ${describe(error)}`);
  return { status: 500, body: internalProblem(), headers: {} };
}

function internalProblem(): Problem {
  return problem(500, 'internal', 'an internal error occurred; the service log has the details');
}

function describe(error: unknown): string {
  if (error instanceof Error)
    return `${error.name}: ${error.message}${error.stack ? `\n${error.stack}` : ''}`;
  return String(error);
}

function fromDomain(e: DomainError, log: (line: string) => void): ProblemReply {
  const field = e.field === undefined ? {} : { field: e.field };
  const details = e.details === undefined ? {} : { details: { ...e.details } };
  if (e.code === 'internal') {
    log(`internal error: ${describe(e)}${e.cause ? ` (cause: ${describe(e.cause)})` : ''}`);
    return { status: 500, body: internalProblem(), headers: {} };
  }
  const reason = errorReason(e);
  if (reason === 'revision_mismatch') {
    const current = e.details?.currentRevision;
    const revision = typeof current === 'number' ? { revision: current } : {};
    return {
      status: 412,
      body: problem(412, e.code, e.message, { reason, ...field, ...revision, ...details }),
      headers: typeof current === 'number' ? { ETag: `"${current}"` } : {},
    };
  }
  const status = reason === undefined ? DOMAIN_STATUS[e.code] : REASON_STATUS[reason];
  const headers: Record<string, string> = {};
  if (status === 429 || status === 503) {
    const after = e.details?.retryAfterSeconds;
    headers['Retry-After'] = typeof after === 'number' && after >= 0 ? String(Math.ceil(after)) : '1';
  }
  if (status >= 500) {
    // 5xx bodies never carry internals (kernel messages, paths): the log has them.
    log(`unavailable: ${describe(e)}`);
    return {
      status,
      body: problem(status, e.code, 'the firewall cannot be read or changed right now; retry later'),
      headers,
    };
  }
  const why = reason === undefined ? {} : { reason };
  return { status, body: problem(status, e.code, e.message, { ...why, ...field, ...details }), headers };
}
