/**
 * Certificates for the TLS tests, made by `openssl` (argv arrays, no shell) in a temporary
 * folder: a server CA and a server certificate for 127.0.0.1, a client CA with client
 * certificates (a write identity by subject, a read identity by SAN, one nobody maps, an
 * expired one), and a certificate signed by an unrelated CA. EC P-256 keys: quick to make.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
}

export interface TestCerts {
  readonly dir: string;
  readonly serverCa: Pem;
  readonly clientCa: Pem;
  readonly otherCa: Pem;
  /** Server certificate for IP 127.0.0.1 and localhost, signed by serverCa. */
  readonly server: Pem;
  /** CN=deploy,O=Example: mapped to write scope by subject. */
  readonly deploy: Pem;
  /** CN=viewer with SAN DNS:viewer.example: mapped to read scope by SAN. */
  readonly viewer: Pem;
  /** CN=stranger: valid, mapped to nothing. */
  readonly stranger: Pem;
  /** CN=deploy,O=Example but expired. */
  readonly expired: Pem;
  /** CN=deploy,O=Example signed by otherCa. */
  readonly wrongCa: Pem;
  /** Makes another server certificate (for reload tests), signed by serverCa. */
  newServer(name: string): Pem;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-certs-'));
  const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const read = (name: string): Pem => ({
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    certPath: join(dir, `${name}.pem`),
    keyPath: join(dir, `${name}.key`),
  });
  const ca = (name: string, subject: string): Pem => {
    openssl(
      [
        'req',
        '-x509',
        ...keyArgs,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
        '-subj',
        subject,
        '-days',
        '2',
      ],
      dir,
    );
    return read(name);
  };
  const leaf = (name: string, subject: string, signer: string, ext: string, days = '2'): Pem => {
    openssl(['req', ...keyArgs, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${signer}.pem`,
        '-CAkey',
        `${signer}.key`,
        '-CAcreateserial',
        '-days',
        days,
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
    return read(name);
  };
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
  const clientExt = 'extendedKeyUsage=clientAuth';
  const serverCa = ca('server-ca', '/CN=Portcullis test server CA');
  const clientCa = ca('client-ca', '/CN=Portcullis test client CA');
  const otherCa = ca('other-ca', '/CN=Some other CA');
  return {
    dir,
    serverCa,
    clientCa,
    otherCa,
    server: leaf('server', '/CN=portcullis-test-server', 'server-ca', serverExt),
    deploy: leaf('deploy', '/O=Example/CN=deploy', 'client-ca', clientExt),
    viewer: leaf('viewer', '/CN=viewer', 'client-ca', `${clientExt}\nsubjectAltName=DNS:viewer.example`),
    stranger: leaf('stranger', '/CN=stranger', 'client-ca', clientExt),
    expired: leaf('expired', '/O=Example/CN=deploy', 'client-ca', clientExt, '-1'),
    wrongCa: leaf('wrong-ca', '/O=Example/CN=deploy', 'other-ca', clientExt),
    newServer: (name: string) => leaf(name, `/CN=${name}`, 'server-ca', serverExt),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
