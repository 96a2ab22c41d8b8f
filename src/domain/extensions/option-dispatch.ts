/**
 * Which match iptables hands an option to. A rule is written `-m A --x 1 -m B
 * --y 2`, but iptables does not give `--y` to the match written just before
 * it: each extension's options are merged into one getopt table when the
 * extension is first loaded, the newest in front, and an option goes to the
 * first extension in that table that knows its name (a module loaded a second
 * time is a clone and merges nothing; libxtables' xtables_merge_options and
 * xtables_options_xfrm, and command_default in xshared.c). So in
 *
 *     -m mark --mark 1 -m connmark --mark 2 -m mark --mark 3
 *
 * the last `--mark` goes to connmark, not to the second mark match: iptables
 * refuses the line (`connmark: option "--mark" can only be used once`), and a
 * line where the taker accepted it would mean something other than it says.
 * Such a rule is refused here, before anything reaches the kernel, so a dry run
 * and a real apply agree and the model never holds a rule iptables cannot read.
 */
import { invalid } from '../errors.js';
import type { Match } from '../model.js';
import { flagIndex } from './define.js';
import { MATCH_SPECS } from './index.js';

/** Words of a match we do not type that name options (`--flag`). */
function rawFlags(raw: readonly string[]): string[] {
  return raw.filter((w) => w.startsWith('--') && w.length > 2);
}

/** The option names the match prints, in order. */
function printedFlags(m: Match): string[] {
  if ('raw' in m) return rawFlags(m.raw);
  const spec = MATCH_SPECS.get(m.module);
  if (!spec) return [];
  const out: string[] = [];
  const value = m as unknown as Record<string, unknown>;
  for (const [key, option] of Object.entries(spec.options)) {
    const v = value[key];
    if (v === undefined) continue;
    if (option.choices) {
      for (const [flag, cv] of Object.entries(option.choices)) if (cv === v) out.push(flag);
    } else if (option.flags[0] !== undefined) out.push(option.flags[0]);
  }
  return out;
}

/**
 * Every option name a module takes: its typed table, and (for what we do not
 * type) at least the names this rule gives it.
 */
function knownFlags(module: string, matches: readonly Match[]): Set<string> {
  const spec = MATCH_SPECS.get(module);
  const out = new Set<string>(spec ? flagIndex(spec).keys() : []);
  for (const m of matches) if (m.module === module && 'raw' in m) for (const f of rawFlags(m.raw)) out.add(f);
  return out;
}

export interface DispatchConflict {
  /** Position of the match whose option would go elsewhere. */
  readonly at: number;
  readonly flag: string;
  /** Position of the first match of the module that would take it. */
  readonly takenBy: number;
}

/**
 * The first option of `matches` (as written, in order) that iptables would
 * hand to another match than the one it is written after, or undefined.
 */
export function dispatchConflict(matches: readonly Match[]): DispatchConflict | undefined {
  if (matches.length < 2) return undefined;
  // Fast path: an option can only go astray when its module was loaded before
  // (a clone merges nothing) and another module came in between.
  const seen = new Set<string>();
  let repeated = false;
  for (const m of matches) {
    if (seen.has(m.module)) repeated = true;
    seen.add(m.module);
  }
  if (!repeated) return undefined;

  /** Modules in the order they were first loaded, with the position of that first load. */
  const loaded: { module: string; at: number; flags: Set<string> }[] = [];
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i] as Match;
    let mine = loaded.findIndex((l) => l.module === m.module);
    if (mine < 0) {
      loaded.push({ module: m.module, at: i, flags: knownFlags(m.module, matches) });
      mine = loaded.length - 1;
    }
    for (const flag of printedFlags(m)) {
      // The newest module that knows the name takes it.
      for (let j = loaded.length - 1; j > mine; j--) {
        const other = loaded[j] as (typeof loaded)[number];
        if (other.flags.has(flag)) return { at: i, flag, takenBy: other.at };
      }
    }
  }
  return undefined;
}

/** Refuses a rule whose options iptables would hand to another match (see dispatchConflict). */
export function checkOptionDispatch(
  matches: readonly Match[],
  field: string,
  position: (k: number) => number = (k) => k,
): void {
  const c = dispatchConflict(matches);
  if (c === undefined) return;
  const m = matches[c.at] as Match;
  const taker = matches[c.takenBy] as Match;
  const at = position(c.at);
  const takenBy = position(c.takenBy);
  const where = `${field}.matches[${at}]`;
  throw invalid(
    where,
    `${where}: iptables would hand ${c.flag} to the ${taker.module} match at matches[${takenBy}], not to this ${m.module} match (a module's options are taken by the newest module loaded that knows the name); put this ${m.module} match before matches[${takenBy}] or merge it into the first ${m.module} match`,
  );
}
