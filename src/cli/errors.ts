/**
 * How the portcullis command fails: one error type carrying the exit status, so that every
 * failure ends as one line on stderr with the status iptables gives for the same kind of
 * failure, and scripts written for iptables keep working when the command name changes.
 *
 * The statuses are iptables' own (iptables/xshared.h): 1 for a change or read that failed
 * (OTHER_PROBLEM), 2 for a bad command line or a parameter the service refuses
 * (PARAMETER_PROBLEM), 3 for a table that does not exist (VERSION_PROBLEM), 4 when the
 * firewall cannot be reached at all (RESOURCE_PROBLEM: iptables says so when it is not root
 * or the xtables lock is held; portcullis when the service is down or refuses the token).
 *
 * (Recreated after a concurrent session overwrote the first version by mistake; the API is
 * the one api.ts, connection.ts and spec.ts use: `new CliError(exitCode, message, options)`,
 * `usage(message)`, `EXIT`.)
 */

export const EXIT = {
  ok: 0,
  /** The change or read failed (no such chain, rule not found, refused by the service). */
  failed: 1,
  /** Bad command line or parameter. */
  usage: 2,
  /** No such table. */
  table: 3,
  /** The service cannot be reached, or refuses who we are. */
  resource: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure that ends the command: `message` is printed as one line after `portcullis: `. */
export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A bad command line (status 2). */
export function usage(message: string): CliError {
  return new CliError(EXIT.usage, message);
}

/** A change or read that failed (status 1). */
export function failed(message: string): CliError {
  return new CliError(EXIT.failed, message);
}

/** One line: newlines and other control characters of a message become spaces. */
export function oneLine(text: string): string {
  return text
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
}
