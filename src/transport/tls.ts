/**
 * TLS for the two TCP doors: the server's certificate and key, and the CA that
 * signs client certificates (mTLS). The files are read once at start and again
 * on every {@link TlsFiles.reload} (SIGHUP): a new certificate is used for new
 * connections while open ones keep going; files that do not load (a key that
 * does not match, a half-written file) are refused and the old ones stay.
 *
 * Client certificates are requested but not required by the TLS layer: a client
 * without one may still authenticate with a token, and a certificate that does not
 * verify (another CA, expired) authenticates no one (auth.ts decides, with the
 * verification result the doors read from the connection).
 */

import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createSecureContext, type TLSSocket } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';

export interface TlsFilePaths {
  readonly cert: string;
  readonly key: string;
  readonly clientCa: string | undefined;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

/** TLS files that do not load: the message names the file and says why, in one sentence. */
export class TlsError extends Error {
  override readonly name = 'TlsError';
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'error';
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'permission denied' : code;
    throw new TlsError(`the TLS ${what} ${path} cannot be read: ${why}`);
  }
}

/** Reads and checks the files (certificate and key belong together, PEM parses). */
export function loadTls(paths: TlsFilePaths): TlsMaterial {
  const cert = read(paths.cert, 'certificate');
  const key = read(paths.key, 'key');
  const ca = paths.clientCa === undefined ? undefined : read(paths.clientCa, 'client CA');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new TlsError(
      `the TLS certificate ${paths.cert} and key ${paths.key} cannot be used together (${why.replace(/\.$/, '')})`,
    );
  }
  if (ca !== undefined) {
    try {
      createSecureContext({ ca });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new TlsError(
        `the TLS client CA ${paths.clientCa} is not a PEM certificate (${why.replace(/\.$/, '')})`,
      );
    }
  }
  return { cert, key, ca };
}

/** Options of the REST door's https server. */
export function httpsOptions(material: TlsMaterial): {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: false;
  minVersion: 'TLSv1.2';
} {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca ? { ca: material.ca } : {}),
    requestCert: material.ca !== undefined,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  };
}

/**
 * The certificate material of both doors, re-readable. The gRPC door reads it through
 * grpc-js' certificate-provider credentials; the REST door through `onChange`.
 */
export class TlsFiles implements grpc.experimental.CertificateProvider {
  private material: TlsMaterial;
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private readonly changeListeners = new Set<(m: TlsMaterial) => void>();

  constructor(
    readonly paths: TlsFilePaths,
    material: TlsMaterial = loadTls(paths),
  ) {
    this.material = material;
  }

  get current(): TlsMaterial {
    return this.material;
  }

  /** Re-reads the files; on failure keeps the current ones and throws {@link TlsError}. */
  reload(): void {
    const next = loadTls(this.paths);
    this.material = next;
    for (const l of this.changeListeners) l(next);
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    if (next.ca) for (const l of this.caListeners) l({ caCertificate: next.ca });
  }

  /** Called with the new material after each successful reload. */
  onChange(listener: (m: TlsMaterial) => void): void {
    this.changeListeners.add(listener);
  }

  /** gRPC server credentials: TLS, requesting (not requiring) a client certificate when a client CA is set. */
  grpcCredentials(): grpc.ServerCredentials {
    // grpc-js (about 40 ms to load) is loaded here, not with this module: the configuration
    // loads this module before the service starts reading the kernel.
    const grpcJs = createRequire(import.meta.url)('@grpc/grpc-js') as typeof grpc;
    return grpcJs.experimental.createCertificateProviderServerCredentials(
      this,
      this.material.ca ? this : null,
      false,
    );
  }

  // grpc-js calls these when a server binds; the first update must come after it has subscribed.
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    const ca = this.material.ca;
    if (ca) process.nextTick(listener, { caCertificate: ca });
  }
  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    const { cert, key } = this.material;
    process.nextTick(listener, { certificate: cert, privateKey: key });
  }
  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}

/** What a REST connection's TLS layer says about the client certificate. */
export function peerCertificate(socket: unknown): {
  certificate?: X509Certificate;
  certificateError?: string;
} {
  if (!isTlsSocket(socket)) return {};
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return {};
  if (socket.authorized) return { certificate: cert };
  const why = socket.authorizationError;
  return { certificateError: typeof why === 'string' ? why : String(why ?? 'not verified') };
}

function isTlsSocket(socket: unknown): socket is TLSSocket {
  return (
    typeof socket === 'object' &&
    socket !== null &&
    'encrypted' in socket &&
    socket.encrypted === true &&
    'getPeerX509Certificate' in socket
  );
}
