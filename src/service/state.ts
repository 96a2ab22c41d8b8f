/**
 * The in-memory model the service answers reads from, kept equal to the
 * kernel. It is the parsed ruleset plus what makes operations fast at 50k
 * rules: each rule's canonical text and stable id, an id index per chain, and
 * on nf_tables each rule's kernel handle. Committed state is never mutated:
 * a batch plans on a `Draft` that copies only the chains it touches, and the
 * draft becomes the new state when the kernel accepted the change.
 */

import { preview } from '../domain/address.js';
import { DomainError } from '../domain/errors.js';
import { BUILTIN_CHAINS, type Family, type TableName } from '../domain/family.js';
import type { Chain, Counters, Policy, Rule, Ruleset, Table } from '../domain/model.js';
import { ruleId } from '../domain/rule-id.js';
import { ruleTextOnce } from '../iptables/rule-writer.js';
import { parseRuleText, type SavedRule, type SavedTable } from '../iptables/save-parser.js';
import { isAccepted } from './accepted-rules.js';

export interface RuleEntry {
  readonly rule: Rule;
  /** Canonical text (what iptables-save prints after `-A CHAIN`). */
  readonly text: string;
  readonly id: string;
  /** nf_tables rule handle, when known. */
  readonly handle: number | undefined;
}

/**
 * Entries created while planning a batch are private to that batch until it
 * commits, so their id may still be settled in place; a handle is learned from
 * the kernel after the commit, possibly once the entry is in the model.
 */
type MutableEntry = { -readonly [K in keyof RuleEntry]: RuleEntry[K] };

export function freshEntry(rule: Rule, text: string, id: string): RuleEntry {
  return { rule, text, id, handle: undefined };
}

/**
 * Records the nf_tables handle of a rule, once. A handle is not part of a
 * rule's identity (ids and views do not include it), so learning it after
 * the entry was committed changes nothing a reader can see.
 */
export function settleHandle(entry: RuleEntry, handle: number): boolean {
  if (entry.handle !== undefined) return false;
  (entry as MutableEntry).handle = handle;
  return true;
}

export interface ChainState {
  readonly name: string;
  readonly policy: Policy | undefined;
  readonly counters: Counters | undefined;
  readonly entries: readonly RuleEntry[];
}

export interface TableState {
  readonly name: TableName;
  /** Chains in display order: built-ins first (iptables' order), then user chains by name. */
  readonly chains: ReadonlyMap<string, ChainState>;
}

export interface FamilyState {
  readonly family: Family;
  readonly tables: ReadonlyMap<TableName, TableState>;
}

/** Entries for a chain's rules with ids (occurrence-aware) computed. */
export function makeEntries(
  family: Family,
  table: TableName,
  chain: string,
  rules: readonly Rule[],
  handles?: readonly number[],
): RuleEntry[] {
  const seen = new Map<string, number>();
  return rules.map((rule, i) => {
    const text = ruleTextOnce(rule);
    const occurrence = seen.get(text) ?? 0;
    seen.set(text, occurrence + 1);
    return { rule, text, id: ruleId(family, table, chain, text, occurrence), handle: handles?.[i] };
  });
}

export function stateFromRuleset(
  ruleset: Ruleset,
  handles?: ReadonlyMap<TableName, ReadonlyMap<string, readonly number[]>>,
): FamilyState {
  const tables = new Map<TableName, TableState>();
  for (const t of ruleset.tables) {
    const chains = new Map<string, ChainState>();
    for (const c of t.chains) {
      const h = handles?.get(t.name)?.get(c.name);
      chains.set(c.name, {
        name: c.name,
        policy: c.policy,
        counters: c.counters,
        entries: makeEntries(
          ruleset.family,
          t.name,
          c.name,
          c.rules,
          h && h.length === c.rules.length ? h : undefined,
        ),
      });
    }
    tables.set(t.name, { name: t.name, chains });
  }
  return { family: ruleset.family, tables };
}

