/**
 * Colour for humans, never for scripts: ANSI colours only when the output is a terminal,
 * never when NO_COLOR is set to anything non-empty (no-color.org) or TERM is `dumb`, unless
 * the user forces it either way (`--color=always|never`). Renderers take a Style and apply it
 * to words *after* padding them, so columns line up the same with and without colour, and
 * with colour off a renderer's output is byte for byte the plain text (what the kernel
 * comparison tests check).
 */

export interface Style {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const identity = (text: string) => text;

/** No colour at all. */
export const PLAIN: Style = {
  enabled: false,
  bold: identity,
  dim: identity,
  red: identity,
  green: identity,
  yellow: identity,
  cyan: identity,
};

const sgr = (open: number, close: number) => (text: string) =>
  text === '' ? text : `\x1b[${open}m${text}\x1b[${close}m`;

/** ANSI colours. */
export const COLOR: Style = {
  enabled: true,
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

export type ColorMode = 'auto' | 'always' | 'never';

/** The style for an output stream: colour on a terminal without NO_COLOR, or as forced. */
export function styleFor(
  output: { readonly isTTY: boolean },
  env: Readonly<Record<string, string | undefined>>,
  mode: ColorMode = 'auto',
): Style {
  if (mode === 'always') return COLOR;
  if (mode === 'never') return PLAIN;
  if (!output.isTTY) return PLAIN;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return PLAIN;
  if (env.TERM === 'dumb') return PLAIN;
  return COLOR;
}

/** A verdict or target name coloured by what it does to a packet. */
export function colorTarget(style: Style, name: string): string {
  switch (name) {
    case 'ACCEPT':
      return style.green(name);
    case 'DROP':
    case 'REJECT':
      return style.red(name);
    case 'LOG':
    case 'NFLOG':
      return style.yellow(name);
    case '':
      return name;
    default:
      return /^[A-Z]+$/.test(name) ? name : style.cyan(name);
  }
}
