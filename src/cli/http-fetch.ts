/**
 * A `fetch` for openapi-fetch that goes through node:http / node:https, so the typed client
 * reaches the service over its Unix socket (`socketPath`), which Node 20's global fetch
 * (undici) cannot do without the undici package's Agent. The same function serves TCP, so
 * there is one code path, and TLS options (a CA bundle, a client certificate) go straight to
 * node:https: the seam for the daemon's TLS listener.
 *
 * The response body is handed over as a web stream that is pulled as the reader asks, without
 * buffering, so the event stream (`GET /v1/events`) is read as it arrives.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface NodeFetchOptions {
  /** Connect to this Unix socket instead of the URL's host and port. */
  readonly socketPath?: string;
  /** PEM: CA certificates to trust for https (instead of the system's). */
  readonly ca?: string;
  /** PEM: a client certificate and its key, for a listener that asks for one. */
  readonly cert?: string;
  readonly key?: string;
  /** Bound on connecting and waiting for the response headers. @default 30000 */
  readonly timeoutMs?: number;
}

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NO_BODY = new Set([101, 204, 205, 304]);

/**
 * The response body as a web stream, pulled as the reader asks. After the reader cancels, or
 * the body ends or fails, later events of the response are ignored.
 */
function bodyStream(res: IncomingMessage): ReadableStream<Uint8Array> {
  let finished = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      res.on('data', (chunk: Buffer) => {
        if (finished) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 1) <= 0) res.pause();
      });
      res.on('end', () => {
        if (finished) return;
        finished = true;
        controller.close();
      });
      res.on('error', (err) => {
        if (finished) return;
        finished = true;
        controller.error(err);
      });
    },
    pull() {
      res.resume();
    },
    cancel() {
      finished = true;
      res.destroy();
    },
  });
}

function toResponse(res: IncomingMessage): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const status = res.statusCode ?? 502;
  const init = { status, statusText: res.statusMessage ?? '', headers };
  if (NO_BODY.has(status)) {
    res.resume();
    return new Response(null, init);
  }
  return new Response(bodyStream(res), init);
}

/** A fetch over node:http(s), optionally through a Unix socket. */
export function nodeFetch(options: NodeFetchOptions = {}): (input: Request) => Promise<Response> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return async (input: Request): Promise<Response> => {
    const url = new URL(input.url);
    const body = input.body ? Buffer.from(await input.arrayBuffer()) : undefined;
    const headers: Record<string, string> = {};
    input.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (body) headers['content-length'] = String(body.length);
    const secure = url.protocol === 'https:' && options.socketPath === undefined;
    const request: RequestOptions = {
      method: input.method,
      path: `${url.pathname}${url.search}`,
      headers,
      ...(options.socketPath === undefined
        ? {
            hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
            port: url.port || (secure ? 443 : 80),
          }
        : { socketPath: options.socketPath }),
      ...(secure && options.ca !== undefined ? { ca: options.ca } : {}),
      ...(secure && options.cert !== undefined ? { cert: options.cert } : {}),
      ...(secure && options.key !== undefined ? { key: options.key } : {}),
    };
    const send = secure ? httpsRequest : httpRequest;
    return await new Promise<Response>((resolve, reject) => {
      const req = send(request, (res) => {
        clearTimeout(timer);
        resolve(toResponse(res));
      });
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      const abort = () => req.destroy(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      if (input.signal.aborted) abort();
      else input.signal.addEventListener('abort', abort, { once: true });
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(body);
    });
  };
}