/**
 * Where a rule read from the kernel comes from, to parse its text when it is first looked at:
 * the family, table and chain, and the table's chains at that read (a jump to a user chain
 * and a target extension are told apart by them, as when the whole save is parsed).
 */
interface RuleSource {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  readonly chains: ReadonlySet<string>;
}

/**
 * A rule read from the kernel: its text is known from the read; the typed rule is parsed from
 * it, and the id hashed, the first time something asks for them, and kept. Most of a
 * 50,000-rule model is never looked at rule by rule (appends, diffs and restores go by text),
 * so a read costs a split per rule instead of a parse and a hash (issue 11: ready in under 2 s).
 */
class KernelEntry implements RuleEntry {
  /** The typed rule once parsed; `checked` when it was parsed once and not kept (checkReadable). */
  private parsed: Rule | 'checked' | undefined;

  /** The id once computed (a hash, computed when first asked for: most ids of a read never are). */
  private cached: string | undefined;

  constructor(
    readonly text: string,
    id: string | undefined,
    public handle: number | undefined,
    private readonly source: RuleSource,
    /** Identical rules before this one in its chain (what the id counts). */
    private readonly occurrence: number,
    parsed?: Rule | 'checked',
  ) {
    this.cached = id;
    this.parsed = parsed;
  }

  get id(): string {
    if (this.cached === undefined) {
      const s = this.source;
      this.cached = ruleId(s.family, s.table, s.chain, this.text, this.occurrence);
    }
    return this.cached;
  }

  /** The id if it was computed already (never hashes). */
  cachedId(): string | undefined {
    return this.cached;
  }

  get rule(): Rule {
    if (this.parsed === undefined || this.parsed === 'checked')
      this.parsed = parseKernelRule(this.text, this.source);
    return this.parsed;
  }

  /**
   * What a copy of this entry (same text, same table) may start from: the typed rule, or
   * `checked` (parsed once, so readable), or nothing (never parsed). Never parses.
   */
  known(): Rule | 'checked' | undefined {
    return this.parsed;
  }

  /**
   * Takes a typed rule parsed elsewhere from this same text (a declarative replace parsed the
   * request's copy of it just now), unless an accepted one is kept already or the table's
   * chains at the read would have read it otherwise (`-j NAME`, see readsAlike). A rule the
   * save parser read from this text is the same rule (lossless text); the request's copy
   * replaces it so that the next replace finds an accepted rule here (accepted-rules.ts).
   */
  adopt(rule: Rule): void {
    const kept = this.parsed;
    if (typeof kept === 'object' && (kept === rule || isAccepted(kept, this.source.family))) return;
    if (!readsAlike(rule, this.source.chains)) return;
    this.parsed = rule;
  }

  /** The typed rule if one is kept, without parsing. */
  keptRule(): Rule | undefined {
    return typeof this.parsed === 'object' ? this.parsed : undefined;
  }

  /** Parses the text without keeping the rule (see checkReadable). */
  check(): void {
    if (this.parsed !== undefined) return;
    parseKernelRule(this.text, this.source);
    this.parsed = 'checked';
  }

  /** A copy with another id (recomputeIds: its occurrence moved; the id is set, not hashed again). */
  withId(id: string): KernelEntry {
    return new KernelEntry(this.text, id, this.handle, this.source, this.occurrence, this.parsed);
  }
}

/**
 * Hands `rule`, parsed from a request and rendering to `entry.text`, to an entry read from the
 * kernel that has not parsed its text yet: the lockout guard's simulation of the change would
 * otherwise parse every kept rule of a replaced table again (1.45 s of 8.7 s for a 1% replace
 * of a 200k-rule table, the first after a start).
 */
export function adoptRule(entry: RuleEntry, rule: Rule): void {
  if (entry instanceof KernelEntry) entry.adopt(rule);
}

