/**
 * Key material for signing and verifying, from the files apptainer uses:
 * an armored OpenPGP key (`apptainer key export [--secret]`) or a PEM key
 * (`apptainer sign --key` / `verify --key`: ed25519, ECDSA P-256/384/521, RSA).
 */
import { type KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { loadOpenpgp } from './clearsign.js';
import { InputError } from '../../errors.js';
import type { SigningKey } from './sign.js';
import type { VerifyKeys } from './verify.js';

const PGP_PRIVATE = '-----BEGIN PGP PRIVATE KEY BLOCK-----';
const PGP_PUBLIC = '-----BEGIN PGP PUBLIC KEY BLOCK-----';
const KEY_HINT = 'give an armored OpenPGP key (apptainer key export) or a PEM key (ed25519, ECDSA or RSA, as apptainer sign/verify --key take)';

/** Thrown when the key is encrypted and no passphrase was given; the caller asks for one. */
export class PassphraseNeeded extends Error {}

function checkKeyType(k: KeyObject, file: string): void {
  const t = k.asymmetricKeyType;
  if (t === 'ed25519' || t === 'rsa') return;
  if (t === 'ec') {
    const crv = k.export({ format: 'jwk' }).crv;
    if (crv === 'P-256' || crv === 'P-384' || crv === 'P-521') return;
    throw new InputError(`${file}: ECDSA curve ${crv ?? 'unknown'} is not supported (P-256, P-384, P-521 are)`);
  }
  throw new InputError(`${file}: ${t ?? 'unknown'} keys are not supported`, { hint: KEY_HINT });
}

/** A private key for `sign`. Throws PassphraseNeeded when it is encrypted and no passphrase is given. */
export async function parseSigningKey(text: string, file: string, passphrase?: string): Promise<SigningKey> {
  if (text.includes(PGP_PRIVATE)) {
    const openpgp = await loadOpenpgp();
    let key: openpgp.PrivateKey;
    try {
      key = await openpgp.readPrivateKey({ armoredKey: text });
    } catch (err) {
      throw new InputError(`${file}: not a readable OpenPGP private key: ${(err as Error).message}`, { hint: KEY_HINT });
    }
    if (!key.isDecrypted()) {
      if (passphrase === undefined) throw new PassphraseNeeded();
      try {
        key = await openpgp.decryptKey({ privateKey: key, passphrase });
      } catch {
        throw new InputError(`${file}: wrong passphrase for the OpenPGP key ${key.getFingerprint().toUpperCase()}`);
      }
    }
    return { kind: 'pgp', key };
  }
  if (text.includes(PGP_PUBLIC)) throw new InputError(`${file} is an OpenPGP public key; signing needs the private key`, { hint: 'export it with `apptainer key export --secret` (or gpg --export-secret-keys --armor)' });
  if (!text.includes('-----BEGIN')) throw new InputError(`${file}: not a key file (no PEM or armored OpenPGP block)`, { hint: KEY_HINT });
  if (/-----BEGIN (RSA |EC )?PUBLIC KEY-----/.test(text)) throw new InputError(`${file} is a public key; signing needs the private key`);
  const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || text.includes('Proc-Type: 4,ENCRYPTED');
  if (encrypted && passphrase === undefined) throw new PassphraseNeeded();
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase === undefined ? { key: text } : { key: text, passphrase });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MISSING_PASSPHRASE' && passphrase === undefined) throw new PassphraseNeeded();
    if (encrypted) throw new InputError(`${file}: wrong passphrase for the PEM key (or the key is damaged)`);
    throw new InputError(`${file}: not a readable PEM private key: ${(err as Error).message}`, { hint: KEY_HINT });
  }
  checkKeyType(key, file);
  return { kind: 'dsse', keys: [key] };
}

/** Public keys for `verify`, added to `into`. Private key files are accepted too (their public half is used). */
export async function addVerifyKeys(text: string, file: string, into: VerifyKeys): Promise<void> {
  if (text.includes(PGP_PUBLIC) || text.includes(PGP_PRIVATE)) {
    const openpgp = await loadOpenpgp();
    try {
      const keys = await openpgp.readKeys({ armoredKeys: text });
      into.pgp.push(...keys.map((k) => (k.isPrivate() ? k.toPublic() : k)));
    } catch (err) {
      throw new InputError(`${file}: not a readable OpenPGP key: ${(err as Error).message}`, { hint: KEY_HINT });
    }
    return;
  }
  if (!text.includes('-----BEGIN')) throw new InputError(`${file}: not a key file (no PEM or armored OpenPGP block)`, { hint: KEY_HINT });
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text });
  } catch (err) {
    throw new InputError(`${file}: not a readable PEM public key: ${(err as Error).message}`, { hint: KEY_HINT });
  }
  checkKeyType(key, file);
  into.dsse.push(key);
}
