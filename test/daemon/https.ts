/**
 * One HTTPS request to a test server on 127.0.0.1 (node:https, no pooling unless an agent is
 * given): the status, the JSON body, the response headers, the server certificate's CN, or
 * the connection error.
 */
import { type Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Pem } from './certs.js';

export interface RestAnswer {
  headers?: Record<string, string | string[] | undefined>;
  status?: number;
  body?: unknown;
  error?: string;
  peerCn?: string;
}

export function rest(
  port: number,
  ca: string,
  options: {
    method?: string;
    path?: string;
    client?: Pem;
    token?: string;
    body?: unknown;
    agent?: Agent;
    headers?: Record<string, string>;
  },
): Promise<RestAnswer> {
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/v1/status',
        ca,
        ...(options.client ? { cert: options.client.cert, key: options.client.key } : {}),
        agent: options.agent ?? false,
        headers: {
          ...options.headers,
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        const cn = isTls(res.socket) ? res.socket.getPeerCertificate().subject?.CN : undefined;
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          resolve({
            ...(res.statusCode === undefined ? {} : { status: res.statusCode }),
            body: text ? JSON.parse(text) : undefined,
            headers: res.headers,
            ...(typeof cn === 'string' ? { peerCn: cn } : {}),
          });
        });
      },
    );
    req.on('error', (err) => resolve({ error: err.message }));
    req.end(body);
  });
}

function isTls(socket: unknown): socket is TLSSocket {
  return typeof socket === 'object' && socket !== null && 'getPeerCertificate' in socket;
}
