/**
 * Bearer-token authentication shared by REST and gRPC. Tokens are configured
 * only as SHA-256 hashes, each with a scope: `read` (reads, events) or
 * `write` (everything). A token itself is never stored or logged; checks are
 * constant-time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type Scope = 'read' | 'write';

export interface TokenEntry {
  /** A label for logs and events (never the token). */
  readonly name: string;
  /** Lowercase hex SHA-256 of the token. */
  readonly sha256: string;
  readonly scope: Scope;
}

export type AuthResult =
  | { readonly ok: true; readonly name: string; readonly scope: Scope }
  | { readonly ok: false; readonly reason: 'missing' | 'invalid' };

const HASH = /^[0-9a-f]{64}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class Authenticator {
  private readonly entries: readonly {
    readonly name: string;
    readonly hash: Buffer;
    readonly scope: Scope;
  }[];

  constructor(tokens: readonly TokenEntry[]) {
    this.entries = tokens.map((t, i) => {
      if (!t || typeof t.name !== 'string' || t.name === '')
        throw new TypeError(`tokens[${i}].name must be a non-empty string`);
      if (typeof t.sha256 !== 'string' || !HASH.test(t.sha256)) {
        throw new TypeError(
          `tokens[${i}].sha256 must be 64 lowercase hex digits (the SHA-256 of the token, e.g. from \`printf %s TOKEN | sha256sum\`)`,
        );
      }
      if (t.scope !== 'read' && t.scope !== 'write')
        throw new TypeError(`tokens[${i}].scope must be "read" or "write"`);
      return { name: t.name, hash: Buffer.from(t.sha256, 'hex'), scope: t.scope };
    });
  }

  get size(): number {
    return this.entries.length;
  }

  /** Checks an `Authorization` header value (`Bearer TOKEN`) or a bare token. */
  check(authorization: string | undefined): AuthResult {
    if (authorization === undefined || authorization.trim() === '') return { ok: false, reason: 'missing' };
    const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) return { ok: false, reason: 'invalid' };
    const digest = createHash('sha256')
      .update(m[1] as string, 'utf8')
      .digest();
    let found: { name: string; scope: Scope } | undefined;
    // Compare against every entry (no early exit) so timing does not tell which matched.
    for (const e of this.entries) {
      if (timingSafeEqual(digest, e.hash) && !found) found = { name: e.name, scope: e.scope };
    }
    return found ? { ok: true, ...found } : { ok: false, reason: 'invalid' };
  }

  /** Whether a caller with `scope` may perform an operation needing `needed`. */
  static allows(scope: Scope, needed: Scope): boolean {
    return needed === 'read' || scope === 'write';
  }
}
