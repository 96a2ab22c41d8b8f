/**
 * Configuration: defaults < config file (JSON or YAML) < PORTCULLIS_* environment
 * variables < command-line flags. Every option is declared once in {@link OPTIONS}
 * (flag, environment variable, file key, default, help text, parser), so `--help`,
 * parsing and error messages cannot drift apart.
 *
 * Every problem is reported as one {@link ConfigError} whose message is one sentence
 * naming the option and where the bad value came from; the entry point prints it and
 * exits with code 2 before anything is started. Token hashes are never echoed back.
 */
import { readFileSync, statSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FAMILIES, type Family } from './domain/family.js';
import type { Ruleset } from './domain/model.js';
import { parseSave } from './iptables/save-parser.js';
import type { GuardConfig } from './service/guard.js';
import type { ClientCertificateEntry, Scope, TokenEntry } from './transport/auth.js';
import type { ConnectionLimits } from './transport/connection-limits.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
/** `auto`: JSON lines when stderr is not a terminal, readable lines when it is. */
export type LogFormat = 'auto' | 'json' | 'pretty';
const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];
/**
 * When the ruleset is written to the rules files: after every committed change (batched: at
 * most one write per batch), only when asked (POST /v1/save, gRPC Save), or never.
 */
export type PersistMode = 'after-change' | 'on-demand' | 'off';
const PERSIST_MODES: readonly PersistMode[] = ['after-change', 'on-demand', 'off'];

function isLogLevel(v: unknown): v is LogLevel {
  return LOG_LEVELS.some((l) => l === v);
}

/** Paths of iptables-save files that `reset` returns to, per family. */
export type BaselinePaths = Partial<Record<Family, string>>;

export interface Config {
  /** Named network namespace to manage instead of the host's own; undefined = the host. */
  readonly netns: string | undefined;
  readonly families: readonly Family[];
  readonly restHost: string;
  readonly restPort: number;
  readonly grpcHost: string;
  readonly grpcPort: number;
  /** Unix socket path for local root tooling; undefined = disabled. */
  readonly socket: string | undefined;
  readonly tokens: readonly TokenEntry[];
  readonly baseline: BaselinePaths;
  readonly pollIntervalMs: number;
  readonly queue: { readonly maxDepth: number; readonly jobDeadlineMs: number };
  readonly maxBodyBytes: number;
  /** What the service remembers across restarts (change journal, ...); per namespace under --netns. */
  readonly stateDir: string;
  /** How often to verify that the model equals the kernel (ms); 0 = never. */
  readonly verifyIntervalMs: number;
  /**
   * The lockout guard's protected paths (see src/service/guard.ts); undefined = off. The API's
   * own ports and the caller's path are protected only when the API lives behind the managed
   * firewall (not with --netns).
   */
  readonly guard: GuardConfig | undefined;
  /** Timeouts and the connection cap of every listener (REST TCP, REST Unix socket, gRPC). */
  readonly limits: ConnectionLimits;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Non-loopback listeners without TLS (a warning says so at every start). */
  readonly allowInsecureRemote: boolean;
  /** TLS for REST and gRPC on TCP; undefined = plain TCP (loopback only, unless allowInsecureRemote). */
  readonly tls: TlsPaths | undefined;
  /** Client certificates (mTLS) mapped to an identity and a scope, like tokens. */
  readonly clientCertificates: readonly ClientCertificateEntry[];
  readonly persist: PersistMode;
  /** The rules files (iptables-save format, netfilter-persistent's rules.v4 and rules.v6). */
  readonly rulesFiles: Readonly<Record<Family, string>>;
  /** Test (`--test`) and load the rules files before the service reports ready. */
  readonly restoreOnStart: boolean;
  /** The audit log (JSON lines); undefined = disabled. */
  readonly auditLog: string | undefined;
}

/** The TLS files: certificate chain and key of the server, and the CA that signs client certificates. */
export interface TlsPaths {
  readonly cert: string;
  readonly key: string;
  /** With it, clients may authenticate with a certificate (mTLS). */
  readonly clientCa: string | undefined;
}

/** Where a value came from, for messages. */
export type Source =
  | { readonly kind: 'default' }
  | { readonly kind: 'file'; readonly path: string; readonly key: string }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'flag'; readonly name: string };

export function describeSource(source: Source): string {
  switch (source.kind) {
    case 'default':
      return 'the default';
    case 'file':
      return `config file ${source.path} (key ${source.key})`;
    case 'env':
      return `environment variable ${source.name}`;
    case 'flag':
      return `flag ${source.name}`;
  }
}

/** A configuration problem: one sentence naming the option and the source. Exit code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Every option's parsed value, by option key: the option table below is typed from it, so a
 * parser cannot return anything else, and {@link Config} is built from it key by key.
 */
interface Values {
  netns: string | undefined;
  families: readonly Family[];
  restHost: string;
  restPort: number;
  grpcHost: string;
  grpcPort: number;
  socket: string | undefined;
  tokens: readonly TokenEntry[];
  baseline: BaselinePaths;
  pollIntervalMs: number;
  'queue.maxDepth': number;
  'queue.jobDeadlineMs': number;
  /** undefined: the default, which depends on netns. */
  stateDir: string | undefined;
  verifyIntervalMs: number;
  lockoutGuard: boolean;
  guardSshPorts: readonly number[];
  guardSshSources: readonly string[];
  guardAdminSources: readonly string[];
  maxBodyBytes: number;
  requestTimeoutMs: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  allowInsecureRemote: boolean;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsClientCa: string | undefined;
  clientCertificates: readonly ClientCertificateEntry[];
  persist: PersistMode;
  /** undefined: the default, which depends on netns. */
  rulesV4: string | undefined;
  rulesV6: string | undefined;
  restoreOnStart: boolean;
  /** undefined: the default (which depends on netns); false: disabled. */
  auditLog: string | false | undefined;
}

type Key = keyof Values;

interface OptionSpec<K extends Key> {
  readonly key: K;
  readonly flag: string;
  readonly env: string;
  /** Placeholder for the value in `--help`; undefined for a switch (no value). */
  readonly metavar?: string;
  /** The default as shown in `--help`. */
  readonly shownDefault: string;
  readonly help: string;
  /** When false, the option cannot be given as a flag (secrets-adjacent or list-shaped). */
  readonly hasFlag?: false;
  /**
   * Turns a raw value into the typed one. Strings come from flags and the environment;
   * a config file may give any JSON/YAML value. `where` completes "Invalid X from WHERE".
   */
  readonly parse: (value: unknown, ctx: ParseContext) => Values[K];
  readonly defaultValue: Values[K];
}

/** Any option of the table (the list `--help` and the parsers walk). */
export type AnyOption = { [K in Key]: OptionSpec<K> }[Key];

