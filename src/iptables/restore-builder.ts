/**
 * The one builder of `iptables-restore --noflush` input (as Calico's
 * restore_buffer.go is): typed commands in, restore text out, with the owner
 * of every input line so a failure iptables blames on a line can be pinned on
 * the job that asked for it. Commands are grouped by table in first-use order;
 * tables without commands are left out, and an empty builder renders as the
 * empty string. Every value is validated when a command is added.
 *
 * What iptables-restore (1.8.9, nf_tables) gets wrong within one table block,
 * and how the text is shaped so that it cannot:
 * - A rename is invisible to later commands of the block (they still see the
 *   old name), and a chain created in the block cannot be renamed in it
 *   (CHAIN_RENAME: No such file or directory, the chain has no handle yet). So
 *   a block ends before a rename of a chain it created, and after any rename.
 * - `-Z CHAIN` and `-Z` write built-in chains back with the policy read at the
 *   start of the block, undoing a `-P` earlier in the block. So after a zero,
 *   every policy the block set on a zeroed chain is set again.
 * - When another process commits while a block is being sent, the kernel answers
 *   ERESTART and iptables re-reads the kernel and sends the block again; on that
 *   retry it skips a `-N C` whenever the kernel holds C, even when the block
 *   deleted C first (nft.c: nft_refresh_transaction). `-X C ... -N C` then
 *   leaves C deleted while iptables-restore reports success (or fails on a later
 *   line that needs C). So a block ends before it creates a chain it deleted:
 *   the `-N` goes first in a block whose start has no C, and a retry keeps it
 *   (test/iptables/restore-retry.test.ts shows the lie on a real kernel).
 * Ending a block commits it, so a change of one table may become several
 * commits; the batch runner's undo covers a failure between them.
 */
import { invalid } from '../domain/errors.js';
import type { TableName } from '../domain/family.js';
import type { Policy, Rule } from '../domain/model.js';
import { addsRule, type Command, checkTable, commandLine, commandTokens } from './commands.js';
import { renderTokens } from './tokenize.js';

export interface RestoreBlock {
  readonly table: TableName;
  /** 1-based line of the block's COMMIT. */
  readonly commitLine: number;
  /** Whether the block holds a command other than `-Z` (nf_tables then commits a generation). */
  readonly changes: boolean;
  /** The marker chain the block creates, when built with markers. */
  readonly marker?: string;
}

export interface BuildOptions {
  /**
   * A marker chain to create first in each block (`-N NAME`), so that the kernel records
   * which blocks committed (see store/change-journal.ts). Called with the block's table and
   * its index among all blocks.
   */
  readonly marker?: (table: TableName, block: number) => string;
}

export interface BuiltRestore {
  /** The restore text; empty when nothing was added. */
  readonly text: string;
  /** owners[line - 1]: who asked for that input line (undefined for headers and COMMIT). */
  readonly owners: readonly (number | undefined)[];
  readonly blocks: readonly RestoreBlock[];
  /** Indexes (in the order commands were added) of the commands that add a rule, in commit order. */
  readonly adds: readonly number[];
  /** For each command (in the order added), the COMMIT line of the block it is in. */
  readonly commitLines: readonly number[];
}

interface Entry {
  readonly command: Command;
  readonly line: string;
  readonly owner: number | undefined;
  readonly index: number;
}

export class RestoreBuilder {
  private readonly entries: Entry[] = [];

  /** Adds a command (validated now: a bad value throws and leaves the builder as it was). */
  add(command: Command, owner?: number): this {
    if (typeof command !== 'object' || command === null)
      throw invalid(undefined, 'command must be an object');
    const line = commandLine(command);
    this.entries.push({ command, line, owner, index: this.entries.length });
    return this;
  }

