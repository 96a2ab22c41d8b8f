/**
 * An in-memory executor, as strict as iptables-restore v1.8.9 (nf_tables) on a
 * fresh network namespace. It reuses the production parsers, applies each table
 * block to a copy and keeps the copy only when the whole block succeeds, and it
 * fails with the same ExecError `kind` and `line` the real executor reports for
 * the same input (test/exec/conformance.test.ts checks this against a kernel).
 * Which extensions exist is the catalogue's (src/iptables/catalogue.ts), and its
 * errors are summarized as the real executor's are (summarizeStderr).
 *
 * Test support: only tests import src/exec/testing; no production module may
 * (test/layering.test.ts checks it).
 *
 * What it mimics, measured on the kernel:
 * - Tables are committed one by one at their COMMIT: a failure in a later block
 *   leaves the earlier blocks applied. Errors while reading a block (syntax, an
 *   unknown option or match) win over errors of the commands it holds.
 * - A namespace starts empty; iptables-save prints a table once it exists. A
 *   table comes to exist when a block declares a chain or runs -N, -A, -I,
 *   -F CHAIN or -P in it, and stays (even with no chain left) until a full
 *   restore of a block that creates nothing in it deletes it.
 * - Built-in chains exist only once used (declared, -A/-I/-F CHAIN/-P);
 *   iptables-save prints the missing ones as `ACCEPT [0:0]`. Until then
 *   -D N, -R, -Z CHAIN, -X and -E of them fail with "No chain/target/match".
 * - Without --noflush a named table is deleted first. With --noflush `:CHAIN`
 *   creates a user chain or flushes it, and sets a built-in chain's policy.
 * - Commands run in order against what iptables believes (its cache): -E does
 *   not update it (later commands still see the old name, not the new one).
 *   -P does not either: -X of a built-in chain checks its policy from the
 *   start of the block. A jump to a missing chain is blamed on the COMMIT line.
 * - -Z of a built-in chain (or of the table) writes the chain back with the
 *   policy read at the start of the block, undoing a -P earlier in the block.
 * - Some failures only come from the kernel at commit (exit 4, "line N:
 *   CHAIN_DEL failed (Device or resource busy)"): they lose to any later
 *   command error of the same block.
 * Known differences: -E of a built-in chain is refused (the kernel accepts it
 * and leaves a table iptables-save cannot show); loops through several chains
 * are not detected (only a chain jumping to itself); targets valid only in some
 * chains (DNAT in POSTROUTING) are not checked, only nat targets outside nat.
 */
import { BUILTIN_CHAINS, type Family, type TableName } from '../../domain/family.js';
import type { Counters, Policy, Rule, Target } from '../../domain/model.js';
import { isGoto, isJump, isRawMatch, isRawTarget, targetChain } from '../../domain/model.js';
import { isMatchExtension, isTargetExtension } from '../../iptables/catalogue.js';
import { ruleLine } from '../../iptables/restore-writer.js';
import { ruleText } from '../../iptables/rule-writer.js';
import {
  type BackendInfo,
  ExecError,
  type ExecErrorKind,
  type Executor,
  failureMessage,
  type RestoreOptions,
  type RestoreResult,
  type SaveOptions,
  summarizeStderr,
} from '../executor.js';
import { type ParsedBlock, parseRestorePartial, type RestoreCommand } from './restore-parser.js';

/** One call of `restore`, as the hooks and the log see it. */
export interface RestoreCall {
  readonly family: Family;
  readonly text: string;
  readonly options: Readonly<Omit<RestoreOptions, 'signal' | 'onSpawn'>>;
}

export interface FakeExecutorOptions {
  /**
   * Called before every restore, after the call is counted and logged. Return (or throw)
   * an Error to make the call fail with it without changing anything.
   * @default undefined
   */
  onRestore?: (call: RestoreCall) => Error | undefined;
  /** Reported by `info()`. @default { backend: 'nf_tables', version: '1.8.9' } */
  info?: BackendInfo;
}

/** Order in which iptables-nft-save prints tables. */
const SAVE_ORDER: readonly TableName[] = ['mangle', 'security', 'raw', 'filter', 'nat'];
const ZERO: Counters = Object.freeze({ packets: 0n, bytes: 0n });

