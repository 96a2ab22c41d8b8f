import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Config,
  ConfigError,
  helpText,
  isLoopback,
  loadBaseline,
  loadConfig,
  OPTIONS,
} from '../src/config.js';
import { hashToken } from '../src/transport/auth.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function file(name: string, text: string): string {
  const sub = join(dir, String(fileCount++));
  mkdirSync(sub);
  const p = join(sub, name);
  writeFileSync(p, text);
  return p;
}

function load(argv: string[] = [], env: Record<string, string> = {}): Config {
  const r = loadConfig({ argv, env, cwd: dir });
  if (r.help) throw new Error('unexpected help');
  return r.config;
}

function loadError(argv: string[], env: Record<string, string> = {}): string {
  try {
    load(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

const H1 = hashToken('secret-one');
const H2 = hashToken('secret-two');

describe('defaults', () => {
  it('are safe: loopback, default ports, the socket, no tokens', () => {
    expect(load()).toEqual({
      netns: undefined,
      families: ['ipv4', 'ipv6'],
      restHost: '127.0.0.1',
      restPort: 8080,
      grpcHost: '127.0.0.1',
      grpcPort: 50051,
      socket: '/run/portcullis/portcullis.sock',
      tokens: [],
      baseline: {},
      pollIntervalMs: 5000,
      queue: { maxDepth: 10000, jobDeadlineMs: 30000 },
      maxBodyBytes: 1048576,
      stateDir: '/var/lib/portcullis',
      verifyIntervalMs: 0,
      guard: {
        sshPorts: [22],
        sshSources: [],
        apiPorts: [8080, 50051],
        adminSources: [],
        protectCallers: true,
      },
      limits: { requestTimeoutMs: 30000, headerTimeoutMs: 10000, idleTimeoutMs: 30000, maxConnections: 1000 },
      logLevel: 'info',
      logFormat: 'auto',
      allowInsecureRemote: false,
      tls: undefined,
      clientCertificates: [],
      persist: 'on-demand',
      rulesFiles: { ipv4: '/etc/iptables/rules.v4', ipv6: '/etc/iptables/rules.v6' },
      restoreOnStart: false,
      auditLog: '/var/log/portcullis/audit.log',
    });
  });

  it('keep the state of each managed namespace apart', () => {
    expect(load(['--netns', 'lab'])).toMatchObject({ stateDir: '/var/lib/portcullis/netns/lab' });
    expect(load(['--netns', 'lab', '--state-dir', '/srv/pcl'])).toMatchObject({ stateDir: '/srv/pcl' });
  });
});

describe('precedence: defaults < file < environment < flags', () => {
  const yaml = file(
    'p.yaml',
    [
      'restPort: 1001',
      'grpcPort: 2001',
      'logLevel: warn',
      'queue:',
      '  maxDepth: 7',
      'tokens:',
      `  - { name: filetok, sha256: "${H1}", scope: read }`,
    ].join('\n'),
  );
  const cases: {
    name: string;
    argv: string[];
    env: Record<string, string>;
    expect: Partial<Config>;
  }[] = [
    {
      name: 'file over defaults',
      argv: ['--config', yaml],
      env: {},
      expect: { restPort: 1001, grpcPort: 2001 },
    },
    {
      name: 'env over file',
      argv: ['--config', yaml],
      env: { PORTCULLIS_REST_PORT: '1002' },
      expect: { restPort: 1002, grpcPort: 2001 },
    },
    {
      name: 'flag over env over file',
      argv: ['--config', yaml, '--rest-port', '1003'],
      env: { PORTCULLIS_REST_PORT: '1002', PORTCULLIS_GRPC_PORT: '2002' },
      expect: { restPort: 1003, grpcPort: 2002 },
    },
    {
      name: 'flag with = form',
      argv: ['--config', yaml, '--rest-port=1004', '--log-level=debug'],
      env: {},
      expect: { restPort: 1004, logLevel: 'debug' },
    },
    {
      name: 'PORTCULLIS_CONFIG names the file',
      argv: [],
      env: { PORTCULLIS_CONFIG: yaml },
      expect: { restPort: 1001, logLevel: 'warn' },
    },
    {
      name: '--config wins over PORTCULLIS_CONFIG',
      argv: ['--config', yaml],
      env: { PORTCULLIS_CONFIG: join(dir, 'does-not-exist.yaml') },
      expect: { restPort: 1001 },
    },
    {
      name: 'queue options nested in the file, flat in env and flags',
      argv: ['--config', yaml, '--queue-job-deadline-ms', '99'],
      env: {},
      expect: { queue: { maxDepth: 7, jobDeadlineMs: 99 } },
    },
    {
      name: 'PORTCULLIS_TOKENS replaces the file list',
      argv: ['--config', yaml],
      env: { PORTCULLIS_TOKENS: `a:write:${H2}` },
      expect: { tokens: [{ name: 'a', scope: 'write', sha256: H2 }] },
    },
    {
      name: 'file tokens',
      argv: ['--config', yaml],
      env: {},
      expect: { tokens: [{ name: 'filetok', scope: 'read', sha256: H1 }] },
    },
    {
      name: "--socket '' disables the socket",
      argv: ['--socket', ''],
      env: { PORTCULLIS_SOCKET: '/tmp/x.sock' },
      expect: { socket: undefined },
    },
    {
      name: 'socket from env',
      argv: [],
      env: { PORTCULLIS_SOCKET: '/tmp/x.sock' },
      expect: { socket: '/tmp/x.sock' },
    },
    {
      name: '--allow-insecure-remote switch',
      argv: ['--allow-insecure-remote'],
      env: {},
      expect: { allowInsecureRemote: true },
    },
    {
      name: '--allow-insecure-remote=false beats the environment',
      argv: ['--allow-insecure-remote=false'],
      env: { PORTCULLIS_ALLOW_INSECURE_REMOTE: '1' },
      expect: { allowInsecureRemote: false },
    },
    {
      name: 'non-loopback host with allowInsecureRemote',
      argv: ['--rest-host', '0.0.0.0', '--grpc-host', '::'],
      env: { PORTCULLIS_ALLOW_INSECURE_REMOTE: 'yes' },
      expect: { restHost: '0.0.0.0', grpcHost: '::', allowInsecureRemote: true },
    },
    {
      name: 'non-loopback host with TLS needs no opt-in',
      argv: ['--rest-host', '0.0.0.0', '--tls-cert', '/etc/p/cert.pem', '--tls-key', '/etc/p/key.pem'],
      env: {},
      expect: {
        restHost: '0.0.0.0',
        allowInsecureRemote: false,
        tls: { cert: '/etc/p/cert.pem', key: '/etc/p/key.pem', clientCa: undefined },
      },
    },
    {
      name: 'persistence and audit options',
      argv: ['--persist', 'after-change', '--rules-v4', '/r/4', '--restore-on-start', '--audit-log', ''],
      env: { PORTCULLIS_RULES_V6: '/r/6' },
      expect: {
        persist: 'after-change',
        rulesFiles: { ipv4: '/r/4', ipv6: '/r/6' },
        restoreOnStart: true,
        auditLog: undefined,
      },
    },
    {
      name: 'under --netns the rules files and the audit log live in the state directory',
      argv: ['--netns', 'lab'],
      env: {},
      expect: {
        rulesFiles: {
          ipv4: '/var/lib/portcullis/netns/lab/rules.v4',
          ipv6: '/var/lib/portcullis/netns/lab/rules.v6',
        },
        auditLog: '/var/lib/portcullis/netns/lab/audit.log',
      },
    },
    {
      name: 'client certificates from the environment (JSON)',
      argv: ['--tls-cert', '/c', '--tls-key', '/k', '--tls-client-ca', '/ca'],
      env: {
        PORTCULLIS_CLIENT_CERTIFICATES:
          '[{"name":"deploy","scope":"write","subject":"CN=deploy,O=Example"},{"name":"viewer","scope":"read","san":"DNS:viewer.example"}]',
      },
      expect: {
        tls: { cert: '/c', key: '/k', clientCa: '/ca' },
        clientCertificates: [
          { name: 'deploy', scope: 'write', subject: 'CN=deploy,O=Example' },
          { name: 'viewer', scope: 'read', san: 'DNS:viewer.example' },
        ],
      },
    },
    { name: 'log format', argv: ['--log-format', 'JSON'], env: {}, expect: { logFormat: 'json' } },
    {
      name: 'loopback hosts need no opt-in',
      argv: ['--rest-host', '::1', '--grpc-host', '127.0.0.2'],
      env: {},
      expect: { restHost: '::1', grpcHost: '127.0.0.2' },
    },
    { name: 'localhost', argv: ['--rest-host', 'localhost'], env: {}, expect: { restHost: 'localhost' } },
    {
      name: 'port 0',
      argv: ['--rest-port', '0', '--grpc-port', '0'],
      env: {},
      expect: { restPort: 0, grpcPort: 0 },
    },
    {
      name: 'families from env',
      argv: [],
      env: { PORTCULLIS_FAMILIES: 'ipv6' },
      expect: { families: ['ipv6'] },
    },
    { name: 'netns', argv: ['--netns', 'sandbox-1'], env: {}, expect: { netns: 'sandbox-1' } },
    {
      name: 'numbers',
      argv: ['--poll-interval-ms', '0', '--max-body-bytes', '2048', '--queue-max-depth', '5'],
      env: {},
      expect: { pollIntervalMs: 0, maxBodyBytes: 2048, queue: { maxDepth: 5, jobDeadlineMs: 30000 } },
    },
    {
      name: 'connection limits from flags, the environment and the file',
      argv: ['--request-timeout-ms', '5000', '--header-timeout-ms', '2000'],
      env: { PORTCULLIS_IDLE_TIMEOUT_MS: '700', PORTCULLIS_MAX_CONNECTIONS: '64' },
      expect: {
        limits: { requestTimeoutMs: 5000, headerTimeoutMs: 2000, idleTimeoutMs: 700, maxConnections: 64 },
      },
    },
    {
      name: 'loopback spellings need no opt-in',
      argv: ['--rest-host', '0:0:0:0:0:0:0:1', '--grpc-host', '::ffff:127.0.0.1'],
      env: {},
      expect: { restHost: '0:0:0:0:0:0:0:1', grpcHost: '::ffff:127.0.0.1' },
    },
    {
      name: 'upper-case hashes are normalized',
      argv: [],
      env: { PORTCULLIS_TOKENS: `a:read:${H1.toUpperCase()}, b:write:${H2}` },
      expect: {
        tokens: [
          { name: 'a', scope: 'read', sha256: H1 },
          { name: 'b', scope: 'write', sha256: H2 },
        ],
      },
    },
  ];
  it.each(cases)('$name', ({ argv, env, expect: want }) => {
    expect(load(argv, env)).toMatchObject(want);
  });

  it('reads JSON files, with relative paths resolved against the file', () => {
    const json = file('c.json', JSON.stringify({ socket: 'run/p.sock', baseline: 'base.save', restPort: 1 }));
    const c = load(['--config', json]);
    const base = json.slice(0, -'c.json'.length);
    expect(c.socket).toBe(`${base}run/p.sock`);
    expect(c.baseline).toEqual({ ipv4: `${base}base.save`, ipv6: `${base}base.save` });
  });

  it('baseline per family, and only for managed families', () => {
    expect(load(['--baseline', 'ipv4=/a.save,ipv6=/b.save']).baseline).toEqual({
      ipv4: '/a.save',
      ipv6: '/b.save',
    });
    expect(load(['--baseline', '/a.save', '--families', 'ipv4']).baseline).toEqual({ ipv4: '/a.save' });
  });

  it('records where each value came from', () => {
    const r = loadConfig({ argv: ['--rest-port', '5'], env: { PORTCULLIS_GRPC_PORT: '6' } });
    if (r.help) throw new Error('unexpected help');
    expect(r.sources.restPort).toEqual({ kind: 'flag', name: '--rest-port' });
    expect(r.sources.grpcPort).toEqual({ kind: 'env', name: 'PORTCULLIS_GRPC_PORT' });
    expect(r.sources.logLevel).toEqual({ kind: 'default' });
  });

  it('reads the connection limits from the config file', () => {
    const y = file(
      'limits.yaml',
      'requestTimeoutMs: 9000\nheaderTimeoutMs: 900\nidleTimeoutMs: 90\nmaxConnections: 9\n',
    );
    expect(load(['--config', y]).limits).toEqual({
      requestTimeoutMs: 9000,
      headerTimeoutMs: 900,
      idleTimeoutMs: 90,
      maxConnections: 9,
    });
  });

  it('warns at every start when --allow-insecure-remote lets an API listen beyond loopback without TLS', () => {
    const r = loadConfig({
      argv: ['--allow-insecure-remote', '--rest-host', '0.0.0.0', '--grpc-host', '::'],
      env: {},
    });
    if (r.help) throw new Error('unexpected help');
    expect(r.warnings).toHaveLength(2);
    expect(r.warnings[0]).toMatch(
      /^allowInsecureRemote: the REST API listens on 0\.0\.0\.0:8080, which is not a loopback address, without TLS: it is reachable from the network/,
    );
    expect(r.warnings[1]).toMatch(
      /^allowInsecureRemote: the gRPC API listens on \[::\]:50051, which is not a loopback/,
    );
    const loop = loadConfig({ argv: ['--allow-insecure-remote'], env: {} });
    if (loop.help) throw new Error('unexpected help');
    expect(loop.warnings).toEqual([
      'allowInsecureRemote is set, but both APIs listen on loopback addresses: remove --allow-insecure-remote if that is intended',
    ]);
    const none = loadConfig({ argv: [], env: {} });
    if (none.help) throw new Error('unexpected help');
    expect(none.warnings).toEqual([]);
  });

  it('knows loopback however it is spelled, and nothing else', () => {
    for (const h of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '0:0:0:0:0:0:0:1',
      '0000:0000:0000::0001',
      '0::1',
      '::ffff:127.0.0.1',
      '::FFFF:127.9.9.9',
      '::ffff:7f00:1',
      'localhost',
    ]) {
      expect(isLoopback(h), h).toBe(true);
    }
    for (const h of [
      '0.0.0.0',
      '::',
      '::2',
      '128.0.0.1',
      '::ffff:10.0.0.1',
      '::127.0.0.1',
      '192.0.2.1',
      '2001:db8::1',
      'fe80::1',
    ]) {
      expect(isLoopback(h), h).toBe(false);
    }
  });

  it('warns about unknown PORTCULLIS_* variables (a typo must not pass silently)', () => {
    const r = loadConfig({ argv: [], env: { PORTCULLIS_REST_PROT: '1', PORTCULLIS_REQUIRE_KERNEL: '1' } });
    if (r.help) throw new Error('unexpected help');
    expect(r.warnings).toEqual(['unknown environment variable PORTCULLIS_REST_PROT is ignored (see --help)']);
  });
});

describe('validation errors: one sentence naming the option and the source', () => {
  const yamlBadPort = file('bad.yaml', 'restPort: http\n');
  const yamlUnknown = file('unknown.yaml', 'restport: 1\n');
  const yamlBroken = file('broken.yaml', 'restPort: [1,\n');
  const jsonBroken = file('broken.json', '{"restPort": ');
  const yamlList = file('list.yaml', '- 1\n- 2\n');
  const yamlQueue = file('queue.yaml', 'queue: 5\n');
  const yamlQueueKey = file('queuekey.yaml', 'queue:\n  depth: 5\n');
  const yamlTokens = file(
    'tokens.yaml',
    'tokens:\n  - { name: a, sha256: "not-a-hash-my-secret-token", scope: write }\n',
  );
  const yamlTokensScope = file('tscope.yaml', `tokens:\n  - { name: a, sha256: "${H1}", scope: admin }\n`);
  const yamlTokensExtra = file(
    'textra.yaml',
    `tokens:\n  - { name: a, sha256: "${H1}", scope: read, token: x }\n`,
  );
  const yamlTokensDup = file(
    'tdup.yaml',
    `tokens:\n  - { name: a, sha256: "${H1}", scope: read }\n  - { name: a, sha256: "${H2}", scope: write }\n`,
  );
  const yamlTokensShape = file('tshape.yaml', 'tokens: abc\n');
  const yamlBaselineKey = file('bkey.yaml', 'baseline: { ipv5: /x }\n');
  const yamlRemote = file('remote.yaml', 'restHost: 192.0.2.1\n');

  const cases: { name: string; argv: string[]; env?: Record<string, string>; message: RegExp }[] = [
    { name: 'unknown flag', argv: ['--rest-prot', '1'], message: /^Unknown flag --rest-prot: see --help/ },
    {
      name: 'tokens have no flag',
      argv: ['--tokens', 'x'],
      message: /^Unknown flag --tokens \(tokens are set in the config file or PORTCULLIS_TOKENS\)/,
    },
    { name: 'positional argument', argv: ['serve'], message: /^Unexpected argument "serve"/ },
    {
      name: 'flag without value',
      argv: ['--rest-port'],
      message: /^Flag --rest-port needs a value \(--rest-port PORT\)\.$/,
    },
    {
      name: 'flag followed by a flag',
      argv: ['--netns', '--rest-port', '1'],
      message: /^Flag --netns needs a value/,
    },
    {
      name: 'port not a number (flag)',
      argv: ['--rest-port', 'http'],
      message:
        /^Invalid restPort from flag --rest-port: expected a whole number from 0 to 65535, got "http"\.$/,
    },
    {
      name: 'port out of range (env)',
      argv: [],
      env: { PORTCULLIS_GRPC_PORT: '70000' },
      message:
        /^Invalid grpcPort from environment variable PORTCULLIS_GRPC_PORT: expected a whole number from 0 to 65535, got "70000"\.$/,
    },
    {
      name: 'port wrong type (file)',
      argv: ['--config', yamlBadPort],
      message: /^Invalid restPort from config file .*bad\.yaml \(key restPort\): expected a whole number/,
    },
    {
      name: 'negative number',
      argv: ['--poll-interval-ms', '-1'],
      message: /^Invalid pollIntervalMs from flag --poll-interval-ms/,
    },
    {
      name: 'fraction',
      argv: ['--queue-max-depth', '1.5'],
      message: /^Invalid queue\.maxDepth from flag --queue-max-depth/,
    },
    { name: 'zero depth', argv: ['--queue-max-depth', '0'], message: /^Invalid queue\.maxDepth .*from 1 to/ },
    {
      name: 'zero deadline',
      argv: [],
      env: { PORTCULLIS_QUEUE_JOB_DEADLINE_MS: '0' },
      message: /^Invalid queue\.jobDeadlineMs from environment variable PORTCULLIS_QUEUE_JOB_DEADLINE_MS/,
    },
    {
      name: 'body too small',
      argv: ['--max-body-bytes', '10'],
      message: /^Invalid maxBodyBytes from flag --max-body-bytes: expected a whole number from 1024/,
    },
    {
      name: 'log level',
      argv: ['--log-level', 'loud'],
      message: /^Invalid logLevel from flag --log-level: expected debug, info, warn or error, got "loud"\.$/,
    },
    {
      name: 'bool',
      argv: [],
      env: { PORTCULLIS_ALLOW_INSECURE_REMOTE: 'maybe' },
      message:
        /^Invalid allowInsecureRemote from environment variable PORTCULLIS_ALLOW_INSECURE_REMOTE: expected true or false/,
    },
    {
      name: 'host name',
      argv: ['--rest-host', 'example.org'],
      message: /^Invalid restHost from flag --rest-host: expected an IP address/,
    },
    {
      name: 'family',
      argv: ['--families', 'ipv4,ipx'],
      message: /^Invalid families from flag --families: expected ipv4, ipv6 or ipv4,ipv6/,
    },
    {
      name: 'family twice',
      argv: ['--families', 'ipv4,ipv4'],
      message: /^Invalid families .*ipv4 is repeated\.$/,
    },
    { name: 'no family', argv: ['--families', ''], message: /^Invalid families from flag --families/ },
    {
      name: 'netns name',
      argv: ['--netns', '../etc'],
      message: /^Invalid netns from flag --netns: expected 1-64 characters/,
    },
    {
      name: 'relative socket',
      argv: ['--socket', 'p.sock'],
      message: /^Invalid socket from flag --socket: expected an absolute path/,
    },
    {
      name: 'socket path too long',
      argv: ['--socket', `/${'s'.repeat(120)}`],
      message: /^Invalid socket from flag --socket: expected a path of at most 107 bytes/,
    },
    {
      name: 'non-loopback REST without TLS or allowInsecureRemote',
      argv: ['--rest-host', '0.0.0.0'],
      message:
        /^Refusing restHost 0\.0\.0\.0 from flag --rest-host: it is not a loopback address, .*configure --tls-cert and --tls-key, or add --allow-insecure-remote/,
    },
    {
      name: 'the old --allow-remote',
      argv: ['--allow-remote'],
      message:
        /^Unknown flag --allow-remote \(it is now --allow-insecure-remote; with --tls-cert no flag is needed\)/,
    },
    {
      name: 'TLS certificate without key',
      argv: ['--tls-cert', '/c'],
      message: /^Invalid tlsCert from flag --tls-cert: it needs tlsKey too/,
    },
    {
      name: 'client CA without TLS',
      argv: [],
      env: { PORTCULLIS_TLS_CLIENT_CA: '/ca' },
      message:
        /^Invalid tlsClientCa from environment variable PORTCULLIS_TLS_CLIENT_CA: client certificates need TLS/,
    },
    {
      name: 'client certificate with both subject and san',
      argv: ['--tls-cert', '/c', '--tls-key', '/k', '--tls-client-ca', '/ca'],
      env: { PORTCULLIS_CLIENT_CERTIFICATES: '[{"name":"a","scope":"read","subject":"CN=a","san":"DNS:a"}]' },
      message: /^Invalid clientCertificates\[0\] from .*: expected exactly one of subject .* and san/,
    },
    {
      name: 'client certificate with a bad san',
      argv: ['--tls-cert', '/c', '--tls-key', '/k', '--tls-client-ca', '/ca'],
      env: { PORTCULLIS_CLIENT_CERTIFICATES: '[{"name":"a","scope":"read","san":"a.example"}]' },
      message:
        /^Invalid clientCertificates\[0\]\.san from .*: expected DNS:NAME, URI:URI, email:ADDRESS or IP:ADDRESS/,
    },
    {
      name: 'client certificates without a client CA',
      argv: [],
      env: { PORTCULLIS_CLIENT_CERTIFICATES: '[{"name":"a","scope":"read","subject":"CN=a"}]' },
      message: /^Invalid clientCertificates from .*: they need --tls-client-ca/,
    },
    {
      name: 'persist mode',
      argv: ['--persist', 'always'],
      message:
        /^Invalid persist from flag --persist: expected after-change, on-demand or off, got "always"\.$/,
    },
    {
      name: 'non-loopback gRPC without allowRemote (env)',
      argv: [],
      env: { PORTCULLIS_GRPC_HOST: '::' },
      message:
        /^Refusing grpcHost :: from environment variable PORTCULLIS_GRPC_HOST: it is not a loopback address/,
    },
    {
      name: 'public address from the file',
      argv: ['--config', yamlRemote],
      message: /^Refusing restHost 192\.0\.2\.1 from config file .*remote\.yaml \(key restHost\)/,
    },
    {
      name: 'header timeout longer than the request timeout',
      argv: ['--header-timeout-ms', '5000', '--request-timeout-ms', '1000'],
      message:
        /^Invalid headerTimeoutMs from flag --header-timeout-ms: it is longer than requestTimeoutMs \(1000\)/,
    },
    {
      name: 'a timeout below the minimum',
      argv: ['--idle-timeout-ms', '0'],
      message: /^Invalid idleTimeoutMs from flag --idle-timeout-ms: expected a whole number from 50/,
    },
    {
      name: 'same port twice',
      argv: ['--rest-port', '9000', '--grpc-port', '9000'],
      message: /^Invalid grpcPort from flag --grpc-port: it is the same as restPort \(9000\)/,
    },
    {
      name: 'missing config file',
      argv: ['--config', '/nonexistent/p.yaml'],
      message:
        /^Config file \/nonexistent\/p\.yaml \(from flag --config\) cannot be read: it does not exist\.$/,
    },
    {
      name: 'missing config file (env)',
      argv: [],
      env: { PORTCULLIS_CONFIG: '/nonexistent/p.yaml' },
      message:
        /^Config file \/nonexistent\/p\.yaml \(from environment variable PORTCULLIS_CONFIG\) cannot be read/,
    },
    {
      name: 'unknown file key',
      argv: ['--config', yamlUnknown],
      message: /has an unknown key "restport": the keys are netns, families, restHost/,
    },
    {
      name: 'broken YAML',
      argv: ['--config', yamlBroken],
      message: /^Config file .*broken\.yaml is not valid YAML: /,
    },
    {
      name: 'broken JSON',
      argv: ['--config', jsonBroken],
      message: /^Config file .*broken\.json is not valid JSON: /,
    },
    {
      name: 'file not a mapping',
      argv: ['--config', yamlList],
      message: /must hold a mapping of option names to values\.$/,
    },
    {
      name: 'queue not a mapping',
      argv: ['--config', yamlQueue],
      message: /key queue must be a mapping \{ maxDepth, jobDeadlineMs \}\.$/,
    },
    {
      name: 'unknown queue key',
      argv: ['--config', yamlQueueKey],
      message: /has an unknown key "queue\.depth"/,
    },
    {
      name: 'token hash',
      argv: ['--config', yamlTokens],
      message:
        /^Invalid tokens\[0\]\.sha256 from config file .*tokens\.yaml \(key tokens\): expected 64 hex digits/,
    },
    {
      name: 'token scope',
      argv: ['--config', yamlTokensScope],
      message: /^Invalid tokens\[0\]\.scope from config file .*: expected read or write, got "admin"\.$/,
    },
    {
      name: 'token extra key',
      argv: ['--config', yamlTokensExtra],
      message: /^Invalid tokens\[0\] .*expected only the keys name, sha256 and scope, not "token"\.$/,
    },
    {
      name: 'token duplicate name',
      argv: ['--config', yamlTokensDup],
      message: /^Invalid tokens .*"a" is repeated\.$/,
    },
    {
      name: 'tokens not a list',
      argv: ['--config', yamlTokensShape],
      message: /^Invalid tokens from config file .*: expected a list of \{ name, sha256, scope \}/,
    },
    {
      name: 'env token shape',
      argv: [],
      env: { PORTCULLIS_TOKENS: 'admin:write' },
      message: /^Invalid tokens\[0\] from environment variable PORTCULLIS_TOKENS: expected name:scope:sha256/,
    },
    {
      name: 'env token name',
      argv: [],
      env: { PORTCULLIS_TOKENS: `a b:write:${H1}` },
      message: /^Invalid tokens\[0\]\.name from environment variable PORTCULLIS_TOKENS/,
    },
    {
      name: 'baseline form',
      argv: ['--baseline', 'ipv4=/a,ipv7=/b'],
      message: /^Invalid baseline from flag --baseline: expected PATH or ipv4=PATH,ipv6=PATH/,
    },
    {
      name: 'baseline key',
      argv: ['--config', yamlBaselineKey],
      message: /^Invalid baseline from config file .*: expected the keys ipv4 and ipv6, not "ipv5"\.$/,
    },
    {
      name: 'baseline for an unmanaged family',
      argv: ['--baseline', 'ipv6=/b.save', '--families', 'ipv4'],
      message: /^Invalid baseline from flag --baseline: it names ipv6, which is not in families \(ipv4\)\.$/,
    },
  ];
  it.each(cases)('$name', ({ argv, env, message }) => {
    const m = loadError(argv, env);
    expect(m).toMatch(message);
    // One sentence: no line breaks, ends with a full stop.
    expect(m).not.toContain('\n');
    expect(m).toMatch(/\.$/);
  });

  it('never echoes a token or hash value in an error', () => {
    const secret = 'my-very-secret-token-value';
    for (const env of [{ PORTCULLIS_TOKENS: `a:write:${secret}` }, { PORTCULLIS_TOKENS: `${secret}` }]) {
      expect(loadError([], env)).not.toContain(secret);
    }
    expect(loadError(['--config', yamlTokens])).not.toContain('my-secret-token');
  });
});

describe('baseline files', () => {
  const v4 = file(
    'v4.save',
    '*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.1/32 -j ACCEPT\nCOMMIT\n',
  );
  const v6 = file('v6.save', '*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8::1/128 -j ACCEPT\nCOMMIT\n');

  function baselineOf(argv: string[]) {
    const r = loadConfig({ argv, env: {} });
    if (r.help) throw new Error('unexpected help');
    return loadBaseline(r.config, r.sources);
  }

  it('parses one file per family', () => {
    const b = baselineOf(['--baseline', `ipv4=${v4},ipv6=${v6}`]);
    expect([...b.keys()]).toEqual(['ipv4', 'ipv6']);
    expect(b.get('ipv4')?.tables[0]?.chains.find((c) => c.name === 'INPUT')?.policy).toBe('DROP');
  });

  it('refuses an unreadable file', () => {
    expect(() => baselineOf(['--baseline', '/nonexistent.save'])).toThrow(
      /^Invalid baseline from flag --baseline: file \/nonexistent\.save cannot be read: it does not exist\.$/,
    );
  });

  it('refuses an ipv4 file used for ipv6, suggesting one file per family', () => {
    expect(() => baselineOf(['--baseline', v4])).toThrow(
      /^Invalid baseline from flag --baseline: .*v4\.save is not a valid ipv6 iptables-save file \(.*\); give one file per family/,
    );
  });
});

describe('--help', () => {
  it('is recognised anywhere, even next to bad values', () => {
    expect(loadConfig({ argv: ['--rest-port', '1', '--help'], env: {} }).help).toBe(true);
    expect(loadConfig({ argv: ['-h'], env: {} }).help).toBe(true);
  });

  it('documents every option with its flag, default and environment variable', () => {
    const text = helpText();
    expect(text).toContain('--config FILE');
    expect(text).toContain('PORTCULLIS_CONFIG');
    for (const o of OPTIONS) {
      if (o.hasFlag !== false) expect(text).toContain(o.flag);
      expect(text).toContain(`Env: ${o.env}.`);
      expect(text).toContain(`Default: ${o.shownDefault}.`);
      expect(text).toContain(`File key: ${o.key}.`);
    }
  });
});
