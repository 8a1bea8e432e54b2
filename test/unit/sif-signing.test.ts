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
