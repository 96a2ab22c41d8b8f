/**
 * The linter: finds rules that cannot work as written, for every table and
 * chain of each family. Pure and deterministic: findings come sorted by
 * severity, family, table, chain and rule position.
 */
import type { Family } from '../../domain/family.js';
import type { Ruleset } from '../../domain/model.js';
import { chainRefs } from '../compile.js';
import type { Rulesets } from '../simulate.js';
import { isRewriting, scanChain } from './chain-scan.js';
import { type Finding, type LintOptions, SEVERITY_ORDER } from './finding.js';
import { ipsetFindings, jumpFindings, logFindings, recentFindings } from './references.js';
import { establishedFinding, neighbourDiscoveryFinding } from './safety.js';

function allRulesets(rulesets: Rulesets): Ruleset[] {
  if (rulesets instanceof Map) return [...(rulesets as ReadonlyMap<Family, Ruleset>).values()];
  if (Array.isArray(rulesets)) return [...(rulesets as readonly Ruleset[])];
  return [rulesets as Ruleset];
}

function lintRuleset(ruleset: Ruleset, options: LintOptions): Finding[] {
  const out: Finding[] = [];
  const known = options.knownIpsets === undefined ? undefined : new Set(options.knownIpsets);
  for (const table of ruleset.tables) {
    const chains = new Map(table.chains.map((c) => [c.name, c]));
    const rewrites = new Map<string, boolean>();
    const chainRewrites = (name: string): boolean => {
      const seen = rewrites.get(name);
      if (seen !== undefined) return seen;
      rewrites.set(name, false); // a loop cannot add anything
      const c = chains.get(name);
      const r = c === undefined || c.rules.some((rule) => isRewriting(rule, table.name, chainRewrites));
      rewrites.set(name, r);
      return r;
    };
    for (const chain of table.chains) {
      out.push(
        ...scanChain({
          family: ruleset.family,
          table: table.name,
          chain,
          refs: chainRefs(ruleset.family, table.name, chain),
          chainRewrites,
          maxComparisons: options.maxComparisons ?? 2_000_000,
        }),
      );
    }
    out.push(...jumpFindings(ruleset, table), ...logFindings(ruleset, table));
    if (known) out.push(...ipsetFindings(ruleset, table, known));
  }
  const nd = neighbourDiscoveryFinding(ruleset);
  if (nd) out.push(nd);
  const est = establishedFinding(ruleset);
  if (est) out.push(est);
  return out;
}

const position = (f: Finding) => f.rules[0]?.position ?? 0;

/** Lints the rulesets of one or both families. */
export function lint(rulesets: Rulesets, options: LintOptions = {}): Finding[] {
  const all = allRulesets(rulesets);
  const out = [...all.flatMap((r) => lintRuleset(r, options)), ...recentFindings(all)];
  return out.sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      a.family.localeCompare(b.family) ||
      a.table.localeCompare(b.table) ||
      a.chain.localeCompare(b.chain) ||
      position(a) - position(b) ||
      a.code.localeCompare(b.code),
  );
}
