/**
 * A rule's canonical text (what the API returns as `text`: exactly what iptables-save prints
 * after `-A CHAIN`) taken apart for display: the rule-level fields, each match with its
 * options, and the target with its options — the pieces `iptables -L` prints in its columns
 * and through each extension's print function.
 *
 * Display only. The service owns the meaning of a rule (its spec parser is the one parser);
 * this reads the save form, where iptables-save writes each extension's options right after
 * its `-m NAME` / `-j NAME`, so an option belongs to the extension before it. How many words
 * an option takes comes from the typed extensions' option tables (the ones the server's parser
 * uses); an option of an extension Portcullis does not type takes the words up to the next
 * word that starts with `-` or is `!`.
 *
 * The words keep their written form too (`written`), so `-S -v` can put `-c PKTS BYTES` into
 * the line without changing a byte of the rest.
 */
import { type AnyExtension, flagIndex } from '../../domain/extensions/define.js';
import { MATCH_SPECS, TARGET_SPECS } from '../../domain/extensions/index.js';
import { splitSpecWords, type Word } from '../../iptables/tokenize.js';

/** One option of an extension: `! --dport 22` is `{flag: '--dport', args: ['22'], negated: true}`. */
export interface Opt {
  readonly flag: string;
  readonly args: readonly string[];
  readonly negated: boolean;
}

export interface Extension {
  readonly name: string;
  readonly options: readonly Opt[];
}

/** A rule-level field (`-s`, `-p`, ...) with its negation. */
export interface Field {
  readonly value: string;
  readonly negated: boolean;
}

export interface RuleText {
  readonly protocol?: Field;
  readonly source?: Field;
  readonly destination?: Field;
  readonly inInterface?: Field;
  readonly outInterface?: Field;
  /** `-f` (true) or `! -f` (negated). */
  readonly fragment?: { readonly negated: boolean };
  readonly matches: readonly Extension[];
  /** `-j NAME ...` or `-g CHAIN`. */
  readonly target?: Extension & { readonly goto: boolean };
  /** The written words, and the index of the first word of the target (`-j`/`-g`), or their count. */
  readonly words: readonly Word[];
  readonly targetAt: number;
}

const FIELDS: Readonly<
  Record<string, 'protocol' | 'source' | 'destination' | 'inInterface' | 'outInterface'>
> = {
  '-p': 'protocol',
  '--protocol': 'protocol',
  '-s': 'source',
  '--source': 'source',
  '--src': 'source',
  '-d': 'destination',
  '--destination': 'destination',
  '--dst': 'destination',
  '-i': 'inInterface',
  '--in-interface': 'inInterface',
  '-o': 'outInterface',
  '--out-interface': 'outInterface',
};

const NO_WORD: Word = { value: '', written: '', quoted: false };

function isOptionWord(w: Word | undefined): boolean {
  return w !== undefined && !w.quoted && (w.value === '!' || (w.value.startsWith('-') && w.value.length > 1));
}

interface Building {
  name: string;
  spec: AnyExtension | undefined;
  options: Opt[];
}

/** Takes a rule's canonical text apart. Never throws on text the kernel printed; odd words become options. */
export function parseRuleText(text: string): RuleText {
  const words = splitSpecWords(text, 'text');
  const fields: Record<string, Field> = {};
  let fragment: { negated: boolean } | undefined;
  const matches: Building[] = [];
  let target: (Building & { goto: boolean }) | undefined;
  let targetAt = words.length;
  let current: Building | undefined;
  const at = (i: number): Word => words[i] ?? NO_WORD;
  for (let i = 0; i < words.length; i++) {
    let negated = false;
    let w = at(i);
    if (w.value === '!' && !w.quoted && i + 1 < words.length) {
      negated = true;
      w = at(++i);
    }
    const flag = w.value;
    const field = Object.hasOwn(FIELDS, flag) ? FIELDS[flag] : undefined;
    if (field !== undefined) {
      fields[field] = { value: words[i + 1]?.value ?? '', negated };
      i++;
      current = undefined;
      continue;
    }
    if (flag === '-f' || flag === '--fragment') {
      fragment = { negated };
      current = undefined;
      continue;
    }
    if (flag === '-m' || flag === '--match') {
      const name = words[++i]?.value ?? '';
      current = { name, spec: MATCH_SPECS.get(name), options: [] };
      matches.push(current);
      continue;
    }
    if (flag === '-j' || flag === '--jump' || flag === '-g' || flag === '--goto') {
      targetAt = negated ? i - 1 : i;
      const name = words[++i]?.value ?? '';
      const goto = flag === '-g' || flag === '--goto';
      target = { name, spec: goto ? undefined : TARGET_SPECS.get(name), options: [], goto };
      current = target;
      continue;
    }
    // An option of the current extension.
    const arity = current?.spec ? flagIndex(current.spec).get(flag)?.arity : undefined;
    const args: string[] = [];
    if (arity !== undefined) {
      for (let k = 0; k < arity && i + 1 < words.length; k++) args.push(at(++i).value);
    } else {
      while (i + 1 < words.length && !isOptionWord(words[i + 1])) args.push(at(++i).value);
    }
    const opt: Opt = { flag, args, negated };
    if (current) current.options.push(opt);
    else {
      // An option before any -m (cannot come from iptables-save); keep it visible.
      current = { name: '', spec: undefined, options: [opt] };
      matches.push(current);
    }
  }
  const freeze = (b: Building): Extension => ({ name: b.name, options: b.options });
  return {
    ...(fields.protocol ? { protocol: fields.protocol } : {}),
    ...(fields.source ? { source: fields.source } : {}),
    ...(fields.destination ? { destination: fields.destination } : {}),
    ...(fields.inInterface ? { inInterface: fields.inInterface } : {}),
    ...(fields.outInterface ? { outInterface: fields.outInterface } : {}),
    ...(fragment ? { fragment } : {}),
    matches: matches.map(freeze),
    ...(target ? { target: { ...freeze(target), goto: target.goto } } : {}),
    words,
    targetAt,
  };
}

/** The first option of `ext` with one of `flags`. */
export function opt(ext: Extension, ...flags: string[]): Opt | undefined {
  return ext.options.find((o) => flags.includes(o.flag));
}

/** The first argument of the first option of `ext` with one of `flags`. */
export function arg(ext: Extension, ...flags: string[]): string | undefined {
  return opt(ext, ...flags)?.args[0];
}
