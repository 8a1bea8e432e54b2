/**
 * DSSE envelopes as sylabs/sif pkg/integrity dsse.go writes them (through
 * sigstore's dsse.WrapMultiSigner). Format (Go's json.Marshal, no spaces):
 *
 *   {"payloadType":"application/vnd.sylabs.sif-metadata+json","payload":"<base64 metadata>",
 *    "signatures":[{"keyid":"SHA256:<ssh fingerprint>","sig":"<base64>"}, ...]}
 *
 * Each signature is over PAE = "DSSEv1 <len type> <type> <len payload> <payload>".
 * ed25519 signs PAE itself; RSA (PKCS#1 v1.5) and ECDSA (ASN.1 DER) sign its
 * SHA-256 (the hash apptainer passes, and the descriptor's hash type records).
 * The keyid is the key's OpenSSH SHA256 fingerprint (checked against the
 * reference images' envelopes).
 */
import { type KeyObject, createHash, createPublicKey, sign, verify } from 'node:crypto';

export const METADATA_MEDIA_TYPE = 'application/vnd.sylabs.sif-metadata+json';

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export function pae(payloadType: string, payload: Buffer): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function sshMpint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return sshString(v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

const CURVES: Record<string, string> = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' };

/** The key's OpenSSH "SHA256:..." fingerprint: sigstore's DSSE keyid, and how we name a DSSE signer. */
export function keyFingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  let wire: Buffer;
  if (pub.asymmetricKeyType === 'ed25519') {
    wire = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(Buffer.from(jwk.x!, 'base64url'))]);
  } else if (pub.asymmetricKeyType === 'rsa') {
    wire = Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshMpint(Buffer.from(jwk.e!, 'base64url')), sshMpint(Buffer.from(jwk.n!, 'base64url'))]);
  } else if (pub.asymmetricKeyType === 'ec' && jwk.crv && CURVES[jwk.crv]) {
    const curve = CURVES[jwk.crv]!;
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    wire = Buffer.concat([sshString(Buffer.from(`ecdsa-sha2-${curve}`)), sshString(Buffer.from(curve)), sshString(point)]);
  } else {
    throw new RangeError(`unsupported key type ${pub.asymmetricKeyType}`);
  }
  return `SHA256:${createHash('sha256').update(wire).digest('base64').replace(/=+$/, '')}`;
}

/** The node digest name for RSA/ECDSA (ed25519 hashes internally: null). */
function digestFor(key: KeyObject, hash: string): string | null {
  return key.asymmetricKeyType === 'ed25519' ? null : hash;
}

/** Signs `payload` with every key into one envelope (dsse.WrapMultiSigner), keys in the given order. */
export function signEnvelope(payload: Buffer, keys: KeyObject[], hash = 'sha256'): string {
  const message = pae(METADATA_MEDIA_TYPE, payload);
  const signatures = keys.map((k) => ({
    keyid: keyFingerprint(k),
    sig: sign(digestFor(k, hash), message, k.asymmetricKeyType === 'ec' ? { key: k, dsaEncoding: 'der' } : k).toString('base64'),
  }));
  const env: DsseEnvelope = { payloadType: METADATA_MEDIA_TYPE, payload: payload.toString('base64'), signatures };
  return JSON.stringify(env);
}

/** Parses an envelope; undefined when the bytes are not a SIF-metadata DSSE envelope (dsse.go isDSSESignature). */
export function parseEnvelope(data: Buffer): DsseEnvelope | undefined {
  try {
    const e = JSON.parse(data.toString('utf8')) as Partial<DsseEnvelope>;
    if (e.payloadType !== METADATA_MEDIA_TYPE) return undefined;
    return { payloadType: e.payloadType, payload: typeof e.payload === 'string' ? e.payload : '', signatures: Array.isArray(e.signatures) ? e.signatures : [] };
  } catch {
    return undefined;
  }
}

function b64(s: unknown): Buffer | undefined {
  if (typeof s !== 'string') return undefined;
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0) return Buffer.from(s, 'base64');
  if (/^[A-Za-z0-9_-]*={0,2}$/.test(s)) return Buffer.from(s, 'base64url');
  return undefined;
}

export interface EnvelopeCheck {
  payload: Buffer;
  /** Fingerprints of the given keys that made a valid signature in the envelope. */
  acceptedKeys: string[];
  /** keyids the envelope names (for a report when no key matched). */
  keyids: string[];
}

/**
 * Verifies an envelope against `keys` with threshold 1 (sigstore
 * WrapMultiVerifierWithOpts(..., 1, ...)): at least one signature must be
 * valid under one of the keys. Throws Error saying why not.
 */
export function verifyEnvelope(env: DsseEnvelope, keys: KeyObject[], hash = 'sha256'): EnvelopeCheck {
  const payload = b64(env.payload);
  if (!payload) throw new Error('DSSE payload is not base64');
  const message = pae(env.payloadType, payload);
  const keyids = env.signatures.map((s) => String(s?.keyid ?? ''));
  const accepted = new Set<string>();
  for (const s of env.signatures) {
    const sig = b64(s?.sig);
    if (!sig) continue;
    for (const k of keys) {
      let ok = false;
      try {
        ok = verify(digestFor(k, hash), message, k.asymmetricKeyType === 'ec' ? { key: k, dsaEncoding: 'der' } : k, sig);
      } catch {
        ok = false;
      }
      if (ok) accepted.add(keyFingerprint(k));
    }
  }
  if (accepted.size === 0) throw new Error(`no signature in the DSSE envelope verifies with the given key(s) (envelope signed by ${keyids.join(', ') || 'nobody'})`);
  return { payload, acceptedKeys: [...accepted], keyids };
}
