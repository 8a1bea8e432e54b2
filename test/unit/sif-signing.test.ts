/**
 * SIF signatures against Sylabs' own reference images and keys
 * (test/fixtures/signing, from github.com/sylabs/sif test/images and
 * test/keys, written by test/images/gen_sifs.go). The format is defined by
 * sylabs/sif pkg/integrity (sign.go, verify.go, metadata.go, dsse.go,
 * clearsign.go, digest.go) and pkg/sif (add.go, create.go, descriptor.go).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DESCRIPTOR_SIZE } from '../../src/sif/layout.js';
import { loadIntegrityImage } from '../../src/sif/integrity/image.js';
import { addVerifyKeys, parseSigningKey } from '../../src/sif/integrity/keys.js';
import { type SigningKey, signSif } from '../../src/sif/integrity/sign.js';
import { type VerifyKeys, type VerifyOptions, verifySif } from '../../src/sif/integrity/verify.js';
import { ROOT, tempDir } from '../helpers.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'signing');
const fix = (f: string) => path.join(FIX, f);
const KEYS = path.join(FIX, 'keys');
/** gen_sifs.go: OptSignWithTime(2020-06-30T00:01:56Z), OptSignDeterministic, OptSignWithoutPGPSignatureSalt. */
const REF_TIME = new Date('2020-06-30T00:01:56Z');

async function keysFrom(...files: string[]): Promise<VerifyKeys> {
  const k: VerifyKeys = { dsse: [], pgp: [] };
  for (const f of files) await addVerifyKeys(await fs.readFile(path.join(KEYS, f), 'utf8'), f, k);
  return k;
}

async function signingKey(file: string): Promise<SigningKey> {
  return parseSigningKey(await fs.readFile(path.join(KEYS, file), 'utf8'), file);
}

async function verifyFile(file: string, keys: VerifyKeys, opts?: VerifyOptions) {
  return verifySif(await loadIntegrityImage(file), keys, opts);
}

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-sign-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function copyOf(name: string): Promise<string> {
  const to = path.join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
  await fs.copyFile(fix(name), to);
  await fs.chmod(to, 0o644);
  return to;
}

describe('verify: the reference images', () => {
  it.each([
    ['one-group-signed-dsse.sif', 'ed25519-public.pem', [1]],
    ['one-group-signed-dsse.sif', 'rsa-public.pem', [1]],
    ['two-groups-signed-dsse.sif', 'ed25519-public.pem', [1, 2]],
    ['two-groups-signed-dsse.sif', 'rsa-public.pem', [1, 2]],
    ['one-group-signed-pgp.sif', 'private.asc', [1]],
    ['two-groups-signed-pgp.sif', 'private.asc', [1, 2]],
  ])('%s verifies with %s', async (image, key, groups) => {
    const r = await verifyFile(fix(image), await keysFrom(key));
    expect(r.problems).toEqual([]);
    expect(r.signatures.flatMap((s) => s.problems)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.groups.map((g) => [g.group, g.ok])).toEqual(groups.map((g) => [g, true]));
  });

  it('names the signer: DSSE by the key fingerprint, OpenPGP by fingerprint, user id and time', async () => {
    const d = await verifyFile(fix('two-groups-signed-dsse.sif'), await keysFrom('ed25519-public.pem'));
    // keyids in the reference envelope (siftool dump 4 two-groups-signed-dsse.sif)
    expect(d.signatures.map((s) => [s.id, s.format, s.linkedGroup, s.signers.map((x) => x.fingerprint), s.claimedBy, s.covers, s.time])).toEqual([
      [4, 'dsse', 1, ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs'], ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs', 'SHA256:BhCwr7qZulYcOMSl2Jt2DuYHxHNnN6th4NdMqR/PGa4'], [1, 2], null],
      [5, 'dsse', 2, ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs'], ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs', 'SHA256:BhCwr7qZulYcOMSl2Jt2DuYHxHNnN6th4NdMqR/PGa4'], [3], null],
    ]);
    const p = await verifyFile(fix('one-group-signed-pgp.sif'), await keysFrom('private.asc'));
    expect(p.signatures[0]).toMatchObject({ format: 'pgp', signers: [{ fingerprint: '12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84', userId: 'Unit Test <unit@test.com>' }], time: '2020-06-30T00:01:56.000Z', covers: [1, 2], verified: [1, 2] });
  });

  it.each([
    ['two-groups-signed-dsse.sif', 'ecdsa-public.pem'],
    ['one-group-signed-dsse.sif', 'ecdsa-public.pem'],
  ])('%s is rejected with the wrong key (%s)', async (image, key) => {
    const r = await verifyFile(fix(image), await keysFrom(key));
    expect(r.ok).toBe(false);
    expect(r.signatures.every((s) => s.problems.some((p) => p.kind === 'signature' && p.id === s.id))).toBe(true);
  });

  it('an OpenPGP image is rejected with a PEM key only, and a DSSE image with an OpenPGP key only', async () => {
    const a = await verifyFile(fix('one-group-signed-pgp.sif'), await keysFrom('ed25519-public.pem'));
    expect(a.ok).toBe(false);
    expect(a.signatures[0]!.problems[0]!.kind).toBe('no-key');
    const b = await verifyFile(fix('one-group-signed-dsse.sif'), await keysFrom('private.asc'));
    expect(b.ok).toBe(false);
    expect(b.signatures[0]!.problems[0]!.kind).toBe('no-key');
  });

  it('an unsigned image fails: every group reported unsigned', async () => {
    const r = await verifyFile(fix('two-groups.sif'), await keysFrom('ed25519-public.pem'));
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => [p.kind, p.group])).toEqual([
      ['unsigned', 1],
      ['unsigned', 2],
    ]);
  });
});

