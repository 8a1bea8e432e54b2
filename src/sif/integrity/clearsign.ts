/**
 * OpenPGP clear-signed messages as sylabs/sif pkg/integrity clearsign.go
 * writes them (go-crypto's clearsign.Encode with the entity's primary key).
 * Format (no checksum line, no newline after the last line):
 *
 *   -----BEGIN PGP SIGNED MESSAGE-----
 *   Hash: SHA256
 *
 *   <metadata JSON>
 *   -----BEGIN PGP SIGNATURE-----
 *
 *   <base64 of one v4 text signature packet, 64 per line>
 *   -----END PGP SIGNATURE-----
 *
 * openpgp (openpgp.js) does the cryptography and the packet encoding; only
 * this text frame is ours. The signature packet is made directly rather than
 * through openpgp.sign(), because sylabs signs with the primary key at any
 * given time, while openpgp.sign() refuses a date before the key's newest
 * self-signature (the reference key was re-certified in 2022).
 */
import type * as openpgp from 'openpgp';

type OpenPGP = typeof openpgp;
let loaded: Promise<OpenPGP> | undefined;
/** openpgp is loaded on first use: every other sifpack command starts without it. */
export function loadOpenpgp(): Promise<OpenPGP> {
  loaded ??= import('openpgp');
  return loaded;
}

/** RFC 4880 hash ids (openpgp.enums.hash) → armor header names; what clearsign.go accepts: SHA-2 only. */
const HASH_NAMES: Record<number, string> = { 11: 'SHA224', 8: 'SHA256', 9: 'SHA384', 10: 'SHA512' };
const EXPECTED_HASHES = new Set(Object.keys(HASH_NAMES).map(Number));

/** Lines with trailing spaces and tabs removed (RFC 4880 7.1: what is hashed). */
function canonicalText(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/[ \t\r]+$/, ''))
    .join('\n');
}

// openpgp's typings mark these members private or omit the config
// argument; they are the documented packet API (openpgp.js docs: LiteralDataPacket.setText,
// SignaturePacket.sign(key, data, date, detached, config)).
type TextLiteral = { setText(text: string): void };
type SignWithConfig = (key: openpgp.SecretKeyPacket, data: object, date: Date, detached: boolean, config: openpgp.Config) => Promise<void>;

function literal(openpgp: OpenPGP, text: string): openpgp.LiteralDataPacket {
  const lit = new openpgp.LiteralDataPacket();
  (lit as unknown as TextLiteral).setText(canonicalText(text));
  return lit;
}

/** Clear-signs `text` with the key's primary key. `key` must be decrypted. */
export async function clearsign(text: string, key: openpgp.PrivateKey, date: Date, salted = true): Promise<string> {
  const openpgp = await loadOpenpgp();
  const sig = new openpgp.SignaturePacket();
  sig.signatureType = openpgp.enums.signature.text;
  sig.publicKeyAlgorithm = key.keyPacket.algorithm;
  sig.hashAlgorithm = openpgp.enums.hash.sha256;
  // go-crypto adds a random salt notation unless told not to (sign.go
  // OptSignWithoutPGPSignatureSalt); openpgp.js does the same under this name.
  await (sig.sign as unknown as SignWithConfig).call(sig, key.keyPacket as openpgp.SecretKeyPacket, literal(openpgp, text), date, true, { ...openpgp.config, nonDeterministicSignaturesViaNotation: salted });
  const list = new openpgp.PacketList<openpgp.SignaturePacket>();
  list.push(sig);
  const b64 = Buffer.from(list.write() as Uint8Array).toString('base64');
  const body = b64.match(/.{1,64}/g)!.join('\n');
  // Dash-escape lines that start with "-" (RFC 4880 7.1), as clearsign.Encode does.
  const escaped = text
    .split('\n')
    .map((l) => (l.startsWith('-') ? `- ${l}` : l))
    .join('\n');
  return `-----BEGIN PGP SIGNED MESSAGE-----\nHash: ${HASH_NAMES[sig.hashAlgorithm]}\n\n${escaped}\n-----BEGIN PGP SIGNATURE-----\n\n${body}\n-----END PGP SIGNATURE-----`;
}