interface ParseContext {
  readonly source: Source;
  /** Directory relative paths are resolved against. */
  readonly baseDir: string;
}

const NETNS_NAME = /^(?![.-])[A-Za-z0-9_.-]{1,64}$/;
const TOKEN_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes including the NUL). */
const MAX_SOCKET_PATH = 107;

function fail(key: string, ctx: ParseContext, expected: string, got?: unknown): never {
  const shown = got === undefined ? '' : `, got ${show(got)}`;
  throw new ConfigError(`Invalid ${key} from ${describeSource(ctx.source)}: ${expected}${shown}.`);
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function integer(key: string, min: number, max: number) {
  return (value: unknown, ctx: ParseContext): number => {
    let n: number = Number.NaN;
    if (typeof value === 'number') n = value;
    else if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) n = Number(value.trim());
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      fail(key, ctx, `expected a whole number from ${min} to ${max}`, value);
    }
    return n;
  };
}

function str(key: string, ctx: ParseContext, value: unknown): string {
  if (typeof value !== 'string') fail(key, ctx, 'expected a string', value);
  return value;
}

function host(key: string) {
  return (value: unknown, ctx: ParseContext): string => {
    const h = str(key, ctx, value).trim();
    if (h !== 'localhost' && isIP(h) === 0) {
      fail(key, ctx, 'expected an IP address (such as 127.0.0.1, ::1 or 0.0.0.0) or localhost', value);
    }
    return h;
  };
}

function families(value: unknown, ctx: ParseContext): Family[] {
  const list =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : value;
  if (!Array.isArray(list) || list.length === 0)
    fail('families', ctx, 'expected ipv4, ipv6 or ipv4,ipv6', value);
  const out: Family[] = [];
  for (const f of list) {
    if (f !== 'ipv4' && f !== 'ipv6') fail('families', ctx, 'expected ipv4, ipv6 or ipv4,ipv6', value);
    if (out.includes(f)) fail('families', ctx, `expected each family once, but ${f} is repeated`);
    out.push(f);
  }
  return out;
}

/** A comma-separated string or a list (config file) of at most `max` items; '' is none. */
function listOf(key: string, ctx: ParseContext, value: unknown, max: number): unknown[] {
  const list =
    typeof value === 'string'
      ? value
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== '')
      : value;
  if (!Array.isArray(list)) fail(key, ctx, 'expected a comma-separated list', value);
  if (list.length > max) fail(key, ctx, `expected at most ${max} items`, value);
  return list;
}

/** An address or CIDR (prefix within the family's length). */
function cidr(key: string, ctx: ParseContext, value: unknown): string {
  const text = str(key, ctx, value).trim();
  const [address = '', prefix, extra] = text.split('/');
  const version = isIP(address);
  const max = version === 6 ? 128 : 32;
  const ok =
    version !== 0 &&
    extra === undefined &&
    (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= max));
  if (!ok) fail(key, ctx, 'expected an address or CIDR such as 192.0.2.1 or 2001:db8::/32', value);
  return text;
}

function socketPath(value: unknown, ctx: ParseContext): string | undefined {
  const p = str('socket', ctx, value);
  if (p === '') return undefined;
  if (p.includes('\0')) fail('socket', ctx, 'expected a path without NUL bytes');
  if (!isAbsolute(p) && ctx.source.kind !== 'file') {
    fail('socket', ctx, "expected an absolute path (or '' to disable the socket)", value);
  }
  const full = resolve(ctx.baseDir, p);
  if (Buffer.byteLength(full) > MAX_SOCKET_PATH) {
    fail('socket', ctx, `expected a path of at most ${MAX_SOCKET_PATH} bytes (a Linux limit)`, value);
  }
  return full;
}

function parseScope(key: string, ctx: ParseContext, value: unknown): Scope {
  if (value !== 'read' && value !== 'write') fail(key, ctx, 'expected read or write', value);
  return value;
}

function tokenEntry(
  index: number,
  name: unknown,
  scope: unknown,
  sha: unknown,
  ctx: ParseContext,
): TokenEntry {
  const at = `tokens[${index}]`;
  if (typeof name !== 'string' || !TOKEN_NAME.test(name)) {
    fail(`${at}.name`, ctx, 'expected 1-64 characters of A-Z a-z 0-9 _ . @ -', name);
  }
  const s = parseScope(`${at}.scope`, ctx, scope);
  // Never echo this value: an operator may have pasted the token itself instead of its hash.
  if (typeof sha !== 'string' || !SHA256.test(sha)) {
    fail(
      `${at}.sha256`,
      ctx,
      'expected 64 hex digits, the SHA-256 of the token (printf %s "$TOKEN" | sha256sum); the value is not shown',
    );
  }
  return { name, scope: s, sha256: sha.toLowerCase() };
}

function tokens(value: unknown, ctx: ParseContext): TokenEntry[] {
  let out: TokenEntry[];
  if (typeof value === 'string' && ctx.source.kind !== 'file') {
    // PORTCULLIS_TOKENS=name:scope:sha256,name:scope:sha256
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    out = items.map((item, i) => {
      const parts = item.split(':');
      if (parts.length !== 3) {
        fail(
          `tokens[${i}]`,
          ctx,
          'expected name:scope:sha256 (comma-separated for several); the value is not shown',
        );
      }
      return tokenEntry(i, parts[0], parts[1], parts[2], ctx);
    });
  } else if (Array.isArray(value)) {
    out = value.map((item: unknown, i) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        fail(`tokens[${i}]`, ctx, 'expected a mapping with name, sha256 and scope');
      }
      const extra = Object.keys(item).find((k) => k !== 'name' && k !== 'sha256' && k !== 'scope');
      if (extra !== undefined) {
        fail(
          `tokens[${i}]`,
          ctx,
          `expected only the keys name, sha256 and scope, not ${JSON.stringify(extra)}`,
        );
      }
      return tokenEntry(i, own(item, 'name'), own(item, 'scope'), own(item, 'sha256'), ctx);
    });
  } else {
    fail('tokens', ctx, 'expected a list of { name, sha256, scope }');
  }
  const seen = new Set<string>();
  for (const t of out) {
    if (seen.has(t.name))
      fail('tokens', ctx, `expected unique names, but ${JSON.stringify(t.name)} is repeated`);
    seen.add(t.name);
  }
  return out;
}

