/**
 * Value kinds for the options of typed matches and targets. A kind knows how
 * many command-line arguments an option takes, how to turn them (or a typed
 * JSON value) into the canonical value `iptables-save` would print, and how to
 * print that value back. Every kind validates strictly and names the field.
 */
import { canonicalAddress, canonicalCidr, preview } from '../address.js';
import { invalid } from '../errors.js';
import type { Family } from '../family.js';
import { canonicalPortRange, checkName, checkText, checkUint } from '../validate.js';
import { canonicalRate } from './rates.js';

/** The largest unsigned 32-bit value (marks, masks, kernel counters). */
export const U32_MAX = 0xffffffff;

export interface KindContext {
  readonly family: Family;
  /** Field path for error messages, e.g. `matches[0].dport`. */
  readonly field: string;
}

export interface ValueKind<T> {
  /** Arguments the option takes on the command line. */
  readonly arity: 0 | 1 | 2;
  /** Validates a typed (JSON) value and returns its canonical form. */
  normalize(input: unknown, ctx: KindContext): T;
  /** Reads the option's arguments (already unquoted) into the canonical value. */
  parse(args: readonly string[], ctx: KindContext): T;
  /** Arguments as iptables-save prints them. */
  format(value: T): string[];
  /** Printed with iptables' save-string quoting (comments, prefixes). */
  readonly quoted?: boolean;
}

/**
 * `table[key]` for own keys only: a name table is a plain object, so without
 * this `constructor`, `__proto__` or `toString` would find Object.prototype.
 */
