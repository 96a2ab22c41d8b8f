/**
 * The executor port: the only way the rest of Portcullis reaches `iptables-save`,
 * `iptables-restore` and `iptables --version`. The real adapter spawns processes
 * (child-process-executor.ts); a fake (testing/fake-executor.ts, test support) applies
 * restore text to an in-memory copy.
 *
 * Both report failures as one error type, {@link ExecError}, whose `kind` is derived
 * from iptables' stderr by {@link classifyStderr}. Every stderr text we recognise lives
 * in {@link STDERR_PATTERNS}, so there is exactly one place to teach it a new message,
 * and both build the message the same way ({@link summarizeStderr}, {@link failureMessage}).
 */
import type { Family, TableName } from '../domain/family.js';

export interface SaveOptions {
  /** Only dump this table (`-t table`). Default: every table. */
  table?: TableName;
  /** Include packet and byte counters (`-c`). Default: false. */
  counters?: boolean;
  /** Abort the call: the process is killed and the promise rejects with kind `aborted`. */
  signal?: AbortSignal;
  /** Per-call timeout in milliseconds, overriding the executor's default. */
  timeoutMs?: number;
}

export interface RestoreOptions {
  /** Keep rules that the input does not mention (`--noflush`). Default: false. */
  noflush?: boolean;
  /**
   * Parse and check the input without committing it (`--test`). On nf_tables this only
   * checks syntax and extensions: deleting a missing rule or creating an existing chain
   * still passes.
   */
  test?: boolean;
  /** Restore the `[packets:bytes]` counters given in the input (`--counters`). Default: false. */
  counters?: boolean;
  /**
   * Called with the process id as soon as the process exists, before it can commit, so a
   * {@link ChangeFeed} can claim its commits as ours.
   */
  onSpawn?: (pid: number) => void;
  /** Abort the call: the process is killed and the promise rejects with kind `aborted`. */
  signal?: AbortSignal;
  /** Per-call timeout in milliseconds, overriding the executor's default. */
  timeoutMs?: number;
  /**
   * May run in the long-lived restore process the executor keeps (nf_tables, `--noflush` only;
   * see exec/restore-session.ts): cheaper, but the process id is the previous call's: claim it
   * again (onSpawn) and take each call's commits with its own takeOwn, in call order. Default: false.
   */
  reuse?: boolean;
}

export interface BackendInfo {
  backend: 'nf_tables' | 'legacy';
  /** e.g. `1.8.9` */
  version: string;
}

export interface RestoreResult {
  /** Id of the process that committed the change (undefined when nothing ran, e.g. `test`). */
  readonly pid: number | undefined;
}

/** One rule added or deleted in a kernel commit, as the nf_tables monitor reports it. */
export interface RuleChange {
  readonly op: 'add' | 'delete';
  readonly family: Family;
  readonly table: string;
  readonly chain: string;
  /** nf_tables rule handle: unique in its table, never reused, stable while the rule lives. */
  readonly handle: number;
}

/** One committed kernel transaction (nf_tables "generation"). */
export interface Generation {
  readonly id: number;
  /** Process that committed it, when the kernel says. */
  readonly pid: number | undefined;
  /** Short command name of that process (`iptables-restor`, `nft`, ...). */
  readonly command: string | undefined;
  /** Rule additions and deletions, in commit order. */
  readonly rules: readonly RuleChange[];
  /** Number of other events (chains, policies, tables, sets) in the commit. */
  readonly otherEvents: number;
  /** Families the commit touched, as far as its events tell. */
  readonly families: readonly Family[];
}

/**
 * The kernel's commit stream (nf_tables only: `nft monitor`). Lets the service learn the
 * handles of rules it added and notice changes made by anyone else.
 */
