/**
 * Untyped rules in the kernel's own form.
 *
 * A typed match or target is written exactly as iptables-save prints it (the
 * codec is proven on the kernel). A match or target we do not type is kept as
 * the words a client sent, and iptables may print it otherwise: another order
 * (`--algo bm --string abc` comes back `--string "abc" --algo bm`), defaults
 * filled in (`--connlimit-mask 32`), numbers respelled. Stored as sent, the
 * model would lie: the id returned at creation would be 404 after any re-read,
 * and `ensure` of the same rule would add a second copy.
 *
 * So before such a rule is planned, the kernel is asked: it is added to a
 * probe chain (`PCL-PROBE-<pid>`, never referenced, so no packet ever sees it)
 * in its own table, read back with `iptables -t TABLE -S CHAIN` (which reads
 * only that table), and the probe chain is removed. The kernel's form becomes
 * the rule. A rule the kernel refuses is refused before anything else changes.
 * Results are cached, so a form is probed once per process. Runs inside a
 * queue job, like every other kernel call.
 */
import { DomainError } from '../domain/errors.js';
import type { Family, TableName } from '../domain/family.js';
import { isGoto, isJump, isRawMatch, isRawTarget, type Rule } from '../domain/model.js';
import { type ChangeFeed, ExecError, type Executor } from '../exec/executor.js';
import { RestoreBuilder } from '../iptables/restore-builder.js';
import { parseRuleArgs } from '../iptables/rule-parser.js';
import { ruleText } from '../iptables/rule-writer.js';
import { splitRestoreWords } from '../iptables/tokenize.js';

/** Chain names starting with this are Portcullis' probes; recovery removes leftovers at start. */
export const PROBE_PREFIX = 'PCL-PROBE-';
const PROBE_CHAIN = `${PROBE_PREFIX}${process.pid % 1_000_000}`;
const CACHE_SIZE = 1000;

export interface CanonicalizerOptions {
  readonly executor: Executor;
  /** The live change feed, whose reports of the probe's commits are ours, not external. */
  readonly feed: () => ChangeFeed | undefined;
  readonly feedTimeoutMs: number;
}

/** Whether a rule has a part we do not type (whose printed form only the kernel knows). */
export function hasUntypedPart(rule: Rule): boolean {
  return rule.matches.some(isRawMatch) || (rule.target !== undefined && isRawTarget(rule.target));
}

/** The rule without a jump or goto (the probe chain cannot refer to chains that may not exist yet). */
function probeForm(rule: Rule): Rule {
  const t = rule.target;
  if (t === undefined || !(isJump(t) || isGoto(t))) return rule;
  const { target: _, ...rest } = rule;
  return rest;
}

export interface ProbeItem {
  readonly family: Family;
  readonly table: TableName;
  readonly rule: Rule;
}

export class Canonicalizer {
  private readonly o: CanonicalizerOptions;
  /** `family table text` of the probe form -> the kernel's form (least recently used first). */
  private readonly cache = new Map<string, Rule>();

  constructor(options: CanonicalizerOptions) {
    this.o = options;
  }

  /**
   * The kernel's form of each rule that has an untyped part (others map to themselves), or
   * the kernel's refusal as an invalid_argument error.
   */
  async canonicalize(items: readonly ProbeItem[]): Promise<Map<Rule, Rule | DomainError>> {
    const out = new Map<Rule, Rule | DomainError>();
    const todo = new Map<string, { item: ProbeItem; probe: Rule; key: string }[]>();
    for (const item of items) {
      if (out.has(item.rule)) continue;
      if (!hasUntypedPart(item.rule)) {
        out.set(item.rule, item.rule);
        continue;
      }
      const probe = probeForm(item.rule);
      const key = `${item.family} ${item.table} ${ruleText(probe)}`;
      const cached = this.cache.get(key);
      if (cached) {
        this.cache.delete(key);
        this.cache.set(key, cached);
        out.set(item.rule, withTarget(cached, item.rule));
        continue;
      }
      const group = `${item.family} ${item.table}`;
      let list = todo.get(group);
      if (!list) {
        list = [];
        todo.set(group, list);
      }
      list.push({ item, probe, key });
    }
    for (const list of todo.values()) {
      const { family, table } = (list[0] as { item: ProbeItem }).item;
      const unique = [...new Map(list.map((x) => [x.key, x])).values()];
      const results = await this.probe(
        family,
        table,
        unique.map((x) => x.probe),
      );
      unique.forEach((x, i) => {
        const r = results[i] as Rule | DomainError;
        if (!(r instanceof DomainError)) this.remember(x.key, r);
      });
      for (const x of list) {
        const r = results[unique.findIndex((u) => u.key === x.key)] as Rule | DomainError;
        out.set(x.item.rule, r instanceof DomainError ? r : withTarget(r, x.item.rule));
      }
    }
    return out;
  }

