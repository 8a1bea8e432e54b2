/**
 * Canary secrets over registries: push and pull against the real basic-auth
 * test registry (SIFPACK_TEST_AUTH_REGISTRY), with the password coming from
 * each place sifpack takes one — --password-stdin, SIFPACK_REGISTRY_PASSWORD,
 * APPTAINER_DOCKER_PASSWORD, a Docker config.json `auth` entry, a Docker
 * credential helper (`credsStore`; the test double in test/doubles/bin). The right
 * password (so the code path that sends it runs: the push and pull succeed)
 * and a wrong canary password (so the 401 path runs) must appear nowhere:
 * stdout, stderr (its log lines), --json, any file sifpack wrote (state dir,
 * cache, outputs), nor in the argv of any child process, recorded by the
 * recording wrappers first on PATH (recording-wrappers.ts). The password is
 * also searched for in the forms it travels in: base64 of user:password (the
 * Authorization header and the config.json `auth`).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';
import { RecordingWrappers } from './recording-wrappers.js';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'oras', 'busybox_amd64.sif');
const HELPER = 'docker-credential-sifpack-test-double';
const CANARY = `canary${randomBytes(8).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
let dir: string;
let work: string;
let inputs: string; // files the test writes for sifpack to read (a config.json holding the password): not searched
let reg: string;
let user: string;
let password: string;
let wrappers: RecordingWrappers;
let secrets: string[];

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function filesUnder(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(d, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}

beforeAll(async () => {
  reg = service('SIFPACK_TEST_AUTH_REGISTRY');
  user = service('SIFPACK_TEST_REGISTRY_USER');
  password = service('SIFPACK_TEST_REGISTRY_PASSWORD');
  dir = await tempDir('sifpack-canary-registry-');
  work = path.join(dir, 'work');
  inputs = path.join(dir, 'inputs');
  await fs.mkdir(work);
  await fs.mkdir(path.join(dir, 'home'));
  await fs.copyFile(FIXTURE, path.join(work, 'busybox.sif'));
  wrappers = new RecordingWrappers(path.join(dir, 'wrappers'));
  // The credential helper is a child too: recorded like the tools.
  await wrappers.install(process.env.PATH!, { [HELPER]: path.join(ROOT, 'test', 'doubles', 'bin', HELPER) });
  // The right password is random per service start: it is a canary too.
  secrets = [password, b64(`${user}:${password}`), CANARY, b64(`${user}:pw${CANARY}`)];
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The four places a password comes from, each with `pw` as the password. */
async function sources(pw: string, tag: string): Promise<{ name: string; env: NodeJS.ProcessEnv; args: string[]; input?: string }[]> {
  const cfgDir = path.join(inputs, `docker-config-${tag}`);
  await fs.mkdir(cfgDir, { recursive: true });
  await fs.writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [reg]: { auth: b64(`${user}:${pw}`) } } }));
  const helperDir = path.join(inputs, `helper-config-${tag}`);
  await fs.mkdir(helperDir, { recursive: true });
  await fs.writeFile(path.join(helperDir, 'config.json'), JSON.stringify({ credsStore: 'sifpack-test-double' }));
  await fs.writeFile(path.join(helperDir, 'store.json'), JSON.stringify({ [reg]: { Username: user, Secret: pw } }));
  return [
    { name: '--password-stdin', env: {}, args: ['--username', user, '--password-stdin'], input: `${pw}\n` },
    { name: 'SIFPACK_REGISTRY_PASSWORD', env: { SIFPACK_REGISTRY_USERNAME: user, SIFPACK_REGISTRY_PASSWORD: pw }, args: [] },
    { name: 'APPTAINER_DOCKER_PASSWORD', env: { APPTAINER_DOCKER_USERNAME: user, APPTAINER_DOCKER_PASSWORD: pw }, args: [] },
    { name: 'config.json auth', env: { DOCKER_CONFIG: cfgDir }, args: [] },
    { name: 'credential helper', env: { DOCKER_CONFIG: helperDir, SIFPACK_CRED_STORE: path.join(helperDir, 'store.json'), SIFPACK_RECORD: helperDir }, args: [] },
  ];
}