/** True when the bytes hold a clear-signed message (clearsign.go isClearsignSignature). */
export function isClearsigned(data: Buffer): boolean {
  return data.subarray(0, 64).toString('latin1').includes('-----BEGIN PGP SIGNED MESSAGE-----');
}

export interface ClearsignCheck {
  plaintext: string;
  fingerprint: string;
  userId: string | undefined;
  created: Date;
}

/** Reads the plaintext without checking anything (to tell legacy from current signatures). */
export async function clearsignedText(data: Buffer): Promise<string | undefined> {
  const openpgp = await loadOpenpgp();
  try {
    const msg = await openpgp.readCleartextMessage({ cleartextMessage: data.toString('utf8') });
    return msg.getText();
  } catch {
    return undefined;
  }
}

/**
 * Verifies a clear-signed message against `keys`, with the checks go-crypto's
 * CheckDetachedSignatureAndHash makes (read.go verifyDetachedSignature and
 * checkMessageSignatureDetails): a SHA-2 hash; a key whose id is the
 * signature's issuer; a valid signature; and, as of now, the key neither
 * revoked nor expired and the signature not expired. Throws Error saying why not.
 */
export async function verifyClearsigned(data: Buffer, keys: openpgp.Key[]): Promise<ClearsignCheck> {
  const openpgp = await loadOpenpgp();
  let msg: openpgp.CleartextMessage;
  try {
    msg = await openpgp.readCleartextMessage({ cleartextMessage: data.toString('utf8') });
  } catch (err) {
    throw new Error(`clear-signed message unreadable: ${(err as Error).message}`);
  }
  const text = msg.getText();
  const packets = (msg as unknown as { signature: openpgp.Signature }).signature.packets as unknown as unknown[];
  const sig = packets.find((p): p is openpgp.SignaturePacket => p instanceof openpgp.SignaturePacket);
  if (!sig) throw new Error('no signature packet in the clear-signed message');
  if (sig.hashAlgorithm === null || !EXPECTED_HASHES.has(sig.hashAlgorithm)) throw new Error(`signature hash algorithm ${String(sig.hashAlgorithm)} is not accepted (SHA-224/256/384/512 are)`);
  const issuer = sig.issuerKeyID;
  const now = new Date();
  let lastError: Error | undefined;
  for (const key of keys) {
    const candidates: { packet: openpgp.PublicKeyPacket | openpgp.SecretKeyPacket | openpgp.PublicSubkeyPacket | openpgp.SecretSubkeyPacket; subkey?: openpgp.Subkey }[] = [];
    if (key.keyPacket.getKeyID().equals(issuer)) candidates.push({ packet: key.keyPacket });
    for (const sk of key.subkeys) if (sk.keyPacket.getKeyID().equals(issuer)) candidates.push({ packet: sk.keyPacket, subkey: sk });
    for (const c of candidates) {
      try {
        // Verify against the signature's own time: the reference signs with fixed past times.
        await sig.verify(c.packet, openpgp.enums.signature.text, literal(openpgp, text), sig.created ?? now, true, openpgp.config);
      } catch (err) {
        lastError = new Error(`signature does not verify with key ${key.getFingerprint().toUpperCase()}: ${(err as Error).message}`);
        continue;
      }
      try {
        await key.verifyPrimaryKey(now);
        if (c.subkey) await c.subkey.verify(now);
      } catch (err) {
        throw new Error(`key ${key.getFingerprint().toUpperCase()} is not valid now: ${(err as Error).message}`);
      }
      if (sig.isExpired(now)) throw new Error('the signature has expired');
      const user = await key.getPrimaryUser(now).catch(() => undefined);
      return { plaintext: text, fingerprint: key.getFingerprint().toUpperCase(), userId: user?.user.userID?.userID, created: sig.created ?? new Date(0) };
    }
  }
  throw lastError ?? new Error(`no given OpenPGP key has the signature's key id ${issuer.toHex().toUpperCase()}`);
}