  private remember(key: string, rule: Rule): void {
    this.cache.set(key, rule);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** Probes rules of one family and table; refused ones come back as errors, the rest as the kernel prints them. */
  private async probe(
    family: Family,
    table: TableName,
    rules: readonly Rule[],
  ): Promise<(Rule | DomainError)[]> {
    const out: (Rule | DomainError | undefined)[] = rules.map(() => undefined);
    let pending = rules.map((_, i) => i);
    // Each round either succeeds or removes the rule the kernel blamed: bounded by the rules.
    for (let round = 0; pending.length > 0 && round <= rules.length; round++) {
      const builder = new RestoreBuilder().newChain(table, PROBE_CHAIN);
      for (const i of pending) builder.append(table, PROBE_CHAIN, rules[i] as Rule);
      try {
        await this.run(family, builder.toString());
      } catch (error) {
        if (!(error instanceof ExecError)) throw unavailable(error);
        if (error.line === 2 && error.kind === 'already_exists' && round === 0) {
          // A probe chain left by a crash of this process id: remove it and try again.
          await this.run(family, `*${table}\n-F ${PROBE_CHAIN}\n-X ${PROBE_CHAIN}\nCOMMIT\n`);
          continue;
        }
        // Lines: *table, -N probe, then one rule per line.
        const at = error.line === undefined ? undefined : pending[error.line - 3];
        if (at !== undefined) {
          out[at] = refused(error);
          pending = pending.filter((i) => i !== at);
          continue;
        }
        if (!['invalid_input', 'not_found', 'failed'].includes(error.kind)) throw unavailable(error);
        // Not pinned on a line (nf_tables blames COMMIT for some refusals): refuse them all.
        for (const i of pending) out[i] = refused(error);
        pending = [];
      }
      let listed: string;
      try {
        listed = await this.o.executor.listRules(family, table, PROBE_CHAIN);
      } finally {
        await this.run(family, `*${table}\n-F ${PROBE_CHAIN}\n-X ${PROBE_CHAIN}\nCOMMIT\n`).catch(
          () => undefined,
        );
      }
      const prefix = `-A ${PROBE_CHAIN} `;
      const lines = listed.split('\n').filter((l) => l.startsWith(prefix) || l === `-A ${PROBE_CHAIN}`);
      if (lines.length !== pending.length) {
        throw new DomainError(
          'unavailable',
          `the kernel listed ${lines.length} rules for ${pending.length} probed: retry`,
        );
      }
      pending.forEach((i, k) => {
        const words = splitRestoreWords(lines[k] as string, k + 1).slice(2);
        out[i] = parseRuleArgs(words, family, { mode: 'save', field: 'rule' });
      });
      pending = [];
    }
    return out.map(
      (r) => r ?? new DomainError('unavailable', 'the kernel did not say how it writes this rule'),
    );
  }

  /** A restore of our own: claimed on the feed so it is not taken for another process's change. */
  private async run(family: Family, text: string): Promise<void> {
    const feed = this.o.feed();
    let spawned: number | undefined;
    try {
      const r = await this.o.executor.restore(family, text, {
        noflush: true,
        onSpawn: (pid) => {
          spawned = pid;
          feed?.claim(pid);
        },
      });
      if (feed && r.pid !== undefined) feed.takeOwn(r.pid, 1, this.o.feedTimeoutMs).catch(() => undefined);
    } catch (error) {
      if (spawned !== undefined) feed?.release(spawned);
      throw error;
    }
  }
}

/** The canonical probe form with the original rule's jump or goto put back. */
function withTarget(canonical: Rule, original: Rule): Rule {
  const t = original.target;
  if (t === undefined || !(isJump(t) || isGoto(t))) return canonical;
  return Object.freeze({ ...canonical, target: t });
}

function refused(e: ExecError): DomainError {
  const first =
    e.stderr.split('\n').find((l) => l.trim() !== '' && !/^\S+ v[\d.]+ \([^)]*\):\s*$/.test(l)) ?? e.message;
  return new DomainError('invalid_argument', `the kernel refuses this rule: ${first.trim().slice(0, 300)}`, {
    details: { kernel: first.slice(0, 500) },
    cause: e,
  });
}

function unavailable(e: unknown): DomainError {
  if (e instanceof DomainError) return e;
  return new DomainError(
    'unavailable',
    `the kernel could not be asked how it writes this rule: ${e instanceof Error ? e.message : String(e)}`,
    { cause: e },
  );
}
