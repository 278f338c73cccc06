// Throwaway X.509 material for TLS tests, made with the openssl CLI: a CA, a server cert, client certs, a rogue CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  /** A second CA that signed none of the above (rogue clients' certificates only). */
  rogueCa: string;
  serverCert: string;
  serverKey: string;
  /** Client certificate for `name` signed by the CA: { cert, key }. */
  client(name: string, opts?: { rogue?: boolean; san?: boolean }): { cert: string; key: string };
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'am-pki-'));
  const p = (f: string): string => join(dir, f);
  const ca = (name: string): void =>
    openssl([
      'req',
      '-x509',
      ...EC,
      '-keyout',
      p(`${name}.key`),
      '-out',
      p(`${name}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  ca('ca');
  ca('rogue-ca');
  const leaf = (file: string, cn: string, exts: string[], signer: string): void =>
    openssl([
      'req',
      '-x509',
      ...EC,
      '-keyout',
      p(`${file}.key`),
      '-out',
      p(`${file}.pem`),
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-CA',
      p(`${signer}.pem`),
      '-CAkey',
      p(`${signer}.key`),
      '-addext',
      'basicConstraints=CA:FALSE',
      ...exts.flatMap((e) => ['-addext', e]),
    ]);
  leaf('server', 'localhost', ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth'], 'ca');
  return {
    dir,
    ca: p('ca.pem'),
    rogueCa: p('rogue-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    client(name, opts = {}) {
      const file = `client-${name}${opts.rogue ? '-rogue' : ''}${opts.san === false ? '-nosan' : ''}`;
      const exts = ['extendedKeyUsage=clientAuth', ...(opts.san === false ? [] : [`subjectAltName=DNS:${name}`])];
      leaf(file, name, exts, opts.rogue ? 'rogue-ca' : 'ca');
      return { cert: p(`${file}.pem`), key: p(`${file}.key`) };
    },
  };
}
