/**
 * Reads a rule from its command-line form: the options after `-A CHAIN` in
 * iptables-save output, or what an operator types
 * (`-p tcp --dport 22 -m state --state NEW -j ACCEPT`).
 *
 * Options are owned the way iptables' getopt loop owns them: by the match
 * that was loaded last and knows the flag, else an earlier match, else the
 * target, else the protocol's match loaded implicitly (`-p tcp --dport 22`
 * loads `-m tcp` there). In `save` mode a typed match or target whose
 * options we cannot read is kept as raw tokens instead, so nothing the
 * kernel prints is lost; in `spec` mode it is an error naming the option.
 */
import { preview } from '../domain/address.js';
import { DomainError, invalid } from '../domain/errors.js';
import {
  type AnyExtension,
  flagIndex,
  type ParsedOption,
  parseExtension,
} from '../domain/extensions/define.js';
import { MATCH_SPECS, protocolMatch, TARGET_SPECS } from '../domain/extensions/index.js';
import type { Family } from '../domain/family.js';
import type { Match, Rule, RuleField, Target } from '../domain/model.js';
import { buildRule, canonicalRuleField } from '../domain/rule.js';
import { checkChainName } from '../domain/validate.js';
import { RESERVED_CHAIN_NAMES } from './catalogue.js';
import { checkRuleLine } from './rule-check.js';
import { checkWord, splitSpecWords, type Word, writeValue } from './tokenize.js';

export interface ParseRuleOptions {
  /** `spec`: operator input, strict. `save`: kernel output, unknown options kept raw. */
  readonly mode: 'spec' | 'save';
  /** Field path for errors. */
  readonly field?: string;
  /** In save mode, tells a jump to a user chain from an untyped target without options. */
  readonly isChain?: (name: string) => boolean;
}

const RULE_OPTIONS: Readonly<Record<string, RuleField>> = {
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
  '-f': 'fragment',
  '--fragment': 'fragment',
};
const MATCH_FLAGS = new Set(['-m', '--match']);
const JUMP_FLAGS = new Set(['-j', '--jump']);
const GOTO_FLAGS = new Set(['-g', '--goto']);
/** Commands and table selection: they do not belong in a rule spec. */
const COMMANDS: Readonly<Record<string, string>> = {
  '-A': 'append',
  '--append': 'append',
  '-I': 'insert',
  '--insert': 'insert',
  '-D': 'delete',
  '--delete': 'delete',
  '-R': 'replace',
  '--replace': 'replace',
  '-F': 'flush',
  '--flush': 'flush',
  '-X': 'delete-chain',
  '--delete-chain': 'delete-chain',
  '-N': 'new-chain',
  '--new-chain': 'new-chain',
  '-P': 'policy',
  '--policy': 'policy',
  '-E': 'rename-chain',
  '--rename-chain': 'rename-chain',
  '-Z': 'zero',
  '--zero': 'zero',
  '-L': 'list',
  '--list': 'list',
  '-S': 'list-rules',
  '--list-rules': 'list-rules',
  '-C': 'check',
  '--check': 'check',
  '-t': 'table',
  '--table': 'table',
  '-c': 'set-counters',
  '--set-counters': 'set-counters',
  '-w': 'wait',
  '--wait': 'wait',
  '-n': 'numeric',
  '--line-numbers': 'line-numbers',
  '-v': 'verbose',
  '-h': 'help',
  '--help': 'help',
  '-4': 'ipv4',
  '-6': 'ipv6',
  '--ipv4': 'ipv4',
  '--ipv6': 'ipv6',
  '--modprobe': 'modprobe',
};

function isBoundary(token: string | undefined): boolean {
  return (
    token !== undefined &&
    (Object.hasOwn(RULE_OPTIONS, token) ||
      MATCH_FLAGS.has(token) ||
      JUMP_FLAGS.has(token) ||
      GOTO_FLAGS.has(token))
  );
}

interface PendingExt {
  readonly name: string;
  readonly spec: AnyExtension | undefined;
  readonly options: ParsedOption[];
  /** Words after the name, as written (for the raw form). */
  readonly tokens: string[];
  readonly field: string;
  /** Save mode: it carries an option we cannot read, so it is kept raw. */
  unreadable?: boolean;
}

/** Words of plain argument values (as `iptables -A` receives them in argv). */
export function argvWords(args: readonly string[]): Word[] {
  return args.map((value) => ({ value, written: writeValue(value), quoted: false }));
}