describe('sign: reproducing the reference images byte for byte', () => {
  // gen_sifs.go signs the unsigned image with OptSignWithSigner(ed25519, rsa):
  // one envelope per group holding both signatures, ed25519 first. ed25519
  // and RSA PKCS#1 v1.5 are deterministic, so the bytes must match exactly.
  it.each([
    ['one-group.sif', 'one-group-signed-dsse.sif'],
    ['two-groups.sif', 'two-groups-signed-dsse.sif'],
  ])('DSSE: %s signed by ed25519 + RSA equals %s', async (unsigned, signed) => {
    const file = await copyOf(unsigned);
    const ed = (await signingKey('ed25519-private.pem')) as Extract<SigningKey, { kind: 'dsse' }>;
    const rsa = (await signingKey('rsa-private.pem')) as Extract<SigningKey, { kind: 'dsse' }>;
    const out = await signSif(file, { kind: 'dsse', keys: [...ed.keys, ...rsa.keys] }, { time: REF_TIME, deterministic: true });
    expect(out.map((o) => o.group)).toEqual(unsigned === 'one-group.sif' ? [1] : [1, 2]);
    const ours = await fs.readFile(file);
    const ref = await fs.readFile(fix(signed));
    expect(ours.length).toBe(ref.length);
    expect(ours.equals(ref)).toBe(true);
  });

  // OpenPGP: go-crypto writes a v4 text signature with hashed subpackets
  // creation time (critical), issuer key id, issuer fingerprint; openpgp.js's
  // SignaturePacket writes the same ones in the same order, RSA PKCS#1 v1.5 is
  // deterministic, and with the salt notation off (OptSignWithoutPGPSignatureSalt)
  // the packet, and so the whole image, comes out identical too.
  it.each([
    ['one-group.sif', 'one-group-signed-pgp.sif'],
    ['two-groups.sif', 'two-groups-signed-pgp.sif'],
  ])('OpenPGP: %s signed by private.asc equals %s', async (unsigned, signed) => {
    const file = await copyOf(unsigned);
    await signSif(file, await signingKey('private.asc'), { time: REF_TIME, deterministic: true, pgpSalt: false });
    expect((await fs.readFile(file)).equals(await fs.readFile(fix(signed)))).toBe(true);
  });

  // With the salt notation on (apptainer's default) the bytes differ from run
  // to run, so equality can't be the test. What go-crypto checks when apptainer
  // verifies (integrity/clearsign.go verifyMessage ->
  // openpgp.CheckDetachedSignatureAndHash; go-crypto openpgp/read.go
  // verifyDetachedSignature + checkMessageSignatureDetails): the clear-sign frame
  // decodes; the hash is SHA-224/256/384/512; the issuer key id names a key in
  // the keyring; the signature is valid over the canonical text; the key is
  // neither revoked nor expired and the signature not expired, as of now; the
  // critical notations are known (the salt notation is not critical); and
  // integrity/verify.go then requires the descriptor's fingerprint to be the
  // signer's primary key fingerprint. verifyClearsigned makes each of those
  // checks; below they are also asserted one by one on the packet we wrote.
  it('OpenPGP with salt: passes the checks go-crypto and verify.go make', async () => {
    const file = await copyOf('one-group.sif');
    const key = await signingKey('private.asc');
    await signSif(file, key, { time: REF_TIME });
    const img = await loadIntegrityImage(file);
    const sigDesc = img.descriptors.find((d) => d.d.dataType === 0x4005)!;
    const text = (await fs.readFile(file)).subarray(Number(sigDesc.d.offset), Number(sigDesc.d.offset + sigDesc.d.size)).toString();
    expect(text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{"version":1,')).toBe(true);
    const openpgp = await import('openpgp');
    const msg = await openpgp.readCleartextMessage({ cleartextMessage: text });
    const sig = (msg as unknown as { signature: { packets: InstanceType<typeof openpgp.SignaturePacket>[] } }).signature.packets[0]!;
    expect(sig.hashAlgorithm).toBe(openpgp.enums.hash.sha256);
    expect(sig.issuerKeyID.toHex()).toBe('a20c27ee7ff7ba84');
    expect(sig.created?.toISOString()).toBe(REF_TIME.toISOString());
    expect((sig as unknown as { rawNotations: { name: string; critical: boolean }[] }).rawNotations.map((n) => [n.name, n.critical])).toEqual([['salt@notations.openpgpjs.org', false]]);
    expect(sigDesc.raw.subarray(205, 225).toString('hex').toUpperCase()).toBe('12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84');
    const r = await verifySif(img, await keysFrom('private.asc'));
    expect(r.ok).toBe(true);
    // and descriptors carry the signing time (not deterministic here)
    expect(new Date(Number(sigDesc.d.createdAt) * 1000).toISOString()).toBe(REF_TIME.toISOString());
  });

  it('ECDSA (randomised): our signature verifies, the keyid is the key fingerprint', async () => {
    const file = await copyOf('two-groups.sif');
    await signSif(file, await signingKey('ecdsa-private.pem'));
    const r = await verifyFile(file, await keysFrom('ecdsa-public.pem'));
    expect(r.ok).toBe(true);
    expect(r.signatures).toHaveLength(2);
    expect(r.signatures[0]!.claimedBy).toEqual(r.signatures[0]!.signers.map((s) => s.fingerprint));
    expect((await verifyFile(file, await keysFrom('ed25519-public.pem'))).ok).toBe(false);
  });
});

describe('verify: tampering is reported by object id', () => {
  async function flipped(image: string, offset: number): Promise<string> {
    const file = await copyOf(image);
    const h = await fs.open(file, 'r+');
    const b = Buffer.alloc(1);
    await h.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0x01;
    await h.write(b, 0, 1, offset);
    await h.close();
    return file;
  }
  const descOffset = (id: number) => 4096 + (id - 1) * DESCRIPTOR_SIZE;

  for (const [image, key] of [
    ['two-groups-signed-dsse.sif', 'ed25519-public.pem'],
    ['two-groups-signed-pgp.sif', 'private.asc'],
  ] as const) {
    describe(image, () => {
      it('header: a byte of the image id', async () => {
        const r = await verifyFile(await flipped(image, 50), await keysFrom(key));
        expect(r.ok).toBe(false);
        // both groups' signatures cover the header
        expect(r.signatures.map((s) => s.problems.map((p) => p.kind))).toEqual([['header'], ['header']]);
      });

      it('header: a byte of the launch script', async () => {
        const r = await verifyFile(await flipped(image, 3), await keysFrom(key));
        expect(r.signatures.every((s) => s.problems.some((p) => p.kind === 'header'))).toBe(true);
      });

      it.each([1, 2, 3])('descriptor %i: a byte of its name', async (id) => {
        const r = await verifyFile(await flipped(image, descOffset(id) + 73), await keysFrom(key));
        expect(r.ok).toBe(false);
        const all = r.signatures.flatMap((s) => s.problems);
        expect(all.map((p) => [p.kind, p.id])).toEqual([['descriptor', id]]);
        expect(all[0]!.message).toContain(`: ${id}`);
      });

      it.each([1, 2, 3])("object %i: a byte of its data", async (id) => {
        const img = await loadIntegrityImage(fix(image));
        const d = img.descriptors.find((x) => x.d.id === id)!.d;
        const r = await verifyFile(await flipped(image, Number(d.offset + d.size / 2n)), await keysFrom(key));
        expect(r.ok).toBe(false);
        expect(r.signatures.flatMap((s) => s.problems).map((p) => [p.kind, p.id])).toEqual([['object', id]]);
      });

      it.each([4, 5])('signature object %i: a byte of its data', async (id) => {
        const img = await loadIntegrityImage(fix(image));
        const d = img.descriptors.find((x) => x.d.id === id)!.d;
        const data = (await fs.readFile(fix(image))).subarray(Number(d.offset), Number(d.offset + d.size)).toString('latin1');
        // DSSE: inside the first ("sig" of the ed25519 key we verify with; the envelope
        // passes with one valid signature, as sigstore's threshold-1 verifier does);
        // OpenPGP: inside the signature packet's base64, before the closing line.
        const at = image.includes('dsse') ? data.indexOf('"sig":"') + 12 : data.length - 60;
        const r = await verifyFile(await flipped(image, Number(d.offset) + at), await keysFrom(key));
        expect(r.ok).toBe(false);
        const bad = r.signatures.filter((s) => !s.ok);
        expect(bad.map((s) => s.id)).toEqual([id]);
        expect(bad[0]!.problems.map((p) => [p.kind, p.id])).toEqual([['signature', id]]);
      });
    });
  }
});

describe('verify: the legacy format', () => {
  it('is read and reported as legacy, not accepted without --legacy-insecure', async () => {
    const r = await verifyFile(fix('one-group-signed-legacy.sif'), await keysFrom('private.asc'));
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'legacy', group: 1 })]);
    expect(r.signatures).toEqual([expect.objectContaining({ id: 3, format: 'legacy', linkedObject: 2, hash: 'SHA-384', checked: false, ok: false })]);
  });

  it('with legacy (apptainer --legacy-insecure): the primary partition signature verifies', async () => {
    const r = await verifyFile(fix('one-group-signed-legacy.sif'), await keysFrom('private.asc'), { legacy: true });
    expect(r.problems).toEqual([]);
    expect(r.signatures).toEqual([expect.objectContaining({ id: 3, format: 'legacy', covers: [2], verified: [2], ok: true, signers: [expect.objectContaining({ fingerprint: '12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84' })] })]);
    expect(r.ok).toBe(true);
  });

  it('with legacy: a flipped data byte in the signed object is reported for it', async () => {
    const file = await copyOf('one-group-signed-legacy.sif');
    const h = await fs.open(file, 'r+');
    await h.write(Buffer.from([0x00]), 0, 1, 36865);
    await h.close();
    const r = await verifyFile(file, await keysFrom('private.asc'), { legacy: true });
    expect(r.ok).toBe(false);
    expect(r.signatures[0]!.problems.map((p) => [p.kind, p.id])).toEqual([['object', 2]]);
  });
});

