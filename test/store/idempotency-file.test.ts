/**
 * Idempotency keys across a restart (src/store/idempotency-file.ts): what one process's
 * stores remembered, the next process's stores replay, exactly (bigints, bytes, domain
 * errors), within the bounds; an unreadable file is set aside, not fatal.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { IdempotencyStore } from '../../src/service/idempotency.js';
import { decodeValue, encodeValue, IdempotencyFile } from '../../src/store/idempotency-file.js';

const tmp = mkdtempSync(join(tmpdir(), 'pcl-idem-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('idempotency keys in the state directory', () => {
  it('round-trips values JSON cannot hold', () => {
    const value = {
      ok: false,
      error: new DomainError('not_found', 'chain X does not exist', { field: 'chain', details: { a: 1 } }),
      revision: 12345678901234567890n,
      bytes: new Uint8Array([0, 1, 255]),
      nested: [{ revision: 3n }],
    };
    const back = decodeValue(encodeValue(value)) as typeof value;
    expect(back.error).toBeInstanceOf(DomainError);
    expect(back.error.code).toBe('not_found');
    expect(back.error.field).toBe('chain');
    expect(back.error.message).toBe('chain X does not exist');
    expect(back.revision).toBe(12345678901234567890n);
    expect([...back.bytes]).toEqual([0, 1, 255]);
    expect(back.nested[0]?.revision).toBe(3n);
  });

  it('a key remembered before a restart replays after it; a different request is still a mismatch', async () => {
    const path = join(tmp, 'idempotency.json');
    const file1 = new IdempotencyFile({ path, delayMs: 10 });
    const rest1 = new IdempotencyStore<unknown>({ onChange: file1.changed });
    const grpc1 = new IdempotencyStore<unknown>({ onChange: file1.changed });
    file1.add('rest', rest1);
    file1.add('grpc', grpc1);
    const a = rest1.begin('ci', 'key-1', 'fp-1');
    if (a.kind !== 'new') throw new Error('expected new');
    a.complete({ status: 201, body: { revision: 2 } });
    const b = grpc1.begin('ci', 'key-1', 'fp-g');
    if (b.kind !== 'new') throw new Error('expected new');
    b.complete({ ok: true, response: { revision: 7n } });
    const inFlight = rest1.begin('ci', 'key-2', 'fp-2');
    expect(inFlight.kind).toBe('new');
    await file1.flush();
    expect(existsSync(path)).toBe(true);

    // The next process.
    const file2 = new IdempotencyFile({ path });
    const rest2 = new IdempotencyStore<unknown>();
    const grpc2 = new IdempotencyStore<unknown>();
    file2.add('rest', rest2);
    file2.add('grpc', grpc2);
    expect(await file2.load()).toBe(2);
    expect(rest2.begin('ci', 'key-1', 'fp-1')).toEqual({
      kind: 'replay',
      response: { status: 201, body: { revision: 2 } },
    });
    expect(rest2.begin('ci', 'key-1', 'other')).toEqual({ kind: 'mismatch' });
    expect(rest2.begin('someone-else', 'key-1', 'fp-1').kind).toBe('new');
    expect(grpc2.begin('ci', 'key-1', 'fp-g')).toEqual({
      kind: 'replay',
      response: { ok: true, response: { revision: 7n } },
    });
    // In flight at the "crash": not remembered, a retry runs.
    expect(rest2.begin('ci', 'key-2', 'fp-2').kind).toBe('new');
  });

  it('is bounded: expired keys are dropped, large responses and the oldest keys beyond the file bound too', async () => {
    const path = join(tmp, 'bounded.json');
    let now = 1_000_000;
    const file = new IdempotencyFile({ path, maxResponseBytes: 400, maxFileBytes: 2000 });
    const store = new IdempotencyStore<unknown>({ ttlMs: 1000, now: () => now });
    file.add('rest', store);
    const put = (key: string, body: unknown) => {
      const s = store.begin('p', key, 'fp');
      if (s.kind === 'new') s.complete(body);
    };
    put('expired', 'x');
    now += 2000;
    put('huge', 'y'.repeat(1000));
    for (let i = 0; i < 40; i++) {
      now += 1;
      put(`k${i}`, { i });
    }
    file.changed();
    await file.flush();
    const text = readFileSync(path, 'utf8');
    expect(text.length).toBeLessThanOrEqual(2000);
    expect(text).not.toContain('"expired');
    expect(text).not.toContain('yyyy');
    expect(text).toContain('k39');
    expect(text).not.toContain('"1:p:k0"');
  });

  it('sets an unreadable file aside and starts without keys', async () => {
    const path = join(tmp, 'broken.json');
    writeFileSync(path, '{"format":1,"stores":');
    const messages: string[] = [];
    const file = new IdempotencyFile({ path, onError: (m) => messages.push(m) });
    file.add('rest', new IdempotencyStore<unknown>());
    expect(await file.load()).toBe(0);
    expect(existsSync(`${path}.unreadable`)).toBe(true);
    expect(messages[0]).toMatch(/could not be read .*moved to .*\.unreadable/);
  });
});
