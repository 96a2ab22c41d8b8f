/**
 * The typed client: openapi-fetch over the types generated from openapi/openapi.yaml
 * (src/gen/openapi.ts), so every path, parameter and body the CLI sends is checked against
 * the contract by the compiler. {@link call} turns each answer into its data or into a
 * {@link CliError} with iptables' exit status and the service's one-line reason.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from '../gen/openapi.js';
import type { Connection } from './connection.js';
import { CliError, EXIT, type ExitCode, oneLine } from './errors.js';
import { nodeFetch } from './http-fetch.js';

export type Api = Client<paths>;
export type Schemas = components['schemas'];
export type Family = Schemas['Family'];
export type TableName = Schemas['TableName'];

export function createApi(connection: Connection): Api {
  return createClient<paths>({
    baseUrl: connection.baseUrl,
    fetch: nodeFetch({
      ...(connection.socketPath === undefined ? {} : { socketPath: connection.socketPath }),
      ...(connection.ca === undefined ? {} : { ca: connection.ca }),
      ...(connection.cert === undefined ? {} : { cert: connection.cert }),
      ...(connection.key === undefined ? {} : { key: connection.key }),
    }),
    headers: connection.token === undefined ? {} : { authorization: `Bearer ${connection.token}` },
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Exit status for a problem code: see errors.ts. */
function exitFor(code: string | undefined, field: string | undefined): ExitCode {
  switch (code) {
    case 'unauthenticated':
    case 'permission_denied':
    case 'unavailable':
    case 'resource_exhausted':
      return EXIT.resource;
    case 'invalid_argument':
    case 'malformed_json':
      // iptables reports a rule number out of range as a failed change, not bad usage.
      return field === 'position' || field?.endsWith('.position') ? EXIT.failed : EXIT.usage;
    default:
      return EXIT.failed;
  }
}

/** A CliError for an HTTP error answer (a problem document, or whatever came back). */
export function problemError(status: number, body: unknown): CliError {
  if (!isRecord(body)) {
    const raw = text(typeof body === 'string' ? oneLine(body) : undefined);
    return new CliError(
      status === 401 || status === 403 ? EXIT.resource : EXIT.failed,
      `the service answered ${status}${raw ? `: ${raw.slice(0, 200)}` : ''}`,
    );
  }
  const code = text(body.code);
  const field = text(body.field);
  const message = text(body.detail) ?? text(body.title) ?? `the service answered ${status}`;
  const hint =
    code === 'unauthenticated'
      ? ' (set PORTCULLIS_TOKEN, or use the Unix socket as root)'
      : code === 'permission_denied'
        ? ' (use a token with write scope)'
        : '';
  // The guard's detail names each cut path; say how to apply the change anyway.
  const suffix = body.reason === 'lockout' ? ' (portcullis --allow-lockout applies it anyway)' : '';
  return new CliError(exitFor(code, field), oneLine(`${message}${suffix}${hint}`));
}

function errorCode(err: unknown): string | undefined {
  if (!isRecord(err)) return undefined;
  if (typeof err.code === 'string') return err.code;
  return errorCode(err.cause);
}

/** A CliError for a request that never got an answer. */
export function unreachable(connection: Connection, err: unknown): CliError {
  const code = errorCode(err);
  const where = connection.describe;
  const reason =
    code === 'ENOENT'
      ? 'no such socket (is the service running? start it with npm start)'
      : code === 'ECONNREFUSED'
        ? 'connection refused (is the service running?)'
        : code === 'EACCES'
          ? 'permission denied (the socket is for root only)'
          : err instanceof Error
            ? err.message
            : String(err);
  return new CliError(EXIT.resource, `cannot reach the service at ${where}: ${reason}`, { cause: err });
}

type Answer<D> =
  | { data: D; error?: never; response: Response }
  | { data?: never; error: unknown; response: Response };

/** The answer's data, or a CliError saying why there is none. */
export async function call<D>(connection: Connection, pending: Promise<Answer<D>>): Promise<D> {
  let answer: Answer<D>;
  try {
    answer = await pending;
  } catch (err) {
    throw unreachable(connection, err);
  }
  if (answer.data === undefined || !answer.response.ok)
    throw problemError(answer.response.status, answer.error);
  return answer.data;
}