/** Targets the kernel accepts only in the nat table (RULE_APPEND fails with EINVAL elsewhere). */
const NAT_TARGETS: ReadonlySet<string> = new Set(['DNAT', 'SNAT', 'MASQUERADE', 'REDIRECT', 'NETMAP']);

/** A chain as the fake keeps it (mutable inside one block; the service's FakeChain is another thing). */
interface FakeChain {
  name: string;
  readonly builtin: boolean;
  policy: Policy;
  policyCounters: Counters;
  rules: Rule[];
}

interface FakeTable {
  /** Built-in chains only once they exist; user chains in creation order. */
  chains: FakeChain[];
}

type FakeFamily = Map<TableName, FakeTable>;

function cloneTable(t: FakeTable): FakeTable {
  return { chains: t.chains.map((c) => ({ ...c, rules: [...c.rules] })) };
}

function cloneFamily(s: FakeFamily): FakeFamily {
  return new Map([...s].map(([name, t]) => [name, cloneTable(t)]));
}

function withoutCounters(rule: Rule): Rule {
  if (rule.counters === undefined) return rule;
  const { counters: _, ...rest } = rule;
  return Object.freeze(rest);
}

function retarget(rule: Rule, name: string): Rule {
  const t = rule.target;
  if (t === undefined || (!isJump(t) && !isGoto(t))) return rule;
  const target: Target = isJump(t) ? { jump: name } : { goto: name };
  return Object.freeze({ ...rule, target: Object.freeze(target) });
}

/** What a failed call reports: the kernel-like stderr and how iptables exits. */
interface Failure {
  stderr: string;
  exitCode: number;
  /** Set when the stderr alone would not classify as iptables' does. */
  kind?: ExecErrorKind;
}

class BlockFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.stderr);
  }
}

export class FakeExecutor implements Executor {
  /** Calls so far, for asserting batching. */
  readonly calls = { save: 0, restore: 0, info: 0 };
  /** Every restore call in order (failed ones included). */
  readonly restores: RestoreCall[] = [];
  onRestore: ((call: RestoreCall) => Error | undefined) | undefined;
  readonly #info: BackendInfo;
  readonly #state: Record<Family, FakeFamily> = { ipv4: new Map(), ipv6: new Map() };
  #nextPid = 4_000_000;
  readonly #failures: Array<{ error: Error; when: (call: RestoreCall) => boolean }> = [];

  constructor(options: FakeExecutorOptions = {}) {
    this.onRestore = options.onRestore;
    this.#info = Object.freeze({ ...(options.info ?? { backend: 'nf_tables', version: '1.8.9' }) });
  }

  /**
   * Makes the next restore for which `when` holds (default: the next one) fail with
   * `error` and change nothing. Queued failures are used up in order.
   */
  failNextRestore(error: Error, when: (call: RestoreCall) => boolean = () => true): this {
    this.#failures.push({ error, when });
    return this;
  }

  async save(family: Family, options: SaveOptions = {}): Promise<string> {
    this.calls.save++;
    checkSignal(options.signal, savePrograms[family]);
    const state = this.#state[family];
    let out = '';
    for (const name of SAVE_ORDER) {
      if (options.table !== undefined && options.table !== name) continue;
      const t = state.get(name);
      if (t) out += renderTable(name, t, options.counters === true);
    }
    return out;
  }

