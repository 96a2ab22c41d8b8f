/**
 * The entry point as a process: --help, configuration errors (exit 2), preflight failures
 * (exit 1, one sentence), and a full start -> serve -> SIGTERM cycle managing a test network
 * namespace, with REST on a Unix socket and on TCP (port 0, read from the log).
 *
 * Unprivileged runs drop capabilities (setpriv, uid 0 without any capability) instead of
 * switching to another uid, so they work wherever the checkout lives (a clone under /root
 * or in a mktemp -d folder is unreadable for nobody). The one run as another uid, holding
 * CAP_NET_ADMIN to show that the privilege check asks for the capability and not for uid 0,
 * runs a one-file bundle of the entry point in a world-readable temporary folder (Linux
 * drops capabilities for a non-root uid's access(2) checks, so it could not load the
 * checkout's files even with CAP_DAC_READ_SEARCH). The bundle is built with the esbuild that
 * tsx brings.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { OPTIONS } from '../src/config.js';
import { findLog, parseLogLines } from '../src/observe/log-lines.js';
import { hashToken } from '../src/transport/auth.js';
import { describeKernel, useNetns } from './helpers/kernel.js';
import { stopDaemon } from './helpers/stop.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'main.ts');
const ROOT = join(import.meta.dirname, '..');

/** Runs the command as uid 0 without any capability (effective, permitted, bounding, ambient). */
const NO_CAPS = ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all'];
/** Runs the command as nobody, holding CAP_NET_ADMIN only. */
const NOBODY_WITH_NET_ADMIN = [
  'setpriv',
  '--reuid=65534',
  '--regid=65534',
  '--clear-groups',
  '--inh-caps=+net_admin',
  '--ambient-caps=+net_admin',
];
const NOT_ROOT =
  'portcullis: portcullis needs root (CAP_NET_ADMIN) to manage iptables: run it as root, or try it safely with --netns NAME as root.';

/** The environment without any PORTCULLIS_* variable of the test run itself. */
/** One state directory for the services this file starts (never the host's /var/lib/portcullis). */
const STATE_DIR = mkdtempSync(join(tmpdir(), 'pcl-main-state-'));
afterAll(() => rmSync(STATE_DIR, { recursive: true, force: true }));

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTCULLIS_')) env[k] = v;
  return { ...env, PORTCULLIS_STATE_DIR: STATE_DIR, ...extra };
}

