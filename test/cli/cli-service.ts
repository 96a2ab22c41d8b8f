/**
 * A Portcullis REST door for CLI tests, in-process: a FirewallService managing a throwaway
 * network namespace (test/helpers/kernel-service.ts), served by the production express app on
 * a Unix socket in a fresh temporary directory (no token, as the daemon's socket) and on
 * 127.0.0.1 port 0 (bearer token with write scope). Closing stops both listeners, the service,
 * and deletes the namespace and the directory, also when start-up failed half way.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authenticator, hashToken } from '../../src/transport/auth.js';
import { createApp } from '../../src/transport/http/app.js';
import { createHttpServer } from '../../src/transport/http/server.js';
import { type KernelService, startKernelService, stopKernelService } from '../helpers/kernel-service.js';

export interface CliService {
  readonly kernel: KernelService;
  /** Path of the Unix socket (no token needed). */
  readonly socket: string;
  /** http://127.0.0.1:PORT (needs `token`). */
  readonly url: string;
  /** A write token for `url`. */
  readonly token: string;
  /** A read-only token for `url`. */
  readonly readToken: string;
  close(): Promise<void>;
}

function listen(server: Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startCliService(): Promise<CliService> {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-cli-'));
  const servers: Server[] = [];
  let kernel: KernelService | undefined;
  const close = async () => {
    for (const s of servers) await closeServer(s);
    await stopKernelService(kernel);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    kernel = await startKernelService({ prefix: 'pcl-cli', stateDir: join(dir, 'state') });
    const token = randomBytes(18).toString('base64url');
    const readToken = randomBytes(18).toString('base64url');
    const auth = new Authenticator([
      { name: 'cli-test', sha256: hashToken(token), scope: 'write' },
      { name: 'cli-reader', sha256: hashToken(readToken), scope: 'read' },
    ]);
    const socket = join(dir, 'portcullis.sock');
    const local = createHttpServer(createApp({ service: kernel.service, auth, requireAuth: false }));
    servers.push(local);
    await listen(local, socket);
    const tcp = createHttpServer(createApp({ service: kernel.service, auth, requireAuth: true }));
    servers.push(tcp);
    await listen(tcp, { host: '127.0.0.1', port: 0 });
    const address = tcp.address();
    if (address === null || typeof address === 'string') throw new Error('the TCP listener has no port');
    return { kernel, socket, url: `http://127.0.0.1:${address.port}`, token, readToken, close };
  } catch (err) {
    await close();
    throw err;
  }
}