export function parseRuleArgs(words: readonly Word[], family: Family, options: ParseRuleOptions): Rule {
  const field = options.field ?? 'rule';
  const tokens = words.map((w) => w.value);
  const fields: Partial<Record<RuleField, string | true>> = {};
  const seen = new Set<RuleField>();
  const inverted = new Set<RuleField>();
  const matches: PendingExt[] = [];
  /** Matches and the target in the order they were loaded (for option ownership). */
  const loaded: PendingExt[] = [];
  let target: PendingExt | undefined;
  let targetKind: 'jump' | 'goto' | undefined;
  let current: PendingExt | undefined;

  // iptables-save prints values verbatim when they need no quotes (a comment
  // `-j` reads back as `--comment -j`), so in save mode, and for free text in
  // any mode, a value is simply the next word; in spec mode a missing value of
  // any other option is reported, not swallowed.
  const takeArgs = (i: number, n: number, flagText: string, freeText = false): string[] => {
    const args = tokens.slice(i + 1, i + 1 + n);
    if (
      args.length < n ||
      (options.mode === 'spec' &&
        !freeText &&
        args.some(
          (a) => a === '!' || (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a) && isBoundary(a)),
        ))
    ) {
      const bang = options.mode === 'spec' && args.includes('!');
      throw invalid(
        field,
        `${flagText} needs ${n === 1 ? 'a value' : `${n} values`}${bang ? ` (to negate it, put ! before the option: ! ${flagText} ...)` : ''}`,
      );
    }
    return args;
  };

  for (let i = 0; i < tokens.length; i++) {
    let token = tokens[i] as string;
    let negated = false;
    if (token === '!') {
      negated = true;
      token = tokens[++i] ?? '';
      if (token === '' || token === '!')
        throw invalid(field, '"!" must be followed by the option it negates');
    }
    // Own keys only: a token such as `constructor` or `toString` is no command.
    const command = Object.hasOwn(COMMANDS, token) ? COMMANDS[token] : undefined;
    if (command !== undefined) {
      throw invalid(
        field,
        `${token} (${command}) is a command or global option, not part of a rule spec; give only the rule's match and target options`,
      );
    }
    const ruleField = Object.hasOwn(RULE_OPTIONS, token) ? RULE_OPTIONS[token] : undefined;
    if (ruleField !== undefined) {
      if (seen.has(ruleField)) throw invalid(`${field}.${ruleField}`, `${token} given twice`);
      seen.add(ruleField);
      const value = ruleField === 'fragment' ? true : takeArgs(i, 1, token)[0];
      if (ruleField !== 'fragment') i++;
      const v = canonicalRuleField(ruleField, value, family, `${field}.${ruleField}`);
      if (v !== undefined) fields[ruleField] = v;
      if (negated) inverted.add(ruleField);
      current = undefined;
      continue;
    }
    if (MATCH_FLAGS.has(token) || JUMP_FLAGS.has(token) || GOTO_FLAGS.has(token)) {
      if (negated) throw invalid(field, `${token} cannot be negated with !`);
      const name = takeArgs(i, 1, token)[0] as string;
      i++;
      if (MATCH_FLAGS.has(token)) {
        if (!/^[A-Za-z0-9_.-]{1,28}$/.test(name))
          throw invalid(field, `"${preview(name)}" is not a valid match name`);
        if (matches.length >= 32) throw invalid(field, 'a rule holds at most 32 matches');
        current = {
          name,
          spec: MATCH_SPECS.get(name),
          options: [],
          tokens: [],
          field: `${field}.matches[${matches.length}]`,
        };
        matches.push(current);
        loaded.push(current);
      } else {
        if (target) throw invalid(`${field}.target`, 'a rule has at most one target (-j or -g)');
        targetKind = GOTO_FLAGS.has(token) ? 'goto' : 'jump';
        checkChainName(name, `${field}.target`);
        current = {
          name,
          spec: targetKind === 'jump' ? TARGET_SPECS.get(name) : undefined,
          options: [],
          tokens: [],
          field: `${field}.target`,
        };
        target = current;
        loaded.push(current);
      }
      continue;
    }
    // iptables-save prints an extension's options right after its name, so in
    // save mode an option the current typed extension does not know makes that
    // extension raw (a newer iptables may print options we have not typed).
    if (options.mode === 'save' && current?.spec && !flagIndex(current.spec).has(token)) {
      current.unreadable = true;
      if (negated) current.tokens.push('!');
      current.tokens.push((words[i] as Word).written);
      continue;
    }
    // An extension option: find its owner.
    const owner = findOwner(token, current, loaded, fields.protocol as string | undefined, options.mode);
    if (owner === 'implicit') {
      const spec = protocolMatch(fields.protocol as string | undefined) as AnyExtension;
      current = {
        name: spec.name,
        spec,
        options: [],
        tokens: [],
        field: `${field}.matches[${matches.length}]`,
      };
      matches.push(current);
      loaded.push(current);
    } else if (owner === undefined) {
      if (current && !current.spec) {
        // Untyped extension: keep every word up to the next rule-level option as written.
        if (negated) current.tokens.push('!');
        current.tokens.push((words[i] as Word).written);
        continue;
      }
      const where = current ? `${current.name}` : 'the rule';
      const dash = /^[\u2012-\u2015\u2212]/.test(token)
        ? ` (it starts with a typographic dash, as text pasted from a web page often does; write --${token.slice(1)})`
        : token.includes("'")
          ? ` (single quotes do not group words in iptables syntax: write "two words" in double quotes)`
          : '';
      throw invalid(current?.field ?? field, `unknown option ${preview(token)} for ${where}${dash}`);
    } else {
      current = owner;
    }
    const entry = flagIndex(current.spec as AnyExtension).get(token);
    const arity = entry?.arity ?? 0;
    const args = arity ? takeArgs(i, arity, token, entry?.option.kind.quoted === true) : [];
    if (negated) current.tokens.push('!');
    current.tokens.push(...words.slice(i, i + 1 + arity).map((w) => w.written));
    current.options.push({ flag: token, negated, args });
    i += arity;
  }

  const builtMatches = matches.map((m) => buildMatch(m, family, options.mode));
  const builtTarget = target ? buildTarget(target, targetKind ?? 'jump', family, options) : undefined;
  return buildRule(fields, inverted, builtMatches, builtTarget, field, options.mode === 'save');
}

