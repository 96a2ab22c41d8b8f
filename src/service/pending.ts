/**
 * What the service owes the future, kept in the state directory: changes
 * waiting for confirmation (commit-confirmed) and rules waiting to expire.
 *
 * Records are written only once the change they belong to is whole: the
 * batch runner puts them in the change journal's `after` (a change with such
 * records is always journaled, with marker chains in its commits), and settles
 * them here after the last commit, before it replies; a crash in between is
 * settled at the next start when recovery finds the change whole, and dropped
 * when it finds it undone. So an acknowledged change always has its record,
 * and a record never outlives a change that did not happen.
 *
 * Two files (confirmations.json, expiries.json), each rewritten atomically
 * (store/durable.ts) when it changes.
 */
import { join } from 'node:path';
import { DomainError } from '../domain/errors.js';
import type { Family, TableName } from '../domain/family.js';
import type { Command } from '../iptables/commands.js';
import { ruleText } from '../iptables/rule-writer.js';
import { readFileIfExists, writeFileAtomic } from '../store/durable.js';
import type { Lockout } from './guard.js';
import type { Operation } from './operations.js';
import type { PlannedCommand } from './plan-types.js';

/** A change applied with confirmWithin, waiting for a confirmation. */
export interface ConfirmationRecord {
  readonly id: string;
  readonly createdAt: string;
  /** When it is rolled back unless confirmed (ISO time). */
  readonly deadline: string;
  readonly origin?: string;
  readonly identity?: string;
  readonly requestId?: string;
  /** The operations of the change, by kind (for listing). */
  readonly operations: readonly string[];
  /** What undoes the change's own diff (its commands' undo, newest first), as operations. */
  readonly undo: readonly Operation[];
  /** Protected paths the change cut (it was accepted because it can roll itself back). */
  readonly lockouts: readonly Lockout[];
}

/** A rule that is deleted when it expires. */
export interface ExpiryRecord {
  readonly key: string;
  readonly family: Family;
  readonly table: TableName;
  readonly chain: string;
  /** The rule's canonical text (it is removed by spec, so a rule changed meanwhile is left alone). */
  readonly text: string;
  readonly expiresAt: string;
}

/** What a change records once whole (the change journal's `after`). */
export interface AfterCommit {
  readonly confirmations?: readonly ConfirmationRecord[];
  readonly expiries?: readonly ExpiryRecord[];
  /** Confirmations this change settles (a rollback that ran). */
  readonly resolves?: readonly string[];
  /** Expiries this change settles (the removal of an expired rule). */
  readonly expired?: readonly string[];
}

export function isEmptyAfter(a: AfterCommit): boolean {
  return !a.confirmations?.length && !a.expiries?.length && !a.resolves?.length && !a.expired?.length;
}

/** A change's undo as operations: each command's undo, newest command first. */
export function undoOperations(commands: readonly PlannedCommand[]): Operation[] {
  const out: Operation[] = [];
  for (let i = commands.length - 1; i >= 0; i--) {
    const c = commands[i];
    if (!c) continue;
    for (const u of c.undo) {
      const op = operationOf(c.family, u, c.command);
      if (op) out.push(op);
    }
  }
  return out;
}

