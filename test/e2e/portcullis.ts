/**
 * Portcullis as a user runs it: `node --import tsx src/main.ts --netns NAME` as a child
 * process, REST and gRPC on free loopback ports (port 0; the chosen ports are read from its
 * log), no Unix socket, one write token configured by its SHA-256 through PORTCULLIS_TOKENS.
 * The service process stays in the host's namespace (so its API stays reachable whatever the
 * managed firewall drops); only its iptables commands run in the namespace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isReady, listeningAddress } from '../../src/observe/log-lines.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'main.ts');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export interface PortcullisProcess {
  readonly restUrl: string;
  readonly grpcAddress: string;
  /** The bearer token with write scope. */
  readonly token: string;
  readonly pid: number | undefined;
  /** Everything the process wrote to stderr so far. */
  log(): string;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. Safe to call twice. */
  stop(): Promise<number | null>;
  /** kill -9, as a crash: nothing is cleaned up (the state directory stays). */
  kill(): Promise<void>;
}

/** The environment without the test run's own PORTCULLIS_* variables. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return { ...env, ...extra };
}

export async function startPortcullis(options: {
  netns: string;
  extraArgs?: readonly string[];
  /** PORTCULLIS_TOKENS as a user sets it; then `token` is ''. @default one generated write token */
  tokens?: string;
  /** The write token to configure (a restarted service keeps its clients'). @default a new one */
  token?: string;
  /** A state directory to use and keep (a restart after kill -9). @default its own, removed at stop */
  stateDir?: string;
}): Promise<PortcullisProcess> {
  const token = options.tokens === undefined ? (options.token ?? randomBytes(24).toString('base64url')) : '';
  const sha256 = createHash('sha256').update(token).digest('hex');
  const tokens = options.tokens ?? `e2e:write:${sha256}`;
  // Its own state directory (change journal), removed when it stops, unless one is given.
  const ownState = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'pcl-e2e-state-'));
  const removeState = () => {
    if (ownState) rmSync(stateDir, { recursive: true, force: true });
  };
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      '--netns',
      options.netns,
      '--state-dir',
      stateDir,
      '--rest-port',
      '0',
      '--grpc-port',
      '0',
      '--socket',
      '',
      ...(options.extraArgs ?? []),
    ],
    {
      cwd: ROOT,
      env: cleanEnv({ PORTCULLIS_TOKENS: tokens }),
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let text = '';
  let onText: (() => void) | undefined;
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    text += d;
    onText?.();
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  let stopped: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    stopped ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        removeState();
        return child.exitCode;
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      removeState();
      clearTimeout(timer);
      return code;
    })();
    return stopped;
  };

  try {
    const ready = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Portcullis did not report ready within ${START_TIMEOUT_MS} ms:\n${text}`)),
        START_TIMEOUT_MS,
      );
      const check = () => {
        if (isReady(text)) {
          clearTimeout(timer);
          resolve(text);
        }
      };
      onText = check;
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`Portcullis exited with ${String(code)} before it was ready:\n${text}`));
      });
      check();
    });
    onText = undefined;
    const rest = listeningAddress(ready, 'rest');
    const grpc = listeningAddress(ready, 'grpc');
    if (!rest || !grpc) throw new Error(`cannot find the listening addresses in the log:\n${ready}`);
    return {
      restUrl: `http://${rest}`,
      grpcAddress: grpc,
      token,
      pid: child.pid,
      log: () => text,
      stop,
      kill: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
