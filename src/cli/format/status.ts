/**
 * The service's status (`GET /v1/status`) and a model-versus-kernel comparison
 * (`GET /v1/verify`) for a person: aligned `label  value` lines, problems in colour.
 */
import type { components } from '../../gen/openapi.js';
import { PLAIN, type Style } from './style.js';

type Schemas = components['schemas'];
export type Status = Schemas['Status'];
export type VerifyResult = Schemas['VerifyResult'];
type VerifyDifference = Schemas['VerifyDifference'];

function table(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}\n`).join('');
}

export function renderStatus(status: Status, style: Style = PLAIN): string {
  const rows: [string, string][] = [
    ['ready', status.ready ? style.green('yes') : style.red('no')],
    ['revision', String(status.revision)],
    ['families', status.families.join(', ')],
  ];
  if (status.backend)
    rows.push(['backend', `${status.backend.backend} (iptables ${status.backend.version})`]);
  rows.push(['external changes', status.watch === 'none' ? 'not watched' : `seen by ${status.watch}`]);
  if (status.feedLost !== undefined) rows.push(['change feed lost', style.yellow(status.feedLost)]);
  if (status.unreadable !== undefined) rows.push(['unreadable rules', style.red(status.unreadable)]);
  if (status.lastExternalChange !== undefined) rows.push(['last external change', status.lastExternalChange]);
  rows.push(['queue depth', String(status.queueDepth)]);
  rows.push(['batches', String(status.batches)]);
  if (status.lastVerify) {
    const v = status.lastVerify;
    rows.push([
      'last verify',
      `${v.time} ${v.consistent ? style.green('consistent') : style.red(`${v.differences} differences`)}`,
    ]);
  }
  if (status.otherBackend) {
    const o = status.otherBackend;
    const tables = o.tables
      .map(
        (t) =>
          `${t.family} ${t.table}: ${t.rules} rules${t.dropPolicies.length ? `, DROP ${t.dropPolicies.join(',')}` : ''}`,
      )
      .join('; ');
    const text = `${o.backend}${o.filtering ? ', filtering' : ''}${tables === '' ? '' : ` (${tables})`}`;
    rows.push(['other backend', o.filtering ? style.yellow(text) : text]);
  }
  return table(rows);
}

function differenceLine(d: VerifyDifference): string {
  const where = `${d.family} ${d.table} ${d.chain}`;
  switch (d.kind) {
    case 'chain-only-in-model':
      return `${where}: chain only in the model`;
    case 'chain-only-in-kernel':
      return `${where}: chain only in the kernel`;
    case 'policy':
      return `${where}: policy ${d.modelPolicy ?? '?'} in the model, ${d.kernelPolicy ?? '?'} in the kernel`;
    case 'order':
      return `${where}: same rules in another order`;
    default: {
      const parts: string[] = [];
      for (const t of d.onlyInKernel ?? []) parts.push(`only in the kernel: ${t}`);
      for (const t of d.onlyInModel ?? []) parts.push(`only in the model: ${t}`);
      return `${where}: ${parts.length ? parts.join('; ') : 'rules differ'}`;
    }
  }
}

export function renderVerify(result: VerifyResult, style: Style = PLAIN): string {
  const ms = `${Math.round(result.durationMs)} ms`;
  if (result.consistent) {
    return `${style.green('consistent')}: the kernel holds what the model says (revision ${result.revision}, ${ms})\n`;
  }
  const n = result.differences.length;
  const lines = [
    `${style.red('diverged')}: ${n} difference${n === 1 ? '' : 's'} between the kernel and the model (revision ${result.revision}, ${ms}); the model was re-read`,
    ...result.differences.map((d) => `  ${differenceLine(d)}`),
  ];
  return `${lines.join('\n')}\n`;
}