  async restore(family: Family, text: string, options: RestoreOptions = {}): Promise<RestoreResult> {
    this.calls.restore++;
    const { signal: _signal, onSpawn: _onSpawn, ...rest } = options;
    const call: RestoreCall = Object.freeze({ family, text, options: Object.freeze({ ...rest }) });
    this.restores.push(call);
    const program = restorePrograms[family];
    checkSignal(options.signal, program);
    const index = this.#failures.findIndex((f) => f.when(call));
    if (index >= 0) {
      const [f] = this.#failures.splice(index, 1);
      throw f?.error;
    }
    const hooked = this.onRestore?.(call);
    if (hooked) throw hooked;
    // A fake process id, unique per call, like the real one's.
    const pid = this.#nextPid++;
    options.onSpawn?.(pid);
    const argv = [program, '-w', '10'];
    if (options.noflush) argv.push('--noflush');
    if (options.test) argv.push('--test');
    if (options.counters) argv.push('--counters');
    if (text.includes('\0')) {
      throw new ExecError({
        kind: 'invalid_input',
        message: `${program} input contains a NUL byte: refusing to run it; fix the input`,
        argv: [],
      });
    }

    const parsed = parseRestorePartial(text, family, { isChain: (name) => !isTargetExtension(family, name) });
    // Blocks are read and committed one at a time: a block's own reading errors come
    // first, and a failing block stops before the next one is read.
    const state = options.test ? cloneFamily(this.#state[family]) : this.#state[family];
    try {
      for (const block of parsed.blocks) {
        const bad = checkExtensions(block, family, program);
        if (bad) throw new BlockFailure(bad);
        if (options.test) continue;
        const next = applyBlock(block, state.get(block.table), {
          noflush: options.noflush === true,
          counters: options.counters === true,
          family,
          program,
        });
        if (next === undefined) state.delete(block.table);
        else state.set(block.table, next);
      }
      if (parsed.error) {
        const details = parsed.error.details ?? {};
        const line = details.line as number;
        const problem = details.problem as string;
        if (problem === 'outside_table')
          throw new BlockFailure({ stderr: `${program}: line ${line} failed\n`, exitCode: 1 });
        if (problem === 'missing_commit')
          throw new BlockFailure({ stderr: `${program}: COMMIT expected at line ${line}\n`, exitCode: 1 });
        throw new BlockFailure({
          stderr: parameterProblem(program, parsed.error.message.replace(/^line \d+: /, ''), line),
          exitCode: 2,
          kind: 'invalid_input',
        });
      }
    } catch (e) {
      if (e instanceof BlockFailure) throw execError(e.failure, argv, text, program);
      throw e;
    }
    return { pid: options.test ? undefined : pid };
  }

  async info(_family: Family): Promise<BackendInfo> {
    this.calls.info++;
    return this.#info;
  }

  /** `iptables -t TABLE -S CHAIN`, as the kernel prints it (policy line for a built-in chain). */
  async listRules(family: Family, table: TableName, chain: string): Promise<string> {
    const t = this.#state[family].get(table);
    const c = t?.chains.find((x) => x.name === chain);
    const builtin = BUILTIN_CHAINS[table].includes(chain);
    if (!c && !builtin) {
      const program = family === 'ipv4' ? 'iptables' : 'ip6tables';
      throw new ExecError({
        kind: 'not_found',
        message: `${program}: chain \`${chain}' in table \`${table}' is incompatible, use 'nft' tool.`,
        argv: [program, '-t', table, '-S', chain],
        exitCode: 1,
        stderr: `${program}: No chain/target/match by that name.\n`,
      });
    }
    const head = builtin ? `-P ${chain} ${c?.policy ?? 'ACCEPT'}` : `-N ${chain}`;
    const rules = (c?.rules ?? []).map((r) => ruleLine(chain, withoutCounters(r)));
    return `${[head, ...rules].join('\n')}\n`;
  }
}

const restorePrograms: Record<Family, string> = { ipv4: 'iptables-restore', ipv6: 'ip6tables-restore' };
const savePrograms: Record<Family, string> = { ipv4: 'iptables-save', ipv6: 'ip6tables-save' };

function checkSignal(signal: AbortSignal | undefined, program: string): void {
  if (signal?.aborted) {
    throw new ExecError({
      kind: 'aborted',
      message: `${program} was aborted before it started`,
      argv: [program],
      cause: signal.reason,
    });
  }
}

function parameterProblem(program: string, message: string, line: number): string {
  return `${program} v1.8.9 (nf_tables): ${message}\nError occurred at line: ${line}\nTry \`${program} -h' or '${program} --help' for more information.\n`;
}

function execError(f: Failure, argv: readonly string[], text: string, program: string): ExecError {
  const summary = summarizeStderr(f.stderr, f.exitCode, text);
  return new ExecError({
    kind: f.kind ?? summary.kind,
    message: failureMessage(program, summary),
    argv,
    exitCode: f.exitCode,
    stderr: f.stderr,
    line: summary.line,
    lineText: summary.lineText,
  });
}

/** What iptables rejects while reading a rule: unknown matches, options of unknown targets. */
function checkExtensions(block: ParsedBlock, family: Family, program: string): Failure | undefined {
  for (const cmd of block.commands) {
    if (!('rule' in cmd)) continue;
    for (const m of cmd.rule.matches) {
      if (isRawMatch(m) && !isMatchExtension(family, m.module)) {
        return {
          stderr: parameterProblem(
            program,
            `Couldn't load match \`${m.module}':No such file or directory\n`,
            cmd.line,
          ),
          exitCode: 2,
        };
      }
    }
    const t = cmd.rule.target;
    if (t && isRawTarget(t) && !isTargetExtension(family, t.target) && t.raw.length > 0) {
      return {
        stderr: parameterProblem(program, `unknown option "${t.raw[0]}"`, cmd.line),
        exitCode: 2,
      };
    }
  }
  return undefined;
}

function renderTable(name: TableName, t: FakeTable, counters: boolean): string {
  const builtins = BUILTIN_CHAINS[name].map(
    (b) =>
      t.chains.find((c) => c.builtin && c.name === b) ?? {
        name: b,
        builtin: true,
        policy: 'ACCEPT' as Policy,
        policyCounters: ZERO,
        rules: [],
      },
  );
  const users = t.chains
    .filter((c) => !c.builtin)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines = [`*${name}`];
  for (const c of builtins) {
    const pc = counters ? c.policyCounters : ZERO;
    lines.push(`:${c.name} ${c.policy} [${pc.packets}:${pc.bytes}]`);
  }
  for (const c of users) lines.push(`:${c.name} - [0:0]`);
  for (const c of [...builtins, ...users]) {
    for (const r of c.rules) {
      const rule = counters ? { ...r, counters: r.counters ?? ZERO } : withoutCounters(r);
      lines.push(ruleLine(c.name, rule, counters));
    }
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

interface ApplyContext {
  noflush: boolean;
  counters: boolean;
  family: Family;
  program: string;
}

/**
 * Applies one block to a copy of its table; returns the new table (undefined: the
 * table does not exist) or throws a BlockFailure.
 */
function applyBlock(
  block: ParsedBlock,
  before: FakeTable | undefined,
  ctx: ApplyContext,
): FakeTable | undefined {
  const { program } = ctx;
  const table = block.table;
  // Without --noflush the table is deleted first and rebuilt from the block.
  let t: FakeTable | undefined = ctx.noflush && before ? cloneTable(before) : undefined;
  /** What iptables believes: name -> chain, as read at the start of the block. */
  const cache = new Map<string, FakeChain>();
  /** Built-in policies as read at the start of the block (-P does not update them). */
  const cachedPolicy = new Map<FakeChain, Policy>();
  for (const c of t?.chains ?? []) {
    cache.set(c.name, c);
    if (c.builtin) cachedPolicy.set(c, c.policy);
  }
  const created = new Set<FakeChain>();
  /** Errors the kernel reports when the block commits (exit 4), in command order. */
  const commitFailures: string[] = [];

  const isBuiltinName = (name: string) => BUILTIN_CHAINS[table].includes(name);
  const ensureTable = (): FakeTable => {
    t ??= { chains: [] };
    return t;
  };
  const failed = (line: number, message: string): never => {
    throw new BlockFailure({ stderr: `${program}: line ${line} failed: ${message}\n`, exitCode: 1 });
  };
  const noChain = (line: number): never => failed(line, 'No chain/target/match by that name.');
  const failAtCommit = (line: number, op: string, errno: string, what: string): void => {
    commitFailures.push(`line ${line}: ${op} failed (${errno}): ${what}`);
  };
  const materialize = (name: string): FakeChain => {
    const tbl = ensureTable();
    let c = cache.get(name);
    if (!c) {
      c = { name, builtin: true, policy: 'ACCEPT', policyCounters: ZERO, rules: [] };
      tbl.chains.push(c);
      cache.set(name, c);
      created.add(c);
    }
    return c;
  };
  const createUser = (name: string): FakeChain => {
    const c: FakeChain = { name, builtin: false, policy: 'ACCEPT', policyCounters: ZERO, rules: [] };
    ensureTable().chains.push(c);
    cache.set(name, c);
    created.add(c);
    return c;
  };
  const removeChain = (c: FakeChain): void => {
    if (t) t.chains = t.chains.filter((x) => x !== c);
    for (const [k, v] of cache) if (v === c) cache.delete(k);
  };
  const referenced = (c: FakeChain): boolean =>
    (t?.chains ?? []).some((x) => x.rules.some((r) => targetChain(r) === c.name));
  const existing = (name: string): FakeChain | undefined => cache.get(name);

  /** Whether a loop of jumps/gotos can be entered from a built-in chain (the kernel refuses those). */
  const loopFromBuiltin = (): boolean => {
    const chains = t?.chains ?? [];
    const byName = new Map(chains.map((c) => [c.name, c]));
    const state = new Map<FakeChain, 'open' | 'done'>();
    const visit = (c: FakeChain): boolean => {
      const s = state.get(c);
      if (s === 'open') return true;
      if (s === 'done') return false;
      state.set(c, 'open');
      for (const r of c.rules) {
        const next = byName.get(targetChain(r) ?? '');
        if (next && !next.builtin && visit(next)) return true;
      }
      state.set(c, 'done');
      return false;
    };
    return chains.some((c) => c.builtin && visit(c));
  };

  /** Applies a rule change; a jump that makes a loop reachable is a kernel error (ELOOP). */
  const withLoopCheck = (line: number, op: string, chain: FakeChain, rule: Rule, apply: () => void): void => {
    const jumps = targetChain(rule) !== undefined;
    const before = jumps && loopFromBuiltin();
    apply();
    if (jumps && !before && loopFromBuiltin())
      failAtCommit(line, op, 'Too many links', `rule in chain ${chain.name}`);
  };

  /** Checks a rule's jump and resolves it to the chain's current name. */
  const prepareRule = (cmd: RestoreCommand & { rule: Rule }, chain: FakeChain, op: string): Rule => {
    let rule = ctx.counters ? cmd.rule : withoutCounters(cmd.rule);
    const jumpTo = targetChain(rule);
    if (jumpTo !== undefined) {
      const dest = existing(jumpTo);
      if (dest === undefined) {
        throw new BlockFailure({
          stderr: parameterProblem(program, `Chain '${jumpTo}' does not exist`, block.commitLine),
          exitCode: 2,
        });
      }
      if (dest.builtin) failAtCommit(cmd.line, op, 'Operation not supported', `rule in chain ${chain.name}`);
      if (dest.name !== jumpTo) rule = retarget(rule, dest.name);
    }
    const tgt = rule.target;
    if (tgt && 'target' in tgt && NAT_TARGETS.has(tgt.target) && table !== 'nat')
      failAtCommit(cmd.line, op, 'Invalid argument', `rule in chain ${chain.name}`);
    return rule;
  };

  for (const cmd of block.commands) {
    const { line } = cmd;
    switch (cmd.op) {
      case 'declare': {
        if (isBuiltinName(cmd.chain)) {
          if (cmd.policy === '-') break;
          if (cmd.policy !== 'ACCEPT' && cmd.policy !== 'DROP') failed(line, 'Bad policy name.');
          const c = materialize(cmd.chain);
          c.policy = cmd.policy as Policy;
          if (ctx.counters && cmd.counters) c.policyCounters = cmd.counters;
          break;
        }
        const c = existing(cmd.chain);
        if (c) c.rules = [];
        else createUser(cmd.chain);
        break;
      }
      case 'newChain': {
        if (isBuiltinName(cmd.chain) || existing(cmd.chain)) failed(line, 'Chain already exists.');
        createUser(cmd.chain);
        break;
      }
      case 'append':
      case 'insert': {
        const c = isBuiltinName(cmd.chain) ? materialize(cmd.chain) : (existing(cmd.chain) ?? noChain(line));
        if (cmd.op === 'insert' && cmd.position > c.rules.length + 1)
          failed(line, 'Index of insertion too big.');
        const op = cmd.op === 'append' ? 'RULE_APPEND' : 'RULE_INSERT';
        const rule = prepareRule(cmd, c, op);
        withLoopCheck(line, op, c, rule, () => {
          if (cmd.op === 'append') c.rules.push(rule);
          else c.rules.splice(cmd.position - 1, 0, rule);
        });
        break;
      }
      case 'replace': {
        const c = existing(cmd.chain) ?? noChain(line);
        if (cmd.position > c.rules.length) failed(line, 'Index of replacement too big.');
        const rule = prepareRule(cmd, c, 'RULE_REPLACE');
        withLoopCheck(line, 'RULE_REPLACE', c, rule, () => {
          c.rules[cmd.position - 1] = rule;
        });
        break;
      }
      case 'deleteAt': {
        const c = existing(cmd.chain) ?? noChain(line);
        if (cmd.position > c.rules.length) failed(line, 'Index of deletion too big.');
        c.rules.splice(cmd.position - 1, 1);
        break;
      }
      case 'deleteRule': {
        const badRule = () => failed(line, 'Bad rule (does a matching rule exist in that chain?).');
        const c = existing(cmd.chain) ?? badRule();
        const want = ruleText(withoutCounters(cmd.rule));
        const at = c.rules.findIndex((r) => ruleText(withoutCounters(r)) === want);
        if (at < 0) badRule();
        c.rules.splice(at, 1);
        break;
      }
      case 'flush': {
        if (cmd.chain === undefined) {
          for (const c of cache.values()) c.rules = [];
          break;
        }
        const c = isBuiltinName(cmd.chain) ? materialize(cmd.chain) : (existing(cmd.chain) ?? noChain(line));
        c.rules = [];
        break;
      }
      case 'zero': {
        // nf_tables zeroes a built-in chain by writing it again with the policy iptables read
        // at the start of the block: a -P earlier in the block is undone (measured on 1.8.9).
        const zero = (c: FakeChain) => {
          c.policyCounters = ZERO;
          c.rules = c.rules.map((r) => (r.counters ? Object.freeze({ ...r, counters: ZERO }) : r));
          if (c.builtin) c.policy = cachedPolicy.get(c) ?? 'ACCEPT';
        };
        if (cmd.chain === undefined) for (const c of cache.values()) zero(c);
        else zero(existing(cmd.chain) ?? noChain(line));
        break;
      }
      case 'deleteChain': {
        const del = (c: FakeChain, single: boolean): void => {
          if (c.builtin) {
            const policy = cachedPolicy.get(c) ?? 'ACCEPT';
            if (!single && (policy !== 'ACCEPT' || c.rules.length > 0)) return;
            if (policy !== 'ACCEPT') failed(line, 'Directory not empty.');
          }
          if (c.rules.length > 0 || referenced(c))
            failAtCommit(line, 'CHAIN_DEL', 'Device or resource busy', `chain ${c.name}`);
          removeChain(c);
        };
        if (cmd.chain === undefined) {
          for (const c of [...new Set(cache.values())]) del(c, false);
          break;
        }
        del(existing(cmd.chain) ?? noChain(line), true);
        break;
      }
      case 'policy': {
        if (!isBuiltinName(cmd.chain)) failed(line, 'Bad built-in chain name.');
        if (cmd.policy !== 'ACCEPT' && cmd.policy !== 'DROP') failed(line, 'Bad policy name.');
        materialize(cmd.chain).policy = cmd.policy as Policy;
        break;
      }
      case 'rename': {
        const c = existing(cmd.chain) ?? noChain(line);
        // The kernel renames a built-in chain into a user chain iptables-save cannot show: refuse.
        if (c.builtin) failed(line, 'Bad built-in chain name.');
        if (isBuiltinName(cmd.newName) || existing(cmd.newName)) failed(line, 'File exists.');
        if (created.has(c)) {
          // Renamed by handle, which a chain created in the same batch does not have yet.
          failAtCommit(line, 'CHAIN_RENAME', 'No such file or directory', `chain ${cmd.newName}`);
        }
        for (const x of ensureTable().chains) {
          x.rules = x.rules.map((r) => (targetChain(r) === c.name ? retarget(r, cmd.newName) : r));
        }
        // iptables' cache keeps the old name: later commands still find the chain under it.
        c.name = cmd.newName;
        break;
      }
    }
  }
  if (commitFailures.length > 0) {
    throw new BlockFailure({
      stderr: `${program} v1.8.9 (nf_tables): \n${commitFailures.join('\n')}\n`,
      exitCode: 4,
    });
  }
  return t;
}
