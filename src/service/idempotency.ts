/**
 * Idempotency keys, independent of the transport. A client sends a key with a
 * write; the first request with that key runs, and its response is
 * remembered. A retry with the same key and the same request gets the
 * remembered response without the write being applied again; a retry with
 * the same key but a different request is a client bug and is refused; a
 * retry while the first is still running is refused too (the client should
 * wait and retry). Keys are scoped by principal (the caller's identity), so
 * two clients cannot see each other's responses.
 *
 * Bounded: at most `maxEntries` keys (the oldest are forgotten first) for at
 * most `ttlMs` each. In-flight entries count towards the bound but are never
 * evicted (their owners still have to complete or abandon them).
 *
 * Usage (R is whatever the transport needs to replay a response):
 *
 *   const slot = store.begin(principal, key, idempotencyFingerprint(method, path, body));
 *   switch (slot.kind) {
 *     case 'replay': return send(slot.response);        // stored, not applied again
 *     case 'mismatch': return refuse(422);              // same key, different request
 *     case 'in_progress': return refuse(409);           // first request still running
 *     case 'new': try { const r = await run(); slot.complete(r); return send(r); }
 *                 catch (e) { slot.abandon(); throw e; } // or complete() with a final error
 *   }
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../domain/errors.js';

export interface IdempotencyStoreOptions {
  /**
   * How many keys are remembered at most (completed and in flight together).
   * @default 10000
   */
  readonly maxEntries?: number;
  /**
   * How long a completed response is remembered, in milliseconds.
   * @default 86400000 (24 hours)
   */
  readonly ttlMs?: number;
  /** Clock, for tests. @default Date.now */
  readonly now?: () => number;
  /** Called after a response was remembered (persistence saves the store then). @default none */
  readonly onChange?: () => void;
}

/** A remembered response, as persisted (store/idempotency-file.ts): completed entries only. */
export interface IdempotencyRecord<R> {
  /** The store's key: principal and idempotency key. */
  readonly id: string;
  readonly fingerprint: string;
  readonly response: R;
  /** When it expires, in ms since the epoch. */
  readonly expires: number;
}

/** The outcome of `begin`. */
export type IdempotencySlot<R> =
  /** First use of the key: run the write, then call exactly one of `complete` or `abandon`. */
  | {
      readonly kind: 'new';
      /** Remembers `response` for retries with the same key. Later calls are ignored. */
      complete(response: R): void;
      /** Forgets the key (e.g. a transient failure): a retry runs the write again. */
      abandon(): void;
    }
  /** The key was used for the same request, which completed: send this response again. */
  | { readonly kind: 'replay'; readonly response: R }
  /** The key was used for a different request (different fingerprint). */
  | { readonly kind: 'mismatch' }
  /** A request with this key is still running. */
  | { readonly kind: 'in_progress' };

interface Entry<R> {
  readonly fingerprint: string;
  /** Set when completed. */
  response?: R;
  /** When a completed entry expires (ms since epoch). */
  expires: number;
}

const MAX_KEY_LENGTH = 255;

/** Whether `key` is a usable idempotency key: 1 to 255 visible ASCII characters. */
export function isIdempotencyKey(key: unknown): key is string {
  return (
    typeof key === 'string' && key.length >= 1 && key.length <= MAX_KEY_LENGTH && /^[\x21-\x7e]+$/.test(key)
  );
}

/**
 * A request fingerprint: SHA-256 over the JSON of `parts` (use the method, path and decoded
 * body). The doors refuse deeply nested requests before this runs; should one get here
 * anyway, it is refused as the client's mistake, not a stack overflow (a 500).
 */
export function idempotencyFingerprint(...parts: readonly unknown[]): string {
  let json: string;
  try {
    json = JSON.stringify(parts, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new DomainError(
      'invalid_argument',
      'the request is nested too deeply to be fingerprinted for its idempotency key',
      {
        cause: error,
      },
    );
  }
  return createHash('sha256').update(json).digest('hex');
}

export class IdempotencyStore<R> {
  private readonly entries = new Map<string, Entry<R>>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onChange: (() => void) | undefined;

  constructor(options: IdempotencyStoreOptions = {}) {
    const { maxEntries = 10_000, ttlMs = 86_400_000, now = Date.now } = options;
    this.onChange = options.onChange;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new TypeError(`Expected \`maxEntries\` to be a whole number from 1, got ${String(maxEntries)}`);
    if (typeof ttlMs !== 'number' || !(ttlMs > 0))
      throw new TypeError(`Expected \`ttlMs\` to be a positive number, got ${String(ttlMs)}`);
    if (typeof now !== 'function') throw new TypeError('Expected `now` to be a function');
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  /** Keys remembered now (completed and in flight). */
  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  /**
   * Starts a request with `key` on behalf of `principal`. `fingerprint` identifies the
   * request (see `idempotencyFingerprint`): the same key with another fingerprint is a mismatch.
   */
  begin(principal: string, key: string, fingerprint: string): IdempotencySlot<R> {
    if (!isIdempotencyKey(key)) throw new TypeError('Expected `key` to be 1 to 255 visible ASCII characters');
    this.sweep();
    const id = `${principal.length}:${principal}:${key}`;
    const existing = this.entries.get(id);
    if (existing) {
      if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (existing.response === undefined) return { kind: 'in_progress' };
      return { kind: 'replay', response: existing.response };
    }
    const entry: Entry<R> = { fingerprint, expires: Number.POSITIVE_INFINITY };
    this.entries.set(id, entry);
    this.evict();
    let settled = false;
    return {
      kind: 'new',
      complete: (response: R) => {
        if (settled) return;
        settled = true;
        if (this.entries.get(id) !== entry) return;
        entry.response = response;
        entry.expires = this.now() + this.ttlMs;
        // Re-insert so that eviction order is completion order.
        this.entries.delete(id);
        this.entries.set(id, entry);
        this.evict();
        this.onChange?.();
      },
      abandon: () => {
        if (settled) return;
        settled = true;
        if (this.entries.get(id) === entry) this.entries.delete(id);
      },
    };
  }

  /** The completed, unexpired entries, oldest first (what persistence writes). */
  records(): IdempotencyRecord<R>[] {
    this.sweep();
    const out: IdempotencyRecord<R>[] = [];
    for (const [id, e] of this.entries)
      if (e.response !== undefined)
        out.push({ id, fingerprint: e.fingerprint, response: e.response, expires: e.expires });
    return out;
  }

  /**
   * Remembers `records` (from an earlier run), oldest first, within the bounds; expired ones
   * and keys already known here are skipped.
   */
  load(records: readonly IdempotencyRecord<R>[]): void {
    const now = this.now();
    const sorted = [...records].sort((a, b) => a.expires - b.expires);
    for (const r of sorted) {
      if (!(r.expires > now) || this.entries.has(r.id)) continue;
      this.entries.set(r.id, { fingerprint: r.fingerprint, response: r.response, expires: r.expires });
    }
    this.evict();
  }

  /** Drops expired entries. Map order is insertion (completion) order, so the oldest come first. */
  private sweep(): void {
    const now = this.now();
    for (const [id, e] of this.entries) {
      if (e.response === undefined) continue; // in flight
      if (e.expires > now) break; // completed entries expire in the order they completed
      this.entries.delete(id);
    }
  }

  /** Forgets the oldest completed entries while over the bound. */
  private evict(): void {
    if (this.entries.size <= this.maxEntries) return;
    for (const [id, e] of this.entries) {
      if (this.entries.size <= this.maxEntries) break;
      if (e.response !== undefined) this.entries.delete(id);
    }
  }
}
