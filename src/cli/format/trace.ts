/**
 * What `POST /v1/trace` found, for a person: the verdict first (or every verdict still
 * possible, and which rules made it uncertain), then for each way the packet can go the path
 * it takes: every rule visited with whether it matched, policies and notes, the way
 * `iptables -L --line-numbers` names rules (table, chain, number, text). When the other
 * iptables backend has tables, its answer follows, since the kernel applies both.
 */
import type { components } from '../../gen/openapi.js';
import { colorTarget, PLAIN, type Style } from './style.js';

type Schemas = components['schemas'];
export type TraceReport = Schemas['TraceReport'];
type TraceResult = Schemas['TraceResult'];
type TraceStep = Schemas['TraceStep'];
type TraceOutcome = Schemas['TraceOutcome'];

function verdicts(style: Style, list: readonly string[]): string {
  return list.map((v) => colorTarget(style, v)).join(' or ');
}

function where(step: { table?: string; chain?: string; position?: number }): string {
  const parts = [step.table, step.chain, step.position === undefined ? undefined : `#${step.position}`];
  return parts.filter((p) => p !== undefined && p !== '').join(' ');
}

const MATCHED: Readonly<Record<string, string>> = { yes: 'match', no: 'no', maybe: 'maybe' };

/** One step of a path, as one line (indented by the caller). */
export function stepLine(step: TraceStep, style: Style = PLAIN): string {
  switch (step.kind) {
    case 'policy':
      return `${where(step)} policy ${colorTarget(style, step.policy ?? '?')}`;
    case 'note':
      return style.dim(`${step.table}: ${step.text ?? ''}`);
    default: {
      let matched = MATCHED[step.matched ?? ''] ?? step.matched ?? '';
      if (step.matched === 'maybe' && step.assumed !== undefined) matched = `maybe, assumed ${step.assumed}`;
      const shown =
        step.matched === 'yes'
          ? style.bold(matched)
          : step.matched === 'no'
            ? style.dim(matched)
            : style.yellow(matched);
      let line = `${where(step)} ${shown}: ${step.ruleText ?? ''}`.trimEnd();
      if (step.note !== undefined && step.note !== '') line += ` (${step.note})`;

      return line;
    }
  }
}

function outcomeLines(outcome: TraceOutcome, style: Style): string[] {
  const lines = outcome.path.map((s) => `    ${stepLine(s, style)}`);
  if (outcome.rejectWith !== undefined) lines.push(`    reject-with ${outcome.rejectWith}`);
  for (const n of outcome.nat) lines.push(`    nat: ${n.description} (${n.table} ${n.chain} #${n.position})`);
  if (outcome.mark !== '' && outcome.mark !== '0x0') lines.push(`    mark ${outcome.mark}`);
  return lines;
}

function resultLines(result: TraceResult, style: Style): string[] {
  const lines: string[] = [];
  const head = `${result.family} ${result.hook}`;
  if (result.definite && result.verdict !== undefined) {
    lines.push(`${head}: ${colorTarget(style, result.verdict)}`);
  } else {
    lines.push(`${head}: ${verdicts(style, result.possibleVerdicts)} (not certain)`);
    for (const u of result.uncertain) {
      lines.push(`  undecided: ${where(u)}: ${u.ruleText}${style.dim(` [${u.reasons.join('; ')}]`)}`);
    }
  }
  result.outcomes.forEach((outcome, i) => {
    const label = result.outcomes.length === 1 ? 'path' : `path ${i + 1} of ${result.outcomes.length}`;
    lines.push(`  ${label}: ${colorTarget(style, outcome.verdict)}`);
    lines.push(...outcomeLines(outcome, style));
  });
  if (result.truncated)
    lines.push(style.yellow('  (exploration stopped at its bound: other verdicts may exist)'));
  return lines;
}

/** The whole report, one line per item, ending with a newline. */
export function renderTrace(report: TraceReport, style: Style = PLAIN): string {
  const lines: string[] = [];
  const what = report.proposed ? 'after the proposed change' : `at revision ${report.revision}`;
  if (report.definite && report.verdict !== undefined) {
    lines.push(`${style.bold('verdict')}: ${colorTarget(style, report.verdict)} (${what})`);
  } else {
    lines.push(
      `${style.bold('verdict')}: ${verdicts(style, report.possibleVerdicts)}, not certain (${what})`,
    );
  }
  lines.push(...resultLines(report.managed, style));
  if (report.other !== undefined) {
    lines.push(`other backend (${report.other.backend}), which the kernel also applies:`);
    lines.push(...resultLines(report.other.result, style).map((l) => `  ${l}`));
  }
  return `${lines.join('\n')}\n`;
}