function baseEnv(): NodeJS.ProcessEnv {
  return { PATH: wrappers.path(process.env.PATH!), HOME: path.join(dir, 'home'), XDG_CACHE_HOME: path.join(dir, 'cache') };
}

describe('canary secrets: registry passwords', { timeout: 180_000 }, () => {
  it('push and pull with the right password from each source work, and the password leaves no trace', async () => {
    const seen: string[] = [];
    // The five sources at once (independent tags and files): the suite's wall time is a chain of CLI starts.
    await Promise.all((await sources(password, 'right')).map(async (s, i) => {
      const ref = `oras://${reg}/issue17-${RUN}/canary:${i}`;
      const env = { ...baseEnv(), ...s.env };
      const push = await sifpack(['push', 'busybox.sif', ref, ...s.args, ...(i % 2 ? ['--json'] : [])], { cwd: work, env, ...(s.input ? { input: s.input } : {}) });
      expect(push.code, `${s.name}: ${push.stderr}`).toBe(0);
      // --no-cache on every other pull, so both the cache and the direct download write files.
      const pull = await sifpack(['pull', ref, '-o', `back-${i}.sif`, ...s.args, ...(i % 2 ? ['--json'] : ['--no-cache'])], { cwd: work, env, ...(s.input ? { input: s.input } : {}) });
      expect(pull.code, `${s.name}: ${pull.stderr}`).toBe(0);
      seen.push(push.stdout, push.stderr, pull.stdout, pull.stderr);
      expect(await fs.readFile(path.join(work, `back-${i}.sif`))).toEqual(await fs.readFile(FIXTURE));
    }));
    const out = seen.join('\n');
    expect(out).toMatch(/sha256:[0-9a-f]{64}/); // the output is there and was searched
    for (const secret of secrets) expect(out).not.toContain(secret);
  });

  it('a wrong canary password from each source: exit 2 naming the source, and the canary appears nowhere', async () => {
    await Promise.all((await sources(`pw${CANARY}`, 'wrong')).map(async (s, i) => {
      const ref = `oras://${reg}/issue17-${RUN}/canary:${i}`;
      const env = { ...baseEnv(), ...s.env };
      for (const args of [['push', 'busybox.sif', ref, '--json'], ['pull', ref, '-o', `wrong-${i}.sif`, '--no-cache']]) {
        const r = await sifpack([...args, ...s.args], { cwd: work, env, ...(s.input ? { input: s.input } : {}) });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain('authentication failed (HTTP 401');
        expect(r.stderr).toContain(`tried credentials of "${user}" from`);
        for (const secret of secrets) expect(r.stdout + r.stderr).not.toContain(secret);
      }
      await expect(fs.access(path.join(work, `wrong-${i}.sif`))).rejects.toThrow();
    }));
  });

  it('no file sifpack wrote (state, cache, outputs) and no child process (the credential helper) argv or environment holds a password', async () => {
    const written = [...(await filesUnder(work)), ...(await filesUnder(path.join(dir, 'cache'))), ...(await filesUnder(path.join(dir, 'home')))];
    expect(written.some((f) => f.endsWith('hashes.json'))).toBe(true); // push remembered the digest: state was written
    expect(written.some((f) => f.includes(`${path.sep}blobs${path.sep}`))).toBe(true); // pull cached the layer
    for (const f of written) {
      const text = await fs.readFile(f, 'latin1');
      for (const secret of secrets) expect(text.includes(secret), `${f} holds a password`).toBe(false);
    }
    // push and pull talk HTTP themselves: the only child is the credential helper (any other would have been recorded here).
    const children = await wrappers.read();
    expect(wrappers.wrapped).toContain('unsquashfs');
    expect(children.length).toBeGreaterThanOrEqual(4); // the helper ran for push and pull, right and wrong
    for (const c of children) {
      for (const secret of secrets) {
        expect(c.argv.join(' '), `${c.tool} argv`).not.toContain(secret);
        expect(Object.values(c.env).join(' '), `${c.tool} environment`).not.toContain(secret);
      }
    }
    expect([...new Set(children.map((c) => c.tool))]).toEqual([HELPER]);
    for (const c of children) expect(c.argv).toEqual(['get']); // the host goes on stdin, the secret comes back on stdout
  });
});
