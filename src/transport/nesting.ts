/**
 * The nesting limit of both doors. A request nested thousands of levels deep
 * (`[[[[...]]]]` in a REST body, Structs inside Structs in a gRPC message)
 * would overflow the stack of whatever walks it recursively later (the
 * schema validator, the idempotency fingerprint, the planner). So each door
 * measures the depth right after decoding, before anything else reads the
 * request, and refuses a deeper one with `invalid_argument` naming the limit.
 *
 * The measure is iterative (no recursion, so it cannot overflow itself) and
 * counts objects and arrays: `{}` is 1, `{"a": [1]}` is 2. No real request
 * comes near the limit: the deepest one the contract describes is about 8.
 */
import { DomainError } from '../domain/errors.js';

/** Most levels of objects and arrays a request may nest. */
export const MAX_NESTING_DEPTH = 64;

function isContainer(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !ArrayBuffer.isView(value);
}

/** Whether `value` nests objects and arrays more than `limit` levels deep. */
export function nestingExceeds(value: unknown, limit: number = MAX_NESTING_DEPTH): boolean {
  if (!isContainer(value)) return false;
  const stack: [object, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item;
    if (depth > limit) return true;
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) if (isContainer(child)) stack.push([child, depth + 1]);
  }
  return false;
}

/** The refusal of a request nested deeper than the limit; the same on both doors. */
export function nestingTooDeep(limit: number = MAX_NESTING_DEPTH): DomainError {
  return new DomainError(
    'invalid_argument',
    `the request nests objects and arrays more than ${limit} levels deep, which is the limit: no valid request needs that many`,
  );
}
