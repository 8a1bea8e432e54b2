/**
 * `sifpack pull --verify` against the real test registry
 * (SIFPACK_TEST_REGISTRY): images signed by `sifpack sign` with Sylabs' test
 * keys (test/fixtures/signing/keys, see its SOURCE), pushed, then pulled with
 * the right key (kept), the wrong key, unsigned and tampered (refused: exit 1,
 * no file at the target, no temp file, nothing new in the cache). The checks
 * are the ones `sifpack verify` runs (src/sif/integrity/verify.ts).
 * Repositories are prefixed issue13-.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

// Sylabs' unsigned one-group image (the oras busybox fixture already carries an OpenPGP signature).
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'signing', 'one-group.sif');
const KEY = (name: string) => path.join(ROOT, 'test', 'fixtures', 'signing', 'keys', name);
const RUN = randomBytes(4).toString('hex');
let dir: string;
let env: NodeJS.ProcessEnv;
let reg: string;
const refOf = (name: string) => `oras://${reg}/issue13-${RUN}/${name}:1`;
const exists = (p: string) => fs.stat(p).then(() => true, () => false);

/** Every file under `d` (recursively), relative. */
async function filesUnder(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(d, { withFileTypes: true, recursive: true }).catch(() => [])) if (e.isFile()) out.push(path.relative(d, path.join(e.parentPath, e.name)));
  return out.sort();
}

