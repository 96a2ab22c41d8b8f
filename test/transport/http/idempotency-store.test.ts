/** The transport-neutral idempotency store (src/service/idempotency.ts). */
import { describe, expect, it } from 'vitest';
import {
  IdempotencyStore,
  idempotencyFingerprint,
  isIdempotencyKey,
} from '../../../src/service/idempotency.js';

describe('IdempotencyStore', () => {
  it('new -> in_progress -> replay; a different fingerprint is a mismatch', () => {
    const s = new IdempotencyStore<string>();
    const a = s.begin('alice', 'k', 'f1');
    expect(a.kind).toBe('new');
    expect(s.begin('alice', 'k', 'f1').kind).toBe('in_progress');
    expect(s.begin('alice', 'k', 'f2').kind).toBe('mismatch');
    if (a.kind === 'new') a.complete('response');
    expect(s.begin('alice', 'k', 'f1')).toEqual({ kind: 'replay', response: 'response' });
    expect(s.begin('alice', 'k', 'f2').kind).toBe('mismatch');
    expect(s.begin('bob', 'k', 'f1').kind).toBe('new');
  });

  it('abandon forgets the key; complete after abandon is ignored', () => {
    const s = new IdempotencyStore<string>();
    const a = s.begin('p', 'k', 'f');
    if (a.kind !== 'new') throw new Error('expected new');
    a.abandon();
    a.complete('late');
    expect(s.begin('p', 'k', 'f').kind).toBe('new');
  });

  it('expires completed entries after ttlMs', () => {
    let now = 1000;
    const s = new IdempotencyStore<string>({ ttlMs: 100, now: () => now });
    const a = s.begin('p', 'k', 'f');
    if (a.kind === 'new') a.complete('r');
    now += 99;
    expect(s.begin('p', 'k', 'f').kind).toBe('replay');
    now += 1;
    expect(s.begin('p', 'k', 'f').kind).toBe('new');
  });

  it('keeps at most maxEntries, forgetting the oldest completed first, never an in-flight one', () => {
    const s = new IdempotencyStore<number>({ maxEntries: 2 });
    const inflight = s.begin('p', 'busy', 'f');
    for (const k of ['a', 'b', 'c']) {
      const slot = s.begin('p', k, 'f');
      if (slot.kind === 'new') slot.complete(1);
    }
    expect(s.size).toBe(2);
    expect(s.begin('p', 'busy', 'f').kind).toBe('in_progress');
    expect(s.begin('p', 'c', 'f').kind).toBe('replay');
    expect(s.begin('p', 'a', 'f').kind).toBe('new');
    void inflight;
  });

  it('validates options and keys', () => {
    expect(() => new IdempotencyStore({ maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => new IdempotencyStore({ ttlMs: -1 })).toThrow(/ttlMs/);
    expect(() => new IdempotencyStore().begin('p', 'has space', 'f')).toThrow(TypeError);
    expect(isIdempotencyKey('a'.repeat(255))).toBe(true);
    expect(isIdempotencyKey('a'.repeat(256))).toBe(false);
    expect(isIdempotencyKey('')).toBe(false);
    expect(idempotencyFingerprint('POST', '/x', { a: 1n })).toBe(
      idempotencyFingerprint('POST', '/x', { a: 1n }),
    );
    expect(idempotencyFingerprint('POST', '/x', { a: 1 })).not.toBe(
      idempotencyFingerprint('PUT', '/x', { a: 1 }),
    );
  });
});

describe('idempotencyFingerprint', () => {
  it('refuses a value too deep to serialize as invalid_argument, not a stack overflow', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    let error: unknown;
    try {
      idempotencyFingerprint('POST', '/v1/reset', deep);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ name: 'DomainError', code: 'invalid_argument' });
  });
});
