/**
 * `sifpack run` end to end on the test services: the real Docker engine
 * builds a --from-prefix image of a small real prefix (the base image's own
 * python3), sifpack's converter makes the SIF, the one-node Slurm runs the
 * job, and apptainer on the node is the recording double (test/doubles/bin),
 * which runs the script with the node's python3. The doubles reach the job
 * through Slurm's own SBATCH_EXPORT (ALL plus PATH), so sifpack itself does
 * not see them and builds through Docker.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { pythonPrefixFromImage } from '../fixtures/python-prefix.js';
import { ROOT, service, tempDir, withoutRunState } from '../helpers.js';

interface RunJson {
  workdir: string;
  envName: string;
  steps: { step: string; outcome: string; detail: string; files: string[] }[];
  image: string;
  jobScript: string;
  jobId: string | null;
  state?: string;
  explanation?: string;
  outputTail?: string[];
  next: string | null;
  seconds: number;
}

const outcomes = (j: RunJson) => Object.fromEntries(j.steps.map((s) => [s.step, s.outcome]));

let dir: string;
let prefix: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await tempDir('sifpack-run-');
  const dockerEnv = { DOCKER_HOST: service('DOCKER_HOST') };
  prefix = await pythonPrefixFromImage(path.join(dir, 'envs', 'pyenv'), service('SIFPACK_TEST_BASE_IMAGE'), dockerEnv);
  await fs.writeFile(
    path.join(dir, 'job.py'),
    'import sys\nprint("hello from the job", *sys.argv[1:])\nif sys.argv[1:] == ["fail"]:\n    print("giving up", file=sys.stderr)\n    sys.exit(3)\n',
  );
  env = {
    ...dockerEnv,
    SIFPACK_DOCKER_NETWORK: 'none',
    SLURM_CONF: service('SLURM_CONF'),
    // sbatch --export=ALL,PATH=...: the job (not sifpack) finds the apptainer and srun doubles.
    SBATCH_EXPORT: `ALL,PATH=${path.join(ROOT, 'test/doubles/bin')}:${process.env.PATH}`,
    SIFPACK_RECORD: dir,
    HOME: dir,
  };
}, 600_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const runArgs = (...scriptArgs: string[]) => ['run', 'job.py', ...scriptArgs, '--from-prefix', prefix, '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--builder', 'docker', '--partition', service('SIFPACK_TEST_PARTITION'), '--watch', '--interval', '1'];

describe('sifpack run on the test services', () => {
  let first: RunJson;

  it('builds the image through Docker, submits, and --watch ends COMPLETED with the output', async () => {
    const r = await sifpack([...runArgs('hello'), '--json'], { cwd: dir, env });
    expect(r.stderr).not.toMatch(/sifpack: error/);
    expect(r.code).toBe(0);
    first = JSON.parse(r.stdout) as RunJson;
    expect(outcomes(first)).toEqual({ export: 'ran', def: 'ran', build: 'ran', sbatch: 'ran', submit: 'ran' });
    expect(first.workdir).toBe(path.join(dir, '.sifpack', 'pyenv'));
    // The base image's python is no conda download: no lock, said so, and the run goes on.
    expect((await fs.readdir(first.workdir)).sort()).toEqual(['environment.yml', 'job.sbatch', 'pyenv.def', 'pyenv.sif']);
    expect(r.stderr).toContain('sifpack: warning: no environment.lock: 1 record(s) have no download URL, so no exact lock can be written (python-3.11.2-debian12');
    expect(first.steps.find((s) => s.step === 'build')!.detail).toMatch(/^with docker in/);
    expect(r.stderr).toContain('building sifpack/pyenv:');
    // The Dockerfile's %test step ran the prefix's own python inside the image and found its package.
    expect(r.stderr).toMatch(/Step \d+\/\d+ : RUN python -c 'import importlib\.util as u;/);
    expect(r.stderr).not.toContain('no module greeting');
    expect(first.jobId).toMatch(/^\d+$/);
    expect(first).toMatchObject({ state: 'COMPLETED', explanation: 'completed (exit code 0)' });
    expect(first.outputTail).toContain('hello from the job hello');
    // The job ran the image that run built, through `srun apptainer exec`.
    const argv = (await fs.readFile(path.join(dir, 'apptainer.argv'), 'utf8')).split('\0');
    expect(argv.slice(0, 4)).toEqual(['exec', '--cleanenv', first.image, 'python']);
    const labels = JSON.parse((await sifpack(['inspect', first.image, '--json'], { cwd: dir })).stdout) as { labels: Record<string, string> };
    expect(labels.labels['sifpack.prefix-path']).toBe(prefix);
  }, 900_000);

  it('a second run reuses export, def, build and the job script (no Docker build), and submits again', async () => {
    const before = await fs.stat(first.image);
    const r = await sifpack([...runArgs('hello'), '--json'], { cwd: dir, env });
    expect(r.code).toBe(0);
    const again = JSON.parse(r.stdout) as RunJson;
    expect(outcomes(again)).toEqual({ export: 'reused', def: 'reused', build: 'reused', sbatch: 'reused', submit: 'ran' });
    expect(r.stderr).not.toContain('builder:');
    expect(r.stderr).not.toContain('building sifpack/');
    const after = await fs.stat(first.image);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(again.jobId).not.toBe(first.jobId);
    expect(again.state).toBe('COMPLETED');
    // sifpack's own time up to the submission (the watch is Slurm's time).
    console.log(`second run: sifpack's own time ${again.seconds}s`);
    expect(again.seconds).toBeLessThan(5);
  }, 300_000);

  it('a failing script: exit 1, the state in plain words, the end of its output', async () => {
    const r = await sifpack(runArgs('fail'), { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ {2}build {3}reused /m);
    expect(r.stdout).toMatch(/^ {2}sbatch {2}ran /m);
    expect(r.stdout).toMatch(/^Job \d+ FAILED: exited with code 3$/m);
    expect(r.stdout).toContain('  hello from the job fail');
    expect(r.stdout).toContain('  giving up');
    expect(r.stderr).toMatch(/sifpack: error: job \d+ FAILED: exited with code 3/);
  }, 300_000);
});

describe('sifpack run where nothing can build or submit', () => {
  let example: string;
  beforeAll(async () => {
    example = path.join(dir, 'pandas-analysis');
    await fs.cp(path.join(ROOT, 'examples', 'pandas-analysis'), example, { recursive: true, filter: (src) => !src.includes(`${path.sep}expected`) && withoutRunState(src) });
  });

  it('--plan with PATH and DOCKER_HOST emptied: every file written, the commands to finish, exit 0', async () => {
    const r = await sifpack(['run', 'analyze.py', 'measurements.csv', '-p', 'envs/analysis', '--plan'], { cwd: example, env: { PATH: '', DOCKER_HOST: '' } });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const wd = path.join(example, '.sifpack', 'analysis');
    expect((await fs.readdir(wd)).sort()).toEqual(['analysis.def', 'analyze.sbatch', 'environment.lock', 'environment.lock.pip.txt', 'environment.yml']);
    expect(r.stdout).toBe(
      [
        'sifpack run analyze.py: files in .sifpack/analysis/',
        '  export  ran      environment.yml, environment.lock, environment.lock.pip.txt — from envs/analysis, via prefix',
        '  def     ran      analysis.def — preset micromamba, base mambaorg/micromamba:2.3.2-debian12-slim',
        '  build   skipped  --plan',
        '  sbatch  ran      analyze.sbatch — job analyze',
        '  submit  skipped  --plan',
        'Next (planned only (--plan)). Drop --plan to build and submit here, or run this where apptainer and Slurm are (a login node), from this directory:',
        '  (cd .sifpack/analysis && apptainer build analysis.sif analysis.def) && sbatch .sifpack/analysis/analyze.sbatch',
        '',
      ].join('\n'),
    );
    // sifpack.yml's resources reached the job script; the image is the one in the working directory.
    const job = await fs.readFile(path.join(wd, 'analyze.sbatch'), 'utf8');
    expect(job).toContain('#SBATCH --time=00:30:00\n');
    expect(job).toContain(`apptainer exec --cleanenv \${tmp_bind[@]+"\${tmp_bind[@]}"} ${path.join(wd, 'analysis.sif')} python analyze.py measurements.csv\n`);
    // The def copies the env file next to it: apptainer build works from that directory.
    expect(await fs.readFile(path.join(wd, 'analysis.def'), 'utf8')).toContain('    environment.yml /opt/sifpack/environment.yml\n');
    const again = await sifpack(['run', 'analyze.py', 'measurements.csv', '-p', 'envs/analysis', '--plan', '--json'], { cwd: example, env: { PATH: '', DOCKER_HOST: '' } });
    expect(outcomes(JSON.parse(again.stdout) as RunJson)).toEqual({ export: 'reused', def: 'reused', build: 'skipped', sbatch: 'reused', submit: 'skipped' });
  }, 180_000);

  it('without --plan: the same files, the build and submit marked blocked, the commands to finish elsewhere, exit 1', async () => {
    const r = await sifpack(['run', 'analyze.py', 'measurements.csv', '-p', 'envs/analysis'], { cwd: example, env: { PATH: '', DOCKER_HOST: `unix://${path.join(dir, 'nobody-here.sock')}` } });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ {2}build {3}blocked {2}nothing to build with: no apptainer or singularity on PATH, and no Docker engine answers$/m);
    expect(r.stdout).toMatch(/^ {2}submit {2}blocked {2}no image yet/m);
    expect(r.stdout).toContain('  (cd .sifpack/analysis && apptainer build analysis.sif analysis.def) && sbatch .sifpack/analysis/analyze.sbatch\n');
    expect(r.stderr).toContain('hint: every file is written; finish with: (cd .sifpack/analysis && apptainer build');
  }, 180_000);

  it('bad input is exit 2 naming the flag, nothing written', async () => {
    const empty = path.join(dir, 'empty');
    await fs.mkdir(empty);
    await fs.writeFile(path.join(empty, 'x.py'), 'print(1)\n');
    const both = await sifpack(['run', 'x.py', '-p', 'a', '-n', 'b'], { cwd: empty });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('sifpack: error: -n and -p exclude each other');
    const noScript = await sifpack(['run', 'nope.py', '-p', prefix, '--plan'], { cwd: empty });
    expect(noScript.code).toBe(2);
    expect(noScript.stderr).toContain('sifpack: error: nope.py: no such file');
    expect(await fs.readdir(empty)).toEqual(['x.py']);
  }, 180_000);
});
