/**
 * `sifpack build --builder docker` says only what is true (issue 14), checked
 * with the real Docker engine and the real Apptainer 1.4.5:
 *   - the SIF has the %help a def-built image has (`apptainer run-help`),
 *     whichever converter made it (and `sifpack convert` of the same Docker
 *     image), so no "there is no %help" warning;
 *   - the activation-hooks warning (about `docker run`) only when the Docker
 *     image itself is taken away (--docker-archive);
 *   - --tmpdir is used: apptainer's conversion gets it as APPTAINER_TMPDIR.
 * The wrapper put first on PATH for the last point is a recording wrapper: it
 * notes its APPTAINER_TMPDIR and argv, then execs the real apptainer.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOOKS_WARNING } from '../../src/render/dockerfile.js';
import { type CliRun, sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';
import { apptainer, apptainerBin } from './apptainer-harness.js';

const TAG = 'sifpack-test/docker-truth:1';
let dir: string;
let prefix: string;
let scratch: string;
const runs: Record<string, CliRun> = {};

async function makePrefix(p: string): Promise<void> {
  await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.mkdir(path.join(p, 'etc', 'conda', 'activate.d'), { recursive: true });
  await fs.writeFile(path.join(p, 'conda-meta', 'helptool-1.0-0.json'), JSON.stringify({ name: 'helptool', version: '1.0', build: '0', channel: 'https://conda.anaconda.org/conda-forge/noarch', subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(p, 'bin', 'python'), '#!/bin/sh\necho "python $*"\n', { mode: 0o755 });
  await fs.writeFile(path.join(p, 'etc', 'conda', 'activate.d', 'helptool.sh'), 'export HELPTOOL_DATA="$CONDA_PREFIX/share"\n');
}

beforeAll(async () => {
  dir = await tempDir('sifpack-truth-');
  prefix = path.join(dir, 'envs', 'helpenv');
  scratch = path.join(dir, 'scratch');
  await fs.mkdir(scratch);
  await makePrefix(prefix);
  const env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none' };
  const build = (extra: string[], more: NodeJS.ProcessEnv = {}) =>
    sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '--tag', TAG, '--force', ...extra], { cwd: dir, env: { ...env, ...more } });

  // No apptainer on PATH: sifpack's converter.
  runs.plain = await build(['-o', 'plain.sif']);
  // apptainer on PATH (through the recording wrapper): its own conversion, with --tmpdir.
  const wrapDir = path.join(dir, 'wrap');
  await fs.mkdir(wrapDir);
  await fs.writeFile(
    path.join(wrapDir, 'apptainer'),
    `#!/bin/sh\nprintf '%s|%s\\n' "$APPTAINER_TMPDIR" "$*" >> ${JSON.stringify(path.join(dir, 'apptainer-calls.log'))}\nexec ${JSON.stringify(apptainerBin())} "$@"\n`,
    { mode: 0o755 },
  );
  runs.tmpdir = await build(['-o', 'tmpdir.sif', '--tmpdir', scratch], { PATH: `${wrapDir}:${process.env.PATH}` });
  runs.archive = await build(['-o', 'archive.sif', '--docker-archive', 'image.tar']);
  // The same Docker image through plain `sifpack convert`: the help comes from the image itself.
  runs.convert = await sifpack(['convert', TAG, '-o', 'convert.sif'], { cwd: dir, env });
  for (const [k, r] of Object.entries(runs)) expect(r.code, `${k}: ${r.stderr}`).toBe(0);
}, 480_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('build --builder docker says only what is true', () => {
  it('no Dockerfile-only warnings on a plain build: the SIF has help and runs the hooks', () => {
    for (const k of ['plain', 'tmpdir'] as const) {
      expect(runs[k]!.stderr, k).not.toContain('there is no %help');
      expect(runs[k]!.stderr, k).not.toContain(HOOKS_WARNING);
      expect(runs[k]!.stderr, k).not.toContain('COPY expects');
    }
  });

  it('the hooks warning (about `docker run`) when the Docker image is saved with --docker-archive', () => {
    expect(runs.archive!.stderr).toContain(HOOKS_WARNING);
  });

  it('apptainer run-help shows the def\'s %help in images from both converters, and after a plain convert', async () => {
    const def = await sifpack(['def', '--from-prefix', prefix, '--base-image', service('SIFPACK_TEST_BUSYBOX_IMAGE')], { cwd: dir });
    expect(def.code, def.stderr).toBe(0);
    const help = def.stdout.split('\n%help\n')[1]!.split('\n%')[0]!.split('\n').map((l) => l.trim()).filter(Boolean);
    expect(help[0]).toMatch(/^Conda environment "helpenv" packed by sifpack /);
    expect(help).toContain(`The environment was copied from the installed prefix ${prefix} (no environment file in the image).`);
    for (const sif of ['plain.sif', 'tmpdir.sif', 'convert.sif']) {
      const r = await apptainer(['run-help', path.join(dir, sif)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split('\n').map((l) => l.trim()).filter(Boolean), sif).toEqual(help);
    }
  });

  it('--tmpdir reaches apptainer\'s conversion as APPTAINER_TMPDIR, and is left empty', async () => {
    expect(runs.tmpdir!.stderr).toContain(`(scratch in --tmpdir ${scratch})`);
    const calls = (await fs.readFile(path.join(dir, 'apptainer-calls.log'), 'utf8')).trim().split('\n');
    const build = calls.filter((c) => c.split('|')[1]!.startsWith('build '));
    expect(build).toHaveLength(1);
    expect(build[0]).toMatch(new RegExp(`^${scratch}\\|build \\S+ docker-daemon://${TAG}$`));
    expect(await fs.readdir(scratch)).toEqual([]);
  });
});
