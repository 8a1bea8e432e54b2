/**
 * No secret in a child's argv (world-readable in /proc/PID/cmdline and `ps`)
 * and none in its environment unless the child reads it itself. Every child
 * sifpack starts goes through the recording wrappers first on PATH
 * (recording-wrappers.ts), which save their own /proc cmdline and environ and
 * exec the real tool. Canaries: SIFPACK_REGISTRY_PASSWORD and
 * APPTAINER_DOCKER_PASSWORD in the environment of every run, and a channel
 * token and user:password in the records, .condarc and history of the prefix
 * `build` packs. Covered: `build --builder docker` (the real engine, then
 * sifpack's converter: mksquashfs), `build --builder apptainer` (the real
 * apptainer 1.4.5, which may keep APPTAINER_DOCKER_PASSWORD: it reads it to
 * pull a base image), `inspect --all`, `submit`, `status` and `cancel`
 * against the real Slurm (sbatch, scontrol, scancel).
 * The built images are searched too: their whole filesystems (unsquashfs +
 * grep), their SIF labels, and the Docker image's labels and history.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSif, requirePrimaryPartition } from '../../src/sif/reader.js';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';
import { RecordingWrappers } from './recording-wrappers.js';

const CANARY = `canary${randomBytes(8).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const TAG = `issue17-canary/children:${RUN}`;
let dir: string;
let wrappers: RecordingWrappers;
let env: NodeJS.ProcessEnv;
const jobs: string[] = [];

/** grep -r over a tree (binary files as text): the files holding `needle`. */
function grepTree(root: string, needle: string): string[] {
  try {
    return execFileSync('grep', ['-rlF', '--binary-files=text', needle, root]).toString().trim().split('\n');
  } catch (err) {
    if ((err as { status?: number }).status === 1) return []; // grep: no match
    throw err;
  }
}

