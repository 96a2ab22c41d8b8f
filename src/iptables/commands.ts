/**
 * Typed commands: what a change asks iptables to do, as data (verb + object),
 * independent of how iptables-restore spells it. The planner emits them; the
 * restore builder (restore-builder.ts) is the only code that turns them into
 * restore text. Each command validates its own values when it is written, so a
 * bad value can never reach restore text (as knftables' objects write
 * themselves).
 *
 * Deletes by position (`deleteAt`) exist for undoing our own change only:
 * a change never deletes by position, because another process may have
 * shifted the chain a moment before; it deletes by nf_tables handle (not a
 * restore command) or by spec.
 */
import { invalid } from '../domain/errors.js';
import type { Token } from '../domain/extensions/define.js';
import { isTableName, type TableName } from '../domain/family.js';
import type { Policy, Rule } from '../domain/model.js';
import { checkChainName, checkUint } from '../domain/validate.js';
import { checkUserChainName } from './catalogue.js';
import { ruleText, ruleTokens } from './rule-writer.js';
import { renderTokens } from './tokenize.js';

interface InTable {
  readonly table: TableName;
}

export type Command =
  /** `-A CHAIN rule` */
  | (InTable & { readonly op: 'append'; readonly chain: string; readonly rule: Rule })
  /** `-I CHAIN N rule` (1-based) */
  | (InTable & {
      readonly op: 'insert';
      readonly chain: string;
      readonly position: number;
      readonly rule: Rule;
    })
  /** `-R CHAIN N rule` (1-based) */
  | (InTable & {
      readonly op: 'replace';
      readonly chain: string;
      readonly position: number;
      readonly rule: Rule;
    })
  /** `-D CHAIN rule`: deletes the first identical rule. */
  | (InTable & { readonly op: 'delete'; readonly chain: string; readonly rule: Rule })
  /** `-D CHAIN N` (1-based; undo only, see the module comment) */
  | (InTable & { readonly op: 'deleteAt'; readonly chain: string; readonly position: number })
  /** `-N CHAIN` */
  | (InTable & { readonly op: 'createChain'; readonly chain: string })
  /** `-X CHAIN` */
  | (InTable & { readonly op: 'deleteChain'; readonly chain: string })
  /** `-F [CHAIN]` */
  | (InTable & { readonly op: 'flush'; readonly chain?: string })
  /** `-E CHAIN NEW` */
  | (InTable & { readonly op: 'rename'; readonly chain: string; readonly newName: string })
  /** `-P CHAIN POLICY` */
  | (InTable & { readonly op: 'policy'; readonly chain: string; readonly policy: Policy })
  /** `-Z [CHAIN]` */
  | (InTable & { readonly op: 'zero'; readonly chain?: string });

export type CommandOp = Command['op'];

/** Whether the command adds a rule (its handle is learned from the kernel afterwards). */
export function addsRule(c: Command): c is Extract<Command, { op: 'append' | 'insert' | 'replace' }> {
  return c.op === 'append' || c.op === 'insert' || c.op === 'replace';
}

export function checkTable(table: unknown): TableName {
  if (!isTableName(table)) throw invalid('table', 'table must be filter, nat, mangle, raw or security');
  return table;
}

export function checkPolicy(policy: unknown, field: string): Policy {
  if (policy !== 'ACCEPT' && policy !== 'DROP') throw invalid(field, `${field} must be ACCEPT or DROP`);
  return policy;
}

/** A 1-based rule position. */
function position(value: unknown): Token {
  return { text: String(checkUint(value, 'position', 1, 0x7fffffff)) };
}

const t = (text: string): Token => ({ text });

const RULE_VERBS = { append: '-A', insert: '-I', replace: '-R', delete: '-D' } as const;

/**
 * One restore line for a command: commandTokens rendered, with the rule's part taken from its
 * remembered text (rule-writer.ts), so a rule validated and planned is not rendered again.
 */
export function commandLine(c: Command): string {
  if (!addsRule(c) && c.op !== 'delete') return renderTokens(commandTokens(c));
  checkTable(c.table);
  const head: Token[] = [t(RULE_VERBS[c.op]), t(checkChainName(c.chain))];
  if (c.op === 'insert' || c.op === 'replace') head.push(position(c.position));
  const rule = ruleText(c.rule);
  return rule === '' ? renderTokens(head) : `${renderTokens(head)} ${rule}`;
}

/** The tokens of one restore line for a command (its table is the block's). Validates every value. */
export function commandTokens(c: Command): Token[] {
  checkTable(c.table);
  switch (c.op) {
    case 'append':
      return [t('-A'), t(checkChainName(c.chain)), ...ruleTokens(c.rule)];
    case 'insert':
      return [t('-I'), t(checkChainName(c.chain)), position(c.position), ...ruleTokens(c.rule)];
    case 'replace':
      return [t('-R'), t(checkChainName(c.chain)), position(c.position), ...ruleTokens(c.rule)];
    case 'delete':
      return [t('-D'), t(checkChainName(c.chain)), ...ruleTokens(c.rule)];
    case 'deleteAt':
      return [t('-D'), t(checkChainName(c.chain)), position(c.position)];
    case 'createChain':
      return [t('-N'), t(checkUserChainName(c.chain))];
    case 'deleteChain':
      return [t('-X'), t(checkUserChainName(c.chain))];
    case 'flush':
      return c.chain === undefined ? [t('-F')] : [t('-F'), t(checkChainName(c.chain))];
    case 'rename':
      return [t('-E'), t(checkUserChainName(c.chain)), t(checkUserChainName(c.newName, 'newName'))];
    case 'policy':
      return [t('-P'), t(checkChainName(c.chain)), t(checkPolicy(c.policy, 'policy'))];
    case 'zero':
      return c.chain === undefined ? [t('-Z')] : [t('-Z'), t(checkChainName(c.chain))];
  }
}
