/**
 * Rule handles on nf_tables: listing them (`nft -a list table ip|ip6 NAME`) and deleting rules
 * by handle in one atomic transaction (`nft -f -`). Deleting by handle is immune to position
 * shifts caused by other writers and much faster than `iptables-restore` with `-D CHAIN N`
 * at large rule counts.
 *
 * Input safety: table names come from the closed TableName set, handles must be positive safe
 * integers (handle 0 is NOT harmless: `delete rule ip filter INPUT handle 0` flushes the
 * whole chain on nft 1.0.6), chain names must match the project's chain grammar. Chains that
 * nft's text syntax cannot name (a leading digit, `+`, or a keyword such as `log`, `counter`,
 * `ip`: "syntax error, unexpected log, expecting string") are deleted through nft's JSON
 * input instead, where every name is a JSON string. nft does not say which JSON command
 * failed, so on that path the failing ref is found by listing the table afterwards; and the
 * JSON travels as command-line arguments (see `delete`), which caps such a batch at ~10k refs.
 */
import { type Family, isFamily, isTableName, type TableName } from '../domain/family.js';
import {
  ExecError,
  type ExecErrorKind,
  type HandleRef,
  type RestoreResult,
  type RuleHandles,
} from './executor.js';
import { checkInteger, checkNetns, checkProgram, netnsArgv, runProcess } from './run-process.js';

const NFT_FAMILY: Readonly<Record<Family, string>> = { ipv4: 'ip', ipv6: 'ip6' };
/** The project's chain grammar (src/domain/validate.ts), at most 28 characters. */
const CHAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,27}$/;
/** Names nft's scanner reads as a plain string (keywords aside). */
const NFT_IDENTIFIER = /^[A-Za-z_.][A-Za-z0-9/_.-]*$/;
/** Room for JSON commands on the command line, well inside Linux's ARG_MAX (2 MiB with the environment). */
const MAX_JSON_ARGV_BYTES = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Pure parsers

/**
 * Parses `nft -a list table FAMILY NAME` output into chain -> rule handles in chain order.
 * Chain headers (`chain INPUT { # handle 1`), chain properties (`type ... policy drop;`),
 * comment lines (`# Warning: table ip filter is managed by iptables-nft, do not touch!`) and
 * non-chain blocks (sets, maps, flowtables) are not rules. A rule's handle is the last
 * `# handle N` of its line, whatever its quoted comment contains.
 */
export function parseHandleListing(text: string): Map<string, number[]> {
  const chains = new Map<string, number[]>();
  let depth = 0;
  let chain: number[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (chain !== undefined) {
      if (line === '}') {
        chain = undefined;
        depth -= 1;
        continue;
      }
      const m = /# handle (\d+)$/.exec(line);
      if (m !== null) {
        const handle = Number(m[1]);
        if (Number.isSafeInteger(handle) && handle > 0) chain.push(handle);
      }
      continue;
    }
    if (depth === 1) {
      const c = /^chain (?:"([^"]*)"|(\S+)) \{(?:\s*# handle \d+)?$/.exec(line);
      if (c !== null) {
        const name = c[1] ?? c[2] ?? '';
        chain = chains.get(name) ?? [];
        chains.set(name, chain);
        depth += 1;
        continue;
      }
    }
    depth += braceBalance(line);
    if (depth < 0) depth = 0;
  }
  return chains;
}

/** `{` minus `}` outside double quotes. */
function braceBalance(line: string): number {
  let balance = 0;
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '{') balance += 1;
    else if (!quoted && ch === '}') balance -= 1;
  }
  return balance;
}

export interface NftErrorInfo {
  kind: ExecErrorKind;
  /** 1-based input line nft blamed (the first, when it blamed several). */
  line?: number;
  /** The first error, without its location: `Could not process rule: No such file or directory`. */
  message: string;
}