function parseKernelRule(text: string, s: RuleSource): Rule {
  try {
    return parseRuleText(text, s.family, s.table, s.chain, (c) => s.chains.has(c));
  } catch (e) {
    // Not the caller's fault: the kernel holds what this version cannot read.
    throw new DomainError(
      'internal',
      `the kernel holds a rule in ${s.family} ${s.table}/${s.chain} that this version of the service cannot read (${(e as Error).message}): "${preview(text, 200)}"`,
      { cause: e },
    );
  }
}

/**
 * The accepted rules a table of the model holds, by text (accepted-rules.ts): what a spec equal
 * to one of these texts reads as, without parsing. Nothing is parsed to build it.
 */
export function acceptedRules(state: FamilyState | undefined, table: TableName): Map<string, Rule> {
  const out = new Map<string, Rule>();
  const t = state?.tables.get(table);
  if (!state || !t) return out;
  for (const c of t.chains.values())
    for (const e of c.entries) {
      const rule = e instanceof KernelEntry ? e.keptRule() : e.rule;
      if (rule !== undefined && isAccepted(rule, state.family)) out.set(e.text, rule);
    }
  return out;
}

/** A copy of an entry with another id (the typed rule, parsed or not, is shared). */
function withId(e: RuleEntry, id: string): RuleEntry {
  return e instanceof KernelEntry ? e.withId(id) : { ...e, id };
}

/**
 * The rules of a state whose text was read but never parsed, here or in an earlier state:
 * what checkReadable must look at.
 */
export function uncheckedEntries(state: FamilyState): RuleEntry[] {
  const out: RuleEntry[] = [];
  for (const t of state.tables.values())
    for (const c of t.chains.values())
      for (const e of c.entries) if (e instanceof KernelEntry && e.known() === undefined) out.push(e);
  return out;
}

/** Entries read from the kernel that keep a typed rule (for tests: what a read or a change parsed). */
export function parsedEntries(state: FamilyState): RuleEntry[] {
  const out: RuleEntry[] = [];
  for (const t of state.tables.values())
    for (const c of t.chains.values())
      for (const e of c.entries) if (e instanceof KernelEntry && typeof e.known() === 'object') out.push(e);
  return out;
}

/**
 * Parses a rule read from the kernel without keeping the result (memory stays that of the
 * text), so a rule this version cannot read is found soon after a read rather than when
 * someone first looks at it. Throws what reading the rule would throw.
 */
export function checkReadable(e: RuleEntry): void {
  if (e instanceof KernelEntry) e.check();
}

/**
 * The model of one family from a kernel read (scanSave): entries keyed on the text iptables-save
 * printed, parsed lazily. What `previous` holds is reused: the id of each (text, occurrence)
 * pair of a chain (an id depends on nothing else in one chain) and the typed rule of a text
 * already parsed in the table.
 */
