/**
 * `node dist/wait-ready.js [options]`: waits until the Portcullis started with the same options
 * answers GET /readyz with 200, then exits 0; after 120 s it exits 1 with one sentence (the
 * unit's TimeoutStartSec usually ends it first). The systemd unit runs it as ExecStartPost, so the unit counts as started
 * (and units ordered after it, network-pre.target among them, go on) only once the saved rules
 * are loaded and the APIs listen: node has no sd_notify, and polling the service's own
 * readiness probe needs nothing else.
 *
 * It reads the configuration exactly as the service does (config file, environment, flags) and
 * asks through the Unix socket when there is one, else through the REST port (HTTPS when TLS
 * is configured; /readyz needs no credentials, and only readiness is learned from it).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { loadConfig } from './config.js';

const POLL_MS = 100;

function readyz(
  target: { socketPath: string } | { host: string; port: number; tls: boolean },
): Promise<boolean> {
  return new Promise((resolve) => {
    const common = { path: '/readyz', method: 'GET', timeout: 2000 };
    const req =
      'socketPath' in target
        ? httpRequest({ ...common, socketPath: target.socketPath })
        : (target.tls ? httpsRequest : httpRequest)({
            ...common,
            host: target.host,
            port: target.port,
            ...(target.tls ? { rejectUnauthorized: false } : {}),
          });
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

export async function waitReady(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const loaded = loadConfig({ argv, env });
  if (loaded.help) {
    process.stdout.write('Usage: wait-ready [the options of portcullis]: waits until it is ready.\n');
    return 0;
  }
  const { config } = loaded;
  const tls = (config as { tlsCert?: unknown }).tlsCert !== undefined;
  const host =
    config.restHost === '0.0.0.0' ? '127.0.0.1' : config.restHost === '::' ? '::1' : config.restHost;
  const target =
    config.socket !== undefined ? { socketPath: config.socket } : { host, port: config.restPort, tls };
  const limitMs = 120_000;
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await readyz(target)) return 0;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const where = 'socketPath' in target ? `the socket ${target.socketPath}` : `${host}:${config.restPort}`;
  process.stderr.write(`portcullis: not ready within ${limitMs} ms (GET /readyz through ${where}).\n`);
  return 1;
}

waitReady(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`portcullis: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
