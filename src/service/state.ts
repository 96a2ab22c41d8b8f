/**
 * The in-memory model the service answers reads from, kept equal to the
 * kernel. It is the parsed ruleset plus what makes operations fast at 50k
 * rules: each rule's canonical text and stable id, an id index per chain, and
 * on nf_tables each rule's kernel handle. Committed state is never mutated:
 * a batch plans on a `Draft` that copies only the chains it touches, and the
 * draft becomes the new state when the kernel accepted the change.
 */
import { BUILTIN_CHAINS, type Family, TABLES, type TableName } from '../domain/family.js';
import type { Chain, Counters, Policy, Rule, Ruleset, Table } from '../domain/model.js';
import { ruleId } from '../domain/rule-id.js';
import { ruleText } from '../iptables/rule-writer.js';

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
 * commits, so their id and handle may still be settled in place.
 */
export type FreshEntry = { -readonly [K in keyof RuleEntry]: RuleEntry[K] };
const fresh = new WeakSet<RuleEntry>();

export function freshEntry(rule: Rule, text: string, id: string): RuleEntry {
  const e: FreshEntry = { rule, text, id, handle: undefined };
  fresh.add(e);
  return e;
}

/** Sets the handle of an entry created in the current batch (no effect on committed entries). */
export function settleHandle(entry: RuleEntry, handle: number): boolean {
  if (!fresh.has(entry)) return false;
  (entry as FreshEntry).handle = handle;
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
    const text = ruleText(rule);
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

/** An empty table as iptables creates it: built-in chains with ACCEPT policy. */
export function emptyTable(name: TableName): TableState {
  return {
    name,
    chains: new Map(
      BUILTIN_CHAINS[name].map((c) => [c, { name: c, policy: 'ACCEPT', counters: undefined, entries: [] }]),
    ),
  };
}

export function toRuleset(state: FamilyState): Ruleset {
  const tables: Table[] = [];
  for (const name of TABLES) {
    const t = state.tables.get(name);
    if (t) tables.push(toTable(t));
  }
  return { family: state.family, tables };
}

export function toTable(t: TableState): Table {
  return { name: t.name, chains: [...t.chains.values()].map(toChain) };
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

/**
 * A copy-on-write view of the state of every family, on which a batch is
 * planned. Chains are copied when first changed; the rest is shared.
 */
export class Draft {
  private readonly families = new Map<Family, Map<TableName, Map<string, ChainState>>>();
  /** Tables created by this draft (absent from the base). */
  private readonly created = new Set<string>();
  /** Chains whose ids need recomputing for these texts. */
  private readonly touched = new Map<string, Set<string>>();

  constructor(private readonly base: ReadonlyMap<Family, FamilyState>) {}

  private tableMap(family: Family, table: TableName): Map<string, ChainState> | undefined {
    let fam = this.families.get(family);
    if (!fam) {
      fam = new Map();
      this.families.set(family, fam);
    }
    let t = fam.get(table);
    if (!t) {
      const baseTable = this.base.get(family)?.tables.get(table);
      if (!baseTable) return undefined;
      t = new Map(baseTable.chains);
      fam.set(table, t);
    }
    return t;
  }

  /** The table, creating it empty (as iptables would on first use) when `create`. */
  table(family: Family, table: TableName, create = false): ReadonlyMap<string, ChainState> | undefined {
    const t = this.tableMap(family, table);
    if (t || !create) return t;
    const fresh = new Map(emptyTable(table).chains);
    this.families.get(family)?.set(table, fresh);
    this.created.add(`${family}/${table}`);
    return fresh;
  }

  chain(family: Family, table: TableName, chain: string): ChainState | undefined {
    return this.tableMap(family, table)?.get(chain);
  }

  setChain(family: Family, table: TableName, state: ChainState, textsTouched?: Iterable<string>): void {
    const t = this.table(family, table, true) as Map<string, ChainState>;
    t.set(state.name, state);
    if (textsTouched) {
      const key = `${family}/${table}/${state.name}`;
      let set = this.touched.get(key);
      if (!set) {
        set = new Set();
        this.touched.set(key, set);
      }
      for (const x of textsTouched) set.add(x);
    }
  }

  deleteChain(family: Family, table: TableName, chain: string): void {
    (this.tableMap(family, table) as Map<string, ChainState> | undefined)?.delete(chain);
  }

  /** Renames a chain in place, keeping its position in the order. */
  renameChain(family: Family, table: TableName, from: string, to: string): void {
    const t = this.tableMap(family, table) as Map<string, ChainState>;
    const entries = [...t.entries()].map(([k, v]): [string, ChainState] =>
      k === from ? [to, { ...v, name: to }] : [k, v],
    );
    t.clear();
    for (const [k, v] of entries) t.set(k, v);
  }

  /** Replaces a whole table (declarative replace, reset). */
  setTable(family: Family, table: TableName, chains: readonly ChainState[]): void {
    let fam = this.families.get(family);
    if (!fam) {
      fam = new Map();
      this.families.set(family, fam);
    }
    fam.set(table, new Map(chains.map((c) => [c.name, c])));
  }

  /** A snapshot to return to if planning a job fails half way. */
  checkpoint(): () => void {
    const families = new Map(
      [...this.families].map(([f, tables]) => [f, new Map([...tables].map(([t, c]) => [t, new Map(c)]))]),
    );
    const created = new Set(this.created);
    const touched = new Map([...this.touched].map(([k, v]) => [k, new Set(v)]));
    return () => {
      this.families.clear();
      for (const [k, v] of families) this.families.set(k, v);
      this.created.clear();
      for (const k of created) this.created.add(k);
      this.touched.clear();
      for (const [k, v] of touched) this.touched.set(k, v);
    };
  }

  /** Whether anything was changed. */
  get isEmpty(): boolean {
    return this.families.size === 0;
  }

  /** The new state: copies of changed tables with ids recomputed where occurrences moved. */
  commit(): Map<Family, FamilyState> {
    const out = new Map(this.base);
    for (const [family, tables] of this.families) {
      const baseFamily = this.base.get(family);
      const newTables = new Map(baseFamily?.tables ?? []);
      for (const [name, chains] of tables) {
        const fixed = new Map<string, ChainState>();
        for (const [chainName, c] of chains) {
          const texts = this.touched.get(`${family}/${name}/${chainName}`);
          fixed.set(chainName, texts ? recomputeIds(family, name, c, texts) : c);
        }
        newTables.set(name, { name, chains: orderChains(name, fixed) });
      }
      out.set(family, { family, tables: newTables });
    }
    return out;
  }
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
      (e as FreshEntry).id = id;
      return e;
    }
    changed = true;
    return { ...e, id };
  });
  return changed ? { ...c, entries } : c;
}
