/**
 * `iptables -S` as iptables 1.8.9 prints it: for the whole table, `-P CHAIN POLICY` for each
 * built-in chain, `-N CHAIN` for each user chain, then `-A CHAIN RULE` for every rule; for one
 * chain (`-S CHAIN`), its `-P` or `-N` line and its rules; for one rule (`-S CHAIN N`), that
 * rule's line. With -v the counters are written as iptables does: ` -c PKTS BYTES` after a
 * policy, and inside a rule right before its target (`-A INPUT -p tcp -c 0 0 -j ACCEPT`).
 *
 * The rule text is the API's canonical text (iptables-save's form), written unchanged.
 */
import type { ListChain, ListRule } from './list-types.js';
import { parseRuleText } from './rule-text.js';

export interface SpecsFormat {
  /** `-v`: counters. */
  readonly verbose: boolean;
  /** `-S CHAIN RULENUM`: only that rule (of the first chain). */
  readonly position?: number;
  /** `-S CHAIN`: one chain, so its `-P`/`-N` line comes first, then its rules. */
  readonly oneChain: boolean;
}

const ZERO = { packets: '0', bytes: '0' };

function declaration(chain: ListChain, verbose: boolean): string {
  if (!chain.builtin) return `-N ${chain.name}\n`;
  const c = chain.counters ?? ZERO;
  return `-P ${chain.name} ${chain.policy ?? 'ACCEPT'}${verbose ? ` -c ${c.packets} ${c.bytes}` : ''}\n`;
}

/** `-A CHAIN RULE`, with ` -c P B` before the target when verbose. */
export function ruleSpecLine(chain: string, rule: ListRule, verbose: boolean): string {
  if (!verbose) return rule.text === '' ? `-A ${chain}\n` : `-A ${chain} ${rule.text}\n`;
  const parsed = parseRuleText(rule.text);
  const written = parsed.words.map((w) => w.written);
  const c = rule.counters ?? ZERO;
  const words = [
    ...written.slice(0, parsed.targetAt),
    '-c',
    c.packets,
    c.bytes,
    ...written.slice(parsed.targetAt),
  ];
  return `-A ${chain} ${words.join(' ')}\n`;
}

/** `iptables -S [CHAIN [RULENUM]]` for these chains. */
export function renderSpecs(chains: readonly ListChain[], o: SpecsFormat): string {
  if (o.position !== undefined) {
    const chain = chains[0];
    const rule = chain?.rules[o.position - 1];
    return chain === undefined || rule === undefined ? '' : ruleSpecLine(chain.name, rule, o.verbose);
  }
  let out = '';
  if (o.oneChain) {
    for (const chain of chains) out += declaration(chain, o.verbose);
  } else {
    for (const chain of chains) if (chain.builtin) out += declaration(chain, o.verbose);
    for (const chain of chains) if (!chain.builtin) out += declaration(chain, o.verbose);
  }
  for (const chain of chains)
    for (const rule of chain.rules) out += ruleSpecLine(chain.name, rule, o.verbose);
  return out;
}
