/**
 * Authentication shared by REST and gRPC: bearer tokens and client certificates.
 * Tokens are configured only as SHA-256 hashes, each with a scope: `read`
 * (reads, events) or `write` (everything). A token itself is never stored or
 * logged; checks are constant-time.
 *
 * Client certificates (mTLS, `--tls-client-ca`) map to a name and a scope the
 * same way: an entry names the certificate's whole subject (`CN=deploy,O=Example`,
 * attributes in any order) or one of its subject alternative names
 * (`DNS:deploy.example`, `URI:spiffe://example/deploy`, `email:...`, `IP:192.0.2.1`).
 * Only a certificate the TLS layer verified against the client CA is looked at.
 * When a request carries a token, the token decides (a client may hold both); a
 * certificate is the caller's credential only without one.
 */
import { createHash, timingSafeEqual, type X509Certificate } from 'node:crypto';

export type Scope = 'read' | 'write';

export interface TokenEntry {
  /** A label for logs and events (never the token). */
  readonly name: string;
  /** Lowercase hex SHA-256 of the token. */
  readonly sha256: string;
  readonly scope: Scope;
}

/** A client certificate that authenticates like a token: by its subject or one subject alternative name. */
export type ClientCertificateEntry = {
  /** A label for logs, events and idempotency scoping (like a token's name). */
  readonly name: string;
  readonly scope: Scope;
} & (
  | { readonly subject: string; readonly san?: undefined }
  | { readonly san: string; readonly subject?: undefined }
);

export type AuthResult =
  | {
      readonly ok: true;
      readonly name: string;
      readonly scope: Scope;
      /** Who, for the audit log: the token's name, or the certificate's subject. */
      readonly identity: string;
    }
  | {
      readonly ok: false;
      /**
       * `missing`: neither a token nor a certificate; `invalid`: a token that is not valid;
       * `certificate_rejected`: a certificate the TLS layer did not verify (wrong CA, expired);
       * `certificate_unknown`: a verified certificate that no configured entry names.
       */
      readonly reason: 'missing' | 'invalid' | 'certificate_rejected' | 'certificate_unknown';
      /** For certificate_rejected: why (OpenSSL's code, e.g. CERT_HAS_EXPIRED), when known. */
      readonly detail?: string;
    };

/** What a call presents: its Authorization value and the TLS peer certificate, if any. */
export interface Credentials {
  readonly authorization: string | undefined;
  /** The client certificate, only when the TLS layer verified it against the client CA. */
  readonly certificate?: X509Certificate | undefined;
  /** A certificate was presented but not verified: OpenSSL's reason. */
  readonly certificateError?: string | undefined;
}

/** The attributes of a distinguished name written `CN=a,O=b` (`\\,` is a comma inside a value). */
export function parseDn(dn: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i];
    if (ch === '\\' && i + 1 < dn.length) {
      cur += dn[i + 1];
      i++;
    } else if (ch === ',') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** Attributes as one comparable key: `KEY=value`, keys in capitals, in any order. */
function subjectKey(attributes: readonly string[]): string {
  return attributes
    .map((p) => {
      const eq = p.indexOf('=');
      return eq === -1 ? p : `${p.slice(0, eq).trim().toUpperCase()}=${p.slice(eq + 1).trim()}`;
    })
    .sort()
    .join('\n');
}

function subjectAttributes(certificate: X509Certificate): string[] {
  return certificate.subject.split('\n').filter((p) => p !== '');
}

/** A certificate's subject as one line, attributes in certificate order: `CN=deploy,O=Example`. */
export function subjectLine(certificate: X509Certificate): string {
  return subjectAttributes(certificate)
    .map((a) => a.replace(/\\/g, '\\\\').replace(/,/g, '\\,'))
    .join(',');
}