beforeAll(async () => {
  reg = service('SIFPACK_TEST_REGISTRY');
  dir = await tempDir('sifpack-pull-verify-');
  await fs.mkdir(path.join(dir, 'home'));
  env = { HOME: path.join(dir, 'home'), XDG_CACHE_HOME: path.join(dir, 'cache') };
  await fs.copyFile(FIXTURE, path.join(dir, 'plain.sif'));
  await fs.copyFile(FIXTURE, path.join(dir, 'signed.sif'));
  const s = await sifpack(['sign', 'signed.sif', '--key', KEY('ed25519-private.pem')], { cwd: dir, env });
  expect(s.code, s.stderr).toBe(0);
  // Tampered after signing: the last byte of the primary partition changed.
  await fs.copyFile(path.join(dir, 'signed.sif'), path.join(dir, 'tampered.sif'));
  const inspect = JSON.parse((await sifpack(['inspect', 'tampered.sif', '--json'], { cwd: dir, env })).stdout) as { objects: { id: number; offset: number; size: number; partition?: { primary: boolean } }[] };
  const part = inspect.objects.find((o) => o.partition?.primary)!;
  const fh = await fs.open(path.join(dir, 'tampered.sif'), 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, part.offset + part.size - 1);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, part.offset + part.size - 1);
  await fh.close();
  for (const name of ['plain', 'signed', 'tampered']) {
    const p = await sifpack(['push', `${name}.sif`, refOf(name)], { cwd: dir, env });
    expect(p.code, p.stderr).toBe(0);
  }
}, 240_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('pull --verify on the real registry', { timeout: 240_000 }, () => {
  it('the signer\'s key: the image is written, and --json carries the verification report', async () => {
    const r = await sifpack(['pull', refOf('signed'), '-o', 'ok.sif', '--verify', '--key', KEY('ed25519-public.pem'), '--json'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.output).toBe(path.join(dir, 'ok.sif'));
    expect(res.verification.ok).toBe(true);
    expect(res.verification.file).toBe(path.join(dir, 'ok.sif'));
    expect(res.verification.signatures).toHaveLength(1);
    expect(res.verification.signatures[0]).toMatchObject({ format: 'dsse', ok: true, checked: true });
    expect(res.verification.signatures[0].signers[0].fingerprint).toMatch(/^SHA256:/);
    execFileSync('cmp', [path.join(dir, 'signed.sif'), path.join(dir, 'ok.sif')]);
    // `sifpack verify` agrees on the file written
    expect((await sifpack(['verify', 'ok.sif', '--key', KEY('ed25519-public.pem')], { cwd: dir, env })).code).toBe(0);
  });

  it('a cache hit is verified again (the cache keeps bytes, not trust) and the human output names the signer', async () => {
    const r = await sifpack(['pull', refOf('signed'), '-o', 'again.sif', '--verify', '--key', KEY('ed25519-public.pem')], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/in the cache/);
    expect(r.stderr).toMatch(/verified .*issue13-.*\/signed:1: signed by SHA256:/);
    const wrong = await sifpack(['pull', refOf('signed'), '-o', 'again-wrong.sif', '--verify', '--key', KEY('ecdsa-public.pem')], { cwd: dir, env });
    expect(wrong.code).toBe(1);
    expect(await exists(path.join(dir, 'again-wrong.sif'))).toBe(false);
  });

  it('the wrong key: refused, exit 1, the message names the reference and why, no file and no temp left', async () => {
    const cacheBefore = await filesUnder(path.join(dir, 'cache'));
    const before = (await fs.readdir(dir)).sort();
    const r = await sifpack(['pull', refOf('signed'), '-o', 'wrong.sif', '--verify', '--key', KEY('rsa-public.pem'), '--no-cache'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${reg}/issue13-${RUN}/signed:1: refused: its signatures do not verify with the keys given; nothing was written`);
    expect(r.stdout).toBe('');
    expect((await fs.readdir(dir)).sort()).toEqual(before);
    expect(await filesUnder(path.join(dir, 'cache'))).toEqual(cacheBefore);
  });

  it('an unsigned image: refused through the cache path too; the download does not enter the cache', async () => {
    const cacheBefore = await filesUnder(path.join(dir, 'cache'));
    const before = (await fs.readdir(dir)).sort();
    const r = await sifpack(['pull', refOf('plain'), '-o', 'plain-pulled.sif', '--verify', '--key', KEY('ed25519-public.pem'), '--json'], { cwd: dir, env });
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout).error;
    expect(err.message).toBe(`${reg}/issue13-${RUN}/plain:1: refused: the image is not signed; nothing was written`);
    expect(err.hint).toMatch(/sifpack sign/);
    expect((await fs.readdir(dir)).sort()).toEqual(before);
    // digest-checked but refused: not committed to the cache, and no temp file there either
    expect(await filesUnder(path.join(dir, 'cache'))).toEqual(cacheBefore);
    // the same image without --verify is pulled as before
    const plain = await sifpack(['pull', refOf('plain'), '-o', 'plain-pulled.sif'], { cwd: dir, env });
    expect(plain.code, plain.stderr).toBe(0);
    execFileSync('cmp', [FIXTURE, path.join(dir, 'plain-pulled.sif')]);
  });

  it('tampered after signing: refused, the changed object named', async () => {
    const r = await sifpack(['pull', refOf('tampered'), '-o', 'tampered-pulled.sif', '--verify', '--key', KEY('ed25519-public.pem')], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('tampered:1: refused: it was changed after it was signed; nothing was written');
    expect(r.stderr).toMatch(/integrity compromised: 2\n/); // object 2, the primary partition
    expect(await exists(path.join(dir, 'tampered-pulled.sif'))).toBe(false);
  });

  it('bad flag combinations are exit 2 before any download', async () => {
    const noKey = await sifpack(['pull', refOf('signed'), '-o', 'x.sif', '--verify'], { cwd: dir, env });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('--verify needs --key');
    const noVerify = await sifpack(['pull', refOf('signed'), '-o', 'x.sif', '--key', KEY('ed25519-public.pem')], { cwd: dir, env });
    expect(noVerify.code).toBe(2);
    expect(noVerify.stderr).toContain('--key is given without --verify');
    const missing = await sifpack(['pull', refOf('signed'), '-o', 'x.sif', '--verify', '--keyring', 'nope.asc'], { cwd: dir, env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--keyring nope.asc: no such file');
    expect(await exists(path.join(dir, 'x.sif'))).toBe(false);
  });

  it('--keyring with an OpenPGP key verifies an image signed with OpenPGP', async () => {
    await fs.copyFile(FIXTURE, path.join(dir, 'pgp.sif'));
    expect((await sifpack(['sign', 'pgp.sif', '--key', KEY('private.asc')], { cwd: dir, env })).code).toBe(0);
    expect((await sifpack(['push', 'pgp.sif', refOf('pgp')], { cwd: dir, env })).code).toBe(0);
    // the public half of the test key, exported by sifpack's own dependency (openpgp) as `apptainer key export` would
    const openpgp = await import('openpgp');
    const priv = await openpgp.readPrivateKey({ armoredKey: await fs.readFile(KEY('private.asc'), 'utf8') });
    await fs.writeFile(path.join(dir, 'team.asc'), priv.toPublic().armor());
    const r = await sifpack(['pull', refOf('pgp'), '-o', 'pgp-pulled.sif', '--verify', '--keyring', 'team.asc', '--json'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).verification.signatures[0]).toMatchObject({ format: 'pgp', ok: true });
    expect(await exists(path.join(dir, 'pgp-pulled.sif'))).toBe(true);
  });
});
