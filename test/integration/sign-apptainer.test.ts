/**
 * sifpack's signatures against the real apptainer 1.4.5, both ways, on a SIF
 * sifpack's own writer makes: `apptainer sign --key` / `verify --key` (the
 * DSSE path of apptainer's cmd/internal/cli/sign.go and verify.go) and its
 * OpenPGP keyring path (`key import`, `sign --keyidx`, `verify --local`).
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIntegrityImage, readObjectData } from '../../src/sif/integrity/image.js';
import { copyInto, makeSmallSif } from '../fixtures/sif-maker.js';
import { ROOT, service, tempDir } from '../helpers.js';
import { sifpack } from '../e2e/cli.js';

const FIX = path.join(ROOT, 'test', 'fixtures', 'signing');
const KEY = (f: string) => path.join(FIX, 'keys', f);

/** The real apptainer, from test/services/start.sh; unset is a failure, not a skip. */
const apptainer = (): string => service('SIFPACK_TEST_APPTAINER');

let dir: string;
let base: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-sign-apptainer-');
  base = await makeSmallSif(dir);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const copyOf = (src: string, name: string) => copyInto(dir, src, name);

describe('with the real apptainer 1.4.5', { timeout: 180_000 }, () => {
  it.each(['ed25519', 'ecdsa', 'rsa'])('apptainer verify --key accepts an image sifpack signed with %s', async (alg) => {
    const img = await copyOf(base, `app-${alg}.sif`);
    expect((await sifpack(['sign', img, '--key', KEY(`${alg}-private.pem`)])).code).toBe(0);
    const r = spawnSync(apptainer(), ['verify', '--key', KEY(`${alg}-public.pem`), img], { encoding: 'utf8' });
    expect(r.stderr).toContain('Verified signature(s) from image');
    expect(r.status).toBe(0);
    // and rejects it with another key
    const other = alg === 'ed25519' ? 'rsa' : 'ed25519';
    expect(spawnSync(apptainer(), ['verify', '--key', KEY(`${other}-public.pem`), img], { encoding: 'utf8' }).status).not.toBe(0);
  });

  it('sifpack verify accepts an image apptainer sign --key signed, and its envelope equals ours (ed25519 is deterministic)', async () => {
    const theirs = await copyOf(base, 'by-apptainer.sif');
    const sign = spawnSync(apptainer(), ['sign', '--key', KEY('ed25519-private.pem'), theirs], { encoding: 'utf8' });
    expect(sign.status).toBe(0);
    const v = await sifpack(['verify', theirs, '--key', KEY('ed25519-public.pem')]);
    expect(v.stdout).toContain('signature object 4 (DSSE, SHA-256) over group 1: ok');
    expect(v.code).toBe(0);
    expect((await sifpack(['verify', theirs, '--key', KEY('rsa-public.pem')])).code).toBe(1);
    const ours = await copyOf(base, 'by-sifpack.sif');
    expect((await sifpack(['sign', ours, '--key', KEY('ed25519-private.pem')])).code).toBe(0);
    const envOf = async (f: string) => {
      const img = await loadIntegrityImage(f);
      return readObjectData(img, img.descriptors.find((x) => x.d.id === 4)!.d);
    };
    expect((await envOf(ours)).toString()).toBe((await envOf(theirs)).toString());
  });
});

describe('with the real apptainer 1.4.5: OpenPGP', { timeout: 180_000 }, () => {
  // apptainer's PGP path reads its own keyring under $HOME/.apptainer/keys: a throwaway HOME
  // with the reference key imported (`apptainer key import`, as a user would).
  let home: string;
  const app = (args: string[]) => spawnSync(apptainer(), args, { encoding: 'utf8', env: { ...process.env, HOME: home }, input: '' });
  beforeAll(async () => {
    home = path.join(dir, 'home');
    await fs.mkdir(home, { recursive: true });
    const r = app(['key', 'import', KEY('private.asc')]);
    expect(r.status, r.stderr).toBe(0);
  });

  it('apptainer verify accepts an image sifpack signed with an OpenPGP key (salted, as apptainer signs)', async () => {
    const img = await copyOf(base, 'app-pgp.sif');
    expect((await sifpack(['sign', img, '--key', KEY('private.asc')])).code).toBe(0);
    const r = app(['verify', '--local', img]);
    expect(r.stdout).toContain('Signing entity: Unit Test <unit@test.com>');
    expect(r.status, r.stderr).toBe(0);
  });

  it('sifpack verify accepts an image apptainer signed with that key (apptainer sign --keyidx 0)', async () => {
    const img = await copyOf(base, 'pgp-by-apptainer.sif');
    const s = app(['sign', '--keyidx', '0', img]);
    expect(s.status, s.stderr).toBe(0);
    const v = await sifpack(['verify', img, '--keyring', KEY('private.asc')]);
    expect(v.stdout).toContain('signature object 4 (OpenPGP, SHA-256) over group 1: ok');
    expect(v.stdout).toContain('Unit Test <unit@test.com>');
    expect(v.code).toBe(0);
  });
});
