/**
 * Assertion shared by the codec and domain tests: `fn` must throw a
 * DomainError `invalid_argument` whose message is one short line (no newline,
 * carriage return or NUL from hostile input echoed back), shorter than
 * `maxMessage`, and, when `field` is given, naming that field.
 */
import { expect } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';

export function invalidArgument(fn: () => unknown, maxMessage = 500, field?: string): DomainError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DomainError);
    const d = e as DomainError;
    expect(d.code).toBe('invalid_argument');
    if (field !== undefined) expect(d.field).toBe(field);
    expect(d.message.length).toBeLessThan(maxMessage);
    expect(d.message).not.toMatch(/[\n\r\u0000]/);
    return d;
  }
  throw new Error('expected a DomainError, nothing was thrown');
}
