/**
 * `sifpack sign` / `sifpack verify` / `inspect` through the built CLI, on a
 * SIF sifpack's own writer makes, cross-checked with Sylabs' siftool
 * (test/integration/sign-apptainer.test.ts does the same against apptainer).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIntegrityImage } from '../../src/sif/integrity/image.js';
import { copyInto, makeSmallSif } from '../fixtures/sif-maker.js';
import { ROOT, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'signing');
const KEY = (f: string) => path.join(FIX, 'keys', f);


let dir: string;
let base: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-sign-e2e-');
  base = await makeSmallSif(dir);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const copyOf = (src: string, name: string) => copyInto(dir, src, name);

describe('done when', { timeout: 180_000 }, () => {
  it('sifpack verify two-groups-signed-dsse.sif --key ed25519-public.pem passes', async () => {
    const r = await sifpack(['verify', 'test/fixtures/signing/two-groups-signed-dsse.sif', '--key', 'test/fixtures/signing/keys/ed25519-public.pem']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('signature object 4 (DSSE, SHA-256) over group 1: ok');
    expect(r.stdout).toContain('signature object 5 (DSSE, SHA-256) over group 2: ok');
    expect(r.stdout.trimEnd().endsWith('verified')).toBe(true);
  });
});

describe('round trip on a SIF sifpack wrote', { timeout: 180_000 }, () => {
  it('sign (ed25519), siftool lists the Signature linked to group 1, verify passes; then a second signer (OpenPGP): both reported', async () => {
    const img = await copyOf(base, 'rt.sif');
    const s1 = await sifpack(['sign', img, '--key', KEY('ed25519-private.pem'), '--json']);
    expect(s1.code).toBe(0);
    expect(JSON.parse(s1.stdout)).toMatchObject({ format: 'dsse', signer: 'SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs', signatures: [{ signatureId: 4, group: 1, objects: [1, 2, 3] }] });
    const list = execFileSync('siftool', ['list', img]).toString();
    expect(list).toMatch(/^4\s+\|NONE\s+\|1\s+\(G\)\s+\|\d+-\d+\s+\|Signature \(SHA-256\)$/m);
    const v1 = await sifpack(['verify', img, '--key', KEY('ed25519-public.pem')]);
    expect(v1.code).toBe(0);
    expect(v1.stdout).toContain('header, descriptors and data match for objects 1, 2, 3');

    const s2 = await sifpack(['sign', img, '--key', KEY('private.asc')]);
    expect(s2.code).toBe(0);
    expect(s2.stdout).toBe('signature object 5: group 1 (objects 1, 2, 3) signed by 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84\n');
    expect(execFileSync('siftool', ['list', img]).toString()).toMatch(/^5\s+\|NONE\s+\|1\s+\(G\)\s+\|\d+-\d+\s+\|Signature \(SHA-256\)$/m);
    const both = await sifpack(['verify', img, '--key', KEY('ed25519-public.pem'), '--key', KEY('private.asc'), '--json']);
    expect(both.code).toBe(0);
    const rep = JSON.parse(both.stdout) as { ok: boolean; signatures: { id: number; format: string; ok: boolean; signers: { fingerprint: string; userId?: string }[] }[] };
    expect(rep.signatures.map((s) => [s.id, s.format, s.ok, s.signers.map((x) => x.userId ?? x.fingerprint)])).toEqual([
      [4, 'dsse', true, ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs']],
      [5, 'pgp', true, ['Unit Test <unit@test.com>']],
    ]);
    // One key only: the other signature cannot be checked, so the image is not verified (apptainer behaves the same).
    const one = await sifpack(['verify', img, '--key', KEY('ed25519-public.pem')]);
    expect(one.code).toBe(1);
    expect(one.stdout).toContain('signature object 5 is an OpenPGP signature: give the signer');

    const insp = await sifpack(['inspect', img, '--json']);
    const claims = (JSON.parse(insp.stdout) as { signatures: { id: number; format: string; covers: number[]; signer: string[] }[] }).signatures;
    expect(claims.map((c) => [c.id, c.format, c.covers, c.signer])).toEqual([
      [4, 'dsse', [1, 2, 3], ['SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs']],
      [5, 'pgp', [1, 2, 3], ['12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84']],
    ]);
  });

  it('tampering after signing: exit 1, the object named', async () => {
    const img = await copyOf(base, 'tamper.sif');
    expect((await sifpack(['sign', img, '--key', KEY('ed25519-private.pem')])).code).toBe(0);
    const d = (await loadIntegrityImage(img)).descriptors.find((x) => x.d.id === 3)!.d;
    const h = await fs.open(img, 'r+');
    await h.write(Buffer.from('X'), 0, 1, Number(d.offset) + 200);
    await h.close();
    const r = await sifpack(['verify', img, '--key', KEY('ed25519-public.pem')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('data object integrity compromised: 3');
    expect(r.stderr).toContain('not verified');
  });

  it('signing is atomic: a refused sign leaves the file byte for byte and no temp file', async () => {
    const img = await copyOf(base, 'atomic.sif');
    const before = await fs.readFile(img);
    const r = await sifpack(['sign', img, '--key', KEY('ed25519-private.pem'), '--group-id', '7']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--group-id 7: no object group 7 in this image (groups: 1)');
    expect((await fs.readFile(img)).equals(before)).toBe(true);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('--sif-id signs the named object only; verify --sif-id checks it', async () => {
    const img = await copyOf(base, 'obj.sif');
    const s = await sifpack(['sign', img, '--key', KEY('rsa-private.pem'), '--sif-id', '3', '--json']);
    expect(JSON.parse(s.stdout).signatures).toEqual([{ signatureId: 4, group: 1, objects: [3] }]);
    expect((await sifpack(['verify', img, '--key', KEY('rsa-public.pem'), '--sif-id', '3'])).code).toBe(0);
    // the whole group is not covered: objects 1 and 2 reported
    const all = await sifpack(['verify', img, '--key', KEY('rsa-public.pem')]);
    expect(all.code).toBe(1);
    expect(all.stdout).toContain('object 1 is in group 1 but not covered by signature object 4');
  });
});

describe('bad input: exit 2, a message naming the flag', { timeout: 180_000 }, () => {
  it.each([
    [['verify', 'x.sif'], 'no key given'],
    [['verify', path.join(FIX, 'one-group-signed-dsse.sif'), '--key', '/nonexistent.pem'], '--key /nonexistent.pem: no such file'],
    [['verify', path.join(FIX, 'one-group-signed-dsse.sif'), '--key', path.join(FIX, 'SOURCE')], 'not a key file'],
    [['sign', path.join(FIX, 'one-group.sif'), '--key', KEY('ed25519-public.pem')], 'is a public key; signing needs the private key'],
    [['sign', path.join(FIX, 'one-group.sif'), '--key', KEY('ed25519-private.pem'), '--group-id', 'one'], '--group-id "one": not an id'],
    [['verify', path.join(FIX, 'SOURCE'), '--key', KEY('ed25519-public.pem')], 'not a SIF image'],
  ])('%j', async (args, msg) => {
    const r = await sifpack(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(msg);
    expect(r.stderr).not.toContain('internal error');
  });

  it('an encrypted PEM key: refused without a passphrase off a terminal, accepted with --passphrase-stdin', async () => {
    const enc = path.join(dir, 'enc.pem');
    execFileSync('openssl', ['pkey', '-in', KEY('ed25519-private.pem'), '-aes256', '-passout', 'pass:s3cret', '-out', enc]);
    const img = await copyOf(base, 'enc.sif');
    const no = await sifpack(['sign', img, '--key', enc]);
    expect(no.code).toBe(2);
    expect(no.stderr).toContain('is encrypted and no passphrase was given');
    const bad = await sifpack(['sign', img, '--key', enc, '--passphrase-stdin'], { input: 'wrong\n' });
    expect(bad.code).toBe(2);
    const ok = await sifpack(['sign', img, '--key', enc, '--passphrase-stdin'], { input: 's3cret\n' });
    expect(ok.code).toBe(0);
    expect((await sifpack(['verify', img, '--key', KEY('ed25519-public.pem')])).code).toBe(0);
  });
});