/**
 * What nft's stderr says went wrong. Pure. Forms captured from nft v1.0.6:
 *   /dev/stdin:2:36-38: Error: Could not process rule: No such file or directory   (missing handle or chain)
 *   /dev/stdin:2:16-18: Error: No such file or directory; did you mean table ‘filter’ in family ip?   (missing table)
 *   /dev/stdin:1:36-36: Error: syntax error, unexpected string, expecting number
 *   internal:0:0-0: Error: Could not process rule: No such file or directory   (JSON input: no line)
 *   Error: No such file or directory   (`list table` of a missing table; the next lines quote argv)
 *   Operation not permitted (you must be root)
 */
export function parseNftError(stderr: string): NftErrorInfo {
  let line: number | undefined;
  let first: string | undefined;
  for (const raw of stderr.split('\n')) {
    const m = /^(?:[^\s:]*):(\d+):\d+(?:-\d+)?: Error: (.*)$/.exec(raw.trim());
    if (m === null) continue;
    const n = Number(m[1]);
    if (Number.isSafeInteger(n) && n > 0 && (line === undefined || n < line)) {
      line = n;
      first = m[2];
    }
    first ??= m[2];
  }
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  first ??= lines.find((l) => /Error|error|not permitted|denied|failed/.test(l))?.replace(/^Error: /, '');
  first ??= lines[0] ?? '';
  first = first.trim();

  let kind: ExecErrorKind;
  if (/exec of "[^"]*" failed: No such file or directory/.test(stderr)) kind = 'binary_missing';
  else if (/Cannot open network namespace/.test(stderr)) kind = 'failed';
  else if (/Operation not permitted|Permission denied|you must be root/.test(stderr))
    kind = 'permission_denied';
  else if (/syntax error|unexpected|Could not parse|JSON/.test(first)) kind = 'invalid_input';
  else if (/No such file or directory/.test(first)) kind = 'not_found';
  else if (/File exists/.test(first)) kind = 'already_exists';
  else kind = 'failed';
  return line === undefined ? { kind, message: first } : { kind, line, message: first };
}

// ---------------------------------------------------------------------------------------------
// The adapter

export interface NftRuleHandlesOptions {
  /** Run nft inside this named network namespace (`ip netns exec NAME nft ...`). @default undefined */
  netns?: string;
  /** The nft program. @default 'nft' */
  nft?: string;
  /** The iproute2 program used for `ip netns exec`. @default 'ip' */
  ip?: string;
  /** Milliseconds an nft call may run before it is killed. @default 30000 */
  timeoutMs?: number;
  /** Largest listing kept, in bytes. @default 268435456 (256 MiB) */
  maxOutputBytes?: number;
}

export class NftRuleHandles implements RuleHandles {
  readonly netns: string | undefined;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly #nft: string;
  readonly #ip: string;

  constructor(options: NftRuleHandlesOptions = {}) {
    this.netns = checkNetns(options.netns);
    this.#nft = checkProgram('nft', options.nft ?? 'nft');
    this.#ip = checkProgram('ip', options.ip ?? 'ip');
    this.timeoutMs = checkInteger('timeoutMs', options.timeoutMs ?? 30_000, 1, 24 * 3_600_000);
    this.maxOutputBytes = checkInteger(
      'maxOutputBytes',
      options.maxOutputBytes ?? 256 * 1024 * 1024,
      1,
      2 ** 31,
    );
  }

  async list(family: Family, table: TableName): Promise<ReadonlyMap<string, readonly number[]>> {
    checkFamilyTable(family, table);
    try {
      const { stdout } = await this.#nftRun(['-a', 'list', 'table', NFT_FAMILY[family], table], {});
      return parseHandleListing(stdout);
    } catch (err) {
      if (err instanceof ExecError && err.kind === 'not_found') return new Map();
      throw err;
    }
  }

