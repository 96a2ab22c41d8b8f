/**
 * The machinery behind typed matches and targets. An extension (iptables
 * calls matches and targets "extensions") is declared once as a table of
 * options in the order `iptables-save` prints them; from that one table come
 * its TypeScript type, validation of typed input, parsing of command-line
 * arguments, and the canonical printed form. Defaults that iptables adds or
 * leaves out are declared next to the option, so a rule we write and the
 * rule the kernel prints back compare equal.
 */
import { preview } from '../address.js';
import { DomainError, invalid } from '../errors.js';
import type { Family } from '../family.js';
import { choiceKind, type KindContext, type ValueKind } from './kinds.js';

export interface OptionSpec<T> {
  /** Flags that set this option; the first is the one iptables-save prints. */
  readonly flags: readonly string[];
  readonly kind: ValueKind<T>;
  /** `! --flag` is allowed. */
  readonly negatable?: boolean;
  /**
   * For options whose flag *is* the value (`--set`/`--update`, `--rsource`/`--rdest`):
   * flag -> value. The kind is then a zero-argument one.
   */
  readonly choices?: Readonly<Record<string, T>>;
  /** iptables leaves the option out when it has this value. */
  readonly omitWhen?: T;
  /** iptables adds the option with this value when it is absent. */
  readonly fill?: (family: Family) => T;
  /** Extra flags that set this option to a fixed value (`--syn`, `--set-mark`); maps flag -> transform of args. */
  readonly shorthands?: Readonly<
    Record<string, { arity: 0 | 1; toValue: (args: readonly string[], ctx: KindContext) => T }>
  >;
}

// biome-ignore lint/suspicious/noExplicitAny: the option table is heterogeneous by design
export type OptionTable = Readonly<Record<string, OptionSpec<any>>>;

type ValueOf<S> = S extends OptionSpec<infer T> ? T : never;
type NegatableKeys<O extends OptionTable> = {
  [K in keyof O]: O[K]['negatable'] extends true ? K : never;
}[keyof O] &
  string;

/** The typed value of an extension with option table `O`. */
export type ExtensionValues<O extends OptionTable> = { readonly [K in keyof O]?: ValueOf<O[K]> } & {
  /** Options that are negated (`! --flag`). */
  readonly invert?: readonly NegatableKeys<O>[];
};

export interface ExtensionSpec<N extends string, O extends OptionTable> {
  readonly name: N;
  /** One-line description used in documentation and errors. */
  readonly summary: string;
  readonly options: O;
  /** Families it exists for; default both. */
  readonly families?: readonly Family[];
  /** Protocol `-p` it needs (tcp, udp, icmp, ...); implies it may be loaded implicitly. */
  readonly protocol?: string;
  /**
   * Final canonicalization beyond per-option defaults (mutates the draft, and
   * `inverted` where iptables prints a negation differently).
   */
  readonly finish?: (
    draft: Record<string, unknown>,
    family: Family,
    field: string,
    inverted: Set<string>,
  ) => void;
}

/** An option whose flag is its value: `choice({ '--set': 'set', '--update': 'update' })`. */
export function choice<const W extends string>(
  choices: Readonly<Record<string, W>>,
  extra: Omit<OptionSpec<W>, 'flags' | 'kind' | 'choices'> = {},
): OptionSpec<W> {
  return { flags: [], kind: choiceKind(Object.values(choices)), choices, ...extra };
}

export function defineExtension<const N extends string, const O extends OptionTable>(
  spec: ExtensionSpec<N, O>,
): ExtensionSpec<N, O> {
  return spec;
}

export type AnyExtension = ExtensionSpec<string, OptionTable>;

/** One option occurrence as read from the command line. */
export interface ParsedOption {
  readonly flag: string;
  readonly negated: boolean;
  readonly args: readonly string[];
}

interface FlagEntry {
  readonly key: string;
  readonly option: OptionSpec<unknown>;
  readonly arity: number;
  readonly toValue: (args: readonly string[], ctx: KindContext) => unknown;
}

const flagIndexes = new WeakMap<AnyExtension, Map<string, FlagEntry>>();