describe('keys', () => {
  it.each(['P-384', 'P-521'])('ECDSA %s: sign and verify round trip; another curve is refused as a key type', async (curve) => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const file = await copyOf('one-group.sif');
    await signSif(file, await parseSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 'k.pem'));
    const keys: VerifyKeys = { dsse: [], pgp: [] };
    await addVerifyKeys(publicKey.export({ type: 'spki', format: 'pem' }) as string, 'k.pub', keys);
    expect((await verifySif(await loadIntegrityImage(file), keys)).ok).toBe(true);
    const k256 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(parseSigningKey(k256, 'k1.pem')).rejects.toThrow(/k1.pem: ECDSA curve secp256k1 is not supported/);
  });

  it('an encrypted OpenPGP key needs its passphrase; with it the signature verifies', async () => {
    const openpgp = await import('openpgp');
    const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Enc Test', email: 'enc@test.org' }], passphrase: 'pw', format: 'armored' });
    const { PassphraseNeeded } = await import('../../src/sif/integrity/keys.js');
    await expect(parseSigningKey(privateKey, 'enc.asc')).rejects.toBeInstanceOf(PassphraseNeeded);
    await expect(parseSigningKey(privateKey, 'enc.asc', 'nope')).rejects.toThrow(/wrong passphrase/);
    const file = await copyOf('two-groups.sif');
    await signSif(file, await parseSigningKey(privateKey, 'enc.asc', 'pw'));
    const keys: VerifyKeys = { dsse: [], pgp: [] };
    await addVerifyKeys(publicKey, 'enc.pub.asc', keys);
    const r = await verifySif(await loadIntegrityImage(file), keys);
    expect(r.ok).toBe(true);
    expect(r.signatures.map((s) => s.signers[0]?.userId)).toEqual(['Enc Test <enc@test.org>', 'Enc Test <enc@test.org>']);
  });
});

describe('sign: atomic', () => {
  it('an interrupt (aborted signal) ends with exit code 130, the image unchanged, no temp file left', async () => {
    const file = await copyOf('two-groups.sif');
    const before = await fs.readFile(file);
    const controller = new AbortController();
    controller.abort();
    await expect(signSif(file, await signingKey('ed25519-private.pem'), { signal: controller.signal })).rejects.toMatchObject({ exitCode: 130 });
    expect((await fs.readFile(file)).equals(before)).toBe(true);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps the file mode', async () => {
    const file = await copyOf('one-group.sif');
    await fs.chmod(file, 0o640);
    await signSif(file, await signingKey('ed25519-private.pem'));
    expect((await fs.stat(file)).mode & 0o777).toBe(0o640);
  });
});
