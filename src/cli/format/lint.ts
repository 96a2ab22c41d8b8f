/**
 * Lint findings (`GET /v1/lint`) for a person: one block per finding, errors first as the
 * service sends them: a header line (severity, code, where), the rules involved as
 * `iptables -L --line-numbers` would name them, the explanation and the suggested fix.
 */
import type { components } from '../../gen/openapi.js';
import { PLAIN, type Style } from './style.js';

type Schemas = components['schemas'];
export type LintResult = Schemas['LintResult'];
type Finding = Schemas['Finding'];

function severity(style: Style, s: Finding['severity']): string {
  const padded = s.padEnd(7);
  return s === 'error' ? style.red(padded) : s === 'warning' ? style.yellow(padded) : style.dim(padded);
}

/** One finding as lines (no trailing newline). */
export function findingLines(f: Finding, style: Style = PLAIN): string[] {
  const scope = [f.family, f.table, f.chain].filter((p) => p !== '').join(' ');
  const lines = [`${severity(style, f.severity)} ${style.bold(f.code)}  ${scope}`];
  for (const r of f.rules) lines.push(`        ${r.table} ${r.chain} #${r.position}: ${r.ruleText}`);
  lines.push(`        ${f.message}`);
  lines.push(`        ${style.dim('fix:')} ${f.suggestion}`);
  return lines;
}

/** Every finding, or one line saying there is none. */
export function renderLint(result: LintResult, style: Style = PLAIN): string {
  if (result.findings.length === 0) return `no findings (revision ${result.revision})\n`;
  const blocks = result.findings.map((f) => findingLines(f, style).join('\n'));
  const counts = new Map<string, number>();
  for (const f of result.findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  const summary = [...counts].map(([s, n]) => `${n} ${s}${n === 1 ? '' : 's'}`).join(', ');
  return `${blocks.join('\n')}\n${summary} (revision ${result.revision})\n`;
}
