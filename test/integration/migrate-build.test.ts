/**
 * `sifpack migrate --build`: the environment the job script activates (a
 * conda prefix, relative to the script's directory) is built into the image
 * by the real Docker engine (test services) with the usual cache, and the
 * migrated script, run by real bash, runs its python command in that image
 * through the real apptainer (SIFPACK_TEST_APPTAINER).
 *
 * conda cannot be installed here: the prefix is a conda-meta record plus a
 * stand-in bin/python (a shell script that prints its arguments), enough for
 * sifpack to read the prefix and copy it into the image.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';

const run = promisify(execFile);
let dir: string;
let env: NodeJS.ProcessEnv;
let tag: string | undefined;
beforeAll(async () => {
  dir = await tempDir('sifpack-migrate-build-');
  const prefix = path.join(dir, 'envs', 'issue16-tool');
  await fs.mkdir(path.join(prefix, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(prefix, 'bin'), { recursive: true });
  await fs.writeFile(path.join(prefix, 'conda-meta', 'mytool-1.0-0.json'), JSON.stringify({ name: 'mytool', version: '1.0', build: '0', channel: 'https://conda.anaconda.org/conda-forge/noarch', subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(prefix, 'bin', 'python'), '#!/bin/sh\necho "stand-in python at $0"\nfor a in "$@"; do echo "arg: $a"; done\n', { mode: 0o755 });
  await fs.writeFile(
    path.join(dir, 'job.slurm'),
    '#!/bin/bash\n#SBATCH --job-name=tool\n#SBATCH --time=5\n\nENV=./envs/issue16-tool\nsource /opt/conda/bin/activate "$ENV"\npython run.py \'a b\' --n 3 > out.txt\nconda deactivate\n',
  );
  env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none', SIFPACK_BUILDER: 'docker', SIFPACK_BASE_IMAGE: service('SIFPACK_TEST_BASE_IMAGE') };
});
afterAll(async () => {
  // The shared engine keeps the tag the build made; leave nothing behind.
  if (tag) execFileSync('/usr/bin/docker', ['rmi', tag], { env: { ...process.env, ...env }, stdio: 'ignore' });
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sifpack migrate --build (real Docker engine, real apptainer)', () => {
  it('builds the image from the activated prefix, writes the script; a second run is a cache hit', async () => {
    const r = await sifpack(['migrate', 'job.slurm', '--image', 'tool.sif', '--build', '-o', 'new.slurm', '--json'], { cwd: dir, env });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.env).toEqual({ kind: 'prefix', prefix: path.join(dir, 'envs/issue16-tool') });
    expect(j.built).toMatchObject({ image: path.join(dir, 'tool.sif'), builder: 'docker', cached: false, tag: expect.stringMatching(/^sifpack\/issue16-tool:/) });
    tag = j.built.tag;
    const head = await fs.readFile(path.join(dir, 'tool.sif'));
    expect(head.subarray(32, 41).toString()).toBe('SIF_MAGIC');
    expect(await fs.readFile(path.join(dir, 'new.slurm'), 'utf8')).toContain("\napptainer exec tool.sif python run.py 'a b' --n 3 > out.txt\n");

    const again = await sifpack(['migrate', 'job.slurm', '--image', 'tool.sif', '--build', '-o', 'new.slurm', '--force', '--json'], { cwd: dir, env });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).built).toMatchObject({ cached: true, sha256: j.built.sha256 });
  }, 600_000);

  it('the migrated script, run by bash, runs python in the built image through the real apptainer', async () => {
    const apptainer = service('SIFPACK_TEST_APPTAINER');
    const { stderr } = await run('bash', ['new.slurm'], { cwd: dir, env: { PATH: `${path.dirname(apptainer)}:/usr/bin:/bin`, HOME: dir } });
    expect(stderr).not.toMatch(/FATAL|not found/);
    // The env is relocated to /opt/env in the image (--from-prefix), first on the image's PATH.
    expect(await fs.readFile(path.join(dir, 'out.txt'), 'utf8')).toBe(`stand-in python at /opt/env/bin/python\narg: run.py\narg: a b\narg: --n\narg: 3\n`);
  }, 60_000);

  it('an environment that is not on this machine: exit 2 naming the line, no script written', async () => {
    await fs.writeFile(path.join(dir, 'elsewhere.slurm'), '#!/bin/bash\nconda activate not-here-env\npython x.py\n');
    const r = await sifpack(['migrate', 'elsewhere.slurm', '--build', '-o', 'elsewhere-new.slurm'], { cwd: dir, env: { ...env, HOME: dir } });
    expect(r.stderr).toContain('elsewhere.slurm:2: --build: the environment not-here-env (conda activate not-here-env) is not on this machine');
    expect(r.code).toBe(2);
    await expect(fs.access(path.join(dir, 'elsewhere-new.slurm'))).rejects.toThrow();
  });
});