/** flag -> how to read it, for one extension. */
export function flagIndex(spec: AnyExtension): Map<string, FlagEntry> {
  let index = flagIndexes.get(spec);
  if (index) return index;
  index = new Map();
  for (const [key, option] of Object.entries(spec.options)) {
    if (option.choices) {
      for (const [flag, value] of Object.entries(option.choices)) {
        index.set(flag, { key, option, arity: 0, toValue: () => value });
      }
    } else {
      for (const flag of option.flags) {
        index.set(flag, {
          key,
          option,
          arity: option.kind.arity,
          toValue: (args, ctx) => option.kind.parse(args, ctx),
        });
      }
    }
    for (const [flag, sh] of Object.entries(option.shorthands ?? {})) {
      index.set(flag, { key, option, arity: sh.arity, toValue: sh.toValue });
    }
  }
  flagIndexes.set(spec, index);
  return index;
}

function sameValue(a: unknown, b: unknown): boolean {
  // Most values are strings, and JSON.stringify is one-to-one on strings.
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** An extension's option table, listed once (every rule read or written walks it). */
interface Shape {
  readonly entries: readonly (readonly [string, OptionSpec<unknown>])[];
  readonly keys: readonly string[];
  readonly fills: readonly (readonly [string, (family: Family) => unknown])[];
  readonly omits: readonly (readonly [string, unknown])[];
}

const shapes = new WeakMap<AnyExtension, Shape>();

function shapeOf(spec: AnyExtension): Shape {
  let shape = shapes.get(spec);
  if (shape) return shape;
  const entries = Object.entries(spec.options) as [string, OptionSpec<unknown>][];
  shape = {
    entries,
    keys: entries.map(([key]) => key),
    fills: entries.flatMap(([key, o]) => (o.fill ? [[key, o.fill] as const] : [])),
    omits: entries.flatMap(([key, o]) => (o.omitWhen !== undefined ? [[key, o.omitWhen] as const] : [])),
  };
  shapes.set(spec, shape);
  return shape;
}

/** Orders keys as the spec does, applies fill/omit and the finish hook, freezes. */
function complete(
  spec: AnyExtension,
  draft: Record<string, unknown>,
  inverted: Set<string>,
  family: Family,
  field: string,
  discriminantKey: string,
): Record<string, unknown> {
  const shape = shapeOf(spec);
  for (const [key, fill] of shape.fills) {
    if (draft[key] === undefined) draft[key] = fill(family);
  }
  spec.finish?.(draft, family, field, inverted);
  for (const [key, omitWhen] of shape.omits) {
    if (draft[key] !== undefined && !inverted.has(key) && sameValue(draft[key], omitWhen)) {
      delete draft[key];
    }
  }
  // Built key by key from an empty object, not by spreading one: V8 gives every object made
  // by a spread and then grown a hidden class of its own (about 150 bytes of Map and
  // descriptors each: 150 MB for the 1M matches and targets of a 500k-rule model), while
  // objects grown from `{}` share theirs.
  const out: Record<string, unknown> = {};
  out[discriminantKey] = spec.name;
  const invert: string[] = [];
  for (const key of shape.keys) {
    if (draft[key] === undefined) continue;
    out[key] = Object.freeze(draft[key]);
    if (inverted.has(key)) invert.push(key);
  }
  for (const key of inverted) {
    if (draft[key] === undefined)
      throw invalid(`${field}.invert`, `${field}.invert names "${key}", which is not set`);
  }
  if (invert.length) out.invert = Object.freeze(invert);
  return Object.freeze(out);
}

function checkFamily(spec: AnyExtension, family: Family, field: string): void {
  if (spec.families && !spec.families.includes(family)) {
    throw invalid(field, `${field}: ${spec.name} exists only for ${spec.families.join(' and ')}`);
  }
}

/**
 * Validates typed input (e.g. JSON `{ "module": "tcp", "dport": 22 }`) against
 * the spec and returns the canonical value. Unknown fields are refused.
 */
export function normalizeExtension(
  spec: AnyExtension,
  input: Readonly<Record<string, unknown>>,
  family: Family,
  field: string,
  discriminantKey: string,
): Record<string, unknown> {
  checkFamily(spec, family, field);
  const draft: Record<string, unknown> = {};
  const inverted = new Set<string>();
  for (const [key, value] of Object.entries(input)) {
    if (key === discriminantKey || value === undefined) continue;
    if (key === 'invert') {
      if (!Array.isArray(value))
        throw invalid(`${field}.invert`, `${field}.invert must be a list of option names`);
      for (const k of value) {
        const option = typeof k === 'string' && Object.hasOwn(spec.options, k) ? spec.options[k] : undefined;
        if (!option?.negatable) {
          throw invalid(
            `${field}.invert`,
            `${field}.invert: "${preview(String(k))}" is not a negatable option of ${spec.name}`,
          );
        }
        inverted.add(k);
      }
      continue;
    }
    // Own keys only: `constructor` or `__proto__` in JSON must not reach Object.prototype.
    const option = Object.hasOwn(spec.options, key) ? spec.options[key] : undefined;
    if (!option) {
      const known = Object.keys(spec.options).join(', ') || 'none';
      throw invalid(`${field}.${key}`, `${spec.name} has no option "${preview(key)}" (options: ${known})`);
    }
    const ctx = { family, field: `${field}.${key}` };
    if (option.choices) {
      const values = Object.values(option.choices) as unknown[];
      if (!values.some((v) => sameValue(v, value))) {
        throw invalid(ctx.field, `${ctx.field} must be one of ${values.map(String).join(', ')}`);
      }
      draft[key] = value;
    } else {
      draft[key] = option.kind.normalize(value, ctx);
    }
  }
  return complete(spec, draft, inverted, family, field, discriminantKey);
}

/** Builds the canonical value from options read off a command line. */
export function parseExtension(
  spec: AnyExtension,
  options: readonly ParsedOption[],
  family: Family,
  field: string,
  discriminantKey: string,
): Record<string, unknown> {
  checkFamily(spec, family, field);
  const index = flagIndex(spec);
  const draft: Record<string, unknown> = {};
  const inverted = new Set<string>();
  for (const opt of options) {
    const entry = index.get(opt.flag);
    if (!entry) throw invalid(field, `${spec.name} has no option ${preview(opt.flag)}`);
    const ctx = { family, field: `${field}.${entry.key}` };
    if (draft[entry.key] !== undefined && !entry.option.choices) {
      throw invalid(ctx.field, `${spec.name}: option ${opt.flag} given twice`);
    }
    if (opt.negated) {
      if (!entry.option.negatable)
        throw invalid(ctx.field, `${spec.name}: ${opt.flag} cannot be negated with !`);
      inverted.add(entry.key);
    }
    draft[entry.key] = entry.toValue(opt.args, ctx);
  }
  return complete(spec, draft, inverted, family, field, discriminantKey);
}

/**
 * A printed token: `quoted` ones are string values that take iptables' save-string
 * quoting; `written` ones are words already in their written form (quotes included),
 * printed as they are (the words of untyped extensions).
 */
export interface Token {
  readonly text: string;
  readonly quoted?: boolean;
  readonly written?: boolean;
}

/** The option tokens (without `-m NAME` / `-j NAME`) of a canonical value. */
export function formatExtension(spec: AnyExtension, value: Readonly<Record<string, unknown>>): Token[] {
  const out: Token[] = [];
  const invert = (value.invert as readonly string[] | undefined) ?? [];
  for (const [key, option] of shapeOf(spec).entries) {
    const v = value[key];
    if (v === undefined) continue;
    if (invert.includes(key)) out.push({ text: '!' });
    if (option.choices) {
      const flag = Object.entries(option.choices).find(([, cv]) => sameValue(cv, v))?.[0];
      if (flag === undefined)
        throw new DomainError('internal', `${spec.name}.${key}: no flag for ${String(v)}`);
      out.push({ text: flag });
      continue;
    }
    out.push({ text: option.flags[0] ?? '' });
    for (const arg of option.kind.format(v))
      out.push(option.kind.quoted ? { text: arg, quoted: true } : { text: arg });
  }
  return out;
}