export function lookup<V>(table: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/** A one-argument kind from a normalize function and a printer. */
export function kind<T>(
  normalize: (input: unknown, ctx: KindContext) => T,
  format: (v: T) => string = String,
  quoted = false,
): ValueKind<T> {
  return {
    arity: 1,
    normalize,
    parse: (args, ctx) => normalize(args[0], ctx),
    format: (v) => [format(v)],
    quoted,
  };
}

/** A flag without argument; its value is always `true`. */
export const flag: ValueKind<true> = {
  arity: 0,
  normalize(input, ctx) {
    if (input !== true) throw invalid(ctx.field, `${ctx.field} is a flag: set it to true or leave it out`);
    return true;
  },
  parse: () => true,
  format: () => [],
};

export const uint = (min: number, max: number): ValueKind<number> =>
  kind(
    (input, ctx) => checkUint(input, ctx.field, min, max),
    (v) => String(v),
  );

/** Free text printed with quotes when needed (comment, log prefix). */
export const text = (maxLength: number): ValueKind<string> =>
  kind(
    (input, ctx) => checkText(input, ctx.field, maxLength),
    (v) => v,
    true,
  );

/** A name made of letters, digits, `_ . -`. */
export const name = (maxLength: number): ValueKind<string> =>
  kind(
    (input, ctx) => checkName(input, ctx.field, maxLength),
    (v) => v,
  );

export const portRange: ValueKind<string> = kind(
  (input, ctx) => canonicalPortRange(input, ctx.field),
  (v) => v,
);

/** `22,80,443:445` — up to 15 ports, a range counting as two. */
export const portList: ValueKind<readonly string[]> = {
  arity: 1,
  normalize(input, ctx) {
    const items = typeof input === 'string' ? input.split(',') : input;
    if (!Array.isArray(items) || items.length === 0) {
      throw invalid(ctx.field, `${ctx.field} must be a list of ports or ranges like 22,80,1000:2000`);
    }
    const out = items.map((p: unknown, i) => canonicalPortRange(p, `${ctx.field}[${i}]`));
    const slots = out.reduce((n, p) => n + (p.includes(':') ? 2 : 1), 0);
    if (slots > 15) throw invalid(ctx.field, `${ctx.field} holds at most 15 ports (a range counts as two)`);
    return out;
  },
  parse(args, ctx) {
    return this.normalize(args[0], ctx);
  },
  format: (v) => [v.join(',')],
};

export const address: ValueKind<string> = kind(
  (input, ctx) => {
    if (typeof input !== 'string') throw invalid(ctx.field, `${ctx.field} must be an address`);
    return canonicalAddress(ctx.family, input, ctx.field);
  },
  (v) => v,
);

/** CIDR printed as iptables does in extensions: a host without `/32`. */
export const cidr: ValueKind<string> = kind(
  (input, ctx) => {
    if (typeof input !== 'string') throw invalid(ctx.field, `${ctx.field} must be an address or CIDR`);
    const c = canonicalCidr(ctx.family, input, ctx.field);
    const full = ctx.family === 'ipv4' ? '/32' : '/128';
    return c.endsWith(full) ? c.slice(0, -full.length) : c;
  },
  (v) => v,
);

/** Address range `a-b`. */
export const addressRange: ValueKind<string> = kind(
  (input, ctx) => {
    if (typeof input !== 'string')
      throw invalid(ctx.field, `${ctx.field} must be a range like 192.0.2.1-192.0.2.9`);
    const parts = input.split('-');
    if (parts.length !== 2)
      throw invalid(ctx.field, `${ctx.field} "${preview(input)}" must look like 192.0.2.1-192.0.2.9`);
    return parts.map((p) => canonicalAddress(ctx.family, p, ctx.field)).join('-');
  },
  (v) => v,
);

/** One of a fixed set of words; `aliases` map other spellings to the canonical word. */
export function oneOf<const W extends string>(
  words: readonly W[],
  aliases: Readonly<Record<string, W>> = {},
  caseInsensitive = false,
): ValueKind<W> {
  return kind(
    (input, ctx) => {
      if (typeof input !== 'string')
        throw invalid(ctx.field, `${ctx.field} must be one of ${words.join(', ')}`);
      const key = caseInsensitive ? input.toLowerCase() : input;
      const found =
        words.find((w) => (caseInsensitive ? w.toLowerCase() : w) === key) ?? lookup(aliases, key);
      if (found === undefined) {
        throw invalid(ctx.field, `${ctx.field} "${preview(input)}" must be one of ${words.join(', ')}`);
      }
      return found;
    },
    (v) => v,
  );
}

/**
 * A comma-separated set of words printed in a fixed order (conntrack states,
 * addrtype types). Input may be a list or comma-separated text. Words are
 * upper-cased before matching unless `exactCase` (iptables takes some sets,
 * such as hashlimit modes and CT events, in lower case only).
 */
export function wordSet<const W extends string>(
  order: readonly W[],
  aliases: Readonly<Record<string, W>> = {},
  exactCase = false,
): ValueKind<readonly W[]> {
  return {
    arity: 1,
    normalize(input, ctx) {
      const items = typeof input === 'string' ? input.split(',') : input;
      if (!Array.isArray(items) || items.length === 0) {
        throw invalid(ctx.field, `${ctx.field} must be a list of ${order.join(', ')}`);
      }
      const set = new Set<W>();
      for (const item of items) {
        const word =
          typeof item === 'string'
            ? (order.find((w) => w === (exactCase ? item : item.toUpperCase())) ??
              lookup(aliases, exactCase ? item : item.toUpperCase()))
            : undefined;
        if (word === undefined) {
          throw invalid(
            ctx.field,
            `${ctx.field}: "${preview(String(item))}" is not one of ${order.join(', ')}`,
          );
        }
        set.add(word);
      }
      return order.filter((w) => set.has(w));
    },
    parse(args, ctx) {
      return this.normalize(args[0], ctx);
    },
    format: (v) => [v.join(',')],
  };
}

/** A 32-bit value with optional mask, printed in hex: `0x1`, `0x10/0xff`. */
export const markMask: ValueKind<string> = kind(
  (input, ctx) => {
    const textValue = typeof input === 'number' ? String(input) : input;
    if (typeof textValue !== 'string')
      throw invalid(ctx.field, `${ctx.field} must be a mark like 0x1 or 0x10/0xff`);
    const parts = textValue.split('/');
    if (parts.length > 2)
      throw invalid(ctx.field, `${ctx.field} "${preview(textValue)}" must be value[/mask]`);
    const hex = parts.map((p) => `0x${checkUint(p, ctx.field, 0, 0xffffffff).toString(16)}`);
    return hex.join('/');
  },
  (v) => v,
);

/** A rate such as `5/min`, canonical as iptables prints it (see rates.ts). */
export const rate = (scale: number): ValueKind<string> =>
  kind(
    (input, ctx) => canonicalRate(input, ctx.field, scale),
    (v) => v,
  );

/**
 * The kind of an option whose flag is its value (`--set` / `--update`): it
 * takes no argument; typed input must be one of `values`.
 */
export function choiceKind<const W extends string>(values: readonly W[]): ValueKind<W> {
  return {
    arity: 0,
    normalize(input, ctx) {
      const found = values.find((v) => v === input);
      if (found === undefined) throw invalid(ctx.field, `${ctx.field} must be one of ${values.join(', ')}`);
      return found;
    },
    parse: (_args, ctx) => {
      throw invalid(ctx.field, `${ctx.field} is set by its flag`);
    },
    format: () => [],
  };
}

/** Two arguments kept together, e.g. `--tcp-flags MASK COMP`, `--match-set NAME FLAGS`. */
export function pair<const KA extends string, A, const KB extends string, B>(
  a: KA,
  first: ValueKind<A>,
  b: KB,
  second: ValueKind<B>,
): ValueKind<{ readonly [P in KA]: A } & { readonly [P in KB]: B }> {
  type V = { readonly [P in KA]: A } & { readonly [P in KB]: B };
  const build = (va: A, vb: B) => ({ [a]: va, [b]: vb }) as V;
  return {
    arity: 2,
    normalize(input, ctx) {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw invalid(ctx.field, `${ctx.field} must be an object with ${a} and ${b}`);
      }
      const o = input as Record<string, unknown>;
      const extra = Object.keys(o).find((k) => k !== a && k !== b);
      if (extra !== undefined)
        throw invalid(`${ctx.field}.${extra}`, `${ctx.field} has no field "${preview(extra)}"`);
      return build(
        first.normalize(o[a], { ...ctx, field: `${ctx.field}.${a}` }),
        second.normalize(o[b], { ...ctx, field: `${ctx.field}.${b}` }),
      );
    },
    parse(args, ctx) {
      return build(
        first.parse([args[0] ?? ''], { ...ctx, field: `${ctx.field}.${a}` }),
        second.parse([args[1] ?? ''], { ...ctx, field: `${ctx.field}.${b}` }),
      );
    },
    format(v) {
      return [...first.format(v[a] as A), ...second.format(v[b] as B)];
    },
  };
}