function baseline(value: unknown, ctx: ParseContext): BaselinePaths {
  const path = (key: string, p: unknown): string => {
    if (typeof p !== 'string' || p === '' || p.includes('\0')) fail(key, ctx, 'expected a file path', p);
    return resolve(ctx.baseDir, p);
  };
  if (typeof value === 'string') {
    if (value === '') return {};
    // "PATH" for every managed family, or "ipv4=PATH,ipv6=PATH".
    if (!/^ipv[46]=/.test(value)) return { ipv4: path('baseline', value), ipv6: path('baseline', value) };
    const out: BaselinePaths = {};
    for (const part of value.split(',')) {
      const m = /^(ipv4|ipv6)=(.*)$/.exec(part.trim());
      if (!m) fail('baseline', ctx, 'expected PATH or ipv4=PATH,ipv6=PATH', value);
      const family: Family = m[1] === 'ipv6' ? 'ipv6' : 'ipv4';
      if (out[family] !== undefined) fail('baseline', ctx, `expected ${family} once`, value);
      out[family] = path(`baseline.${family}`, m[2]);
    }
    return out;
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: BaselinePaths = {};
    for (const [k, v] of Object.entries(value)) {
      if (k !== 'ipv4' && k !== 'ipv6')
        fail('baseline', ctx, `expected the keys ipv4 and ipv6, not ${JSON.stringify(k)}`);
      out[k] = path(`baseline.${k}`, v);
    }
    return out;
  }
  fail('baseline', ctx, 'expected a path, or a mapping { ipv4: PATH, ipv6: PATH }', value);
}

/** A file path; relative ones are relative to the config file (or the working directory); '' = unset. */
function filePath(key: string) {
  return (value: unknown, ctx: ParseContext): string | undefined => {
    const p = str(key, ctx, value);
    if (p === '') return undefined;
    if (p.includes('\0')) fail(key, ctx, 'expected a path without NUL bytes');
    return resolve(ctx.baseDir, p);
  };
}

/** A property of a parsed mapping (own properties only). */
function own(obj: object, key: string): unknown {
  return Object.getOwnPropertyDescriptor(obj, key)?.value;
}

const SAN_KIND = /^(DNS|URI|email|IP|IP Address):\S/i;

