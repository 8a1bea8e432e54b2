/**
 * `sifpack build --from-prefix` through both builders, run by the real
 * Apptainer 1.4.5: the env's etc/conda/activate.d hooks must run under exec,
 * run and shell whichever way the image was made —
 *   - Docker build + sifpack's converter (no apptainer on PATH),
 *   - Docker build + apptainer's own conversion (`apptainer build X docker-daemon://TAG`),
 *   - the definition file built by apptainer (`--builder apptainer --bootstrap docker-daemon`).
 * The base is the small busybox test image; the env's "python" is a shell
 * script (conda cannot be installed here), which is all run needs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';
import { apptainer, apptainerBin, apptainerConvert } from './apptainer-harness.js';

const TAG = 'sifpack-test/apptainer-hooks:1';
let dir: string;
let prefix: string;
const sifs: Record<string, string> = {};

/** A prefix with a conda record, a fake python on bin/ and an activation hook, as conda packages ship them (GDAL_DATA etc.). */
async function makePrefix(p: string): Promise<void> {
  await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.mkdir(path.join(p, 'etc', 'conda', 'activate.d'), { recursive: true });
  await fs.mkdir(path.join(p, 'share', 'my data'), { recursive: true });
  await fs.writeFile(path.join(p, 'conda-meta', 'hooktool-1.0-0.json'), JSON.stringify({ name: 'hooktool', version: '1.0', build: '0', channel: 'https://conda.anaconda.org/conda-forge/noarch', subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(p, 'bin', 'python'), '#!/bin/sh\necho "python [$HOOK_DATA] $*"\n', { mode: 0o755 });
  await fs.writeFile(path.join(p, 'etc', 'conda', 'activate.d', 'hooktool.sh'), 'export HOOK_DATA="$CONDA_PREFIX/share/my data"\n', { mode: 0o644 });
}

beforeAll(async () => {
  dir = await tempDir('sifpack-appbuild-');
  prefix = path.join(dir, 'envs', 'hooks');
  await makePrefix(prefix);
  const base = service('SIFPACK_TEST_BUSYBOX_IMAGE');
  const env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none' };
  sifs.docker = path.join(dir, 'docker.sif');
  const d = await sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', base, '--tag', TAG, '-o', sifs.docker, '--force'], { cwd: dir, env });
  expect(d.stderr).toContain("with sifpack's converter");
  expect(d.code).toBe(0);
  sifs.converted = path.join(dir, 'converted.sif');
  await apptainerConvert(TAG, sifs.converted);
  // apptainer on PATH: the def file is built by it, from the engine's image.
  sifs.def = path.join(dir, 'def.sif');
  const a = await sifpack(['build', '--from-prefix', prefix, '--builder', 'apptainer', '--bootstrap', 'docker-daemon', '--base-image', base, '-o', sifs.def], {
    cwd: dir,
    env: { ...env, PATH: `${path.dirname(apptainerBin())}:${process.env.PATH}` },
  });
  expect(a.stderr).not.toMatch(/FATAL/);
  expect(a.code).toBe(0);
}, 480_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('--from-prefix images from both builders under real apptainer: activate.d hooks run', () => {
  const kinds = ['docker', 'converted', 'def'];

  it('the def file sifpack rendered says Bootstrap: docker-daemon and names the local image', async () => {
    const r = await apptainer(['inspect', '--deffile', sifs.def!]);
    expect(r.stdout).toMatch(/^Bootstrap: docker-daemon$/m);
    expect(r.stdout).toContain(`From: ${service('SIFPACK_TEST_BUSYBOX_IMAGE')}`);
  });

  it.each(kinds)('%s: exec sees the hook\'s variable, the env on PATH and CONDA_PREFIX', async (kind) => {
    const r = await apptainer(['exec', sifs[kind]!, 'sh', '-c', 'echo "$HOOK_DATA|$CONDA_PREFIX|$(command -v python)|$PYTHONNOUSERSITE"']);
    expect(r).toMatchObject({ code: 0, stdout: '/opt/env/share/my data|/opt/env|/opt/env/bin/python|1\n' });
  });

  it.each(kinds)('%s: run passes arguments to the env\'s python, with the hook\'s variable set', async (kind) => {
    const r = await apptainer(['run', sifs[kind]!, 'script.py', 'a b'], { cwd: dir });
    expect(r).toMatchObject({ code: 0, stdout: 'python [/opt/env/share/my data] script.py a b\n' });
  });

  it.each(kinds)('%s: shell has it too', async (kind) => {
    const r = await apptainer(['shell', sifs[kind]!], { input: 'echo "shell [$HOOK_DATA]"\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'shell [/opt/env/share/my data]\n' });
  });

  it('the help text does not name /opt/sifpack, which a --from-prefix image lacks', async () => {
    const r = await apptainer(['run-help', sifs.def!]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`copied from the installed prefix ${prefix}`);
    expect(r.stdout).not.toContain('/opt/sifpack');
    const ls = await apptainer(['exec', sifs.def!, 'ls', '/opt']);
    expect(ls.stdout).not.toContain('sifpack');
  });
});