/** A certificate's subject alternative names, as `DNS:x`, `URI:y`, `email:z`, `IP:192.0.2.1`. */
export function subjectAltNames(certificate: X509Certificate): string[] {
  const text = certificate.subjectAltName;
  if (text === undefined) return [];
  const out: string[] = [];
  // Entries are separated by ", "; a value with special characters is a JSON string.
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of text.matchAll(re)) {
    const kind = (m[1] ?? '').trim();
    const raw = m[2] ?? '';
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = String(JSON.parse(raw));
      } catch {
        value = raw;
      }
    }
    out.push(`${normalizeSanKind(kind)}:${value}`);
  }
  return out;
}

function normalizeSanKind(kind: string): string {
  const k = kind.trim();
  if (/^ip( address)?$/i.test(k)) return 'IP';
  if (/^email$/i.test(k)) return 'email';
  return k.toUpperCase();
}

/** A configured SAN written as the certificate writes it (`IP Address:` and `ip:` are `IP:`). */
export function sanKey(san: string): string {
  const i = san.indexOf(':');
  if (i === -1) return san;
  return `${normalizeSanKind(san.slice(0, i))}:${san.slice(i + 1).trim()}`;
}

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
  private readonly bySubject = new Map<string, { readonly name: string; readonly scope: Scope }>();
  private readonly bySan = new Map<string, { readonly name: string; readonly scope: Scope }>();

  constructor(tokens: readonly TokenEntry[], certificates: readonly ClientCertificateEntry[] = []) {
    certificates.forEach((c, i) => {
      if (!c || typeof c.name !== 'string' || c.name === '')
        throw new TypeError(`clientCertificates[${i}].name must be a non-empty string`);
      if (c.scope !== 'read' && c.scope !== 'write')
        throw new TypeError(`clientCertificates[${i}].scope must be "read" or "write"`);
      const entry = { name: c.name, scope: c.scope };
      if (typeof c.subject === 'string' && c.subject !== '')
        this.bySubject.set(subjectKey(parseDn(c.subject)), entry);
      else if (typeof c.san === 'string' && c.san !== '') this.bySan.set(sanKey(c.san), entry);
      else throw new TypeError(`clientCertificates[${i}] must name a subject or a san`);
    });
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

  /** How many client certificate entries are configured. */
  get certificates(): number {
    return this.bySubject.size + this.bySan.size;
  }

  /**
   * The caller behind a request: its token when it sends one (Authorization), else its
   * verified client certificate, else nothing (`missing`, or why the certificate is refused).
   */
  authenticate(credentials: Credentials): AuthResult {
    const { authorization, certificate, certificateError } = credentials;
    if (authorization !== undefined && authorization.trim() !== '') return this.check(authorization);
    if (certificate !== undefined) return this.checkCertificate(certificate);
    if (certificateError !== undefined)
      return { ok: false, reason: 'certificate_rejected', detail: certificateError };
    return { ok: false, reason: 'missing' };
  }

  /** A verified client certificate: the entry naming its subject, else one naming one of its SANs. */
  checkCertificate(certificate: X509Certificate): AuthResult {
    const subject = subjectLine(certificate);
    const found =
      this.bySubject.get(subjectKey(subjectAttributes(certificate))) ??
      subjectAltNames(certificate)
        .map((n) => this.bySan.get(n))
        .find((e) => e !== undefined);
    if (!found) return { ok: false, reason: 'certificate_unknown' };
    return { ok: true, name: found.name, scope: found.scope, identity: subject };
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
    return found ? { ok: true, ...found, identity: found.name } : { ok: false, reason: 'invalid' };
  }

  /** Whether a caller with `scope` may perform an operation needing `needed`. */
  static allows(scope: Scope, needed: Scope): boolean {
    return needed === 'read' || scope === 'write';
  }
}

/** The message for a refused certificate (both doors say the same). */
export function certificateRefusal(
  result: Extract<AuthResult, { ok: false }>,
  who: 'request' | 'call',
): string | undefined {
  if (result.reason === 'certificate_rejected')
    return `the client certificate was not accepted (${result.detail ?? 'not verified'}): use one signed by the configured client CA and still valid, or a bearer token`;
  if (result.reason === 'certificate_unknown')
    return `the client certificate is valid but no clientCertificates entry names its subject or a subject alternative name: add one, or send this ${who} with a bearer token`;
  return undefined;
}