function clientCertificates(value: unknown, ctx: ParseContext): ClientCertificateEntry[] {
  let list: unknown = value;
  if (typeof value === 'string' && ctx.source.kind !== 'file') {
    try {
      list = value.trim() === '' ? [] : JSON.parse(value);
    } catch {
      fail(
        'clientCertificates',
        ctx,
        'expected a JSON list of { name, scope, subject } or { name, scope, san }',
      );
    }
  }
  if (!Array.isArray(list))
    fail('clientCertificates', ctx, 'expected a list of { name, scope, subject } or { name, scope, san }');
  const out: ClientCertificateEntry[] = [];
  const names = new Set<string>();
  list.forEach((item: unknown, i) => {
    const at = `clientCertificates[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      fail(at, ctx, 'expected a mapping with name, scope and subject or san');
    const extra = Object.keys(item).find((k) => !['name', 'scope', 'subject', 'san'].includes(k));
    if (extra !== undefined)
      fail(at, ctx, `expected only the keys name, scope, subject and san, not ${JSON.stringify(extra)}`);
    const name = own(item, 'name');
    if (typeof name !== 'string' || !TOKEN_NAME.test(name))
      fail(`${at}.name`, ctx, 'expected 1-64 characters of A-Z a-z 0-9 _ . @ -', name);
    if (names.has(name))
      fail('clientCertificates', ctx, `expected unique names, but ${JSON.stringify(name)} is repeated`);
    names.add(name);
    const scope = parseScope(`${at}.scope`, ctx, own(item, 'scope'));
    const subject = own(item, 'subject');
    const san = own(item, 'san');
    if ((subject === undefined) === (san === undefined))
      fail(
        at,
        ctx,
        'expected exactly one of subject (CN=...,O=...) and san (DNS:..., URI:..., email:..., IP:...)',
      );
    if (subject !== undefined) {
      if (
        typeof subject !== 'string' ||
        !/^[A-Za-z][A-Za-z0-9.]*=/.test(subject.trim()) ||
        /[\0\n]/.test(subject)
      )
        fail(`${at}.subject`, ctx, 'expected a subject such as CN=deploy,O=Example', subject);
      out.push({ name, scope, subject: subject.trim() });
    } else {
      if (typeof san !== 'string' || !SAN_KIND.test(san.trim()) || /[\0\n]/.test(san))
        fail(`${at}.san`, ctx, 'expected DNS:NAME, URI:URI, email:ADDRESS or IP:ADDRESS', san);
      out.push({ name, scope, san: san.trim() });
    }
  });
  return out;
}

function bool(key: string) {
  return (value: unknown, ctx: ParseContext): boolean => {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string') {
      const v = value.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
    }
    return fail(key, ctx, 'expected true or false (or 1/0, yes/no)', value);
  };
}

/** Every option, by key, in `--help` order. */
const OPTION_TABLE: { readonly [K in Key]: OptionSpec<K> } = {
  netns: {
    key: 'netns',
    flag: '--netns',
    env: 'PORTCULLIS_NETNS',
    metavar: 'NAME',
    shownDefault: 'unset (the host)',
    help: 'Manage the firewall of this named network namespace (create it with `ip netns add NAME`) instead of the host: for trying Portcullis safely and for tests.',
    defaultValue: undefined,
    parse: (v, ctx) => {
      const s = str('netns', ctx, v);
      if (s === '') return undefined;
      if (!NETNS_NAME.test(s))
        fail('netns', ctx, "expected 1-64 characters of A-Z a-z 0-9 _ . - not starting with '.' or '-'", v);
      return s;
    },
  },
  families: {
    key: 'families',
    flag: '--families',
    env: 'PORTCULLIS_FAMILIES',
    metavar: 'LIST',
    shownDefault: 'ipv4,ipv6',
    help: 'Address families to manage, comma-separated.',
    defaultValue: ['ipv4', 'ipv6'],
    parse: families,
  },
  restHost: {
    key: 'restHost',
    flag: '--rest-host',
    env: 'PORTCULLIS_REST_HOST',
    metavar: 'ADDR',
    shownDefault: '127.0.0.1',
    help: 'Address the REST API listens on; a non-loopback address needs --tls-cert (or --allow-insecure-remote).',
    defaultValue: '127.0.0.1',
    parse: host('restHost'),
  },
  restPort: {
    key: 'restPort',
    flag: '--rest-port',
    env: 'PORTCULLIS_REST_PORT',
    metavar: 'PORT',
    shownDefault: '8080',
    help: 'TCP port of the REST API; 0 picks a free port (the chosen one is logged).',
    defaultValue: 8080,
    parse: integer('restPort', 0, 65535),
  },
  grpcHost: {
    key: 'grpcHost',
    flag: '--grpc-host',
    env: 'PORTCULLIS_GRPC_HOST',
    metavar: 'ADDR',
    shownDefault: '127.0.0.1',
    help: 'Address the gRPC API listens on; a non-loopback address needs --tls-cert (or --allow-insecure-remote).',
    defaultValue: '127.0.0.1',
    parse: host('grpcHost'),
  },
  grpcPort: {
    key: 'grpcPort',
    flag: '--grpc-port',
    env: 'PORTCULLIS_GRPC_PORT',
    metavar: 'PORT',
    shownDefault: '50051',
    help: 'TCP port of the gRPC API; 0 picks a free port (the chosen one is logged).',
    defaultValue: 50051,
    parse: integer('grpcPort', 0, 65535),
  },
  socket: {
    key: 'socket',
    flag: '--socket',
    env: 'PORTCULLIS_SOCKET',
    metavar: 'PATH',
    shownDefault: '/run/portcullis/portcullis.sock',
    help: "Unix socket serving the REST API without tokens to local root (mode 0600; its directory is created with 0700); '' disables it.",
    defaultValue: '/run/portcullis/portcullis.sock',
    parse: socketPath,
  },
  tokens: {
    key: 'tokens',
    flag: '--tokens',
    env: 'PORTCULLIS_TOKENS',
    hasFlag: false,
    metavar: 'LIST',
    shownDefault: 'none (every TCP request is refused with 401)',
    help: 'Bearer tokens for TCP requests, as SHA-256 hashes with a scope (read or write): in the config file a list of { name, sha256, scope }, in the environment name:scope:sha256,... (replacing the file\'s list). Hash a token with: printf %s "$TOKEN" | sha256sum.',
    defaultValue: [],
    parse: tokens,
  },
  baseline: {
    key: 'baseline',
    flag: '--baseline',
    env: 'PORTCULLIS_BASELINE',
    metavar: 'PATH',
    shownDefault: 'unset (reset empties every table, policies ACCEPT)',
    help: 'iptables-save file that reset returns to, for every family, or ipv4=PATH,ipv6=PATH (in the file also { ipv4: PATH, ipv6: PATH }).',
    defaultValue: {},
    parse: baseline,
  },
  pollIntervalMs: {
    key: 'pollIntervalMs',
    flag: '--poll-interval-ms',
    env: 'PORTCULLIS_POLL_INTERVAL_MS',
    metavar: 'MS',
    shownDefault: '5000',
    help: 'Without the nf_tables change feed: how often to compare the kernel with the model, in milliseconds; 0 disables.',
    defaultValue: 5000,
    parse: integer('pollIntervalMs', 0, 86_400_000),
  },
  'queue.maxDepth': {
    key: 'queue.maxDepth',
    flag: '--queue-max-depth',
    env: 'PORTCULLIS_QUEUE_MAX_DEPTH',
    metavar: 'N',
    shownDefault: '10000',
    help: 'Most changes that may wait at once; more are refused (429 / RESOURCE_EXHAUSTED).',
    defaultValue: 10000,
    parse: integer('queue.maxDepth', 1, 10_000_000),
  },
  'queue.jobDeadlineMs': {
    key: 'queue.jobDeadlineMs',
    flag: '--queue-job-deadline-ms',
    env: 'PORTCULLIS_QUEUE_JOB_DEADLINE_MS',
    metavar: 'MS',
    shownDefault: '30000',
    help: 'Most milliseconds a change may wait in the queue before it is refused.',
    defaultValue: 30000,
    parse: integer('queue.jobDeadlineMs', 1, 86_400_000),
  },
  stateDir: {
    key: 'stateDir',
    flag: '--state-dir',
    env: 'PORTCULLIS_STATE_DIR',
    metavar: 'DIR',
    shownDefault: '/var/lib/portcullis (with --netns NAME: /var/lib/portcullis/netns/NAME)',
    help: 'Directory (created 0700) for what the service must remember across restarts: the journal of changes that commit in several parts, which are finished or undone at start after a crash.',
    defaultValue: undefined,
    parse: (v, ctx) => {
      const p = str('stateDir', ctx, v);
      if (p === '' || p.includes('\0')) fail('stateDir', ctx, 'expected a directory path', v);
      if (!isAbsolute(p) && ctx.source.kind !== 'file') fail('stateDir', ctx, 'expected an absolute path', v);
      return resolve(ctx.baseDir, p);
    },
  },
  verifyIntervalMs: {
    key: 'verifyIntervalMs',
    flag: '--verify-interval-ms',
    env: 'PORTCULLIS_VERIFY_INTERVAL_MS',
    metavar: 'MS',
    shownDefault: '0 (never)',
    help: 'How often to compare the model with a fresh read of the kernel and report differences (GET /v1/verify does it on demand); each check reads the whole ruleset, about 0.6 s at 50,000 rules.',
    defaultValue: 0,
    parse: integer('verifyIntervalMs', 0, 86_400_000),
  },
  lockoutGuard: {
    key: 'lockoutGuard',
    flag: '--lockout-guard',
    env: 'PORTCULLIS_LOCKOUT_GUARD',
    metavar: 'BOOL',
    shownDefault: 'true',
    help: "Refuse a change that would cut SSH (--guard-ssh-ports), the API from --guard-admin-sources, or the caller's own connection (409 / FAILED_PRECONDITION, reason lockout), unless the request says allowLockout.",
    defaultValue: true,
    parse: bool('lockoutGuard'),
  },
  guardSshPorts: {
    key: 'guardSshPorts',
    flag: '--guard-ssh-ports',
    env: 'PORTCULLIS_GUARD_SSH_PORTS',
    metavar: 'LIST',
    shownDefault: '22',
    help: "TCP ports of SSH the lockout guard keeps open, comma-separated ('' for none).",
    defaultValue: [22],
    parse: (v, ctx) =>
      listOf('guardSshPorts', ctx, v, 16).map((x) => integer('guardSshPorts', 1, 65535)(x, ctx)),
  },
  guardSshSources: {
    key: 'guardSshSources',
    flag: '--guard-ssh-sources',
    env: 'PORTCULLIS_GUARD_SSH_SOURCES',
    metavar: 'LIST',
    shownDefault: "'' (from anywhere)",
    help: 'Addresses or CIDRs SSH must stay open from, comma-separated; empty: from anywhere.',
    defaultValue: [],
    parse: (v, ctx) => listOf('guardSshSources', ctx, v, 64).map((x) => cidr('guardSshSources', ctx, x)),
  },
  guardAdminSources: {
    key: 'guardAdminSources',
    flag: '--guard-admin-sources',
    env: 'PORTCULLIS_GUARD_ADMIN_SOURCES',
    metavar: 'LIST',
    shownDefault: "'' (the API ports are not protected)",
    help: 'Addresses or CIDRs the REST and gRPC ports must stay open from, comma-separated (without --netns).',
    defaultValue: [],
    parse: (v, ctx) => listOf('guardAdminSources', ctx, v, 64).map((x) => cidr('guardAdminSources', ctx, x)),
  },
  maxBodyBytes: {
    key: 'maxBodyBytes',
    flag: '--max-body-bytes',
    env: 'PORTCULLIS_MAX_BODY_BYTES',
    metavar: 'BYTES',
    shownDefault: '1048576',
    help: 'Largest REST request body (and gRPC message) accepted, in bytes; larger ones get 413 / RESOURCE_EXHAUSTED. A request may take several times its size in memory while it is parsed, so raise it with care; a large table also goes in as several Apply calls.',
    defaultValue: 1_048_576,
    parse: integer('maxBodyBytes', 1024, 1_073_741_824),
  },
  requestTimeoutMs: {
    key: 'requestTimeoutMs',
    flag: '--request-timeout-ms',
    env: 'PORTCULLIS_REQUEST_TIMEOUT_MS',
    metavar: 'MS',
    shownDefault: '30000',
    help: "Most milliseconds a client may take to send a whole request (REST headers and body; a gRPC call's message); slower ones are cut off (REST 408).",
    defaultValue: 30_000,
    parse: integer('requestTimeoutMs', 50, 3_600_000),
  },
  headerTimeoutMs: {
    key: 'headerTimeoutMs',
    flag: '--header-timeout-ms',
    env: 'PORTCULLIS_HEADER_TIMEOUT_MS',
    metavar: 'MS',
    shownDefault: '10000',
    help: "Most milliseconds a client may take to send a request's headers (REST) or a new connection its first call (gRPC); at most --request-timeout-ms.",
    defaultValue: 10_000,
    parse: integer('headerTimeoutMs', 50, 3_600_000),
  },
  idleTimeoutMs: {
    key: 'idleTimeoutMs',
    flag: '--idle-timeout-ms',
    env: 'PORTCULLIS_IDLE_TIMEOUT_MS',
    metavar: 'MS',
    shownDefault: '30000',
    help: 'Connections with nothing in flight (REST keep-alive, gRPC without calls, sockets that send nothing) are closed after this many milliseconds.',
    defaultValue: 30_000,
    parse: integer('idleTimeoutMs', 50, 86_400_000),
  },
  maxConnections: {
    key: 'maxConnections',
    flag: '--max-connections',
    env: 'PORTCULLIS_MAX_CONNECTIONS',
    metavar: 'N',
    shownDefault: '1000',
    help: 'Most connections each listener (REST TCP, the Unix socket, gRPC) holds at once; more are closed on arrival. Lowered at start if the file descriptor limit cannot hold them all (the log says so).',
    defaultValue: 1000,
    parse: integer('maxConnections', 1, 1_000_000),
  },
  logLevel: {
    key: 'logLevel',
    flag: '--log-level',
    env: 'PORTCULLIS_LOG_LEVEL',
    metavar: 'LEVEL',
    shownDefault: 'info',
    help: 'Least severe log level written to stderr: debug, info, warn or error.',
    defaultValue: 'info',
    parse: (v, ctx) => {
      const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
      if (!isLogLevel(s)) fail('logLevel', ctx, 'expected debug, info, warn or error', v);
      return s;
    },
  },
  logFormat: {
    key: 'logFormat',
    flag: '--log-format',
    env: 'PORTCULLIS_LOG_FORMAT',
    metavar: 'FORMAT',
    shownDefault: 'auto',
    help: 'json: one JSON object per line (pino); pretty: readable lines; auto: pretty when stderr is a terminal, else json. Every line of a request carries its requestId; tokens, keys and certificates are never written.',
    defaultValue: 'auto',
    parse: (v, ctx) => {
      const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
      const found = LOG_FORMATS.find((f) => f === s);
      if (found === undefined) fail('logFormat', ctx, 'expected auto, json or pretty', v);
      return found;
    },
  },
  allowInsecureRemote: {
    key: 'allowInsecureRemote',
    flag: '--allow-insecure-remote',
    env: 'PORTCULLIS_ALLOW_INSECURE_REMOTE',
    shownDefault: 'false',
    help: 'Allow --rest-host / --grpc-host to be a non-loopback address without TLS: tokens then cross the network in clear text (a warning says so at every start). With --tls-cert no flag is needed.',
    defaultValue: false,
    parse: bool('allowInsecureRemote'),
  },
  tlsCert: {
    key: 'tlsCert',
    flag: '--tls-cert',
    env: 'PORTCULLIS_TLS_CERT',
    metavar: 'PATH',
    shownDefault: 'unset (plain TCP)',
    help: 'PEM certificate chain of the REST and gRPC listeners (TCP; the Unix socket stays plain). Needs --tls-key. Re-read on SIGHUP without dropping open connections.',
    defaultValue: undefined,
    parse: filePath('tlsCert'),
  },
  tlsKey: {
    key: 'tlsKey',
    flag: '--tls-key',
    env: 'PORTCULLIS_TLS_KEY',
    metavar: 'PATH',
    shownDefault: 'unset',
    help: 'PEM private key of --tls-cert (keep it 0600). Re-read on SIGHUP.',
    defaultValue: undefined,
    parse: filePath('tlsKey'),
  },
  tlsClientCa: {
    key: 'tlsClientCa',
    flag: '--tls-client-ca',
    env: 'PORTCULLIS_TLS_CLIENT_CA',
    metavar: 'PATH',
    shownDefault: 'unset (no client certificates)',
    help: 'PEM CA certificate(s) that sign client certificates (mTLS): a verified certificate named in clientCertificates authenticates like a token; a request with a token is decided by the token. Needs --tls-cert. Re-read on SIGHUP.',
    defaultValue: undefined,
    parse: filePath('tlsClientCa'),
  },
  clientCertificates: {
    key: 'clientCertificates',
    flag: '--client-certificates',
    env: 'PORTCULLIS_CLIENT_CERTIFICATES',
    hasFlag: false,
    metavar: 'LIST',
    shownDefault: 'none',
    help: 'Client certificates (with --tls-client-ca) as identities with a scope: in the config file a list of { name, scope, subject } or { name, scope, san }, where subject is the whole subject (CN=deploy,O=Example, any order) and san one subject alternative name (DNS:deploy.example, URI:spiffe://example/deploy, email:ops@example.org, IP:192.0.2.10); in the environment the same list as JSON.',
    defaultValue: [],
    parse: clientCertificates,
  },
  persist: {
    key: 'persist',
    flag: '--persist',
    env: 'PORTCULLIS_PERSIST',
    metavar: 'MODE',
    shownDefault: 'on-demand',
    help: 'When the ruleset is written to the rules files: after-change (after every committed change, at most one write per batch), on-demand (POST /v1/save, gRPC Save) or off. Writes are atomic: a temporary file, fsync, rename, fsync of the directory.',
    defaultValue: 'on-demand',
    parse: (v, ctx) => {
      const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
      const found = PERSIST_MODES.find((m) => m === s);
      if (found === undefined) fail('persist', ctx, 'expected after-change, on-demand or off', v);
      return found;
    },
  },
  rulesV4: {
    key: 'rulesV4',
    flag: '--rules-v4',
    env: 'PORTCULLIS_RULES_V4',
    metavar: 'PATH',
    shownDefault: '/etc/iptables/rules.v4 (with --netns: rules.v4 in the state directory)',
    help: 'The ipv4 rules file, in iptables-save format (the file netfilter-persistent saves and loads).',
    defaultValue: undefined,
    parse: filePath('rulesV4'),
  },
  rulesV6: {
    key: 'rulesV6',
    flag: '--rules-v6',
    env: 'PORTCULLIS_RULES_V6',
    metavar: 'PATH',
    shownDefault: '/etc/iptables/rules.v6 (with --netns: rules.v6 in the state directory)',
    help: 'The ipv6 rules file, in ip6tables-save format.',
    defaultValue: undefined,
    parse: filePath('rulesV6'),
  },
  restoreOnStart: {
    key: 'restoreOnStart',
    flag: '--restore-on-start',
    env: 'PORTCULLIS_RESTORE_ON_START',
    shownDefault: 'false',
    help: 'At start, before the service reports ready, test the rules files with iptables-restore --test and load them (tables they name are replaced, as netfilter-persistent does). A file that fails the test is not loaded and the start fails with one sentence naming the file and line; a missing file is skipped.',
    defaultValue: false,
    parse: bool('restoreOnStart'),
  },
  auditLog: {
    key: 'auditLog',
    flag: '--audit-log',
    env: 'PORTCULLIS_AUDIT_LOG',
    metavar: 'PATH',
    shownDefault: '/var/log/portcullis/audit.log (with --netns: audit.log in the state directory)',
    help: "Audit log: one JSON line per committed change (time, identity, door, requestId, operations, revisions, the restore text), appended and flushed per batch, reopened on SIGHUP (for logrotate); read it with GET /v1/audit. '' disables it.",
    defaultValue: undefined,
    parse: (v, ctx) => {
      const p = str('auditLog', ctx, v);
      if (p === '') return false;
      return filePath('auditLog')(p, ctx);
    },
  },
};

/** Every option, in `--help` order. */
export const OPTIONS: readonly AnyOption[] = Object.values(OPTION_TABLE);

/** The flag choosing the config file, and its environment variable. */
export const CONFIG_FLAG = '--config';
export const CONFIG_ENV = 'PORTCULLIS_CONFIG';
/** PORTCULLIS_* variables that are not options but are known (tests, CI). */
const OTHER_KNOWN_ENV = new Set([CONFIG_ENV, 'PORTCULLIS_REQUIRE_KERNEL']);

export function helpText(program = 'portcullis'): string {
  const lines = [
    `Usage: ${program} [options]`,
    '',
    "Manages a Linux host's iptables firewall through a REST API and a gRPC API, applying every change",
    'atomically with iptables-restore. Needs root (CAP_NET_ADMIN) and the iptables package.',
    '',
    'Precedence, lowest to highest: defaults, the config file, environment variables, flags.',
    '',
    'Options:',
    `  ${CONFIG_FLAG} FILE`,
    `      Config file, JSON or YAML, with the option names below as keys (queue options under`,
    `      queue: { maxDepth, jobDeadlineMs }); relative paths in it are relative to the file.`,
    `      Default: none. Env: ${CONFIG_ENV}.`,
  ];
  for (const o of OPTIONS) {
    const flag =
      o.hasFlag === false
        ? `${o.key} (config file or ${o.env} only, no flag)`
        : o.metavar
          ? `${o.flag} ${o.metavar}`
          : o.flag;
    lines.push(`  ${flag}`);
    for (const l of wrap(o.help, 92)) lines.push(`      ${l}`);
    lines.push(`      Default: ${o.shownDefault}. Env: ${o.env}. File key: ${o.key}.`);
  }
  lines.push(
    '  -h, --help',
    '      Print this help and exit.',
    '',
    'Exit status: 0 after a clean shutdown (SIGINT or SIGTERM), 2 for a configuration error,',
    '1 when start-up or running fails (not root, iptables missing, a port in use, ...).',
    '',
  );
  return lines.join('\n');
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') out.push(line);
  return out;
}

export interface LoadInput {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative flag/env paths resolve against. @default process.cwd() */
  readonly cwd?: string;
}

export type LoadResult =
  | { readonly help: true }
  | {
      readonly help: false;
      readonly config: Config;
      /** Where each option's value came from. */
      readonly sources: Readonly<Record<string, Source>>;
      /** Things worth a log line (unknown PORTCULLIS_* variables, ...). */
      readonly warnings: readonly string[];
    };

interface Raw {
  readonly value: unknown;
  readonly source: Source;
  readonly baseDir: string;
}

function parseFlags(argv: readonly string[]): { help: boolean; config?: string; values: Map<string, Raw> } {
  const byFlag = new Map(OPTIONS.filter((o) => o.hasFlag !== false).map((o) => [o.flag, o]));
  const values = new Map<string, Raw>();
  let config: string | undefined;
  let help = false;
  const knownFlag = (a: string) => a === CONFIG_FLAG || byFlag.has(a.split('=')[0] ?? '') || a === '--help';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === undefined) continue;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      throw new ConfigError(
        `Unexpected argument ${JSON.stringify(arg)}: options are given as --name VALUE (see --help).`,
      );
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const spec = byFlag.get(name);
    if (name !== CONFIG_FLAG && !spec) {
      const hint =
        name === '--tokens'
          ? ' (tokens are set in the config file or PORTCULLIS_TOKENS)'
          : name === '--client-certificates'
            ? ' (client certificates are set in the config file or PORTCULLIS_CLIENT_CERTIFICATES)'
            : name === '--allow-remote'
              ? ' (it is now --allow-insecure-remote; with --tls-cert no flag is needed)'
              : '';
      throw new ConfigError(`Unknown flag ${name}${hint}: see --help for the options.`);
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec && spec.metavar === undefined) value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && knownFlag(next))) {
        throw new ConfigError(`Flag ${name} needs a value (${name} ${spec?.metavar ?? 'FILE'}).`);
      }
      value = next;
      i++;
    }
    if (spec) values.set(spec.key, { value, source: { kind: 'flag', name }, baseDir: '' });
    else config = value;
  }
  return { help, ...(config === undefined ? {} : { config }), values };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a file could not be read, in words: `it does not exist`, `permission denied`, or the errno code. */
export function readFailure(err: unknown): string {
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'error';
  return code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code;
}

function readConfigFile(path: string, from: Source): Map<string, Raw> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `Config file ${path} (from ${describeSource(from)}) cannot be read: ${readFailure(err)}.`,
    );
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { prettyErrors: false });
  } catch (err) {
    const first = messageOf(err).split('\n')[0];
    throw new ConfigError(
      `Config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${first}.`,
    );
  }
  if (doc === null || doc === undefined) return new Map();
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`Config file ${path} must hold a mapping of option names to values.`);
  }
  const keys = new Set<string>(OPTIONS.map((o) => o.key));
  const baseDir = dirname(path);
  const out = new Map<string, Raw>();
  const add = (key: string, value: unknown) => {
    if (!keys.has(key)) {
      const known = OPTIONS.map((o) => o.key.replace(/^queue\./, '')).join(', ');
      throw new ConfigError(
        `Config file ${path} has an unknown key ${JSON.stringify(key)}: the keys are ${known} (queue keys under queue).`,
      );
    }
    out.set(key, { value, source: { kind: 'file', path, key }, baseDir });
  };
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'queue') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new ConfigError(`Config file ${path} key queue must be a mapping { maxDepth, jobDeadlineMs }.`);
      }
      for (const [qk, qv] of Object.entries(v)) add(`queue.${qk}`, qv);
    } else add(k, v);
  }
  return out;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether `h` is a loopback address, however it is spelled: 127.0.0.0/8, ::1 in any form
 * (`0:0:0:0:0:0:0:1`, `0::1`), and IPv4-mapped loopback (`::ffff:127.0.0.1`,
 * `::ffff:7f00:1`); the address is parsed, not compared as text.
 */
export function isLoopback(h: string): boolean {
  if (h === 'localhost') return true;
  const family = isIP(h);
  if (family === 0) return false;
  return LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The warnings --allow-insecure-remote deserves at every start: one per API reachable from the
 * network without TLS.
 */
export function remoteWarnings(config: Config): string[] {
  if (!config.allowInsecureRemote) return [];
  if (config.tls !== undefined) {
    return [
      'allowInsecureRemote is set, but TLS is configured (--tls-cert), so it has no effect: remove --allow-insecure-remote',
    ];
  }
  const out: string[] = [];
  for (const [api, host, port] of [
    ['REST', config.restHost, config.restPort],
    ['gRPC', config.grpcHost, config.grpcPort],
  ] as const) {
    if (!isLoopback(host)) {
      out.push(
        `allowInsecureRemote: the ${api} API listens on ${host.includes(':') ? `[${host}]` : host}:${port}, which is not a loopback address, without TLS: it is reachable from the network and tokens cross it in clear text; configure --tls-cert and --tls-key, or remove --allow-insecure-remote`,
      );
    }
  }
  if (out.length === 0) {
    out.push(
      'allowInsecureRemote is set, but both APIs listen on loopback addresses: remove --allow-insecure-remote if that is intended',
    );
  }
  return out;
}

/** Loads, merges and validates the configuration. Throws {@link ConfigError}. */
export function loadConfig(input: LoadInput): LoadResult {
  const cwd = input.cwd ?? process.cwd();
  const flags = parseFlags(input.argv);
  if (flags.help) return { help: true };
  const warnings: string[] = [];

  // Config file: the flag wins over the environment variable.
  let file = new Map<string, Raw>();
  const fromFlag = flags.config;
  const fromEnv = input.env[CONFIG_ENV];
  const chosen =
    fromFlag !== undefined
      ? { path: fromFlag, source: { kind: 'flag', name: CONFIG_FLAG } as const }
      : fromEnv !== undefined && fromEnv !== ''
        ? { path: fromEnv, source: { kind: 'env', name: CONFIG_ENV } as const }
        : undefined;
  if (chosen !== undefined) {
    if (chosen.path === '') throw new ConfigError(`Flag ${CONFIG_FLAG} needs a file path.`);
    file = readConfigFile(resolve(cwd, chosen.path), chosen.source);
  }

  const envKnown = new Set<string>([...OPTIONS.map((o) => o.env), ...OTHER_KNOWN_ENV]);
  for (const name of Object.keys(input.env)) {
    if (name.startsWith('PORTCULLIS_') && !envKnown.has(name)) {
      warnings.push(`unknown environment variable ${name} is ignored (see --help)`);
    }
  }

  const sources: Partial<Record<Key, Source>> = {};
  /** One option's value: flag, else environment, else config file, else default. */
  const get = <K extends Key>(key: K): Values[K] => {
    const o: OptionSpec<K> = OPTION_TABLE[key];
    const envValue = input.env[o.env];
    const raw: Raw | undefined =
      flags.values.get(key) ??
      (envValue !== undefined
        ? { value: envValue, source: { kind: 'env', name: o.env }, baseDir: cwd }
        : undefined) ??
      file.get(key);
    if (raw === undefined) {
      sources[key] = { kind: 'default' };
      return o.defaultValue;
    }
    sources[key] = raw.source;
    return o.parse(raw.value, { source: raw.source, baseDir: raw.baseDir === '' ? cwd : raw.baseDir });
  };
  // Every option by name: a key left out here, or a value of the wrong type, does not compile.
  const v: Values = {
    netns: get('netns'),
    families: get('families'),
    restHost: get('restHost'),
    restPort: get('restPort'),
    grpcHost: get('grpcHost'),
    grpcPort: get('grpcPort'),
    socket: get('socket'),
    tokens: get('tokens'),
    baseline: get('baseline'),
    pollIntervalMs: get('pollIntervalMs'),
    'queue.maxDepth': get('queue.maxDepth'),
    'queue.jobDeadlineMs': get('queue.jobDeadlineMs'),
    stateDir: get('stateDir'),
    verifyIntervalMs: get('verifyIntervalMs'),
    lockoutGuard: get('lockoutGuard'),
    guardSshPorts: get('guardSshPorts'),
    guardSshSources: get('guardSshSources'),
    guardAdminSources: get('guardAdminSources'),
    maxBodyBytes: get('maxBodyBytes'),
    requestTimeoutMs: get('requestTimeoutMs'),
    headerTimeoutMs: get('headerTimeoutMs'),
    idleTimeoutMs: get('idleTimeoutMs'),
    maxConnections: get('maxConnections'),
    logLevel: get('logLevel'),
    logFormat: get('logFormat'),
    allowInsecureRemote: get('allowInsecureRemote'),
    tlsCert: get('tlsCert'),
    tlsKey: get('tlsKey'),
    tlsClientCa: get('tlsClientCa'),
    clientCertificates: get('clientCertificates'),
    persist: get('persist'),
    rulesV4: get('rulesV4'),
    rulesV6: get('rulesV6'),
    restoreOnStart: get('restoreOnStart'),
    auditLog: get('auditLog'),
  };
  const from = (key: Key): string => describeSource(sources[key] ?? { kind: 'default' });

  // Under --netns, everything the service writes lives in the namespace's state directory.
  const stateDir =
    v.stateDir ?? (v.netns === undefined ? '/var/lib/portcullis' : `/var/lib/portcullis/netns/${v.netns}`);
  const local = (file: string, host: string) => (v.netns === undefined ? host : `${stateDir}/${file}`);
  if ((v.tlsCert === undefined) !== (v.tlsKey === undefined)) {
    const [given, missing] = v.tlsCert === undefined ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey'];
    throw new ConfigError(
      `Invalid ${given} from ${from(given === 'tlsKey' ? 'tlsKey' : 'tlsCert')}: it needs ${missing} too (--tls-cert and --tls-key go together).`,
    );
  }
  if (v.tlsClientCa !== undefined && v.tlsCert === undefined) {
    throw new ConfigError(
      `Invalid tlsClientCa from ${from('tlsClientCa')}: client certificates need TLS; add --tls-cert and --tls-key.`,
    );
  }
  if (v.clientCertificates.length > 0 && v.tlsClientCa === undefined) {
    throw new ConfigError(
      `Invalid clientCertificates from ${from('clientCertificates')}: they need --tls-client-ca, the CA that signs them.`,
    );
  }
  const config: Config = {
    netns: v.netns,
    families: v.families,
    restHost: v.restHost,
    restPort: v.restPort,
    grpcHost: v.grpcHost,
    grpcPort: v.grpcPort,
    socket: v.socket,
    tokens: v.tokens,
    baseline: v.baseline,
    pollIntervalMs: v.pollIntervalMs,
    queue: { maxDepth: v['queue.maxDepth'], jobDeadlineMs: v['queue.jobDeadlineMs'] },
    maxBodyBytes: v.maxBodyBytes,
    stateDir,
    verifyIntervalMs: v.verifyIntervalMs,
    guard: v.lockoutGuard
      ? {
          sshPorts: v.guardSshPorts,
          sshSources: v.guardSshSources,
          // Under --netns the API is not behind the managed firewall.
          apiPorts: v.netns === undefined ? [v.restPort, v.grpcPort].filter((p) => p > 0) : [],
          adminSources: v.guardAdminSources,
          protectCallers: v.netns === undefined,
        }
      : undefined,
    limits: {
      requestTimeoutMs: v.requestTimeoutMs,
      headerTimeoutMs: v.headerTimeoutMs,
      idleTimeoutMs: v.idleTimeoutMs,
      maxConnections: v.maxConnections,
    },
    logLevel: v.logLevel,
    logFormat: v.logFormat,
    allowInsecureRemote: v.allowInsecureRemote,
    tls:
      v.tlsCert !== undefined && v.tlsKey !== undefined
        ? { cert: v.tlsCert, key: v.tlsKey, clientCa: v.tlsClientCa }
        : undefined,
    clientCertificates: v.clientCertificates,
    persist: v.persist,
    rulesFiles: {
      ipv4: v.rulesV4 ?? local('rules.v4', '/etc/iptables/rules.v4'),
      ipv6: v.rulesV6 ?? local('rules.v6', '/etc/iptables/rules.v6'),
    },
    restoreOnStart: v.restoreOnStart,
    auditLog:
      v.auditLog === false ? undefined : (v.auditLog ?? local('audit.log', '/var/log/portcullis/audit.log')),
  };

  // Cross-option checks.
  if (!config.allowInsecureRemote && config.tls === undefined) {
    for (const key of ['restHost', 'grpcHost'] as const) {
      const h = config[key];
      if (!isLoopback(h)) {
        throw new ConfigError(
          `Refusing ${key} ${h} from ${from(key)}: it is not a loopback address, so the firewall API would be reachable from the network without TLS; configure --tls-cert and --tls-key, or add --allow-insecure-remote (or PORTCULLIS_ALLOW_INSECURE_REMOTE=1, or allowInsecureRemote: true in the config file) to allow it in clear text.`,
        );
      }
    }
  }
  if (config.limits.headerTimeoutMs > config.limits.requestTimeoutMs) {
    throw new ConfigError(
      `Invalid headerTimeoutMs from ${from('headerTimeoutMs')}: it is longer than requestTimeoutMs (${config.limits.requestTimeoutMs}), which includes the headers; choose at most that.`,
    );
  }
  warnings.push(...remoteWarnings(config));
  if (config.tls?.clientCa !== undefined && config.clientCertificates.length === 0) {
    warnings.push(
      'tlsClientCa is set but clientCertificates is empty: a client certificate authenticates no one until an entry names its subject or a SAN',
    );
  }
  if (config.restPort !== 0 && config.restPort === config.grpcPort && config.restHost === config.grpcHost) {
    throw new ConfigError(
      `Invalid grpcPort from ${from('grpcPort')}: it is the same as restPort (${config.restPort}) on the same host; choose another port.`,
    );
  }
  for (const f of FAMILIES) {
    if (config.baseline[f] === undefined) continue;
    const src = sources.baseline ?? { kind: 'default' };
    if (!config.families.includes(f)) {
      if (src.kind === 'default') continue;
      // A single PATH names every family; only an explicit per-family entry is an error.
      const both = config.baseline.ipv4 !== undefined && config.baseline.ipv4 === config.baseline.ipv6;
      if (both) continue;
      throw new ConfigError(
        `Invalid baseline from ${describeSource(src)}: it names ${f}, which is not in families (${config.families.join(',')}).`,
      );
    }
  }
  const baselineTrimmed: BaselinePaths = {};
  for (const f of config.families) {
    const p = config.baseline[f];
    if (p !== undefined) baselineTrimmed[f] = p;
  }
  return { help: false, config: { ...config, baseline: baselineTrimmed }, sources, warnings };
}

/**
 * Reads and parses the baseline files (one iptables-save text per family). Throws
 * {@link ConfigError} naming the file, the family and the source.
 */
export function loadBaseline(
  config: Config,
  sources: Readonly<Record<string, Source>>,
): Map<Family, Ruleset> {
  const out = new Map<Family, Ruleset>();
  const src = describeSource(sources.baseline ?? { kind: 'default' });
  for (const family of config.families) {
    const path = config.baseline[family];
    if (path === undefined) continue;
    let text: string;
    try {
      if (!statSync(path).isFile())
        throw Object.assign(new Error('not a file'), { code: 'not a regular file' });
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `Invalid baseline from ${src}: file ${path} cannot be read: ${readFailure(err)}.`,
      );
    }
    try {
      out.set(family, parseSave(text, family));
    } catch (err) {
      const msg = messageOf(err).replace(/\.$/, '');
      throw new ConfigError(
        `Invalid baseline from ${src}: ${path} is not a valid ${family} iptables-save file (${msg}); give one file per family with ipv4=PATH,ipv6=PATH if needed.`,
      );
    }
  }
  return out;
}