export interface ChangeFeed {
  /** Starts watching; resolves once the feed is live (events after this are seen). */
  start(): Promise<void>;
  /**
   * The generations committed by process `pid`: waits until `count` of them have been seen,
   * or `timeoutMs` passes (then resolves with what was seen). With `late`, generations still
   * missing at the timeout are not taken for another process's change when they come after
   * all: each later generation of `pid` (within the claim lifetime, until the missing count is
   * made up) for which `late` returns true is its; one it refuses ends that and goes on as any
   * generation of `pid` would (to a later takeOwn of it, else external).
   */
  takeOwn(
    pid: number,
    count: number,
    timeoutMs: number,
    late?: (generation: Generation) => boolean,
  ): Promise<readonly Generation[]>;
  /** Called for every generation not claimed by {@link takeOwn}'s pid set; returns an unsubscribe. */
  onExternal(listener: (generation: Generation) => void): () => void;
  /** Marks `pid` as ours before its commits can arrive, so they are not reported as external. */
  claim(pid: number): void;
  /** Ends the claim on `pid` (after a failed call); its generations seen so far are dropped. */
  release(pid: number): void;
  /**
   * Resolves once every commit made before the call has been reported (to `takeOwn` or
   * `onExternal`); rejects when the feed is not live. Optional: without it, kernel sync
   * verifies handles by listing them twice.
   */
  barrier?(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A rule addressed by nf_tables handle. */
export interface HandleRef {
  readonly table: TableName;
  readonly chain: string;
  readonly handle: number;
}

/** Rule handles (nf_tables only): listing and deleting rules by handle, immune to position shifts. */
export interface RuleHandles {
  /** chain -> handles of its rules in order, for one table (empty map when the table does not exist). */
  list(family: Family, table: TableName): Promise<ReadonlyMap<string, readonly number[]>>;
  /**
   * Deletes all `refs` in one kernel transaction (all or nothing). On failure the ExecError's
   * `line` is the 1-based index into `refs` of the first ref the kernel refused.
   */
  delete(
    family: Family,
    refs: readonly HandleRef[],
    options?: { signal?: AbortSignal; timeoutMs?: number; onSpawn?: (pid: number) => void },
  ): Promise<RestoreResult>;
}

export interface Executor {
  /** `iptables-save` / `ip6tables-save` output text. */
  save(family: Family, options?: SaveOptions): Promise<string>;
  /**
   * Feed `text` on stdin to `iptables-restore` / `ip6tables-restore`. Resolves when it exits
   * with 0, with the process id so that a {@link ChangeFeed} can tell its commits from others'.
   */
  restore(family: Family, text: string, options?: RestoreOptions): Promise<RestoreResult>;
  /** Which iptables backend and version the executor drives. */
  info(family: Family): Promise<BackendInfo>;
  /** Ends any long-lived process the executor keeps (optional; nothing to do for most). */
  close?(): void;
  /**
   * `iptables -t TABLE -S CHAIN`: the chain's rules as `-A CHAIN ...` lines, printed as
   * iptables-save prints them. Reads only that table (cheap while the table is small; the
   * service uses it on a probe chain to learn the kernel's form of untyped rules).
   */
  listRules(
    family: Family,
    table: TableName,
    chain: string,
    options?: { timeoutMs?: number },
  ): Promise<string>;
}

export type ExecErrorKind =
  | 'not_found'
  | 'already_exists'
  | 'lock_timeout'
  | 'binary_missing'
  | 'permission_denied'
  | 'timeout'
  | 'aborted'
  | 'invalid_input'
  | 'failed';

export interface ExecErrorInit {
  kind: ExecErrorKind;
  message: string;
  argv: readonly string[];
  exitCode?: number | null;
  stderr?: string;
  line?: number | undefined;
  lineText?: string | undefined;
  cause?: unknown;
}

/** A failed iptables call: what went wrong (`kind`), what to do (`message`), and the raw evidence. */
export class ExecError extends Error {
  override readonly name = 'ExecError';
  readonly kind: ExecErrorKind;
  /** Exit code of the process; null when it never ran or was killed. */
  readonly exitCode: number | null;
  /** Captured stderr (possibly truncated). */
  readonly stderr: string;
  // `declare`: absent (not an own property set to undefined) when unknown.
  /** 1-based line of the restore input that iptables blamed. */
  declare readonly line?: number;
  /** The text of that line, when it exists in the input. */
  declare readonly lineText?: string;
  /** The argv that was spawned. */
  readonly argv: readonly string[];

  constructor(init: ExecErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.exitCode = init.exitCode ?? null;
    this.stderr = init.stderr ?? '';
    this.argv = Object.freeze([...init.argv]);
    if (init.line !== undefined) this.line = init.line;
    if (init.lineText !== undefined) this.lineText = init.lineText;
  }

  /** A chain, rule, target or rule position does not exist. */
  isNotFound(): boolean {
    return this.kind === 'not_found';
  }
  /** The chain (or object) to create already exists. */
  isAlreadyExists(): boolean {
    return this.kind === 'already_exists';
  }
  /** Another program held the xtables lock for longer than the wait. */
  isLockTimeout(): boolean {
    return this.kind === 'lock_timeout';
  }
  /** An iptables (or `ip`) binary is not installed. */
  isBinaryMissing(): boolean {
    return this.kind === 'binary_missing';
  }
  /** The process lacks root / CAP_NET_ADMIN. */
  isPermissionDenied(): boolean {
    return this.kind === 'permission_denied';
  }
  /** The call took longer than its timeout and was killed. */
  isTimeout(): boolean {
    return this.kind === 'timeout';
  }
  /** The caller aborted the call through its AbortSignal. */
  isAborted(): boolean {
    return this.kind === 'aborted';
  }
}

export interface StderrPattern {
  readonly kind: ExecErrorKind;
  readonly pattern: RegExp;
  /** What the operator should do about it; used to build ExecError messages. */
  readonly hint: string;
}

/**
 * Every stderr text we recognise, first match wins, so the specific ones come first.
 * Samples marked (nft) were captured from iptables v1.8.9 (nf_tables) in a network
 * namespace; (legacy) ones are libiptc / xtables-lock texts of the legacy backend.
 */
export const STDERR_PATTERNS: readonly StderrPattern[] = [
  // `ip netns exec NS iptables-save` when iptables is not installed:
  //   exec of "iptables-save" failed: No such file or directory
  {
    kind: 'binary_missing',
    pattern: /exec of "[^"]*" failed: No such file or directory/,
    hint: 'install the Debian package iptables',
  },
  // `ip netns exec NS ...` when NS does not exist (exit 255):
  //   Cannot open network namespace "NS": No such file or directory
  // Deliberately not not_found: "rule not found" must never be confused with "wrong host".
  {
    kind: 'failed',
    pattern: /Cannot open network namespace/,
    hint: 'the network namespace does not exist: create it with `ip netns add` or fix the name',
  },
  // (legacy) "Another app is currently holding the xtables lock. Stopped waiting after 10s."
  {
    kind: 'lock_timeout',
    pattern: /holding the xtables lock|Can't lock \/\S*xtables\.lock/,
    hint: 'another program is changing the firewall: retry, or raise waitSeconds',
  },
  // (nft) "Could not fetch rule set generation id: Permission denied (you must be root)"
  {
    kind: 'permission_denied',
    pattern: /Permission denied|Operation not permitted|you must be root/,
    hint: 'needs root (CAP_NET_ADMIN): run as root',
  },
  // (nft, legacy) "iptables-restore: line 2 failed: Chain already exists."
  // (nft) "line 2: CHAIN_ADD failed (File exists): chain FOO"
  {
    kind: 'already_exists',
    pattern: /Chain already exists|File exists/,
    hint: 'it already exists',
  },
  // (nft, legacy) "iptables-restore: line 2 failed: No chain/target/match by that name."
  //   (-D/-F/-X/-A on a missing chain, -R on a missing rule number)
  // (nft) "iptables-restore v1.8.9 (nf_tables): Chain 'NOCHAIN' does not exist" (-j to a missing
  //   chain or unknown target; nf_tables blames the COMMIT line)
  // (legacy) "Couldn't load target `NOCHAIN':No such file or directory" (same input on legacy)
  // (nft, legacy) "line 2 failed: Bad rule (does a matching rule exist in that chain?)." (-D by spec)
  // (nft, legacy) "line 2 failed: Index of deletion too big." (-D CHAIN N)
  // (nft) "line 2: RULE_DELETE failed (No such file or directory): rule in chain INPUT"
  {
    kind: 'not_found',
    pattern:
      /No chain\/target\/match by that name|does not exist|doesn't exist|Couldn't load target|Couldn't find target|does a matching rule exist|Index of (?:deletion|replacement) too big|_(?:DEL|DELETE|REPLACE|FLUSH|RENAME)\w* failed \(No such file or directory\)/,
    hint: 'a chain, rule or target it refers to does not exist: re-read the ruleset and retry',
  },
  // (nft) "line 2: CHAIN_DEL failed (Device or resource busy): chain FOO" (chain still referenced,
  //   or a built-in chain)
  {
    kind: 'failed',
    pattern: /Device or resource busy|Directory not empty|Can't delete chain with references/,
    hint: 'the chain is still in use: remove the rules that jump to it (and its own rules) first',
  },
  // Input the parser or the kernel rejected:
  // (nft) "unknown option \"--bogus\"", "host/network `999.1.1.1' not found",
  //   "DNAT: option \"--to-destination\" must be specified", "Couldn't load match `x':No such file or directory",
  //   "line 1 table name 'nosuch' invalid", "COMMIT expected at line 3", "Bad built-in chain name.",
  //   "Bad policy name.", "Index of insertion too big.",
  //   "line 2: RULE_APPEND failed (Invalid argument): rule in chain INPUT" (e.g. MASQUERADE in filter)
  {
    kind: 'invalid_input',
    pattern:
      /unknown option|Bad argument|not found|must be specified|Couldn't load match|table name '.*' invalid|COMMIT expected|Bad built-in chain name|Bad policy name|Index of insertion too big|Invalid argument|Try `\S+ -h'/,
    hint: 'fix the input',
  },
];

/** The 1-based input line iptables blamed, from any of the forms it prints. */
const LINE_PATTERNS: readonly RegExp[] = [
  // "Error occurred at line: 9" (parameter problems, both backends)
  /Error occurred at line: (\d+)/,
  // "iptables-restore: line 5 failed: ..." (commit failures) and
  // "line 2: RULE_APPEND failed (Invalid argument): ..." (nf_tables batch errors)
  /\bline (\d+)(?: failed|:)/,
  // "iptables-restore: COMMIT expected at line 3"
  /\bat line:? (\d+)/,
];

function parseLine(stderr: string): number | undefined {
  for (const re of LINE_PATTERNS) {
    const m = re.exec(stderr);
    if (m?.[1] !== undefined) {
      const n = Number.parseInt(m[1], 10);
      if (Number.isSafeInteger(n) && n > 0) return n;
    }
  }
  return undefined;
}

/** The first entry of {@link STDERR_PATTERNS} that matches, if any. */
export function matchStderr(stderr: string): StderrPattern | undefined {
  return STDERR_PATTERNS.find((p) => p.pattern.test(stderr));
}

/**
 * Classify a failed iptables call from its stderr and exit code. Pure.
 * Exit code 2 (PARAMETER_PROBLEM) with an unrecognised text counts as invalid input.
 */
export function classifyStderr(
  stderr: string,
  exitCode: number | null,
): { kind: ExecErrorKind; line?: number } {
  const matched = matchStderr(stderr);
  const kind: ExecErrorKind = matched?.kind ?? (exitCode === 2 ? 'invalid_input' : 'failed');
  const line = parseLine(stderr);
  return line === undefined ? { kind } : { kind, line };
}

/** What the stderr of a failed iptables call says, read one way by every executor. */
export interface StderrSummary {
  readonly kind: ExecErrorKind;
  /** 1-based input line iptables blamed. */
  readonly line: number | undefined;
  /** That line of the input, when the input was given and has it. */
  readonly lineText: string | undefined;
  /** The meaningful stderr lines joined into one (usage boilerplate left out), or the exit code. */
  readonly detail: string;
  /** What to do about it, from {@link STDERR_PATTERNS}. */
  readonly hint: string | undefined;
}

/** Line `n` (1-based) of restore input, or undefined past the end (e.g. "COMMIT expected at line N"). */
function inputLine(input: string, n: number): string | undefined {
  const body = input.endsWith('\n') ? input.slice(0, -1) : input;
  return body.split('\n')[n - 1];
}

/**
 * Summarizes a failed call: its kind and blamed line ({@link classifyStderr}), the text of
 * that line in `input`, the first meaningful stderr text and the hint. Pure.
 */
export function summarizeStderr(stderr: string, exitCode: number | null, input?: string): StderrSummary {
  const { kind, line } = classifyStderr(stderr, exitCode);
  const detail =
    stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('Try `') && !l.startsWith('Error occurred at line'))
      .join(' ')
      .slice(0, 500) || `exit code ${String(exitCode)}`;
  return {
    kind,
    line,
    lineText: line === undefined || input === undefined ? undefined : inputLine(input, line),
    detail,
    hint: matchStderr(stderr)?.hint,
  };
}

/**
 * The message of a failed call: `PROGRAM failed at line N ("the line"): what stderr
 * says — what to do`. `program` may carry where it ran (` in network namespace "NS"`).
 */
export function failureMessage(program: string, summary: StderrSummary): string {
  const { line, lineText, detail, hint } = summary;
  const at =
    line === undefined
      ? ''
      : ` at line ${line}${lineText === undefined ? '' : ` (${JSON.stringify(lineText)})`}`;
  return `${program} failed${at}: ${detail}${hint === undefined ? '' : ` — ${hint}`}`;
}