function runSync(
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
  prefix: string[] = [],
  entry: string[] = ['--import', 'tsx', MAIN],
) {
  const argv = [...prefix, process.execPath, ...entry, ...args];
  const r = spawnSync(argv[0] as string, argv.slice(1), {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-main-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('portcullis --help', () => {
  it('lists every option and exits 0', () => {
    const r = runSync(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: portcullis \[options\]/);
    expect(r.stdout).toContain('--config FILE');
    for (const o of OPTIONS) {
      if (o.hasFlag !== false) expect(r.stdout).toContain(o.flag);
      expect(r.stdout).toContain(o.env);
    }
  });
});

describe('configuration errors', () => {
  const cases = [
    {
      args: ['--rest-port', 'http'],
      env: {},
      message:
        'portcullis: Invalid restPort from flag --rest-port: expected a whole number from 0 to 65535, got "http".',
    },
    {
      args: [],
      env: { PORTCULLIS_REST_HOST: '0.0.0.0' },
      message:
        /^portcullis: Refusing restHost 0\.0\.0\.0 from environment variable PORTCULLIS_REST_HOST: .*--allow-insecure-remote/,
    },
    { args: ['--bogus'], env: {}, message: 'portcullis: Unknown flag --bogus: see --help for the options.' },
  ];
  it.each(cases)(
    '$args $env: one sentence on stderr, exit 2, before anything starts',
    ({ args, env, message }) => {
      // Run without capabilities: exit 2 proves configuration is checked before the privilege check.
      const r = runSync(args, cleanEnv(env), NO_CAPS);
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      if (typeof message === 'string') expect(lines[0]).toBe(message);
      else expect(lines[0]).toMatch(message);
    },
  );
});

const privileged = process.getuid?.() === 0;

describe.skipIf(!privileged)('preflight asks for CAP_NET_ADMIN, not for uid 0', () => {
  it('uid 0 without CAP_NET_ADMIN: one sentence saying to run as root or try --netns, exit 1', () => {
    const r = runSync(['--socket', ''], cleanEnv(), NO_CAPS);
    expect(r.stderr.trim()).toBe(NOT_ROOT);
    expect(r.code).toBe(1);
  });

  it('another uid holding CAP_NET_ADMIN passes the check (and stops at the next one: the namespace)', () => {
    // A world-readable one-file bundle of the entry point (see the file comment).
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-bundle-'));
    try {
      chmodSync(dir, 0o755);
      const bundle = join(dir, 'main.mjs');
      const built = spawnSync(
        join(ROOT, 'node_modules', '.bin', 'esbuild'),
        [
          MAIN,
          '--bundle',
          '--platform=node',
          '--format=esm',
          '--target=node20',
          `--outfile=${bundle}`,
          '--log-level=error',
          "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(built.status, built.stderr).toBe(0);
      chmodSync(bundle, 0o644);
      const args = ['--socket', '', '--netns', 'portcullis-no-such-ns'];
      // Without the capability, the same bundle as the same uid is refused: the check is real.
      const refused = runSync(args, cleanEnv(), NOBODY_WITH_NET_ADMIN.slice(0, 4), [bundle]);
      expect(refused.stderr.trim()).toBe(NOT_ROOT);
      const r = runSync(args, cleanEnv(), NOBODY_WITH_NET_ADMIN, [bundle]);
      expect(r.stderr.trim()).toBe(
        'portcullis: network namespace portcullis-no-such-ns does not exist: create it with `ip netns add portcullis-no-such-ns`, or fix --netns.',
      );
      expect(r.code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--allow-insecure-remote warns at every start that an API is reachable from the network', () => {
    const r = runSync(
      ['--socket', '', '--allow-insecure-remote', '--rest-host', '0.0.0.0'],
      cleanEnv(),
      NO_CAPS,
    );
    const lines = r.stderr.trim().split('\n');
    const first = parseLogLines(lines[0] ?? '')[0];
    expect(first?.level).toBe('warn');
    expect(first?.msg).toMatch(
      /^allowInsecureRemote: the REST API listens on 0\.0\.0\.0:8080, which is not a loopback address, without TLS: it is reachable from the network/,
    );
    expect(lines.at(-1)).toBe(NOT_ROOT);
    expect(r.code).toBe(1);
  });
});

interface Running {
  readonly child: ChildProcess;
  readonly log: () => string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Running[] = [];
const READY = /"msg":"ready"/;

function start(args: string[], env: Record<string, string> = {}, prefix: string[] = []): Running {
  const argv = [...prefix, process.execPath, '--import', 'tsx', MAIN, ...args];
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters: (() => void)[] = [];
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    text += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.on('exit', (code, signal) => {
      res({ code, signal });
      for (const w of waiters.splice(0)) w();
    });
  });
  const r: Running = {
    child,
    log: () => text,
    exited,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((res, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}; log:\n${text}`)),
          timeoutMs,
        );
        const check = () => {
          const m = pattern.exec(text);
          if (m) {
            clearTimeout(timer);
            res(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(
              new Error(`exited (${child.exitCode ?? child.signalCode}) before ${pattern}; log:\n${text}`),
            );
          } else waiters.push(check);
        };
        check();
      });
    },
  };
  running.push(r);
  return r;
}

afterEach(async () => {
  for (const r of running.splice(0)) await stopDaemon(r.child, r.exited);
}, 30_000);

function curl(args: string[]): { status: number; body: string } {
  const r = spawnSync('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`curl ${args.join(' ')} failed: ${r.stderr}`);
  const i = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

describeKernel('portcullis as a process, managing a test namespace', () => {
  const ns = useNetns('pmain');
  const WRITE = 'write-token-for-the-main-test';
  const READ = 'read-token-for-the-main-test';
  const tokens = `ci:write:${hashToken(WRITE)},viewer:read:${hashToken(READ)}`;
  let sockCount = 0;
  const sockPath = () => join(tmp, `s${sockCount++}`, 'portcullis.sock');

  it('with --netns naming a missing namespace: one sentence saying ip netns add, exit 1', () => {
    const r = runSync(['--netns', 'portcullis-no-such-ns', '--socket', '']);
    expect(r.stderr.trim()).toBe(
      'portcullis: network namespace portcullis-no-such-ns does not exist: create it with `ip netns add portcullis-no-such-ns`, or fix --netns.',
    );
    expect(r.code).toBe(1);
  });

  it('without the iptables programs: one sentence saying to install the iptables package, exit 1', () => {
    // A PATH holding `ip` but no iptables: `ip netns exec NS iptables` cannot exec it.
    const bin = join(tmp, 'bin-without-iptables');
    rmSync(bin, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', bin]);
    const ip = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(ip, join(bin, 'ip'));
    const r = runSync(['--netns', ns().name, '--socket', ''], cleanEnv({ PATH: bin }));
    expect(r.stderr.trim()).toBe(
      'portcullis: portcullis needs the iptables programs (iptables, iptables-save, iptables-restore), which are not installed: install the Debian package iptables (apt-get install iptables).',
    );
    expect(r.code).toBe(1);
  });

  it('serves REST on the Unix socket and on TCP, then stops cleanly on SIGTERM', async () => {
    const sock = sockPath();
    const p = start(
      [
        '--netns',
        ns().name,
        '--rest-port',
        '0',
        '--grpc-port',
        '0',
        '--socket',
        sock,
        '--poll-interval-ms',
        '0',
      ],
      { PORTCULLIS_TOKENS: tokens },
    );
    await p.waitFor(READY);
    const rest = findLog(p.log(), 'REST API listening', { transport: 'rest', auth: 'bearer', tls: 'none' });
    expect(rest?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    const grpcLine = findLog(p.log(), 'gRPC API listening', { transport: 'grpc', auth: 'bearer' });
    expect(grpcLine?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(
      findLog(p.log(), 'REST API listening', { transport: 'rest-unix', socket: sock, auth: 'none' }),
    ).toBeDefined();
    const base = `http://${String(rest?.address)}`;
    const grpcPort = String(grpcLine?.address).split(':')[1];

    // gRPC answers on its logged port (stock client, through reflection).
    const health = spawnSync(
      join(ROOT, 'node_modules', '.bin', 'buf'),
      [
        'curl',
        '--protocol',
        'grpc',
        '--http2-prior-knowledge',
        '-H',
        `authorization: Bearer ${READ}`,
        `http://127.0.0.1:${grpcPort}/grpc.health.v1.Health/Check`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(health.stderr).toBe('');
    expect(JSON.parse(health.stdout)).toEqual({ status: 'SERVING' });

    // The socket is 0600 in a directory we created 0700.
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect(statSync(join(sock, '..')).mode & 0o777).toBe(0o700);

    // Unix socket: no token needed.
    const viaSocket = curl(['--unix-socket', sock, 'http://x/v1/status']);
    expect(viaSocket.status).toBe(200);
    expect(JSON.parse(viaSocket.body)).toMatchObject({ revision: expect.any(Number) });

    // TCP: a token is needed; a read token cannot write; a write token can.
    expect(curl([`${base}/v1/status`]).status).toBe(401);
    expect(curl(['-H', `Authorization: Bearer ${READ}`, `${base}/v1/status`]).status).toBe(200);
    const rule = ['-H', 'Content-Type: application/json', '--data', '{"spec":"-p tcp --dport 22 -j ACCEPT"}'];
    const url = `${base}/v1/tables/filter/chains/INPUT/rules`;
    expect(curl(['-H', `Authorization: Bearer ${READ}`, ...rule, url]).status).toBe(403);
    const created = curl(['-H', `Authorization: Bearer ${WRITE}`, ...rule, url]);
    expect(created.status, created.body).toBe(201);
    const saved = await ns().exec(['iptables-save', '-t', 'filter']);
    expect(saved.stdout).toContain('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT');

    p.child.kill('SIGTERM');
    const exit = await p.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(existsSync(sock)).toBe(false);
    expect(findLog(p.log(), 'shutting down', { reason: 'SIGTERM' })).toBeDefined();
    expect(parseLogLines(p.log()).at(-1)).toMatchObject({ level: 'info', msg: 'stopped' });
    // Tokens never reach the log.
    expect(p.log()).not.toContain(WRITE);
    expect(p.log()).not.toContain(READ);
    expect(p.log()).not.toContain(hashToken(WRITE));
  });

  it('with no tokens: TCP answers 401, the socket works, and a warning says how to add one', async () => {
    const sock = sockPath();
    const p = start(['--netns', ns().name, '--rest-port', '0', '--grpc-port', '0', '--socket', sock]);
    await p.waitFor(READY);
    const noTokens = parseLogLines(p.log()).find((r) => String(r.msg).startsWith('no tokens configured: '));
    expect(noTokens).toMatchObject({ level: 'warn', hint: expect.stringContaining('PORTCULLIS_TOKENS=') });
    const port = String(findLog(p.log(), 'REST API listening', { transport: 'rest' })?.address).split(':')[1];
    expect(curl([`http://127.0.0.1:${port}/v1/status`]).status).toBe(401);
    expect(curl(['--unix-socket', sock, 'http://x/v1/status']).status).toBe(200);

    // An open event stream does not hold shutdown up beyond the grace period.
    const stream = spawn('curl', ['-sN', '--max-time', '60', '--unix-socket', sock, 'http://x/v1/events']);
    let firstData: () => void = () => {};
    const connected = new Promise<void>((res) => {
      firstData = res;
    });
    const streamed = new Promise<string>((res) => {
      let out = '';
      stream.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        firstData();
      });
      stream.on('exit', () => res(out));
    });
    await connected;
    const t0 = Date.now();
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(await streamed).toContain(': connected at revision');
    expect(existsSync(sock)).toBe(false);
  });

  it('replaces a stale socket file, but refuses a live socket and a regular file', async () => {
    // Stale: a socket file left by a process that died without closing it.
    const stale = sockPath();
    spawnSync('mkdir', ['-p', join(stale, '..')]);
    const made = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`,
    ]);
    expect(made.status).toBe(0);
    expect(statSync(stale).isSocket()).toBe(true);
    const p = start(['--netns', ns().name, '--rest-port', '0', '--grpc-port', '0', '--socket', stale]);
    await p.waitFor(READY);
    expect(curl(['--unix-socket', stale, 'http://x/v1/status']).status).toBe(200);

    // The state directory of the instance above is its own: a second service refuses it,
    // naming the first one's pid.
    const sameState = runSync(['--netns', ns().name, '--rest-port', '0', '--grpc-port', '0', '--socket', '']);
    expect(sameState.code).toBe(1);
    expect(sameState.stderr.trim().split('\n').at(-1)).toBe(
      `portcullis: another Portcullis (pid ${p.child.pid}) manages the state directory ${STATE_DIR}: stop it, or give this one another --state-dir.`,
    );

    // Live: the socket of the instance above must not be taken over (by a service with a state
    // directory of its own).
    const otherState = mkdtempSync(join(tmpdir(), 'pcl-main-state2-'));
    const second = runSync(
      ['--netns', ns().name, '--rest-port', '0', '--grpc-port', '0', '--socket', stale],
      cleanEnv({ PORTCULLIS_STATE_DIR: otherState }),
    );
    rmSync(otherState, { recursive: true, force: true });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(
      `portcullis: another process is listening on the socket ${stale}: stop it, or choose another --socket path.`,
    );
    expect(statSync(stale).isSocket()).toBe(true);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);

    // A regular file is never deleted.
    const regular = sockPath();
    spawnSync('mkdir', ['-p', join(regular, '..')]);
    writeFileSync(regular, 'not a socket');
    const third = runSync([
      '--netns',
      ns().name,
      '--rest-port',
      '0',
      '--grpc-port',
      '0',
      '--socket',
      regular,
    ]);
    expect(third.code).toBe(1);
    expect(third.stderr).toContain(`portcullis: ${regular} exists and is not a socket`);
    expect(existsSync(regular)).toBe(true);
  });

  it('raises the open-file limit to hold --max-connections, or lowers the cap to what it holds', async () => {
    // Start with a limit of 256: 2 listeners x 1000 connections + 128 spare need 2128.
    const p = start(
      [
        '--netns',
        ns().name,
        '--rest-port',
        '0',
        '--grpc-port',
        '0',
        '--socket',
        '',
        '--max-connections',
        '1000',
      ],
      {},
      ['prlimit', '--nofile=256:256', '--'],
    );
    await p.waitFor(READY);
    const limits = readFileSync(`/proc/${p.child.pid}/limits`, 'utf8');
    const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
    const ready = findLog(p.log(), 'ready');
    expect(ready, p.log()).toBeDefined();
    expect(ready?.nofile).toBe(soft);
    if (soft >= 2128) {
      // CAP_SYS_RESOURCE: prlimit raised the hard limit too.
      expect(findLog(p.log(), 'open-file limit raised', { level: 'info', from: 256 })).toBeDefined();
      expect(ready?.maxConnections).toBe(1000);
    } else {
      expect(soft).toBe(256);
      expect(
        findLog(p.log(), 'open-file limit too low for --max-connections: connection cap lowered', {
          level: 'warn',
          nofile: 256,
          wanted: 2128,
          maxConnections: 1000,
          loweredTo: 64,
        }),
      ).toBeDefined();
      expect(ready?.maxConnections).toBe(64);
    }
    p.child.kill('SIGTERM');
    expect(await p.exited, p.log()).toEqual({ code: 0, signal: null });
  });

  it('a port in use: one sentence naming the port and the option, exit 1, socket cleaned up', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const port = (blocker.address() as { port: number }).port;
    const sock = sockPath();
    try {
      const r = runSync([
        '--netns',
        ns().name,
        '--rest-port',
        '0',
        '--grpc-port',
        String(port),
        '--socket',
        sock,
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `portcullis: The gRPC API cannot listen on 127.0.0.1:${port}: it is already in use; stop the other program or choose another --grpc-port.`,
      );
      expect(r.stderr).not.toMatch(/^E /m); // grpc-js's own bind error goes through our logger (debug)
      expect(existsSync(sock)).toBe(false);
    } finally {
      blocker.close();
    }
  });
});
