/**
 * Where the service is and how to prove who we are. By default the daemon's Unix socket
 * (`/run/portcullis/portcullis.sock`, or PORTCULLIS_SOCKET: the same variable the daemon
 * reads), which is root-only and needs no token; or a URL (`--url`, PORTCULLIS_URL) with a
 * bearer token from PORTCULLIS_TOKEN or `--token-file` (never a command-line argument, which
 * every user can read in `ps`), and for https a CA to trust and optionally a client
 * certificate. Flags win over the environment; naming both a socket and a URL is an error.
 */
import { usage } from './errors.js';
import type { Io } from './io.js';

export const DEFAULT_SOCKET = '/run/portcullis/portcullis.sock';

export interface ConnectionFlags {
  readonly url?: string;
  readonly socket?: string;
  readonly tokenFile?: string;
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface Connection {
  /** The URL requests are made against (`http://localhost` on the socket). */
  readonly baseUrl: string;
  readonly socketPath?: string;
  readonly token?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** Where we connect, for messages: `unix:/run/portcullis/portcullis.sock` or the URL. */
  readonly describe: string;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

async function readSecretFile(io: Io, path: string, what: string): Promise<string> {
  try {
    return await io.readFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw usage(`cannot read the ${what} ${path}: ${reason}`);
  }
}

function checkUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usage(`--url "${text}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usage(`--url must be http:// or https://, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '')
    throw usage('--url must not carry a user or password: set PORTCULLIS_TOKEN');
  return url.origin + url.pathname.replace(/\/+$/, '');
}

export async function resolveConnection(flags: ConnectionFlags, io: Io): Promise<Connection> {
  const env = io.env;
  if (flags.url !== undefined && flags.socket !== undefined)
    throw usage('give either --url or --socket, not both');
  const url = flags.socket === undefined ? (flags.url ?? nonEmpty(env.PORTCULLIS_URL)) : undefined;
  if (url === undefined) {
    const socketPath = flags.socket ?? nonEmpty(env.PORTCULLIS_SOCKET) ?? DEFAULT_SOCKET;
    return { baseUrl: 'http://localhost', socketPath, describe: `unix:${socketPath}` };
  }
  const baseUrl = checkUrl(url);
  const tokenFile = flags.tokenFile ?? nonEmpty(env.PORTCULLIS_TOKEN_FILE);
  const token =
    tokenFile === undefined
      ? nonEmpty(env.PORTCULLIS_TOKEN)
      : (await readSecretFile(io, tokenFile, 'token file')).trim();
  const cacert = flags.cacert ?? nonEmpty(env.PORTCULLIS_CACERT);
  const cert = flags.cert ?? nonEmpty(env.PORTCULLIS_CERT);
  const key = flags.key ?? nonEmpty(env.PORTCULLIS_KEY);
  if ((cert === undefined) !== (key === undefined))
    throw usage('a client certificate needs both --cert and --key');
  return {
    baseUrl,
    describe: baseUrl,
    ...(token === undefined || token === '' ? {} : { token }),
    ...(cacert === undefined ? {} : { ca: await readSecretFile(io, cacert, 'CA file') }),
    ...(cert === undefined ? {} : { cert: await readSecretFile(io, cert, 'certificate file') }),
    ...(key === undefined ? {} : { key: await readSecretFile(io, key, 'key file') }),
  };
}