export function stateFromSave(
  family: Family,
  tables: readonly SavedTable<SavedRule>[],
  handles?: ReadonlyMap<TableName, ReadonlyMap<string, readonly number[]>>,
  previous?: FamilyState,
): FamilyState {
  const out = new Map<TableName, TableState>();
  for (const t of tables) {
    const names = new Set(t.chains.map((c) => c.name));
    const before = previous?.tables.get(t.name);
    // What a text of this table parsed to before (see readsAlike), or that it parsed at all.
    const parsed = new Map<string, Rule | 'checked'>();
    for (const c of before?.chains.values() ?? [])
      for (const e of c.entries) {
        const r = e instanceof KernelEntry ? e.known() : e.rule;
        if (r === undefined || typeof parsed.get(e.text) === 'object') continue;
        if (r === 'checked' || readsAlike(r, names)) parsed.set(e.text, r);
        else parsed.set(e.text, 'checked');
      }
    const chains = new Map<string, ChainState>();
    for (const c of t.chains) {
      const h = handles?.get(t.name)?.get(c.name);
      const hs = h && h.length === c.rules.length ? h : undefined;
      // Ids the previous state had computed, by (text, occurrence): the same pair is the same id.
      const ids = new Map<string, (string | undefined)[]>();
      for (const e of before?.chains.get(c.name)?.entries ?? []) {
        const id = e instanceof KernelEntry ? e.cachedId() : e.id;
        const list = ids.get(e.text);
        if (list) list.push(id);
        else ids.set(e.text, [id]);
      }
      const source: RuleSource = { family, table: t.name, chain: c.name, chains: names };
      const seen = new Map<string, number>();
      const entries = c.rules.map((r, i): RuleEntry => {
        const text = typeof r === 'string' ? r : ruleTextOnce(r);
        const occurrence = seen.get(text) ?? 0;
        seen.set(text, occurrence + 1);
        const id = ids.get(text)?.[occurrence];
        return new KernelEntry(
          text,
          id,
          hs?.[i],
          source,
          occurrence,
          typeof r === 'string' ? parsed.get(text) : r,
        );
      });
      chains.set(c.name, { name: c.name, policy: c.policy, counters: c.counters, entries });
    }
    out.set(t.name, { name: t.name, chains });
  }
  return { family, tables: out };
}

/**
 * Whether a rule's text parses to the same rule with the table's chains now `chains`: the
 * chains decide only whether `-j NAME` without options is a jump to a chain or a target
 * (rule-parser.ts), so whether a text parses at all does not depend on them.
 */
function readsAlike(rule: Rule, chains: ReadonlySet<string>): boolean {
  const t = rule.target;
  if (t === undefined) return true;
  if ('jump' in t) return chains.has(t.jump);
  if ('target' in t && 'raw' in t && t.raw.length === 0) return !chains.has(t.target);
  return true;
}

/** An empty table as iptables creates it: built-in chains with ACCEPT policy. */
export function emptyTable(name: TableName): TableState {
  return {
    name,
    chains: new Map(
      BUILTIN_CHAINS[name].map((c) => [c, { name: c, policy: 'ACCEPT', counters: undefined, entries: [] }]),
    ),
  };
}

/**
 * The order iptables-nft-save prints tables in (its builtin table array: mangle,
 * security, raw, filter, nat), whatever order they were created in.
 */
export const NFT_TABLE_ORDER: readonly TableName[] = ['mangle', 'security', 'raw', 'filter', 'nat'];

/**
 * How tables are ordered in a ruleset read: `nft` as iptables-nft-save prints them;
 * `kernel` as the kernel listed them at the last read (iptables-legacy-save follows
 * /proc/net/ip_tables_names, the order the table modules registered), tables created
 * since then last, as a newly registered table is.
 */
export type TableOrder = 'nft' | 'kernel';

export function toRuleset(
  state: FamilyState,
  order: TableOrder = 'nft',
  chainOf: (c: ChainState) => Chain = toChain,
): Ruleset {
  const names = order === 'nft' ? NFT_TABLE_ORDER : [...state.tables.keys()];
  const tables: Table[] = [];
  for (const name of names) {
    const t = state.tables.get(name);
    if (t) tables.push({ name: t.name, chains: [...t.chains.values()].map(chainOf) });
  }
  return { family: state.family, tables };
}

/**
 * The state as iptables-save text (what writeRestore(toRuleset(state, order)) gives), written
 * from the rules' texts: nothing is parsed or rendered again.
 */
