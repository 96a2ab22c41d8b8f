/**
 * Findings about what rules refer to: chains they jump to, `recent` lists
 * they read, ipsets they test, and LOG rules whose packets nothing decides.
 */
import type { Family, TableName } from '../../domain/family.js';
import type { Chain, Ruleset, Table } from '../../domain/model.js';
import { isGoto, isJump, isRawMatch, isRawTarget } from '../../domain/model.js';
import { TARGET_EXTENSIONS } from '../../iptables/catalogue.js';
import { chainRefs } from '../compile.js';
import type { RuleRef } from '../result.js';
import type { Finding } from './finding.js';

function refOf(family: Family, table: Table, chain: Chain, i: number): RuleRef {
  return chainRefs(family, table.name, chain)[i] as RuleRef;
}

/** Jumps and gotos to chains that do not exist or hold no rules. */
export function jumpFindings(ruleset: Ruleset, table: Table): Finding[] {
  const out: Finding[] = [];
  const chains = new Map(table.chains.map((c) => [c.name, c]));
  const family = ruleset.family;
  for (const chain of table.chains) {
    chain.rules.forEach((rule, i) => {
      const t = rule.target;
      if (!t) return;
      let name: string | undefined;
      let verb = 'jumps';
      if (isJump(t)) name = t.jump;
      else if (isGoto(t)) {
        name = t.goto;
        verb = 'goes';
      } else if (isRawTarget(t) && t.raw.length === 0 && !TARGET_EXTENSIONS[family].includes(t.target)) {
        name = t.target;
      } else return;
      const ref = refOf(family, table, chain, i);
      const base = { family, table: table.name, chain: chain.name, rules: [ref] };
      const target = chains.get(name);
      if (!target) {
        out.push({
          ...base,
          code: 'jump-to-missing-chain',
          severity: 'error',
          message: `Rule ${ref.position} of ${chain.name} ${verb} to ${name}, which is neither a chain of the ${table.name} table nor a known target.`,
          suggestion: `Create the chain (-N ${name}) or fix the target name.`,
        });
      } else if (target.rules.length === 0 && target.policy === undefined) {
        out.push({
          ...base,
          code: 'jump-to-empty-chain',
          severity: 'warning',
          message:
            verb === 'jumps'
              ? `Rule ${ref.position} of ${chain.name} jumps to ${name}, which has no rules, so the jump does nothing.`
              : `Rule ${ref.position} of ${chain.name} goes to ${name}, which has no rules, so matching packets skip the rest of ${chain.name}.`,
          suggestion: `Add rules to ${name}, or delete rule ${ref.position}.`,
        });
      }
    });
  }
  return out;
}

interface Located {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  readonly ref: RuleRef;
}

/** `recent --rcheck/--update/--remove` of a list no rule ever `--set`s (lists are shared by both families). */
export function recentFindings(rulesets: readonly Ruleset[]): Finding[] {
  const set = new Set<string>();
  const readers: (Located & { name: string; action: string })[] = [];
  for (const rs of rulesets) {
    for (const table of rs.tables) {
      for (const chain of table.chains) {
        chain.rules.forEach((rule, i) => {
          for (const m of rule.matches) {
            if (isRawMatch(m) || m.module !== 'recent') continue;
            const name = m.name ?? 'DEFAULT';
            if (m.action === 'set') set.add(name);
            else {
              const ref = refOf(rs.family, table, chain, i);
              readers.push({
                family: rs.family,
                table: table.name,
                chain: chain.name,
                ref,
                name,
                action: m.action ?? '',
              });
            }
          }
        });
      }
    }
  }
  return readers
    .filter((r) => !set.has(r.name))
    .map((r) => ({
      family: r.family,
      table: r.table,
      chain: r.chain,
      rules: [r.ref],
      code: 'recent-list-never-set' as const,
      severity: 'warning' as const,
      message: `Rule ${r.ref.position} of ${r.chain} uses --${r.action} on recent list "${r.name}", but no rule adds addresses to it with --set.`,
      suggestion: `Add a rule with -m recent --set --name ${r.name} before it, or fix the list name.`,
    }));
}

