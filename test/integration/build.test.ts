/**
 * `sifpack build` against a real Docker engine (no apptainer here, so the
 * SIF comes from sifpack's converter), and the apptainer path end to end
 * with a recording double of apptainer (test/doubles/apptainer-build).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSif, requirePrimaryPartition } from '../../src/sif/reader.js';
import { interruptWhen, sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

let dir: string;
let env: NodeJS.ProcessEnv;
const docker = (...args: string[]) => execFileSync('/usr/bin/docker', args, { env: { ...process.env, ...env } }).toString();

/** A prefix as a user has it: a conda record, an executable on bin/, data with spaces, a symlink. */
async function makePrefix(p: string, extraRecord = false): Promise<void> {
  await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.mkdir(path.join(p, 'lib', 'my data'), { recursive: true });
  await fs.writeFile(path.join(p, 'conda-meta', 'mytool-1.0-0.json'), JSON.stringify({ name: 'mytool', version: '1.0', build: '0', channel: 'https://conda.anaconda.org/conda-forge/noarch', subdir: 'noarch', depends: [] }));
  if (extraRecord) await fs.writeFile(path.join(p, 'conda-meta', 'extra-2.0-0.json'), JSON.stringify({ name: 'extra', version: '2.0', build: '0', subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(p, 'bin', 'mytool'), '#!/bin/sh\necho "mytool runs from $(dirname "$0")"\n', { mode: 0o755 });
  await fs.writeFile(path.join(p, 'lib', 'my data', 'file with spaces.txt'), 'spaces intact\n');
  await fs.symlink('mytool', path.join(p, 'bin', 'mytool-link'));
}

beforeAll(async () => {
  env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none' };
  dir = await tempDir('sifpack-build-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sifpack build --builder docker (real engine)', () => {
  let prefix: string;
  let first: { image: string; hash: string; tag: string; cached: boolean; builder: string; sha256: string };

  beforeAll(async () => {
    prefix = path.join(dir, 'envs', 'tooling');
    await makePrefix(prefix);
    const r = await sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'tooling.sif', '--docker-archive', 'tooling.tar', '--json'], { cwd: dir, env });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    first = JSON.parse(r.stdout);
  }, 180_000);

  it('reports the result as one JSON object', () => {
    expect(first).toMatchObject({ image: path.join(dir, 'tooling.sif'), builder: 'docker', cached: false, tag: expect.stringMatching(/^sifpack\/tooling:[0-9a-f]{12}$/) });
    expect(first.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.sha256).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('in a container of the built image the script is found on PATH, relocated to /opt/env', () => {
    expect(docker('run', '--rm', '--network', 'none', '--entrypoint', 'mytool', first.tag)).toBe('mytool runs from /opt/env/bin\n');
    expect(docker('run', '--rm', '--network', 'none', '--entrypoint', 'sh', first.tag, '-c', 'echo "$CONDA_PREFIX|$PYTHONNOUSERSITE"')).toBe('/opt/env|1\n');
  });

  it('the build context carried a file with spaces, a symlink and the exec bit intact', () => {
    const out = docker('run', '--rm', '--network', 'none', '--entrypoint', 'sh', first.tag, '-c', 'cat "/opt/env/lib/my data/file with spaces.txt"; readlink /opt/env/bin/mytool-link; stat -c %a /opt/env/bin/mytool');
    expect(out).toBe('spaces intact\nmytool\n755\n');
  });

  it('the SIF carries the build hash and runs the tool through the exec action (chroot)', async () => {
    const r = await sifpack(['inspect', 'tooling.sif', '--json'], { cwd: dir });
    const rep = JSON.parse(r.stdout) as { labels: Record<string, string> };
    expect(rep.labels['sifpack.build-hash']).toBe(first.hash);
    const img = await readSif(path.join(dir, 'tooling.sif'));
    const root = path.join(dir, 'rootfs');
    execFileSync('unsquashfs', ['-q', '-o', String(requirePrimaryPartition(img).descriptor.offset), '-d', root, img.path]);
    expect(execFileSync('chroot', [root, '/.singularity.d/actions/exec', 'mytool']).toString()).toBe('mytool runs from /opt/env/bin\n');
  });

  it('--docker-archive saved the image in docker save format', async () => {
    const list = execFileSync('tar', ['-tf', path.join(dir, 'tooling.tar')]).toString();
    expect(list).toMatch(/^manifest\.json$/m);
  });

  it('a second identical build is a cache hit; a changed env is not', async () => {
    const again = await sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'tooling.sif', '--json'], { cwd: dir, env });
    expect(again.code).toBe(0);
    const hit = JSON.parse(again.stdout) as { cached: boolean; hash: string; seconds: number; sha256: string };
    expect(hit).toMatchObject({ cached: true, builder: 'docker', hash: first.hash, sha256: first.sha256 });
    expect(hit.seconds).toBeLessThan(3);
    const plain = await sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'tooling.sif'], { cwd: dir, env });
    expect(plain.stderr).toContain('is up to date');

    const changed = path.join(dir, 'envs2', 'tooling');
    await makePrefix(changed, true);
    const miss = await sifpack(['build', '--from-prefix', changed, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'tooling.sif', '--json'], { cwd: dir, env });
    expect(miss.code).toBe(2);
    expect(miss.stderr).toMatch(/tooling\.sif exists and was built from something else/);
    const forced = await sifpack(['build', '--from-prefix', changed, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'tooling2.sif', '--json'], { cwd: dir, env });
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ cached: false });
    expect(JSON.parse(forced.stdout).hash).not.toBe(first.hash);
  }, 180_000);

  it('a failing install step: the step and its message, exit 1, no tag, no output file', async () => {
    const d = path.join(dir, 'failing');
    await fs.mkdir(d);
    await fs.writeFile(path.join(d, 'environment.yml'), 'name: broken\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n');
    // The test base image has no micromamba: the install step must fail.
    const r = await sifpack(['build', '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--json'], { cwd: d, env });
    expect(r.code).toBe(1);
    // The step is shortened in the message; the failing command's own line follows in the details.
    expect(r.stderr).toMatch(/docker build failed at Step \d+\/\d+ : RUN set -eu; .*micromamba.*: The command '\/bin\/sh -c set -eu;[\s\S]*returned a non-zero code: 127/);
    expect(r.stderr).toContain('/bin/micromamba: not found');
    expect(await fs.readdir(d)).toEqual(['environment.yml']);
    const tags = docker('images', '--format', '{{.Repository}}:{{.Tag}}', 'sifpack/broken');
    expect(tags.trim()).toBe('');
  }, 120_000);

  it('Ctrl-C during the Docker build: exit 130, no image file, no temp file, no tag', async () => {
    const big = path.join(dir, 'envs', 'bigenv');
    await makePrefix(big);
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 20; i++) await fs.writeFile(path.join(big, 'lib', `blob${i}.bin`), randomBytes(10 * 2 ** 20));
    const out = path.join(dir, 'interrupted');
    await fs.mkdir(out);
    const { code } = await interruptWhen(['build', '--from-prefix', big, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--tag', 'sifpack-test/interrupted:1'], 'with the Docker engine', 300, { cwd: out, env });
    expect(code).toBe(130);
    expect((await fs.readdir(out)).filter((f) => !f.startsWith('.sifpack'))).toEqual([]);
    expect(docker('images', '-q', 'sifpack-test/interrupted:1').trim()).toBe('');
  }, 120_000);

  it('a definition file cannot go through Docker: exit 2', async () => {
    await fs.writeFile(path.join(dir, 'mine.def'), 'Bootstrap: docker\nFrom: x:1\n');
    const r = await sifpack(['build', 'mine.def', '--builder', 'docker'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('a definition file needs apptainer or singularity to build');
  });
});

describe('sifpack build with apptainer (recording double of apptainer 1.3.4)', () => {
  const doubleEnv = () => ({ ...env, PATH: `${path.join(ROOT, 'test/doubles/apptainer-build')}:${process.env.PATH}`, SIFPACK_RECORD: dir });

  it('auto picks apptainer, renders the def under .sifpack/build, runs `apptainer build TMP DEF` there, then a rebuild is cached', async () => {
    const d = path.join(dir, 'appt');
    await fs.mkdir(d);
    await fs.copyFile(path.join(ROOT, 'examples/pandas-analysis/environment.yml'), path.join(d, 'environment.yml'));
    await fs.rm(path.join(dir, 'apptainer-build.jsonl'), { force: true });
    const r = await sifpack(['build', '--tmpdir', d, '--json'], { cwd: d, env: doubleEnv() });
    expect(r.stderr).toContain('builder: apptainer 1.3.4 found on PATH');
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout) as { image: string; builder: string; cached: boolean; hash: string };
    expect(res).toMatchObject({ image: path.join(d, 'analysis.sif'), builder: 'apptainer', cached: false });
    const calls = (await fs.readFile(path.join(dir, 'apptainer-build.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { args: string[]; cwd: string; env: Record<string, string> });
    expect(calls).toHaveLength(1);
    const def = path.join(d, '.sifpack', 'build', 'analysis.def');
    expect(calls[0]!.args).toEqual(['build', expect.stringMatching(/\/\.analysis\.sif\.\d+-[0-9a-f]{12}\.tmp\.sif$/), def]);
    expect(calls[0]!.cwd).toBe(path.dirname(def));
    // A scratch directory of the build's own inside --tmpdir, removed after the build.
    expect(path.dirname(calls[0]!.env.APPTAINER_TMPDIR!)).toBe(d);
    expect(path.basename(calls[0]!.env.APPTAINER_TMPDIR!)).toMatch(/^sifpack-build-/);
    expect((await fs.readdir(d)).filter((f) => f.startsWith('sifpack-build-'))).toEqual([]);
    expect(await fs.readFile(def, 'utf8')).toContain(`    ${path.join(d, 'environment.yml')} /opt/sifpack/environment.yml\n`);
    const again = await sifpack(['build', '--tmpdir', d, '--json'], { cwd: d, env: doubleEnv() });
    expect(JSON.parse(again.stdout)).toMatchObject({ cached: true, hash: res.hash });
    expect((await fs.readFile(path.join(dir, 'apptainer-build.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('on a terminal, progress is one line redrawn with a spinner; in a log, timestamped lines', async () => {
    const d = path.join(dir, 'appt-tty');
    await fs.mkdir(d);
    await fs.copyFile(path.join(ROOT, 'examples/array-sweep/environment.yml'), path.join(d, 'environment.yml'));
    const cli = path.join(ROOT, 'dist', 'cli.js');
    // util-linux `script` gives the CLI a real pseudo-terminal as stderr.
    const tty = execFileSync('script', ['-qec', `${process.execPath} ${cli} build --tmpdir ${d}`, '/dev/null'], { cwd: d, env: { ...process.env, ...doubleEnv() } }).toString();
    expect(tty).toMatch(/\r\x1b\[K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \d+s INFO: Running post scriptlet/);
    expect(tty).not.toMatch(/^\[\d\d:\d\d:\d\d\]/m);
    await fs.rm(path.join(d, 'sweep.sif'));
    const log = await sifpack(['build', '--tmpdir', d], { cwd: d, env: doubleEnv() });
    expect(log.stderr).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: {4}Running post scriptlet$/m);
    expect(log.stderr).not.toContain('\x1b[K');
  });

  it('a failed apptainer build: the FATAL and solver lines, the log path, exit 1, no image', async () => {
    const d = path.join(dir, 'appt-fail');
    await fs.mkdir(d);
    await fs.copyFile(path.join(ROOT, 'examples/array-sweep/environment.yml'), path.join(d, 'environment.yml'));
    const r = await sifpack(['build', '--tmpdir', d], { cwd: d, env: { ...doubleEnv(), APPTAINER_DOUBLE_FAIL: '1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('apptainer build failed (exit 255)');
    expect(r.stderr).toContain('critical libmamba Could not solve for environment specs');
    expect(r.stderr).toContain(`the full log is ${path.join(d, '.sifpack', 'build', 'sweep.sif.log')}`);
    await expect(fs.stat(path.join(d, 'sweep.sif'))).rejects.toThrow();
  });
});
