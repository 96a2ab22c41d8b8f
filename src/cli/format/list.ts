/**
 * `iptables -L` as iptables 1.8.9 (nf_tables) prints it, from the API's chains: the chain
 * header (`Chain INPUT (policy DROP)`, `(policy DROP 12 packets, 3456 bytes)` with -v,
 * `Chain X (N references)` for user chains), the column header, and one line per rule
 * (iptables/xshared.c print_header, nft-shared.c print_rule_details, print_ifaces,
 * print_ipv4_addresses, then each extension's print function). Chains are separated by one
 * blank line; `-L CHAIN RULENUM` prints only that rule's line.
 *
 * Pure: the caller fetches the chains (with counters for -v) and orders them.
 * test/cli/format-kernel.test.ts compares the output with the kernel's byte for byte.
 */
import { addressColumns, counterColumn, counterWords, interfaceColumns, protocolColumn } from './columns.js';
import type { ListChain, ListFormat, ListRule } from './list-types.js';
import { printMatch } from './match-print.js';
import { systemNames } from './names.js';
import type { PrintContext } from './print-context.js';
import { parseRuleText } from './rule-text.js';
import { colorTarget, PLAIN, type Style } from './style.js';
import { printTarget, targetColumn } from './target-print.js';

export type { ListChain, ListCounters, ListFormat, ListRule } from './list-types.js';

/** The `Chain ...` line. */
function chainHeader(chain: ListChain, o: ListFormat, style: Style): string {
  let head = `${style.bold(`Chain ${chain.name}`)} (`;
  if (chain.builtin) {
    head += `policy ${colorTarget(style, chain.policy ?? 'ACCEPT')}`;
    if (o.verbose) {
      const c = chain.counters ?? { packets: '0', bytes: '0' };
      head += ` ${counterWords(c.packets, o.exact)}packets, ${counterWords(c.bytes, o.exact)}bytes`;
    }
  } else {
    head += `${chain.references} references`;
  }
  return `${head})\n`;
}

/** The column header line. */
function columnHeader(o: ListFormat): string {
  let out = '';
  if (o.lineNumbers) out += `${'num'.padEnd(4)} `;
  if (o.verbose) {
    out += o.exact
      ? `${'pkts'.padStart(8)} ${'bytes'.padStart(10)} `
      : `${'pkts'.padStart(5)} ${'bytes'.padStart(5)} `;
  }
  out += `${'target'.padEnd(9)} `;
  out += ' prot opt';
  if (o.verbose) out += ` ${'in'.padEnd(6)} ${'out'.padEnd(6)} `;
  out += ` ${'source'.padEnd(19)} `;
  out += ` ${'destination'.padEnd(19)} `;
  return `${out}\n`;
}

/** One rule's line. */
export function ruleLine(rule: ListRule, num: number, o: ListFormat, style: Style = PLAIN): string {
  const r = parseRuleText(rule.text);
  let out = '';
  if (o.lineNumbers) out += `${String(num).padEnd(4)} `;
  if (o.verbose) {
    out += counterColumn(rule.counters?.packets ?? '0', o.exact);
    out += counterColumn(rule.counters?.bytes ?? '0', o.exact);
  }
  const target = targetColumn(r.target);
  out += `${colorTarget(style, target)}${' '.repeat(Math.max(0, 9 - target.length))} `;
  out += protocolColumn(r.protocol, o.numeric);
  out += r.fragment ? `${r.fragment.negated ? '!' : '-'}f ` : '-- ';
  if (o.verbose) out += interfaceColumns(r.inInterface, r.outInterface, o.numeric);
  out += addressColumns(r.source, r.destination, o.family === 'ipv6', o.numeric);
  if (r.target?.goto) out += '[goto] ';
  const ctx: PrintContext = {
    numeric: o.numeric,
    family: o.family,
    protocol: r.protocol?.value,
    names: o.names ?? defaultNames(),
  };
  for (const m of r.matches) out += printMatch(m, ctx);
  if (r.target) out += printTarget(r.target, ctx);
  return `${out}\n`;
}

let names: ReturnType<typeof systemNames> | undefined;
function defaultNames() {
  names ??= systemNames();
  return names;
}

/** `iptables -L [CHAIN [RULENUM]]` for these chains. */
export function renderList(chains: readonly ListChain[], o: ListFormat, style: Style = PLAIN): string {
  if (o.position !== undefined) {
    const chain = chains[0];
    const rule = chain?.rules[o.position - 1];
    return rule === undefined ? '' : ruleLine(rule, o.position, o, style);
  }
  const parts = chains.map((chain) => {
    let out = chainHeader(chain, o, style) + columnHeader(o);
    chain.rules.forEach((rule, i) => {
      out += ruleLine(rule, i + 1, o, style);
    });
    return out;
  });
  return parts.join('\n');
}
