/**
 * `sifpack push` / `pull` against the real registries test/services starts:
 * plain (SIFPACK_TEST_REGISTRY), htpasswd basic auth
 * (SIFPACK_TEST_AUTH_REGISTRY) and bearer tokens from the Node token server
 * (SIFPACK_TEST_TOKEN_REGISTRY). Repositories are prefixed issue13-/ and
 * made unique per run. The stored manifest is read back with a plain HTTP
 * GET and compared with the shape apptainer writes, from apptainer's
 * internal/pkg/client/oras/image.go (NewImageFromSIF) and config.go at tag
 * v1.4.5 (interop with the real apptainer: oras-apptainer.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'oras', 'busybox_amd64.sif');
const RUN = randomBytes(4).toString('hex');
let dir: string;
let env: NodeJS.ProcessEnv;
const sha256 = (file: string) => `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
const exists = (p: string) => fs.stat(p).then(() => true, () => false);

beforeAll(async () => {
  dir = await tempDir('sifpack-oras-');
  await fs.mkdir(path.join(dir, 'home'));
  // An empty HOME: no Docker or apptainer logins leak in from the machine.
  env = { HOME: path.join(dir, 'home'), XDG_CACHE_HOME: path.join(dir, 'cache') };
  await fs.copyFile(FIXTURE, path.join(dir, 'busybox.sif'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('push and pull on the plain registry', { timeout: 240_000 }, () => {
  let reg: string;
  let ref: string;
  beforeAll(() => {
    reg = service('SIFPACK_TEST_REGISTRY');
    ref = `oras://${reg}/issue13-${RUN}/busybox:1`;
  });

  it('round trip: pull gives identical bytes; stdout is the digest reference', async () => {
    const push = await sifpack(['push', 'busybox.sif', ref], { cwd: dir, env });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(new RegExp(`^${reg}/issue13-${RUN}/busybox@sha256:[a-f0-9]{64}\\n$`));
    // not a terminal: progress as timestamped lines on stderr
    expect(push.stderr).toMatch(/^\[\d\d:\d\d:\d\d\] push busybox.sif: 773.7 KiB of 773.7 KiB \(100%\)/m);
    const pull = await sifpack(['pull', ref, '-o', 'back.sif', '--json'], { cwd: dir, env });
    expect(pull.code, pull.stderr).toBe(0);
    const res = JSON.parse(pull.stdout);
    expect(res).toMatchObject({ output: path.join(dir, 'back.sif'), layerDigest: sha256(FIXTURE), size: 792293, cached: false, bytesDownloaded: 792293 });
    expect(`${reg}/issue13-${RUN}/busybox@${res.digest}`).toBe(push.stdout.trim());
    execFileSync('cmp', [FIXTURE, path.join(dir, 'back.sif')]);
  });

  it('stores the manifest and config apptainer writes, field by field (plain HTTP GET)', async () => {
    const base = `http://${reg}/v2/issue13-${RUN}/busybox`;
    const res = await fetch(`${base}/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
    const m = (await res.json()) as { schemaVersion: number; mediaType: string; config: { digest: string }; layers: { digest: string }[]; annotations?: Record<string, string> };
    expect(Object.keys(m)).toEqual(['schemaVersion', 'mediaType', 'config', 'layers']);
    expect(m.schemaVersion).toBe(2);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.config).toEqual({ mediaType: 'application/vnd.sylabs.sif.config.v1+json', size: 2, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' });
    expect(m.layers).toEqual([{ mediaType: 'application/vnd.sylabs.sif.layer.v1.sif', size: 792293, digest: sha256(FIXTURE), annotations: { 'org.opencontainers.image.title': 'busybox.sif' } }]);
    // not a sifpack-built image: no annotations of ours, so nothing apptainer 1.4.5 would not write
    expect(m.annotations).toBeUndefined();
    const config = await fetch(`${base}/blobs/${m.config.digest}`);
    expect(await config.text()).toBe('{}');
    const blob = Buffer.from(await (await fetch(`${base}/blobs/${m.layers[0]!.digest}`)).arrayBuffer());
    expect(blob.equals(readFileSync(FIXTURE))).toBe(true);
  });

  it('a second push of the unchanged SIF uploads nothing (HEAD first)', async () => {
    const again = await sifpack(['push', 'busybox.sif', ref, '--json'], { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ bytesUploaded: 0, alreadyThere: true, size: 792293, mountedFrom: null });
    expect(again.stderr).toContain('already has');
  });

  it('a push to another repository of the same registry mounts the blob', async () => {
    const other = `oras://${reg}/issue13-${RUN}/copy:2`;
    const r = await sifpack(['push', 'busybox.sif', other, '--json'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ bytesUploaded: 0, alreadyThere: false, mountedFrom: `${reg}/issue13-${RUN}/busybox` });
    const back = await sifpack(['pull', other, '-o', 'copy.sif', '--no-cache'], { cwd: dir, env });
    expect(back.code, back.stderr).toBe(0);
    execFileSync('cmp', [FIXTURE, path.join(dir, 'copy.sif')]);
  });

  it('pulls by digest, and a cached digest costs a link, not a download, in under a second', async () => {
    const pushed = (await sifpack(['push', 'busybox.sif', ref], { cwd: dir, env })).stdout.trim();
    const byDigest = await sifpack(['pull', `oras://${pushed}`, '-o', 'bydigest.sif', '--no-cache', '--json'], { cwd: dir, env });
    expect(byDigest.code, byDigest.stderr).toBe(0);
    expect(JSON.parse(byDigest.stdout)).toMatchObject({ cached: false, bytesDownloaded: 792293 });
    execFileSync('cmp', [FIXTURE, path.join(dir, 'bydigest.sif')]);
    // back.sif's pull filled the cache
    const cachedBlob = path.join(dir, 'cache', 'sifpack', 'blobs', 'sha256', sha256(FIXTURE).slice(7));
    expect(await exists(cachedBlob)).toBe(true);
    const hit = await sifpack(['pull', ref, '-o', 'hit.sif', '--json'], { cwd: dir, env });
    expect(hit.code, hit.stderr).toBe(0);
    expect(JSON.parse(hit.stdout)).toMatchObject({ cached: true, bytesDownloaded: 0 });
    expect((await fs.stat(path.join(dir, 'hit.sif'))).ino).toBe((await fs.stat(cachedBlob)).ino);
    execFileSync('cmp', [FIXTURE, path.join(dir, 'hit.sif')]);
  });

  it('names the file like apptainer pull, and never overwrites without --force', async () => {
    const sub = path.join(dir, 'named');
    await fs.mkdir(sub);
    const r = await sifpack(['pull', ref, '-q'], { cwd: sub, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(path.join(sub, 'busybox_1.sif'));
    expect(r.stderr).toBe(''); // --quiet: no progress
    await fs.writeFile(path.join(sub, 'busybox_1.sif'), 'mine');
    const again = await sifpack(['pull', ref], { cwd: sub, env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/busybox_1.sif already exists\nhint: pass --force/);
    expect(await fs.readFile(path.join(sub, 'busybox_1.sif'), 'utf8')).toBe('mine');
    const forced = await sifpack(['pull', ref, '--force'], { cwd: sub, env });
    expect(forced.code, forced.stderr).toBe(0);
    execFileSync('cmp', [FIXTURE, path.join(sub, 'busybox_1.sif')]);
  });

  it('on a terminal, push and pull draw a bar with percentage, bytes, rate and ETA', async () => {
    // util-linux `script` gives the CLI a real pseudo-terminal as stderr; the SIF is
    // big enough (48 MiB) for the bar to be drawn before the transfer ends.
    const { makeSif } = await import('../fixtures/sif-maker.js');
    const sif = await makeSif(path.join(dir, 'tty.sif'), 48 * 1024 * 1024);
    const cli = path.join(ROOT, 'dist', 'cli.js');
    const ttyEnv = { ...env, PATH: process.env.PATH };
    const out = execFileSync('script', ['-qec', `${process.execPath} ${cli} push ${sif} oras://${reg}/issue13-${RUN}/tty:1`, '/dev/null'], { cwd: dir, env: ttyEnv }).toString();
    expect(out).toMatch(/push tty\.sif \[[█░]+\] \d+% \| [\d.]+ (KiB|MiB) of 48\.0 MiB \| [\d.]+ (B|KiB|MiB|GiB)\/s \| ETA /);
    expect(out).not.toMatch(/^\[\d\d:\d\d:\d\d\]/m); // no log lines on a terminal
    const back = execFileSync('script', ['-qec', `${process.execPath} ${cli} pull oras://${reg}/issue13-${RUN}/tty:1 -o tty-back.sif --no-cache`, '/dev/null'], { cwd: dir, env: ttyEnv }).toString();
    expect(back).toMatch(/pull tty-back\.sif \[[█░]+\] \d+% \|/);
    execFileSync('cmp', [sif, path.join(dir, 'tty-back.sif')]);
  });

  it('a missing tag is exit 2 naming it; a file that is not a SIF is refused before any upload', async () => {
    const r = await sifpack(['pull', `oras://${reg}/issue13-${RUN}/busybox:nope`, '-o', 'nope.sif'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${reg}/issue13-${RUN}/busybox:nope not found`);
    expect(await exists(path.join(dir, 'nope.sif'))).toBe(false);
    await fs.writeFile(path.join(dir, 'notsif.sif'), 'hello');
    const p = await sifpack(['push', 'notsif.sif', `oras://${reg}/issue13-${RUN}/notsif:1`], { cwd: dir, env });
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/notsif.sif: not a SIF image/);
    const noDir = await sifpack(['pull', `oras://${reg}/issue13-${RUN}/busybox:1`, '-o', 'missing/dir/x.sif'], { cwd: dir, env });
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain(`the directory ${path.join(dir, 'missing', 'dir')} does not exist`);
    // a cache directory that cannot be created: exit 1 naming the path, not an internal error
    await fs.writeFile(path.join(dir, 'a-file'), '');
    const badCache = await sifpack(['pull', `oras://${reg}/issue13-${RUN}/busybox:1`, '-o', 'badcache.sif', '--cache-dir', path.join(dir, 'a-file', 'cache')], { cwd: dir, env });
    expect(badCache.code).toBe(1);
    expect(badCache.stderr).toMatch(/sifpack: error: cannot write .*a-file/);
    expect(badCache.stderr).not.toContain('internal error');
    expect(await exists(path.join(dir, 'badcache.sif'))).toBe(false);
  });

  it('a Docker image in the registry is exit 2 with the docker:// hint, and nothing is written', async () => {
    const dockerEnv = { ...process.env, DOCKER_HOST: service('DOCKER_HOST') };
    const image = `${reg}/issue13-${RUN}/container:1`;
    execFileSync('/usr/bin/docker', ['tag', service('SIFPACK_TEST_BUSYBOX_IMAGE'), image], { env: dockerEnv });
    try {
      execFileSync('/usr/bin/docker', ['push', image], { env: dockerEnv, stdio: 'pipe' });
    } finally {
      execFileSync('/usr/bin/docker', ['rmi', image], { env: dockerEnv, stdio: 'pipe' });
    }
    const r = await sifpack(['pull', `oras://${image}`, '-o', 'container.sif'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a SIF: 1 layer\(s\) of type application\/vnd\.docker\.image\.rootfs\.diff\.tar\.gzip, config application\/vnd\.docker\.container\.image\.v1\+json/);
    expect(r.stderr).toContain(`hint: ${image} looks like a container image: pull it with \`apptainer pull docker://${image}\``);
    expect(await exists(path.join(dir, 'container.sif'))).toBe(false);
  });

  it('a registry that is down is exit 1 with a hint, and nothing is written', async () => {
    const r = await sifpack(['pull', 'oras://127.0.0.1:9/issue13/x:1', '-o', 'down.sif'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach the registry 127.0.0.1:9 over HTTP (ECONNREFUSED)');
    expect(r.stderr).toMatch(/hint: check that it runs/);
    expect(await exists(path.join(dir, 'down.sif'))).toBe(false);
    const p = await sifpack(['push', 'busybox.sif', 'oras://127.0.0.1:9/issue13/x:1'], { cwd: dir, env });
    expect(p.code).toBe(1);
    expect(p.stderr).toContain('cannot reach the registry 127.0.0.1:9');
  });
});

describe('basic auth registry', { timeout: 240_000 }, () => {
  let reg: string;
  let user: string;
  let password: string;
  beforeAll(() => {
    reg = service('SIFPACK_TEST_AUTH_REGISTRY');
    user = service('SIFPACK_TEST_REGISTRY_USER');
    password = service('SIFPACK_TEST_REGISTRY_PASSWORD');
  });

  it('without credentials: exit 2 naming the registry and every source looked at', async () => {
    const r = await sifpack(['push', 'busybox.sif', `oras://${reg}/issue13-${RUN}/auth:1`], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${reg}: login: authentication failed`);
    expect(r.stderr).toContain(`looked at: SIFPACK_REGISTRY_USERNAME/SIFPACK_REGISTRY_PASSWORD, APPTAINER_DOCKER_USERNAME/APPTAINER_DOCKER_PASSWORD, ${env.HOME}/.docker/config.json, ${env.HOME}/.apptainer/docker-config.json`);
  });

  it('a wrong password: exit 2 naming the source, and the password appears nowhere', async () => {
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const r = await sifpack(['push', 'busybox.sif', `oras://${reg}/issue13-${RUN}/auth:1`, '--username', user, '--password-stdin', '--json'], { cwd: dir, env, input: `${wrong}\n` });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`authentication failed (HTTP 401`);
    expect(r.stderr).toContain(`tried credentials of "${user}" from --username/--password-stdin`);
    expect(r.stdout + r.stderr).not.toContain(wrong);
    const env2 = await sifpack(['pull', `oras://${reg}/issue13-${RUN}/auth:1`], { cwd: dir, env: { ...env, SIFPACK_REGISTRY_USERNAME: user, SIFPACK_REGISTRY_PASSWORD: wrong } });
    expect(env2.code).toBe(2);
    expect(env2.stderr).toContain('from SIFPACK_REGISTRY_USERNAME/SIFPACK_REGISTRY_PASSWORD');
    expect(env2.stdout + env2.stderr).not.toContain(wrong);
  });

  it('--password-stdin, SIFPACK_REGISTRY_*, APPTAINER_DOCKER_* and a docker config all work, and stay out of output', async () => {
    const ref = `oras://${reg}/issue13-${RUN}/auth:1`;
    const push = await sifpack(['push', 'busybox.sif', ref, '--username', user, '--password-stdin', '--json'], { cwd: dir, env, input: `${password}\n` });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout + push.stderr).not.toContain(password);
    const viaEnv = await sifpack(['pull', ref, '-o', 'auth1.sif', '--no-cache'], { cwd: dir, env: { ...env, SIFPACK_REGISTRY_USERNAME: user, SIFPACK_REGISTRY_PASSWORD: password } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const viaApptainer = await sifpack(['pull', ref, '-o', 'auth2.sif', '--no-cache'], { cwd: dir, env: { ...env, APPTAINER_DOCKER_USERNAME: user, APPTAINER_DOCKER_PASSWORD: password } });
    expect(viaApptainer.code, viaApptainer.stderr).toBe(0);
    const dockerConfig = path.join(dir, 'dockercfg');
    await fs.mkdir(dockerConfig, { recursive: true });
    await fs.writeFile(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
    const viaConfig = await sifpack(['pull', ref, '-o', 'auth3.sif', '--no-cache', '--json'], { cwd: dir, env: { ...env, DOCKER_CONFIG: dockerConfig } });
    expect(viaConfig.code, viaConfig.stderr).toBe(0);
    for (const f of ['auth1.sif', 'auth2.sif', 'auth3.sif']) execFileSync('cmp', [FIXTURE, path.join(dir, f)]);
    for (const r of [viaEnv, viaApptainer, viaConfig]) expect(r.stdout + r.stderr).not.toContain(password);
  });
});

describe('bearer token registry (token-server.mjs)', { timeout: 240_000 }, () => {
  let reg: string;
  let user: string;
  let password: string;
  beforeAll(() => {
    reg = service('SIFPACK_TEST_TOKEN_REGISTRY');
    user = service('SIFPACK_TEST_TOKEN_USER');
    password = service('SIFPACK_TEST_TOKEN_PASSWORD');
  });

  it('anonymous tokens carry no push scope: exit 2; the user pushes; anonymous pulls public/', async () => {
    const lab = `oras://${reg}/lab/issue13-${RUN}:1`;
    const anon = await sifpack(['push', 'busybox.sif', lab], { cwd: dir, env });
    expect(anon.code).toBe(2);
    expect(anon.stderr).toMatch(new RegExp(`${reg}: .*authentication failed \\(HTTP 401`));
    const creds = { ...env, SIFPACK_REGISTRY_USERNAME: user, SIFPACK_REGISTRY_PASSWORD: password };
    const pub = `oras://${reg}/public/issue13-${RUN}:1`;
    const push = await sifpack(['push', 'busybox.sif', pub, '--json'], { cwd: dir, env: creds });
    expect(push.code, push.stderr).toBe(0);
    // the other repository: a token with pull on the source and push on the target mounts it
    const mount = await sifpack(['push', 'busybox.sif', lab, '--json'], { cwd: dir, env: creds });
    expect(mount.code, mount.stderr).toBe(0);
    expect(JSON.parse(mount.stdout)).toMatchObject({ mountedFrom: `${reg}/public/issue13-${RUN}`, bytesUploaded: 0 });
    const pull = await sifpack(['pull', pub, '-o', 'public.sif', '--no-cache'], { cwd: dir, env });
    expect(pull.code, pull.stderr).toBe(0);
    execFileSync('cmp', [FIXTURE, path.join(dir, 'public.sif')]);
    const denied = await sifpack(['pull', lab, '-o', 'lab.sif'], { cwd: dir, env });
    expect(denied.code).toBe(2);
    expect(await exists(path.join(dir, 'lab.sif'))).toBe(false);
    const wrong = await sifpack(['pull', lab, '-o', 'lab.sif'], { cwd: dir, env: { ...env, SIFPACK_REGISTRY_USERNAME: user, SIFPACK_REGISTRY_PASSWORD: 'nope-nope' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('token service refused');
    expect(wrong.stderr).not.toContain('nope-nope');
  });
});