beforeAll(async () => {
  dir = await tempDir('sifpack-child-argv-');
  wrappers = new RecordingWrappers(path.join(dir, 'wrappers'));
  await wrappers.install(process.env.PATH!, { apptainer: service('SIFPACK_TEST_APPTAINER') });
  env = {
    PATH: wrappers.path(process.env.PATH!),
    HOME: dir,
    DOCKER_HOST: service('DOCKER_HOST'),
    SLURM_CONF: service('SLURM_CONF'),
    SIFPACK_DOCKER_NETWORK: 'none',
    SIFPACK_REGISTRY_USERNAME: 'lab',
    SIFPACK_REGISTRY_PASSWORD: `sifpackpw${CANARY}`,
    APPTAINER_DOCKER_USERNAME: 'lab',
    APPTAINER_DOCKER_PASSWORD: `apptainerpw${CANARY}`,
  };
  // A prefix whose packages came from a private channel reached with a token and a password
  // (built on busybox: a few MB for mksquashfs, so the security suite stays quick).
  const p = path.join(dir, 'envs', 'private');
  const url = `https://lab:chanpw${CANARY}@conda.example.org/t/tok${CANARY}/conda-forge`;
  await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.writeFile(path.join(p, 'conda-meta', 'mytool-1.0-0.json'), JSON.stringify({ name: 'mytool', version: '1.0', build: '0', channel: `${url}/noarch`, url: `${url}/noarch/mytool-1.0-0.tar.bz2`, subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(p, 'conda-meta', 'history'), `==> 2024-03-05 10:00:00 <==\n# cmd: conda create -p ${p} -c ${url} mytool\n+${url}/noarch::mytool-1.0-0\n# update specs: ["mytool"]\n`);
  await fs.writeFile(path.join(p, '.condarc'), `channels:\n  - ${url}\n`);
  await fs.writeFile(path.join(p, 'bin', 'mytool'), '#!/bin/sh\necho mytool\n', { mode: 0o755 });
  await fs.writeFile(path.join(dir, 'held.sbatch'), `#!/bin/bash\n#SBATCH --hold\n#SBATCH --job-name=issue17-children\n#SBATCH --output=/dev/null\n#SBATCH --partition=${service('SIFPACK_TEST_PARTITION')}\ntrue\n`);
});
afterAll(async () => {
  if (jobs.length) execFileSync('scancel', jobs, { env: { ...process.env, SLURM_CONF: service('SLURM_CONF') }, stdio: 'ignore' });
  try {
    execFileSync('docker', ['rmi', '-f', TAG], { env: { ...process.env, DOCKER_HOST: service('DOCKER_HOST') }, stdio: 'ignore' });
  } catch {
    /* the build failed before tagging */
  }
  await fs.rm(dir, { recursive: true, force: true });
});

describe('no secret in a child process', { timeout: 240_000 }, () => {
  const outputs: string[] = [];

  it('build --builder docker and --builder apptainer, inspect --all, submit, status, cancel: each ran its real children', async () => {
    const build = await sifpack(['build', '--from-prefix', path.join(dir, 'envs', 'private'), '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '--tag', TAG, '-o', 'private.sif', '--json'], { cwd: dir, env });
    expect(build.code, build.stderr).toBe(0);
    const abuild = await sifpack(
      ['build', '--from-prefix', path.join(dir, 'envs', 'private'), '--builder', 'apptainer', '--bootstrap', 'docker-daemon', '--base-image', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '--tmpdir', dir, '-o', 'private-apptainer.sif', '--json'],
      { cwd: dir, env },
    );
    expect(abuild.code, abuild.stderr).toBe(0);
    const inspect = await sifpack(['inspect', '--all', 'private.sif'], { cwd: dir, env });
    expect(inspect.code, inspect.stderr).toBe(0);
    const submit = await sifpack(['submit', 'held.sbatch', '--json'], { cwd: dir, env });
    expect(submit.code, submit.stderr).toBe(0);
    const jobId = String((JSON.parse(submit.stdout) as { jobId: string }).jobId);
    jobs.push(jobId);
    const status = await sifpack(['status', jobId], { cwd: dir, env });
    expect(status.code, status.stderr).toBe(0);
    const cancel = await sifpack(['cancel', jobId], { cwd: dir, env });
    expect(cancel.code, cancel.stderr).toBe(0);
    outputs.push(...[build, abuild, inspect, submit, status, cancel].flatMap((r) => [r.stdout, r.stderr]));
    const tools = new Set((await wrappers.read()).map((c) => c.tool));
    for (const t of ['mksquashfs', 'apptainer', 'sbatch', 'scontrol', 'scancel']) expect(tools, `${t} was not run`).toContain(t);
  });

  it('no child got a canary in its argv; the password variables reach no child that does not read them', async () => {
    const children = await wrappers.read();
    expect(children.length).toBeGreaterThanOrEqual(4);
    // apptainer's own children (it finds mksquashfs on PATH too) inherit what apptainer was given: told apart by parent.
    const apptainerPids = new Set(children.filter((c) => c.tool === 'apptainer').map((c) => c.pid));
    expect(children.some((c) => c.tool === 'apptainer' && c.argv[0] === 'build')).toBe(true);
    for (const c of children) {
      expect(c.argv.join('\0'), `${c.tool} ${c.argv.join(' ')}`).not.toContain(CANARY);
      // sifpack's own password variable reaches no child at all.
      expect(c.env.SIFPACK_REGISTRY_PASSWORD, `${c.tool} environment`).toBeUndefined();
      if (c.tool === 'apptainer' || apptainerPids.has(c.ppid)) {
        // apptainer reads APPTAINER_DOCKER_PASSWORD itself (to pull a base image): `apptainer build` keeps that one, and
        // only that one; `apptainer --version` and the like get none.
        if (c.tool === 'apptainer' && c.argv[0] === 'build') expect(c.env.APPTAINER_DOCKER_PASSWORD, 'apptainer build environment').toBe(env.APPTAINER_DOCKER_PASSWORD);
        else expect([undefined, env.APPTAINER_DOCKER_PASSWORD], `${c.tool} ${c.argv.join(' ')} environment`).toContain(c.env.APPTAINER_DOCKER_PASSWORD);
        expect(Object.entries(c.env).filter(([k, v]) => k !== 'APPTAINER_DOCKER_PASSWORD' && v.includes(CANARY)), `${c.tool} environment`).toEqual([]);
      } else {
        expect(c.env.APPTAINER_DOCKER_PASSWORD, `${c.tool} environment`).toBeUndefined();
        expect(Object.values(c.env).join('\0'), `${c.tool} environment`).not.toContain(CANARY);
      }
      expect(c.env.SLURM_CONF ?? c.env.DOCKER_HOST, `${c.tool} got the rest of the environment`).toBeDefined();
    }
  });

  it('stdout, stderr, --json, the ledger, the image filesystem, its labels and the Docker image hold no canary', async () => {
    const out = outputs.join('\n');
    expect(out).toContain('sifpack.env-hash'); // the outputs are there and were searched
    expect(out).not.toContain(CANARY);
    expect(grepTree(path.join(dir, '.sifpack'), CANARY)).toEqual([]);
    expect(await fs.readFile(path.join(dir, '.sifpack', 'runs.jsonl'), 'utf8')).toContain('"jobId"');
    // The SIF's own bytes (labels, def, JSON objects), then its unpacked filesystem.
    expect((await fs.readFile(path.join(dir, 'private.sif'))).includes(CANARY)).toBe(false);
    const img = await readSif(path.join(dir, 'private.sif'));
    const root = path.join(dir, 'rootfs');
    execFileSync('unsquashfs', ['-q', '-o', String(requirePrimaryPartition(img).descriptor.offset), '-d', root, img.path], { stdio: 'ignore' });
    expect(grepTree(path.join(root, 'opt'), 'mytool').length).toBeGreaterThan(0); // the env is in there
    expect(grepTree(root, 'conda.example.org').length).toBeGreaterThan(0); // with its channel, minus the secret
    expect(grepTree(root, CANARY)).toEqual([]);
    // The same for the image the real apptainer built, which had APPTAINER_DOCKER_PASSWORD in its environment.
    const asif = path.join(dir, 'private-apptainer.sif');
    expect((await fs.readFile(asif)).includes(CANARY)).toBe(false);
    const aroot = path.join(dir, 'rootfs-apptainer');
    execFileSync('unsquashfs', ['-q', '-o', String(requirePrimaryPartition(await readSif(asif)).descriptor.offset), '-d', aroot, asif], { stdio: 'ignore' });
    expect(grepTree(path.join(aroot, 'opt'), 'mytool').length).toBeGreaterThan(0);
    expect(grepTree(aroot, CANARY)).toEqual([]);
    const dockerEnv = { ...process.env, DOCKER_HOST: service('DOCKER_HOST') };
    const inspected = execFileSync('docker', ['image', 'inspect', TAG], { env: dockerEnv }).toString();
    const history = execFileSync('docker', ['history', '--no-trunc', TAG], { env: dockerEnv }).toString();
    expect(inspected).toContain('sifpack.');
    expect(inspected + history).not.toContain(CANARY);
  });
});