  append(table: TableName, chain: string, rule: Rule): this {
    return this.add({ op: 'append', table, chain, rule });
  }
  /** Insert at 1-based `position`. */
  insert(table: TableName, chain: string, position: number, rule: Rule): this {
    return this.add({ op: 'insert', table, chain, position, rule });
  }
  /** Replace the rule at 1-based `position`. */
  replace(table: TableName, chain: string, position: number, rule: Rule): this {
    return this.add({ op: 'replace', table, chain, position, rule });
  }
  /** Delete the first rule identical to `rule`. */
  delete(table: TableName, chain: string, rule: Rule): this {
    return this.add({ op: 'delete', table, chain, rule });
  }
  /** Delete the rule at 1-based `position` (for undoing our own change only). */
  deleteAt(table: TableName, chain: string, position: number): this {
    return this.add({ op: 'deleteAt', table, chain, position });
  }
  newChain(table: TableName, chain: string): this {
    return this.add({ op: 'createChain', table, chain });
  }
  deleteChain(table: TableName, chain: string): this {
    return this.add({ op: 'deleteChain', table, chain });
  }
  flush(table: TableName, chain?: string): this {
    return this.add(chain === undefined ? { op: 'flush', table } : { op: 'flush', table, chain });
  }
  policy(table: TableName, chain: string, policy: Policy): this {
    return this.add({ op: 'policy', table, chain, policy });
  }
  rename(table: TableName, chain: string, newName: string): this {
    return this.add({ op: 'rename', table, chain, newName });
  }
  zero(table: TableName, chain?: string): this {
    return this.add(chain === undefined ? { op: 'zero', table } : { op: 'zero', table, chain });
  }

  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  build(options: BuildOptions = {}): BuiltRestore {
    const byTable = new Map<TableName, Entry[]>();
    for (const e of this.entries) {
      const table = checkTable(e.command.table);
      let list = byTable.get(table);
      if (!list) {
        list = [];
        byTable.set(table, list);
      }
      list.push(e);
    }
    const out: string[] = [];
    const owners: (number | undefined)[] = [];
    const blocks: RestoreBlock[] = [];
    const adds: number[] = [];
    const commitLines: number[] = new Array(this.entries.length);
    for (const [table, list] of byTable) {
      let pending: number[] = [];
      let created = new Set<string>();
      let deleted = new Set<string>();
      let policies = new Map<string, { policy: Policy; owner: number | undefined }>();
      let changes = false;
      let marker: string | undefined;
      const open = () => {
        out.push(`*${table}`);
        owners.push(undefined);
        created = new Set();
        deleted = new Set();
        policies = new Map();
        changes = false;
        marker = options.marker?.(table, blocks.length);
        if (marker !== undefined) {
          out.push(renderTokens(commandTokens({ op: 'createChain', table, chain: marker })));
          owners.push(undefined);
        }
      };
      const close = () => {
        out.push('COMMIT');
        owners.push(undefined);
        blocks.push({
          table,
          commitLine: out.length,
          changes: changes || marker !== undefined,
          ...(marker === undefined ? {} : { marker }),
        });
        for (const i of pending) commitLines[i] = out.length;
        pending = [];
      };
      const emit = (line: string, owner: number | undefined) => {
        out.push(line);
        owners.push(owner);
      };
      open();
      list.forEach((e, k) => {
        const c = e.command;
        if ((c.op === 'rename' && created.has(c.chain)) || (c.op === 'createChain' && deleted.has(c.chain))) {
          close();
          open();
        }
        emit(e.line, e.owner);
        pending.push(e.index);
        if (addsRule(c)) adds.push(e.index);
        if (c.op !== 'zero') changes = true;
        switch (c.op) {
          case 'createChain':
            created.add(c.chain);
            break;
          case 'deleteChain':
            deleted.add(c.chain);
            break;
          case 'policy':
            policies.set(c.chain, { policy: c.policy, owner: e.owner });
            break;
          case 'zero':
            for (const [chain, p] of policies) {
              if (c.chain === undefined || c.chain === chain)
                emit(renderTokens(commandTokens({ op: 'policy', table, chain, policy: p.policy })), p.owner);
            }
            break;
          case 'rename':
            if (k < list.length - 1) {
              close();
              open();
            }
            break;
        }
      });
      close();
    }
    return { text: out.length ? `${out.join('\n')}\n` : '', owners, blocks, adds, commitLines };
  }

  /** The restore text; empty when nothing was added. */
  toString(): string {
    return this.build().text;
  }
}
