/**
 * Docker credential helpers (`credsStore`, `credHelpers` in the Docker
 * config) against the real basic-auth registry (SIFPACK_TEST_AUTH_REGISTRY).
 * The helper is test/doubles/bin/docker-credential-sifpack-test-double, a
 * double of a docker-credential-* program speaking the protocol of
 * github.com/docker/docker-credential-helpers client/client.go (Get: the
 * server on stdin, {"ServerURL","Username","Secret"} on stdout, "credentials
 * not found in native keychain" with exit 1); which helper is asked follows
 * docker/cli cli/config/configfile/file.go (getConfiguredCredentialStore:
 * credHelpers[host], else credsStore).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'signing', 'one-group.sif');
let dir: string;
let reg: string;
let ref: string;
let password: string;
let user: string;
let base: NodeJS.ProcessEnv;
const HELPER = 'sifpack-test-double';

async function dockerConfig(name: string, cfg: unknown): Promise<string> {
  const d = path.join(dir, name);
  await fs.mkdir(d, { recursive: true });
  await fs.writeFile(path.join(d, 'config.json'), JSON.stringify(cfg));
  return d;
}
const helperLog = () => fs.readFile(path.join(dir, 'credential-helper.log'), 'utf8').catch(() => '');

beforeAll(async () => {
  reg = service('SIFPACK_TEST_AUTH_REGISTRY');
  user = service('SIFPACK_TEST_REGISTRY_USER');
  password = service('SIFPACK_TEST_REGISTRY_PASSWORD');
  dir = await tempDir('sifpack-credhelper-');
  await fs.mkdir(path.join(dir, 'home'));
  await fs.copyFile(FIXTURE, path.join(dir, 'x.sif'));
  await fs.writeFile(path.join(dir, 'store.json'), JSON.stringify({ [reg]: { Username: user, Secret: password } }));
  base = {
    HOME: path.join(dir, 'home'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    PATH: `${path.join(ROOT, 'test', 'doubles', 'bin')}:${process.env.PATH}`,
    SIFPACK_RECORD: dir,
    SIFPACK_CRED_STORE: path.join(dir, 'store.json'),
  };
  ref = `oras://${reg}/issue13-${randomBytes(4).toString('hex')}/x:1`;
  const push = await sifpack(['push', 'x.sif', ref, '-q'], { cwd: dir, env: { ...base, SIFPACK_REGISTRY_USERNAME: user, SIFPACK_REGISTRY_PASSWORD: password } });
  expect(push.code, push.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('Docker credential helpers', { timeout: 120_000 }, () => {
  it('credsStore: the helper is asked with `get` and the host on stdin; the secret never appears in an argv', async () => {
    const cfg = await dockerConfig('store', { credsStore: HELPER, auths: { [reg]: {} } });
    const r = await sifpack(['pull', ref, '-o', 'a.sif', '--no-cache'], { cwd: dir, env: { ...base, DOCKER_CONFIG: cfg } });
    expect(r.code, r.stderr).toBe(0);
    const log = await helperLog();
    expect(log).toContain(`argv:get\nstdin:${reg}\n`);
    expect(log).not.toContain(password);
    expect(r.stderr + r.stdout).not.toContain(password);
  });

  it('credHelpers[host] wins over credsStore (a missing store program is then never run)', async () => {
    const cfg = await dockerConfig('per-host', { credsStore: 'sifpack-no-such-helper', credHelpers: { [reg]: HELPER } });
    const r = await sifpack(['pull', ref, '-o', 'b.sif', '--no-cache'], { cwd: dir, env: { ...base, DOCKER_CONFIG: cfg } });
    expect(r.code, r.stderr).toBe(0);
  });

  it('a helper without an entry for the host: the auths entry of the same file is used', async () => {
    await fs.writeFile(path.join(dir, 'empty-store.json'), '{}');
    const cfg = await dockerConfig('fallback', { credsStore: HELPER, auths: { [reg]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
    const r = await sifpack(['pull', ref, '-o', 'c.sif', '--no-cache'], { cwd: dir, env: { ...base, DOCKER_CONFIG: cfg, SIFPACK_CRED_STORE: path.join(dir, 'empty-store.json') } });
    expect(r.code, r.stderr).toBe(0);
  });

  it('a helper that is not installed: the 401 (exit 2) names it and says so; a failing helper is exit 1 naming it', async () => {
    const cfg = await dockerConfig('missing', { credsStore: 'sifpack-no-such-helper' });
    const r = await sifpack(['pull', ref, '-o', 'd.sif', '--no-cache'], { cwd: dir, env: { ...base, DOCKER_CONFIG: cfg } });
    expect(r.code).toBe(2); // a 401 is exit 2, as for any missing or wrong credentials
    expect(r.stderr).toContain('docker-credential-sifpack-no-such-helper');
    expect(r.stderr).toContain('not found on PATH');
    const failing = await dockerConfig('failing', { credsStore: HELPER });
    const f = await sifpack(['pull', ref, '-o', 'e.sif', '--no-cache'], { cwd: dir, env: { ...base, DOCKER_CONFIG: failing, SIFPACK_CRED_FAIL: '1' } });
    expect(f.code).toBe(1);
    expect(f.stderr).toContain(`docker-credential-${HELPER} get failed for ${reg} (exit 3: error: keychain is locked)`);
    for (const out of ['d.sif', 'e.sif']) expect(await fs.stat(path.join(dir, out)).then(() => true, () => false)).toBe(false);
  });

  it('an identity token (Username "<token>") is not sent as a password', async () => {
    await fs.writeFile(path.join(dir, 'token-store.json'), JSON.stringify({ [reg]: { Username: '<token>', Secret: 'refresh-token-value' } }));
    const cfg = await dockerConfig('token', { credsStore: HELPER });
    const r = await sifpack(['pull', ref, '-o', 'g.sif', '--no-cache'], { cwd: dir, env: { ...base, DOCKER_CONFIG: cfg, SIFPACK_CRED_STORE: path.join(dir, 'token-store.json') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('holds an identity token, which sifpack does not use');
    expect(r.stderr).not.toContain('refresh-token-value');
  });
});
