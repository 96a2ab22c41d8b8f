/**
 * A change of the ruleset (an event of `watch`, a planned change of `diff`) as one line in
 * iptables' own syntax: the command that makes that change (`-I INPUT 3 -p tcp ... -j ACCEPT`,
 * `-D INPUT -j DROP`, `-N LOG_AND_DROP`, `-P INPUT DROP`, ...), preceded by `-6` for ipv6 and
 * `-t TABLE` outside filter, so an operator reads changes in the words they type. An added
 * rule is shown with `-I` and its position (where it landed); a deleted one with `-D` and its
 * text (what it was). Changes that are not commands (a re-read of the kernel, a divergence
 * found by verify, rules in the other iptables backend) are a `#` comment line.
 */
import type { components } from '../../gen/openapi.js';
import { PLAIN, type Style } from './style.js';

export type Change = components['schemas']['Change'];

function scope(change: Change): string {
  const family = change.family === 'ipv6' ? '-6 ' : '';
  const table = change.table !== undefined && change.table !== 'filter' ? `-t ${change.table} ` : '';
  return family + table;
}

const withText = (head: string, text: string | undefined) =>
  text === undefined || text === '' ? head : `${head} ${text}`;

/** The change as one line (no newline). */
export function renderChange(change: Change, style: Style = PLAIN): string {
  const chain = change.chain ?? '';
  const s = scope(change);
  const kind: string = change.type;
  switch (change.type) {
    case 'rule.added': {
      const head = change.position === undefined ? `-A ${chain}` : `-I ${chain} ${change.position}`;
      return s + style.green(withText(head, change.text));
    }
    case 'rule.deleted':
      return s + style.red(withText(`-D ${chain}`, change.text));
    case 'chain.created':
      return s + style.green(`-N ${chain}`);
    case 'chain.deleted':
      return s + style.red(`-X ${chain}`);
    case 'chain.flushed':
      return s + style.red(`-F ${chain}`);
    case 'chain.renamed':
      return s + style.yellow(`-E ${chain} ${change.newName ?? ''}`);
    case 'policy.set':
      return s + style.yellow(`-P ${chain} ${change.policy ?? ''}`);
    case 'counters.zeroed':
      return s + style.yellow(chain === '' ? '-Z' : `-Z ${chain}`);
    case 'ruleset.reloaded':
      return style.cyan(`# ${change.family}: ruleset re-read from the kernel${detail(change)}`);
    case 'ruleset.diverged':
      return style.red(
        `# ${change.family}: the kernel differs from the model${where(change)}${detail(change)}; it was re-read`,
      );
    case 'backend.mixed':
      return style.yellow(`# ${change.family}: the other iptables backend has rules${detail(change)}`);
    default:
      return `# ${kind}`;
  }
}

function where(change: Change): string {
  const parts = [change.table, change.chain].filter((p): p is string => p !== undefined && p !== '');
  return parts.length === 0 ? '' : ` in ${parts.join(' ')}`;
}

function detail(change: Change): string {
  return change.detail === undefined || change.detail === '' ? '' : ` (${change.detail})`;
}