/**
 * Who owns an extension option. In spec mode, exactly as iptables' getopt loop:
 * the option goes to the extension *first loaded* most recently among those that
 * define it (a second `-m connmark` does not re-register `--mark`, so after
 * `-m connmark ... -m mark ...` every `--mark` is mark's), and to that extension's
 * latest instance. In save mode iptables-save prints each extension's options
 * right after its name, so the current extension owns what it knows.
 */
function findOwner(
  flag: string,
  current: PendingExt | undefined,
  loaded: readonly PendingExt[],
  protocol: string | undefined,
  mode: 'spec' | 'save',
): PendingExt | 'implicit' | undefined {
  const knows = (p: PendingExt | undefined) => p?.spec !== undefined && flagIndex(p.spec).has(flag);
  if (current && !current.spec) return undefined; // raw extension swallows its tokens
  if (mode === 'save' && knows(current)) return current;
  let owner: string | undefined;
  const seen = new Set<string>();
  for (const p of loaded) {
    if (seen.has(p.name)) continue;
    seen.add(p.name);
    if (knows(p)) owner = p.name;
  }
  if (owner !== undefined) {
    for (let j = loaded.length - 1; j >= 0; j--) if (loaded[j]?.name === owner) return loaded[j];
  }
  const matches = loaded;
  const implicit = protocolMatch(protocol);
  if (implicit && flagIndex(implicit).has(flag) && !matches.some((m) => m.name === implicit.name))
    return 'implicit';
  return undefined;
}

function buildMatch(m: PendingExt, family: Family, mode: 'spec' | 'save'): Match {
  if (m.spec && !m.unreadable) {
    try {
      return parseExtension(m.spec, m.options, family, m.field, 'module') as Match;
    } catch (e) {
      if (mode === 'spec' || !(e instanceof DomainError)) throw e;
    }
  }
  return Object.freeze({
    module: m.name,
    raw: Object.freeze(m.tokens.map((t, i) => checkWord(t, `${m.field}.raw[${i}]`))),
  });
}

function buildTarget(
  t: PendingExt,
  kind: 'jump' | 'goto',
  family: Family,
  options: ParseRuleOptions,
): Target {
  if (kind === 'goto') {
    if (TARGET_SPECS.has(t.name) || RESERVED_CHAIN_NAMES.has(t.name))
      throw invalid(t.field, `-g must name a user chain, not ${t.name}`);
    if (t.tokens.length) throw invalid(t.field, `-g ${t.name} takes no options`);
    return Object.freeze({ goto: t.name });
  }
  if (t.spec && !t.unreadable) {
    try {
      return parseExtension(t.spec, t.options, family, t.field, 'target') as Target;
    } catch (e) {
      if (options.mode === 'spec' || !(e instanceof DomainError)) throw e;
    }
  } else if (
    t.tokens.length === 0 &&
    !RESERVED_CHAIN_NAMES.has(t.name) &&
    (options.isChain === undefined || options.isChain(t.name))
  ) {
    // A target name no chain may take (MASQUERADE, ...) stays a target even without options.
    return Object.freeze({ jump: t.name });
  }
  return Object.freeze({
    target: t.name,
    raw: Object.freeze(t.tokens.map((x, i) => checkWord(x, `${t.field}.raw[${i}]`))),
  });
}

/**
 * Parses what an operator types: `-p tcp --dport 22 -j ACCEPT`, quoted as an
 * iptables-restore line is (tokenize.ts); commands such as `-A` or `-F` are refused.
 * A rule iptables could not read back as the same rule is refused (checkRuleLine).
 */
export function parseRuleSpec(text: string, family: Family, field = 'spec'): Rule {
  // An empty spec is `iptables -A CHAIN` alone: a rule that matches everything and only counts.
  const words = splitSpecWords(text, field);
  const rule = parseRuleArgs(words, family, { mode: 'spec', field });
  checkRuleLine(rule, family, field);
  return rule;
}