export function stateText(state: FamilyState, order: TableOrder = 'nft'): string {
  const names = order === 'nft' ? NFT_TABLE_ORDER : [...state.tables.keys()];
  const out: string[] = [];
  for (const name of names) {
    const t = state.tables.get(name);
    if (!t) continue;
    out.push(`*${name}`);
    for (const c of t.chains.values()) out.push(`:${c.name} ${c.policy ?? '-'} [0:0]`);
    for (const c of t.chains.values())
      for (const e of c.entries) out.push(e.text === '' ? `-A ${c.name}` : `-A ${c.name} ${e.text}`);
    out.push('COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

const chainEntries = new WeakMap<Chain, readonly RuleEntry[]>();

/**
 * The state as a Ruleset whose chains parse their rules only when `rules` is first read, for
 * the lockout guard: its simulation walks the chains on the protected packets' paths, a few of
 * a large ruleset, and what it needs of every rule (sources, `recent` lists) it reads from the
 * texts first (entriesOf). The first guarded change after a start otherwise parsed every rule
 * of every table (half of a 1% replace of a 200k-rule kube-shaped table).
 */
export function lazyRuleset(state: FamilyState): Ruleset {
  return toRuleset(state, 'nft', lazyChain);
}

function lazyChain(c: ChainState): Chain {
  // The entries as they are now: a draft may change after (the guard takes the ruleset after a
  // change, then rolls the draft back to take the one before).
  const entries = c.entries.slice();
  let rules: readonly Rule[] | undefined;
  const chain: Chain = {
    name: c.name,
    ...(c.policy ? { policy: c.policy } : {}),
    ...(c.counters ? { counters: c.counters } : {}),
    get rules() {
      rules ??= entries.map((e) => e.rule);
      return rules;
    },
  };
  chainEntries.set(chain, entries);
  return chain;
}

/** The entries a chain of lazyRuleset was made from (texts at hand, rules parsed when asked). */
export function entriesOf(chain: Chain): readonly RuleEntry[] | undefined {
  return chainEntries.get(chain);
}

export function toChain(c: ChainState): Chain {
  return {
    name: c.name,
    ...(c.policy ? { policy: c.policy } : {}),
    ...(c.counters ? { counters: c.counters } : {}),
    rules: c.entries.map((e) => e.rule),
  };
}

/** Number of rules in other chains of the table that jump or go to `chain`. */
export function referencesTo(table: TableState, chain: string): { chain: string; position: number }[] {
  const refs: { chain: string; position: number }[] = [];
  for (const c of table.chains.values()) {
    c.entries.forEach((e, i) => {
      const t = e.rule.target;
      if (t && (('jump' in t && t.jump === chain) || ('goto' in t && t.goto === chain))) {
        refs.push({ chain: c.name, position: i + 1 });
      }
    });
  }
  return refs;
}

const idIndexes = new WeakMap<readonly RuleEntry[], Map<string, RuleEntry>>();

/** id -> entry for a committed chain's rules (built once per rule array). */
export function idIndex(entries: readonly RuleEntry[]): ReadonlyMap<string, RuleEntry> {
  let m = idIndexes.get(entries);
  if (!m) {
    m = new Map(entries.map((e) => [e.id, e]));
    idIndexes.set(entries, m);
  }
  return m;
}

/**
 * A copy-on-write view of the state of every family, on which a batch is
 * planned. A chain's rule array is copied once, the first time the batch
 * changes it, and then edited in place (so a batch of 256 appends to a
 * 50k-rule chain copies it once, not 256 times). Every edit is recorded in an
 * undo log, so a job whose planning fails half way is rolled back exactly.
 */
export class Draft {
  private readonly families = new Map<Family, Map<TableName, Map<string, ChainState>>>();
  /** Chains whose ids need recomputing for these texts. */
  private readonly touched = new Map<string, Set<string>>();
  /** Rule arrays this draft owns (copied from the base) and may edit in place. */
  private readonly owned = new WeakSet<readonly RuleEntry[]>();
  /** Text counts of owned arrays: the committed array's counts (shared, read-only here) plus a delta. */
  private readonly countStates = new Map<readonly RuleEntry[], CountState>();
  /** Texts removed from some chain in this batch (their later copies' ids may shift). */
  private readonly removedTexts = new Set<string>();
  /** text -> count, per owned array, built on first use. */
  private readonly undo: (() => void)[] = [];
  /** Entries this batch created (their ids may be settled in place at commit). */
  private readonly fresh = new Set<RuleEntry>();

  constructor(private readonly base: ReadonlyMap<Family, FamilyState>) {}

  private familyMap(family: Family): Map<TableName, Map<string, ChainState>> {
    let fam = this.families.get(family);
    if (!fam) {
      fam = new Map();
      this.families.set(family, fam);
    }
    return fam;
  }

  private tableMap(family: Family, table: TableName): Map<string, ChainState> | undefined {
    const fam = this.familyMap(family);
    let t = fam.get(table);
    if (!t) {
      const baseTable = this.base.get(family)?.tables.get(table);
      if (!baseTable) return undefined;
      t = new Map(baseTable.chains);
      fam.set(table, t);
      this.undo.push(() => fam.delete(table));
    }
    return t;
  }

  /** The table, creating it empty (as iptables would on first use) when `create`. */
  table(family: Family, table: TableName, create = false): ReadonlyMap<string, ChainState> | undefined {
    const t = this.tableMap(family, table);
    if (t || !create) return t;
    const fresh = new Map(emptyTable(table).chains);
    const fam = this.familyMap(family);
    fam.set(table, fresh);
    this.undo.push(() => fam.delete(table));
    return fresh;
  }

  chain(family: Family, table: TableName, chain: string): ChainState | undefined {
    return this.tableMap(family, table)?.get(chain);
  }

  private touch(family: Family, table: TableName, chain: string, texts: Iterable<string>): void {
    const key = `${family}/${table}/${chain}`;
    let set = this.touched.get(key);
    if (!set) {
      set = new Set();
      this.touched.set(key, set);
    }
    for (const x of texts) set.add(x);
  }

  /** Replaces a chain's state (new chain, flush, policy). */
  setChain(family: Family, table: TableName, state: ChainState, textsTouched?: Iterable<string>): void {
    const t = this.table(family, table, true) as Map<string, ChainState>;
    const before = t.get(state.name);
    t.set(state.name, state);
    this.undo.push(() => (before ? t.set(state.name, before) : t.delete(state.name)));
    if (textsTouched) this.touch(family, table, state.name, textsTouched);
  }

  /** The chain's rule array, owned by this draft (copied on first use). */
  private ownedEntries(family: Family, table: TableName, chain: string): RuleEntry[] {
    const c = this.chain(family, table, chain);
    if (!c) throw new Error(`draft: chain ${chain} missing`);
    if (this.owned.has(c.entries)) return c.entries as RuleEntry[];
    const copy = [...c.entries];
    this.owned.add(copy);
    this.countStates.set(copy, { source: c.entries, delta: new Map() });
    this.setChain(family, table, { ...c, entries: copy });
    return copy;
  }

  /** How many rules of an owned array have this text. */
  private countOf(entries: readonly RuleEntry[], text: string): number {
    const cs = this.countStates.get(entries);
    if (!cs) return entries.reduce((n, e) => (e.text === text ? n + 1 : n), 0);
    return (textCounts(cs.source).get(text) ?? 0) + (cs.delta.get(text) ?? 0);
  }

  private count(entries: readonly RuleEntry[], text: string, delta: number): void {
    const cs = this.countStates.get(entries);
    if (cs) cs.delta.set(text, (cs.delta.get(text) ?? 0) + delta);
    if (delta < 0) this.removedTexts.add(text);
  }

  /**
   * Position (0-based) of the rule with this id in the draft's chain, or -1. Ids are those
   * of the committed state (what clients saw); rules added in this batch are found by scan.
   */
  indexOfId(family: Family, table: TableName, chain: string, id: string): number {
    const current = this.chain(family, table, chain)?.entries;
    if (!current) return -1;
    const base = this.base.get(family)?.tables.get(table)?.chains.get(chain)?.entries;
    const known = base ? idIndex(base).get(id) : undefined;
    if (known) {
      const i = current.indexOf(known);
      if (i !== -1) return i;
    }
    return current.findIndex((e) => e.id === id);
  }

  /** How many rules with this text stand before `index` (all of them when index is the end). */
  occurrencesBefore(family: Family, table: TableName, chain: string, text: string, index: number): number {
    const entries = this.ownedEntries(family, table, chain);
    if (index >= entries.length) return this.countOf(entries, text);
    let n = 0;
    for (let i = 0; i < index; i++) if (entries[i]?.text === text) n++;
    return n;
  }

  insertEntry(family: Family, table: TableName, chain: string, index: number, entry: RuleEntry): void {
    const entries = this.ownedEntries(family, table, chain);
    if (index >= entries.length) entries.push(entry);
    else entries.splice(index, 0, entry);
    this.fresh.add(entry);
    this.count(entries, entry.text, 1);
    this.undo.push(() => {
      entries.splice(index, 1);
      this.count(entries, entry.text, -1);
    });
    this.touch(family, table, chain, [entry.text]);
  }

  removeEntry(family: Family, table: TableName, chain: string, index: number): RuleEntry {
    const entries = this.ownedEntries(family, table, chain);
    const [removed] = entries.splice(index, 1) as [RuleEntry];
    this.count(entries, removed.text, -1);
    this.undo.push(() => {
      entries.splice(index, 0, removed);
      this.count(entries, removed.text, 1);
    });
    this.touch(family, table, chain, [removed.text]);
    return removed;
  }

  replaceEntry(family: Family, table: TableName, chain: string, index: number, entry: RuleEntry): RuleEntry {
    const entries = this.ownedEntries(family, table, chain);
    const old = entries[index] as RuleEntry;
    entries[index] = entry;
    this.fresh.add(entry);
    this.count(entries, old.text, -1);
    this.count(entries, entry.text, 1);
    this.undo.push(() => {
      entries[index] = old;
      this.count(entries, entry.text, -1);
      this.count(entries, old.text, 1);
    });
    this.touch(family, table, chain, [old.text, entry.text]);
    return old;
  }

  deleteChain(family: Family, table: TableName, chain: string): void {
    const t = this.tableMap(family, table);
    const before = t?.get(chain);
    if (!t || !before) return;
    t.delete(chain);
    this.undo.push(() => t.set(chain, before));
  }

  /** Renames a chain (display order is by name for user chains, see orderChains). */
  renameChain(family: Family, table: TableName, from: string, to: string): void {
    const t = this.tableMap(family, table) as Map<string, ChainState>;
    const c = t.get(from) as ChainState;
    t.delete(from);
    t.set(to, { ...c, name: to });
    this.undo.push(() => {
      t.delete(to);
      t.set(from, c);
    });
  }

  /** A mark to return to if planning a job fails half way: call the returned function to roll back. */
  checkpoint(): () => void {
    const mark = this.undo.length;
    return () => {
      while (this.undo.length > mark) (this.undo.pop() as () => void)();
    };
  }

  /**
   * Whether no id in the chain can have moved: every touched text is now absent, or is a
   * single rule added in this batch (planned with occurrence 0) with no copy removed.
   */
  private idsSettled(cs: CountState | undefined, texts: ReadonlySet<string>): boolean {
    if (!cs) return false;
    const base = textCounts(cs.source);
    for (const t of texts) {
      const before = base.get(t) ?? 0;
      const after = before + (cs.delta.get(t) ?? 0);
      if (after === 0) continue;
      if (before === 0 && after === 1 && !this.removedTexts.has(t)) continue;
      return false;
    }
    return true;
  }

  /** Whether anything was changed. */
  get isEmpty(): boolean {
    return this.undo.length === 0;
  }

  /** The new state: copies of changed tables with ids recomputed where occurrences moved. */
  /**
   * What the state would be, for reasoning about it (the simulator, the lockout guard), without
   * committing: ids are not recomputed and no count cache is carried over, so the draft can
   * still be committed or dropped. The result shares the draft's arrays: use it at once.
   */
  preview(): Map<Family, FamilyState> {
    const out = new Map(this.base);
    for (const [family, tables] of this.families) {
      if (tables.size === 0) continue;
      const newTables = new Map(this.base.get(family)?.tables ?? []);
      for (const [name, chains] of tables)
        newTables.set(name, { name, chains: orderChains(name, new Map(chains)) });
      out.set(family, { family, tables: newTables });
    }
    return out;
  }

  commit(): Map<Family, FamilyState> {
    const out = new Map(this.base);
    for (const [family, tables] of this.families) {
      if (tables.size === 0) continue;
      const baseFamily = this.base.get(family);
      const newTables = new Map(baseFamily?.tables ?? []);
      for (const [name, chains] of tables) {
        const fixed = new Map<string, ChainState>();
        for (const [chainName, c] of chains) {
          const texts = this.touched.get(`${family}/${name}/${chainName}`);
          const cs = this.countStates.get(c.entries);
          const final =
            texts && !this.idsSettled(cs, texts) ? recomputeIds(family, name, c, texts, this.fresh) : c;
          if (cs) carryCounts(cs, final.entries);
          fixed.set(chainName, final);
        }
        newTables.set(name, { name, chains: orderChains(name, fixed) });
      }
      out.set(family, { family, tables: newTables });
    }
    return out;
  }
}

interface CountState {
  /** The committed array the owned copy was made from. */
  readonly source: readonly RuleEntry[];
  /** Count changes made by this batch. */
  readonly delta: Map<string, number>;
}

const countCache = new WeakMap<readonly RuleEntry[], Map<string, number>>();

/** text -> number of rules with that text, for a committed rule array (built once, then carried forward). */
function textCounts(entries: readonly RuleEntry[]): Map<string, number> {
  let m = countCache.get(entries);
  if (!m) {
    m = new Map();
    for (const e of entries) m.set(e.text, (m.get(e.text) ?? 0) + 1);
    countCache.set(entries, m);
  }
  return m;
}

/**
 * After a commit the source array is no longer part of any state, so its counts map is
 * updated in place and handed to the committed array (no 50k-entry rebuild per batch).
 */
function carryCounts(cs: CountState, committed: readonly RuleEntry[]): void {
  const m = countCache.get(cs.source);
  if (!m) return;
  for (const [t, d] of cs.delta) {
    const n = (m.get(t) ?? 0) + d;
    if (n > 0) m.set(t, n);
    else m.delete(t);
  }
  countCache.delete(cs.source);
  countCache.set(committed, m);
}

function orderChains(table: TableName, chains: Map<string, ChainState>): Map<string, ChainState> {
  const builtins = BUILTIN_CHAINS[table];
  const out = new Map<string, ChainState>();
  for (const b of builtins) {
    const c = chains.get(b);
    if (c) out.set(b, c);
  }
  // User chains by name, as iptables-save prints them (nf_tables and legacy alike).
  const users = [...chains.keys()].filter((k) => !out.has(k)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const k of users) out.set(k, chains.get(k) as ChainState);
  return out;
}

/** Recomputes ids of entries whose text is in `texts` (their occurrence index may have moved). */
function recomputeIds(
  family: Family,
  table: TableName,
  c: ChainState,
  texts: ReadonlySet<string>,
  fresh: ReadonlySet<RuleEntry>,
): ChainState {
  const seen = new Map<string, number>();
  let changed = false;
  const entries = c.entries.map((e) => {
    if (!texts.has(e.text)) return e;
    const occurrence = seen.get(e.text) ?? 0;
    seen.set(e.text, occurrence + 1);
    const id = ruleId(family, table, c.name, e.text, occurrence);
    if (id === e.id) return e;
    if (fresh.has(e)) {
      (e as MutableEntry).id = id;
      return e;
    }
    changed = true;
    return withId(e, id);
  });
  return changed ? { ...c, entries } : c;
}
