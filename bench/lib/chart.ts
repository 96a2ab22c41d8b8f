/**
 * A small SVG line chart for benchmark results (no dependency): x on a symmetric-log scale
 * (so 0, 10k and 500k rules all get room), one panel per measure with its own y axis, the
 * value printed at each point. Pure: numbers in, SVG text out.
 */

export interface Series {
  readonly title: string;
  readonly unit: string;
  /** y per x (same length as the chart's xs); NaN or undefined leaves the point out. */
  readonly values: readonly (number | undefined)[];
  /** A target line, drawn dashed. */
  readonly target?: { readonly at: number; readonly label: string };
  /** A second line drawn in grey for comparison (e.g. the bare iptables figure). */
  readonly reference?: { readonly label: string; readonly values: readonly (number | undefined)[] };
}

export interface ChartOptions {
  readonly title: string;
  readonly subtitle?: string;
  /** The x values (rules in the kernel). */
  readonly xs: readonly number[];
  readonly xLabel: string;
  readonly panels: readonly Series[];
  /** Panels per row. @default 2 */
  readonly columns?: number;
}

const W = 420;
const H = 250;
const PAD = { left: 64, right: 18, top: 38, bottom: 46 };

const xml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 12345 -> "12k", 500000 -> "500k", 0.5 -> "0.5". */
export function short(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}

/** A "nice" upper bound and step for an axis from 0 to max. */
function niceAxis(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

function panel(s: Series, o: ChartOptions, ox: number, oy: number): string {
  const sx = (x: number) => Math.log10(1 + x / 1000);
  const xMax = sx(Math.max(...o.xs));
  const px = (x: number) => ox + PAD.left + (sx(x) / (xMax || 1)) * (W - PAD.left - PAD.right);
  const finite = (vs: readonly (number | undefined)[]) =>
    vs.filter((v): v is number => v !== undefined && Number.isFinite(v));
  const all = [...finite(s.values), ...finite(s.reference?.values ?? []), ...(s.target ? [s.target.at] : [])];
  const { top, step } = niceAxis(Math.max(...all, 0) * 1.08);
  const py = (y: number) => oy + H - PAD.bottom - (y / top) * (H - PAD.top - PAD.bottom);
  const out: string[] = [];
  out.push(`<text x="${ox + PAD.left}" y="${oy + 22}" class="t">${xml(s.title)} (${xml(s.unit)})</text>`);
  for (let y = 0; y <= top + step / 2; y += step) {
    out.push(
      `<line x1="${ox + PAD.left}" x2="${ox + W - PAD.right}" y1="${py(y)}" y2="${py(y)}" class="g"/>`,
      `<text x="${ox + PAD.left - 6}" y="${py(y) + 4}" class="ya">${short(y)}</text>`,
    );
  }
  for (const x of o.xs) {
    out.push(`<text x="${px(x)}" y="${oy + H - PAD.bottom + 16}" class="xa">${short(x)}</text>`);
  }
  out.push(
    `<text x="${ox + PAD.left + (W - PAD.left - PAD.right) / 2}" y="${oy + H - 10}" class="xa">${xml(o.xLabel)}</text>`,
  );
  const line = (vs: readonly (number | undefined)[], cls: string, labels: boolean) => {
    const pts = o.xs
      .map((x, i) => [x, vs[i]] as const)
      .filter((p): p is readonly [number, number] => p[1] !== undefined && Number.isFinite(p[1]));
    if (pts.length === 0) return;
    out.push(`<polyline class="${cls}" points="${pts.map(([x, y]) => `${px(x)},${py(y)}`).join(' ')}"/>`);
    for (const [x, y] of pts) {
      out.push(`<circle class="${cls}" cx="${px(x)}" cy="${py(y)}" r="3"/>`);
      if (labels) out.push(`<text x="${px(x)}" y="${py(y) - 7}" class="v">${short(y)}</text>`);
    }
  };
  if (s.reference) line(s.reference.values, 'ref', false);
  line(s.values, 'val', true);
  let legendY = oy + 22;
  const legend = (cls: string, label: string) => {
    out.push(
      `<line x1="${ox + W - PAD.right - 150}" x2="${ox + W - PAD.right - 132}" y1="${legendY - 4}" y2="${legendY - 4}" class="${cls}"/>`,
      `<text x="${ox + W - PAD.right - 128}" y="${legendY}" class="l">${xml(label)}</text>`,
    );
    legendY += 13;
  };
  if (s.target) {
    out.push(
      `<line x1="${ox + PAD.left}" x2="${ox + W - PAD.right}" y1="${py(s.target.at)}" y2="${py(s.target.at)}" class="tg"/>`,
    );
    legend('tg', s.target.label);
  }
  if (s.reference) legend('ref', s.reference.label);
  return out.join('\n');
}

/** The chart as a standalone SVG document. */
export function lineChart(o: ChartOptions): string {
  const cols = o.columns ?? 2;
  const rows = Math.ceil(o.panels.length / cols);
  const top = o.subtitle ? 56 : 40;
  const width = cols * W;
  const height = top + rows * H;
  const body = o.panels.map((s, i) => panel(s, o, (i % cols) * W, top + Math.floor(i / cols) * H));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<title>${xml(o.title)}</title>
<style>
.t{font-size:13px;font-weight:bold;fill:#222}.h{font-size:16px;font-weight:bold;fill:#111}.s{font-size:11px;fill:#555}
.ya{font-size:10px;fill:#666;text-anchor:end}.xa{font-size:10px;fill:#666;text-anchor:middle}
.v{font-size:10px;fill:#1f4e99;text-anchor:middle}.l{font-size:10px;fill:#444}
.g{stroke:#e6e6e6;stroke-width:1}polyline{fill:none;stroke-width:2}
polyline.val{stroke:#1f4e99}circle.val{fill:#1f4e99}polyline.ref{stroke:#aaa}circle.ref{fill:#aaa}line.ref{stroke:#aaa;stroke-width:2}
.tg{stroke:#c0392b;stroke-width:1.5;stroke-dasharray:5 4}
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="24" class="h">${xml(o.title)}</text>
${o.subtitle ? `<text x="12" y="42" class="s">${xml(o.subtitle)}</text>` : ''}
${body.join('\n')}
</svg>
`;
}