/** `-m set --match-set NAME` of a set not in `known`. */
export function ipsetFindings(ruleset: Ruleset, table: Table, known: ReadonlySet<string>): Finding[] {
  const out: Finding[] = [];
  for (const chain of table.chains) {
    chain.rules.forEach((rule, i) => {
      for (const m of rule.matches) {
        if (isRawMatch(m) || m.module !== 'set' || m.matchSet === undefined || known.has(m.matchSet.name))
          continue;
        const ref = refOf(ruleset.family, table, chain, i);
        out.push({
          family: ruleset.family,
          table: table.name,
          chain: chain.name,
          rules: [ref],
          code: 'unknown-ipset',
          severity: 'error',
          message: `Rule ${ref.position} of ${chain.name} tests ipset "${m.matchSet.name}", which does not exist (the kernel refuses such a rule).`,
          suggestion: `Create the set (ipset create ${m.matchSet.name} ...) before loading the rule, or fix its name.`,
        });
      }
    });
  }
  return out;
}

const isLog = (name: string | undefined) => name === 'LOG' || name === 'NFLOG';
const targetName = (t: Chain['rules'][number]['target']): string | undefined =>
  t && !isJump(t) && !isGoto(t) ? t.target : undefined;
const logPrefix = (t: Chain['rules'][number]['target']): string => {
  if (!t || isJump(t) || isGoto(t)) return '';
  const v = (t as { prefix?: unknown }).prefix;
  return typeof v === 'string' ? v : isRawTarget(t) ? t.raw.join(' ') : '';
};
/** The rule without its target, as text, to compare conditions. */
const conditions = (r: Chain['rules'][number]) =>
  JSON.stringify({ ...r, target: undefined, counters: undefined });

/**
 * LOG/NFLOG that is not followed by a verdict for the same packets where one looks intended:
 * the last rule of a user chain (packets return to the caller), a LOG followed by RETURN with
 * the same conditions, or a LOG whose prefix speaks of dropping at the end of an ACCEPT chain.
 */
export function logFindings(ruleset: Ruleset, table: Table): Finding[] {
  const out: Finding[] = [];
  for (const chain of table.chains) {
    const rules = chain.rules;
    rules.forEach((rule, i) => {
      if (!isLog(targetName(rule.target))) return;
      const next = rules[i + 1];
      const ref = refOf(ruleset.family, table, chain, i);
      const base = {
        family: ruleset.family,
        table: table.name,
        chain: chain.name,
        code: 'log-without-verdict' as const,
        severity: 'warning' as const,
      };
      if (!next && chain.policy === undefined) {
        out.push({
          ...base,
          rules: [ref],
          message: `Rule ${ref.position} logs as the last rule of user chain ${chain.name}, so logged packets return to the calling chain and are not dropped here.`,
          suggestion: `Add a verdict after it (-A ${chain.name} -j DROP, or REJECT), or move the LOG next to the rule that decides.`,
        });
      } else if (next && targetName(next.target) === 'RETURN' && conditions(next) === conditions(rule)) {
        out.push({
          ...base,
          rules: [ref, refOf(ruleset.family, table, chain, i + 1)],
          message: `Rule ${ref.position} logs packets that rule ${ref.position + 1} then returns to the calling chain without a verdict.`,
          suggestion: `Replace rule ${ref.position + 1}'s RETURN with DROP or REJECT if the log means "denied".`,
        });
      } else if (
        !next &&
        chain.policy === 'ACCEPT' &&
        /drop|deny|denied|reject|block/i.test(logPrefix(rule.target))
      ) {
        out.push({
          ...base,
          rules: [ref],
          message: `Rule ${ref.position} logs "${logPrefix(rule.target)}" as the last rule of ${chain.name}, whose policy is ACCEPT, so the logged packets are accepted.`,
          suggestion: `Add -A ${chain.name} -j DROP after it, or set the policy to DROP.`,
        });
      }
    });
  }
  return out;
}