function operationOf(family: Family, c: Command, of: Command): Operation | undefined {
  const at = { family, table: c.table };
  switch (c.op) {
    case 'append':
      return { op: 'append', ...at, chain: c.chain, rule: { spec: ruleText(c.rule) } };
    case 'insert':
      return { op: 'insert', ...at, chain: c.chain, position: c.position, rule: { spec: ruleText(c.rule) } };
    case 'replace':
      return {
        op: 'replace',
        ...at,
        chain: c.chain,
        target: { position: c.position },
        rule: { spec: ruleText(c.rule) },
      };
    case 'delete':
      return { op: 'delete', ...at, chain: c.chain, target: { rule: { spec: ruleText(c.rule) } } };
    case 'deleteAt':
      // The undo of an add among identical copies: any copy has the same effect, and a position
      // may point at another rule by the time a rollback runs.
      return 'rule' in of
        ? { op: 'delete', ...at, chain: c.chain, target: { rule: { spec: ruleText(of.rule) } } }
        : { op: 'delete', ...at, chain: c.chain, target: { position: c.position } };
    case 'createChain':
      return { op: 'createChain', ...at, chain: c.chain };
    case 'deleteChain':
      return { op: 'deleteChain', ...at, chain: c.chain };
    case 'flush':
      return c.chain === undefined ? undefined : { op: 'flushChain', ...at, chain: c.chain };
    case 'rename':
      return { op: 'renameChain', ...at, chain: c.chain, newName: c.newName };
    case 'policy':
      return { op: 'setPolicy', ...at, chain: c.chain, policy: c.policy };
    case 'zero':
      return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isConfirmation(v: unknown): v is ConfirmationRecord {
  return (
    isObject(v) &&
    typeof v.id === 'string' &&
    typeof v.deadline === 'string' &&
    !Number.isNaN(Date.parse(v.deadline)) &&
    Array.isArray(v.undo) &&
    Array.isArray(v.operations) &&
    Array.isArray(v.lockouts)
  );
}

function isExpiry(v: unknown): v is ExpiryRecord {
  return (
    isObject(v) &&
    typeof v.key === 'string' &&
    (v.family === 'ipv4' || v.family === 'ipv6') &&
    typeof v.table === 'string' &&
    typeof v.chain === 'string' &&
    typeof v.text === 'string' &&
    typeof v.expiresAt === 'string' &&
    !Number.isNaN(Date.parse(v.expiresAt))
  );
}

/** Whether `v` is an AfterCommit (what the journal hands back at recovery). */
export function isAfterCommit(v: unknown): v is AfterCommit {
  if (!isObject(v)) return false;
  const list = (x: unknown, ok: (e: unknown) => boolean) =>
    x === undefined || (Array.isArray(x) && x.every(ok));
  return (
    list(v.confirmations, isConfirmation) &&
    list(v.expiries, isExpiry) &&
    list(v.resolves, (e) => typeof e === 'string') &&
    list(v.expired, (e) => typeof e === 'string')
  );
}

export class PendingStore {
  readonly confirmationsPath: string;
  readonly expiriesPath: string;
  readonly confirmations = new Map<string, ConfirmationRecord>();
  readonly expiries = new Map<string, ExpiryRecord>();
  /** Expiry by rule (family, table, chain, text): the earliest, for reads. */
  private byRule: Map<string, string> | undefined;
  /** Confirmations being rolled back now: no longer confirmable. */
  readonly rollingBack = new Set<string>();
  /** Called after every settle with what changed (the schedulers re-arm their timers). */
  onChange: ((after: AfterCommit) => void) | undefined;

  constructor(stateDir: string) {
    this.confirmationsPath = join(stateDir, 'confirmations.json');
    this.expiriesPath = join(stateDir, 'expiries.json');
  }

  /** Reads both files (absent: nothing pending); a malformed file is an error naming it. */
  async load(): Promise<void> {
    for (const c of await readList(this.confirmationsPath, 'confirmations', isConfirmation))
      this.confirmations.set(c.id, c);
    for (const e of await readList(this.expiriesPath, 'expiries', isExpiry)) this.expiries.set(e.key, e);
  }

  /** Records what a whole change asked for; idempotent (settling twice changes nothing more). */
  async settle(after: AfterCommit): Promise<void> {
    let confirmations = false;
    let expiries = false;
    for (const c of after.confirmations ?? []) {
      if (!this.confirmations.has(c.id)) confirmations = true;
      this.confirmations.set(c.id, c);
    }
    for (const id of after.resolves ?? []) confirmations = this.confirmations.delete(id) || confirmations;
    for (const e of after.expiries ?? []) {
      if (!this.expiries.has(e.key)) expiries = true;
      this.expiries.set(e.key, e);
    }
    for (const key of after.expired ?? []) expiries = this.expiries.delete(key) || expiries;
    if (expiries) this.byRule = undefined;
    if (confirmations) await this.writeConfirmations();
    if (expiries) await this.writeExpiries();
    this.onChange?.(after);
  }

  /** When the rule expires (the earliest of its records), if it does. */
  expiryOf(family: Family, table: TableName, chain: string, text: string): string | undefined {
    if (this.expiries.size === 0) return undefined;
    if (!this.byRule) {
      this.byRule = new Map();
      for (const e of this.expiries.values()) {
        const k = ruleKey(e.family, e.table, e.chain, e.text);
        const t = this.byRule.get(k);
        if (t === undefined || e.expiresAt < t) this.byRule.set(k, e.expiresAt);
      }
    }
    return this.byRule.get(ruleKey(family, table, chain, text));
  }

  /** Moves a pending confirmation's deadline (durably). */
  async extend(id: string, deadline: string): Promise<ConfirmationRecord> {
    const c = this.confirmations.get(id);
    if (!c) throw new DomainError('not_found', `no pending confirmation ${id.slice(0, 64)}`, { field: 'id' });
    const next = { ...c, deadline };
    this.confirmations.set(id, next);
    await this.writeConfirmations();
    this.onChange?.({ confirmations: [next] });
    return next;
  }

  private writeConfirmations(): Promise<void> {
    return writeFileAtomic(this.confirmationsPath, `${JSON.stringify([...this.confirmations.values()])}\n`);
  }

  private writeExpiries(): Promise<void> {
    return writeFileAtomic(this.expiriesPath, `${JSON.stringify([...this.expiries.values()])}\n`);
  }
}

function ruleKey(family: Family, table: TableName, chain: string, text: string): string {
  return `${family}\0${table}\0${chain}\0${text}`;
}

async function readList<T>(path: string, what: string, ok: (v: unknown) => v is T): Promise<T[]> {
  const text = await readFileIfExists(path);
  if (text === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`the ${what} file ${path} is not valid JSON`);
  }
  if (!Array.isArray(value) || !value.every(ok))
    throw new Error(`the ${what} file ${path} does not hold a list of ${what}`);
  return value;
}
