/**
 * Idempotency keys survive a restart: a client that retries a write with the same
 * Idempotency-Key after the service was restarted (an upgrade, a crash) gets the remembered
 * response instead of the write applied twice. The store (service/idempotency.ts) stays in
 * memory; this module loads it from the state directory at start and writes it back through
 * store/durable.ts (atomic and durable: a crash leaves the old or the new file, never half of
 * one) a moment after responses are remembered, and once more at shutdown.
 *
 * Bounded: the store's own bounds (keys, time to live), and here at most `maxFileBytes` in the
 * file (the oldest keys go first) and `maxResponseBytes` per response (a larger one, such as a
 * dry run of a whole table, is simply not carried over a restart). Responses are JSON with
 * bigints, bytes and domain errors tagged, so gRPC outcomes come back exactly as stored.
 * A file that cannot be read (damaged, another version) is set aside, never fatal.
 */
import { rename } from 'node:fs/promises';
import { DomainError, type ErrorCode } from '../domain/errors.js';
import type { IdempotencyRecord, IdempotencyStore } from '../service/idempotency.js';
import { readFileIfExists, writeFileAtomic } from './durable.js';

const FORMAT = 1;

export interface IdempotencyFileOptions {
  /** The file, in the state directory. */
  readonly path: string;
  /** How long after a remembered response the file is written (ms); writes are coalesced. @default 1000 */
  readonly delayMs?: number;
  /** @default 8 MiB */
  readonly maxFileBytes?: number;
  /** @default 64 KiB */
  readonly maxResponseBytes?: number;
  /** Told about a write that failed or a file that was set aside. @default nothing */
  readonly onError?: (message: string) => void;
}

/** JSON of any response: bigint, Uint8Array and DomainError tagged so that they come back. */
export function encodeValue(value: unknown): string {
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    const raw = (this as Record<string, unknown>)[key];
    if (typeof raw === 'bigint') return { $bigint: raw.toString() };
    if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('base64') };
    if (raw instanceof DomainError)
      return {
        $error: {
          code: raw.code,
          message: raw.message,
          ...(raw.field === undefined ? {} : { field: raw.field }),
          ...(raw.details === undefined ? {} : { details: raw.details }),
        },
      };
    return v;
  });
}

export function decodeValue(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length !== 1) return v;
    if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'base64'));
    if (o.$error && typeof o.$error === 'object') {
      const e = o.$error as {
        code: ErrorCode;
        message: string;
        field?: string;
        details?: Record<string, unknown>;
      };
      return new DomainError(e.code, e.message, {
        ...(e.field === undefined ? {} : { field: e.field }),
        ...(e.details === undefined ? {} : { details: e.details }),
      });
    }
    return v;
  });
}

/** Keeps `stores` (by name: `rest`, `grpc`) in one file; call {@link load} before serving. */
export class IdempotencyFile {
  private readonly path: string;
  private readonly delayMs: number;
  private readonly maxFileBytes: number;
  private readonly maxResponseBytes: number;
  private readonly onError: (message: string) => void;
  private readonly stores = new Map<string, IdempotencyStore<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(options: IdempotencyFileOptions) {
    this.path = options.path;
    this.delayMs = options.delayMs ?? 1000;
    this.maxFileBytes = options.maxFileBytes ?? 8 * 1024 * 1024;
    this.maxResponseBytes = options.maxResponseBytes ?? 64 * 1024;
    this.onError = options.onError ?? (() => {});
  }

  /** Registers a store under `name`; pass {@link changed} as its `onChange`. */
  add(name: string, store: IdempotencyStore<unknown>): void {
    this.stores.set(name, store);
  }

  /** Schedules a write (coalesced): the stores' `onChange`. */
  readonly changed = (): void => {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.delayMs);
    this.timer.unref();
  };

  /** Loads what an earlier run remembered into the registered stores. */
  async load(): Promise<number> {
    let text: string | undefined;
    try {
      text = await readFileIfExists(this.path);
    } catch (err) {
      this.onError(`cannot read ${this.path}: ${(err as Error).message}`);
      return 0;
    }
    if (text === undefined) return 0;
    let doc: {
      format?: unknown;
      stores?: Record<string, { id: string; fingerprint: string; expires: number; response: unknown }[]>;
    };
    try {
      doc = decodeValue(text) as typeof doc;
      if (doc.format !== FORMAT || typeof doc.stores !== 'object' || doc.stores === null)
        throw new Error('unknown format');
    } catch (err) {
      const aside = `${this.path}.unreadable`;
      await rename(this.path, aside).catch(() => undefined);
      this.onError(
        `${this.path} could not be read (${(err as Error).message}): moved to ${aside}, keys forgotten`,
      );
      return 0;
    }
    let n = 0;
    for (const [name, store] of this.stores) {
      const records = doc.stores[name];
      if (!Array.isArray(records)) continue;
      store.load(records as IdempotencyRecord<unknown>[]);
      n += records.length;
    }
    return n;
  }

  /** Writes the stores now (after any write in progress). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      try {
        await writeFileAtomic(this.path, this.render());
      } catch (err) {
        this.dirty = true;
        this.onError(`cannot write ${this.path}: ${(err as Error).message}`);
      }
    });
    return this.writing;
  }

  /** The file: newest keys kept first when over the byte bound. */
  private render(): string {
    const encoded: { name: string; expires: number; json: string }[] = [];
    for (const [name, store] of this.stores) {
      for (const r of store.records()) {
        const json = encodeValue(r);
        if (json.length <= this.maxResponseBytes) encoded.push({ name, expires: r.expires, json });
      }
    }
    encoded.sort((a, b) => b.expires - a.expires);
    let bytes = 64;
    const byStore = new Map<string, string[]>([...this.stores.keys()].map((n) => [n, []]));
    for (const e of encoded) {
      bytes += e.json.length + 1;
      if (bytes > this.maxFileBytes) break;
      byStore.get(e.name)?.push(e.json);
    }
    const parts = [...byStore].map(([name, list]) => `${JSON.stringify(name)}:[${list.reverse().join(',')}]`);
    return `{"format":${FORMAT},"stores":{${parts.join(',')}}}\n`;
  }
}
