/**
 * The audit log: one JSON line per committed change (a ServiceObserver, so the
 * service knows nothing of it): time, who (token name, certificate subject or
 * `unix:uid=N`), door (rest, grpc, socket), request id, operations, revision
 * before and after, the restore text applied and the changes. The lines of one
 * batch are appended with one write and flushed to disk (fdatasync) before the
 * next batch's; writes never delay or fail a change (a failure is logged).
 *
 * `reopen()` (SIGHUP) closes and reopens the path, for logrotate's rename-then-
 * signal. `read()` serves GET /v1/audit and gRPC ListAuditEntries from the
 * current file (rotated files are not searched).
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChangeEventChange } from '../service/events.js';
import type { CommitRecord, ServiceObserver } from '../service/observer.js';
import { ensureDir } from '../store/durable.js';
import type { Logger } from './logger.js';

export interface AuditEntry {
  readonly time: string;
  /** Token name, certificate subject, or `unix:uid=N`. */
  readonly identity?: string;
  /** rest, grpc or socket. */
  readonly door?: string;
  readonly requestId?: string;
  readonly operations: readonly string[];
  readonly revisionBefore: number;
  readonly revisionAfter: number;
  readonly restore: readonly { readonly family: string; readonly text: string }[];
  readonly changes: readonly ChangeEventChange[];
}

export interface AuditQuery {
  /** Entries at or after this time. */
  readonly since?: Date;
  /** Most entries returned (the oldest first). */
  readonly limit: number;
}

export interface AuditLogOptions {
  readonly path: string;
  readonly log: Logger;
  /** Told about every batch written (metrics). */
  readonly onWrite?: (e: { readonly ok: boolean; readonly entries: number }) => void;
}

export function auditEntry(r: CommitRecord): AuditEntry {
  return {
    time: r.time,
    ...(r.identity === undefined ? {} : { identity: r.identity }),
    ...(r.origin === undefined ? {} : { door: r.origin }),
    ...(r.requestId === undefined ? {} : { requestId: r.requestId }),
    operations: r.operations,
    revisionBefore: r.revisionBefore,
    revisionAfter: r.revisionAfter,
    restore: r.restore,
    changes: r.changes,
  };
}

export class AuditLog implements ServiceObserver {
  private readonly o: AuditLogOptions;
  private handle: FileHandle | undefined;
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(options: AuditLogOptions) {
    this.o = options;
  }

  get path(): string {
    return this.o.path;
  }

  /** Opens the file for appending (creating it 0600, its directory 0750). */
  async open(): Promise<void> {
    await ensureDir(dirname(this.o.path), 0o750);
    this.handle = await open(this.o.path, 'a', 0o600);
  }

  committed(records: readonly CommitRecord[]): void {
    if (this.closed || records.length === 0) return;
    const text = records.map((r) => `${JSON.stringify(auditEntry(r))}\n`).join('');
    this.enqueue(async () => {
      const h = this.handle;
      if (!h) throw new Error('the audit log is not open');
      await h.write(text);
      await h.datasync();
      this.o.onWrite?.({ ok: true, entries: records.length });
    }, records.length);
  }

  /** Closes and reopens the path (after logrotate renamed the file). */
  reopen(): Promise<void> {
    return this.enqueue(async () => {
      const old = this.handle;
      this.handle = undefined;
      await old?.close();
      await this.open();
    }, 0);
  }

  /** Waits for pending writes and closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }

  /** Entries of the current file at or after `since`, oldest first, at most `limit`. */
  async read(query: AuditQuery): Promise<{ entries: AuditEntry[]; truncated: boolean }> {
    await this.tail;
    const since = query.since?.getTime();
    const entries: AuditEntry[] = [];
    let truncated = false;
    const stream = createReadStream(this.o.path, { encoding: 'utf8' });
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    try {
      for await (const line of lines) {
        if (line === '') continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue; // a line cut by a crash
        }
        if (!isAuditEntry(parsed)) continue;
        const entry = parsed;
        if (since !== undefined && !(Date.parse(entry.time) >= since)) continue;
        if (entries.length >= query.limit) {
          truncated = true;
          break;
        }
        entries.push(entry);
      }
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err;
    } finally {
      lines.close();
      stream.destroy();
    }
    return { entries, truncated };
  }

  private enqueue(work: () => Promise<void>, entries: number): Promise<void> {
    const run = this.tail.then(work).catch((err: unknown) => {
      this.o.onWrite?.({ ok: false, entries });
      this.o.log.error('the audit log could not be written', {
        path: this.o.path,
        error: err instanceof Error ? err.message : String(err),
      });
    });
    this.tail = run;
    return run;
  }
}

function isAuditEntry(v: unknown): v is AuditEntry {
  return (
    typeof v === 'object' &&
    v !== null &&
    'time' in v &&
    typeof v.time === 'string' &&
    'revisionAfter' in v &&
    typeof v.revisionAfter === 'number' &&
    'operations' in v &&
    Array.isArray(v.operations)
  );
}
