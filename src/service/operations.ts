/**
 * The operations the service performs, as plain data. Transports decode a
 * request into one of these; transactions are lists of them. Rules arrive as
 * typed JSON or as an iptables spec string and are validated by the service
 * (domain/rule.ts, iptables/rule-parser.ts), so both transports share one
 * grammar and one set of errors.
 */
import type { Family, TableName } from '../domain/family.js';
import type { Policy, Rule } from '../domain/model.js';

/** A rule as a client sends it: typed JSON (see domain/model.ts) or `{ spec: "-p tcp --dport 22 -j ACCEPT" }`. */
export type RuleInput = { readonly spec: string } | Readonly<Record<string, unknown>>;

/** Which rule of a chain: by stable id, by 1-based position, or by its content. */
export type RuleRef = { readonly id: string } | { readonly position: number } | { readonly rule: RuleInput };

export interface ChainAddress {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
}

/**
 * When an added rule goes away by itself: `ttlSeconds` from now, or at `expiresAt` (ISO 8601).
 * The service deletes it then (by spec: a rule changed meanwhile is left alone); expiries
 * survive restarts. An `ensure` that finds the rule already there sets no expiry.
 */
export interface Expiry {
  readonly ttlSeconds?: number;
  readonly expiresAt?: string;
}

export type Operation =
  | ({ readonly op: 'append'; readonly rule: RuleInput } & ChainAddress & Expiry)
  | ({ readonly op: 'insert'; readonly position: number; readonly rule: RuleInput } & ChainAddress & Expiry)
  | ({ readonly op: 'replace'; readonly target: RuleRef; readonly rule: RuleInput } & ChainAddress)
  | ({ readonly op: 'delete'; readonly target: RuleRef } & ChainAddress)
  /** Adds the rule only if an identical rule is not already in the chain (idempotent). Appends unless `position` is given. */
  | ({ readonly op: 'ensure'; readonly rule: RuleInput; readonly position?: number } & ChainAddress & Expiry)
  | ({ readonly op: 'createChain' } & ChainAddress)
  /** Refused while the chain has rules or is referenced, unless `force` (flush it and delete the rules that jump to it). */
  | ({ readonly op: 'deleteChain'; readonly force?: boolean } & ChainAddress)
  | ({ readonly op: 'flushChain' } & ChainAddress)
  | ({ readonly op: 'renameChain'; readonly newName: string } & ChainAddress)
  | ({ readonly op: 'setPolicy'; readonly policy: Policy } & ChainAddress)
  | {
      readonly op: 'zeroCounters';
      readonly family: Family;
      readonly table: TableName;
      readonly chain?: string;
    }
  /** Declarative: make the chain hold exactly these rules (creating it if needed). */
  | ({ readonly op: 'replaceChain'; readonly rules: readonly RuleInput[] } & ChainAddress)
  /** Declarative: make the table hold exactly these chains (policies for built-ins) and rules. */
  | {
      readonly op: 'replaceTable';
      readonly family: Family;
      readonly table: TableName;
      readonly chains: readonly {
        readonly name: string;
        readonly policy?: Policy;
        readonly rules: readonly RuleInput[];
      }[];
    }
  /** Back to the baseline: every chain empty with ACCEPT policies, or the configured baseline ruleset. */
  | { readonly op: 'reset'; readonly family?: Family; readonly table?: TableName };

export type OperationName = Operation['op'];

export interface ApplyOptions {
  /** Fail with `failed_precondition`, changing nothing, unless the ruleset is still at this revision. */
  readonly expectedRevision?: number;
  /** Plan only: return the restore text and the resulting diff without touching the kernel. */
  readonly dryRun?: boolean;
  /** Which door the request came through (for events, logs and the audit log), e.g. `rest`, `grpc`, `socket`. */
  readonly origin?: string;
  /** Who asked: a token name, a certificate subject, `unix:uid=0` (audit log). */
  readonly identity?: string;
  /** The request's id (logs, events, audit log). */
  readonly requestId?: string;
  /**
   * Apply even if the lockout guard finds that the change would cut a protected path (SSH, the
   * API, the caller's own connection). Safer: confirmWithin (the change undoes itself unless confirmed).
   */
  readonly allowLockout?: boolean;
  /** The caller's address and the port it reached us on, when it came over TCP (its own path is protected). */
  readonly caller?: { readonly address: string; readonly port: number };
  /**
   * Commit-confirmed: apply, then roll the change's own diff back after this many seconds
   * unless it is confirmed (pending.ts). A change the lockout guard would refuse is accepted
   * with it (the result says which paths it cuts). Needs a state directory.
   */
  readonly confirmWithin?: number;
  /** Internal: the confirmations and expiries this change settles (a rollback, an expiry). */
  readonly settles?: { readonly confirmations?: readonly string[]; readonly expiries?: readonly string[] };
  readonly signal?: AbortSignal;
}

// ------------------------------------------------------------------ validated

/**
 * Operations after validation at the facade (validate-operations.ts): names checked, rules
 * parsed into canonical models, positions whole numbers. Only what depends on the current
 * ruleset (does the chain exist, is the position past the end) is left to the planner.
 */
export interface ValidChainAddress {
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
}

export type ValidRuleRef =
  | { readonly id: string }
  | { readonly position: number }
  | { readonly rule: Rule; readonly text: string };

export interface ValidChainSpec {
  readonly name: string;
  readonly builtin: boolean;
  readonly policy: Policy | undefined;
  readonly rules: readonly Rule[];
  /**
   * `texts[j]`, when set, is `ruleText(rules[j])`, known without rendering: the rule was found
   * by its text among the model's accepted rules (validate-operations.ts KnownRules).
   */
  readonly texts?: readonly (string | undefined)[];
  /** Field path of this chain in the request, for errors. */
  readonly field: string;
}

/** A validated expiry: the absolute time (ISO 8601). */
export interface ValidExpiry {
  readonly expiresAt?: string;
}

export type ValidOp = (
  | ({ readonly op: 'append'; readonly rule: Rule } & ValidChainAddress & ValidExpiry)
  | ({ readonly op: 'insert'; readonly position: number; readonly rule: Rule } & ValidChainAddress &
      ValidExpiry)
  | ({ readonly op: 'replace'; readonly target: ValidRuleRef; readonly rule: Rule } & ValidChainAddress)
  | ({ readonly op: 'delete'; readonly target: ValidRuleRef } & ValidChainAddress)
  | ({
      readonly op: 'ensure';
      readonly rule: Rule;
      readonly position: number | undefined;
    } & ValidChainAddress &
      ValidExpiry)
  | ({ readonly op: 'createChain' } & ValidChainAddress)
  | ({ readonly op: 'deleteChain'; readonly force: boolean } & ValidChainAddress)
  | ({ readonly op: 'flushChain' } & ValidChainAddress)
  | ({ readonly op: 'renameChain'; readonly newName: string } & ValidChainAddress)
  | ({ readonly op: 'setPolicy'; readonly policy: Policy } & ValidChainAddress)
  | {
      readonly op: 'zeroCounters';
      readonly family: Family;
      readonly table: TableName;
      readonly chain: string | undefined;
    }
  | ({ readonly op: 'replaceChain'; readonly rules: readonly Rule[] } & ValidChainAddress)
  | {
      readonly op: 'replaceTable';
      readonly family: Family;
      readonly table: TableName;
      readonly chains: readonly ValidChainSpec[];
    }
  | { readonly op: 'reset'; readonly family: Family | undefined; readonly table: TableName | undefined }
) & {
  /** Field path of the operation in the request ('' for a single operation). */
  readonly field: string;
};