  async delete(
    family: Family,
    refs: readonly HandleRef[],
    options: { signal?: AbortSignal; timeoutMs?: number; onSpawn?: (pid: number) => void } = {},
  ): Promise<RestoreResult> {
    if (!isFamily(family)) throw invalid(`family must be ipv4 or ipv6, got ${JSON.stringify(family)}`);
    refs.forEach((ref, i) => {
      checkRef(ref, i + 1);
    });
    if (refs.length === 0) return { pid: undefined };
    const fam = NFT_FAMILY[family];
    const textable = refs.every((r) => NFT_IDENTIFIER.test(r.chain));
    if (textable) {
      const input = refs.map((r) => `delete rule ${fam} ${r.table} ${r.chain} handle ${r.handle}\n`).join('');
      try {
        const { pid } = await this.#nftRun(['-f', '-'], { ...options, input });
        return { pid };
      } catch (err) {
        // A chain named like an nft keyword: a syntax error, nothing was sent to the kernel.
        if (!(err instanceof ExecError && /syntax error/.test(err.stderr))) throw err;
      }
    }
    // nft reads JSON input through open("/dev/stdin"), which fails (ENXIO) on the socket Node
    // gives a child as stdin; so the JSON goes on the command line, one argument per ref (nft
    // joins its arguments with spaces), each far below the kernel's 128 KiB per argument.
    const commands = refs.map(
      (r, i) =>
        `${JSON.stringify({ delete: { rule: { family: fam, table: r.table, chain: r.chain, handle: r.handle } } })}${i + 1 < refs.length ? ',' : ''}`,
    );
    const jsonArgs = ['-j', '{"nftables":[', ...commands, ']}'];
    const argBytes = jsonArgs.reduce((n, a) => n + a.length + 1, 0);
    if (argBytes > MAX_JSON_ARGV_BYTES) {
      throw invalid(
        `${refs.length} refs in chains nft's text syntax cannot name need ${argBytes} bytes of arguments, more than ${MAX_JSON_ARGV_BYTES}: delete them in smaller batches`,
      );
    }
    try {
      const { pid } = await this.#nftRun(jsonArgs, options);
      return { pid };
    } catch (err) {
      if (!(err instanceof ExecError) || err.kind !== 'not_found') throw err;
      throw await this.#attribute(family, refs, err);
    }
  }

  /** nft cannot say which JSON command failed: the first ref whose rule is not there is the one. */
  async #attribute(family: Family, refs: readonly HandleRef[], err: ExecError): Promise<ExecError> {
    const listings = new Map<TableName, ReadonlyMap<string, readonly number[]>>();
    const seen = new Set<string>();
    for (const [i, ref] of refs.entries()) {
      let listing = listings.get(ref.table);
      if (listing === undefined) {
        listing = await this.list(family, ref.table).catch(() => new Map<string, number[]>());
        listings.set(ref.table, listing);
      }
      const key = `${ref.table} ${ref.chain} ${ref.handle}`;
      if (seen.has(key) || !listing.get(ref.chain)?.includes(ref.handle)) {
        return new ExecError({
          kind: err.kind,
          message: `nft${this.#where()} failed at ref ${i + 1} (${describeRef(ref)}): ${parseNftError(err.stderr).message} — the rule or chain does not exist: re-read the handles and retry`,
          argv: err.argv,
          exitCode: err.exitCode,
          stderr: err.stderr,
          line: i + 1,
          lineText: describeRef(ref),
        });
      }
      seen.add(key);
    }
    return err;
  }

  #where(): string {
    return this.netns === undefined ? '' : ` in network namespace "${this.netns}"`;
  }

  #nftRun(
    args: readonly string[],
    options: { input?: string; signal?: AbortSignal; timeoutMs?: number; onSpawn?: (pid: number) => void },
  ): Promise<{ stdout: string; pid: number | undefined }> {
    const argv = netnsArgv(this.#ip, this.netns, this.#nft, args);
    const where = this.#where();
    const timeoutMs =
      options.timeoutMs === undefined
        ? this.timeoutMs
        : checkInteger('timeoutMs', options.timeoutMs, 1, 24 * 3_600_000);
    return runProcess({
      argv,
      program: this.#nft,
      where,
      input: options.input,
      signal: options.signal,
      timeoutMs,
      onSpawn: options.onSpawn,
      maxOutputBytes: this.maxOutputBytes,
      spawnError: (err) => {
        const missing = err.code === 'ENOENT';
        const isIp = this.netns !== undefined && argv[0] === this.#ip;
        const what = isIp ? this.#ip : this.#nft;
        return new ExecError({
          kind: missing ? 'binary_missing' : err.code === 'EACCES' ? 'permission_denied' : 'failed',
          message: missing
            ? `${what} was not found: install the Debian package ${isIp ? 'iproute2' : 'nftables'}`
            : `${what} could not be started: ${err.message}`,
          argv,
          cause: err,
        });
      },
      exitError: (code, stderr) => {
        const info = parseNftError(stderr);
        const lineText =
          info.line === undefined || options.input === undefined || args.includes('-j')
            ? undefined
            : options.input.split('\n')[info.line - 1];
        let message: string;
        if (/Cannot open network namespace/.test(stderr)) {
          message = `network namespace "${this.netns ?? ''}" does not exist: create it with \`ip netns add ${this.netns ?? ''}\` or fix the netns option`;
        } else if (info.kind === 'binary_missing') {
          message = `${this.#nft} was not found${where}: install the Debian package nftables`;
        } else if (info.kind === 'permission_denied') {
          message = `${this.#nft} needs root (CAP_NET_ADMIN): run as root (${info.message})`;
        } else {
          const at =
            info.line === undefined
              ? ''
              : ` at line ${info.line}${lineText === undefined ? '' : ` (${JSON.stringify(lineText)})`}`;
          const hint =
            info.kind === 'not_found'
              ? ' — the table, chain or rule handle does not exist: re-read the handles and retry'
              : '';
          message = `${this.#nft}${where} failed${at}: ${info.message || `exit code ${String(code)}`}${hint}`;
        }
        return new ExecError({
          kind: info.kind,
          message,
          argv,
          exitCode: code,
          stderr,
          line: args.includes('-j') ? undefined : info.line,
          lineText,
        });
      },
    });
  }
}

function invalid(message: string): ExecError {
  return new ExecError({ kind: 'invalid_input', message, argv: [] });
}

function checkFamilyTable(family: unknown, table: unknown): void {
  if (!isFamily(family)) throw invalid(`family must be ipv4 or ipv6, got ${JSON.stringify(family)}`);
  if (!isTableName(table)) {
    throw invalid(`table must be filter, nat, mangle, raw or security, got ${JSON.stringify(table)}`);
  }
}

function describeRef(ref: HandleRef): string {
  return `${ref.table} ${ref.chain} handle ${ref.handle}`;
}

/** Refuses any ref that could not be written as exactly one nft command. */
function checkRef(ref: HandleRef, index: number): void {
  if (typeof ref !== 'object' || ref === null) throw invalid(`ref ${index} is not an object`);
  if (!isTableName(ref.table)) {
    throw invalid(
      `ref ${index}: table must be filter, nat, mangle, raw or security, got ${JSON.stringify(ref.table)}`,
    );
  }
  if (typeof ref.chain !== 'string' || !CHAIN_NAME.test(ref.chain)) {
    throw invalid(
      `ref ${index}: chain must be 1-28 characters of A-Z a-z 0-9 _ . + - not starting with . + or -, got ${JSON.stringify(ref.chain)}`,
    );
  }
  if (typeof ref.handle !== 'number' || !Number.isSafeInteger(ref.handle) || ref.handle < 1) {
    // Handle 0 would flush the whole chain.
    throw invalid(`ref ${index}: handle must be a positive integer, got ${String(ref.handle)}`);
  }
}
