/**
 * Shared set-up for the real-Slurm tests: a project directory with a Python
 * script and an image, and polling until a job is finished. With `real`, the
 * image is a SIF of the Debian+python3 test image (sifpack convert) and jobs
 * run it through the real apptainer and srun (sbatch exports the submitting
 * environment, so the job finds apptainer on PATH); without, a stand-in file
 * and the recording doubles from test/doubles/bin.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { expect } from 'vitest';
import type { JobStatus } from '../../src/commands/status.js';
import { packContext } from '../../src/runtime/build-context.js';
import { DockerodeEngine } from '../../src/runtime/docker.js';
import { type CliRun, sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';
import { apptainerBin } from './apptainer-harness.js';

// No json import: the test image has python3-minimal, whose stdlib lacks it.
export const DUMP_SCRIPT = `import os, sys, time
def js(v):
    if v is None: return "null"
    if isinstance(v, dict): return "{" + ", ".join(js(k) + ": " + js(x) for k, x in v.items()) + "}"
    if isinstance(v, list): return "[" + ", ".join(js(x) for x in v) + "]"
    return '"' + "".join(c if c.isprintable() and c not in '"\\\\' else "\\\\u%04x" % ord(c) for c in v) + '"'
task = os.environ.get("SLURM_ARRAY_TASK_ID")
name = f"dump_{task}.json" if task is not None else "dump.json"
with open(name, "w", encoding="utf-8") as f:
    f.write(js({"argv": sys.argv[1:], "task": task, "job": os.environ.get("SLURM_JOB_ID"), "env": {k: v for k, v in os.environ.items() if k.startswith("SIFPACK_T_")}, "container": os.environ.get("APPTAINER_CONTAINER")}))
print("hello from the job", *sys.argv[1:2])
code = int(os.environ.get("EXIT_WITH", "0"))
time.sleep(float(os.environ.get("SLEEP", "0")))
sys.exit(code)
`;

export interface Project {
  dir: string;
  env: NodeJS.ProcessEnv;
  cli: (args: string[], extraEnv?: NodeJS.ProcessEnv) => Promise<CliRun>;
}

const PYTHON_IMAGE = 'sifpack-test/slurm-python:1';

/** analysis.sif: the python test image (with `python`, as a conda env has it) converted by sifpack. */
async function realImage(dir: string): Promise<void> {
  process.env.DOCKER_HOST = service('DOCKER_HOST');
  const engine = new DockerodeEngine(new Docker());
  if (!(await engine.inspectImage(PYTHON_IMAGE))) {
    const dockerfile = `FROM ${service('SIFPACK_TEST_BASE_IMAGE')}\nRUN ln -sf python3 /usr/bin/python\n`;
    await engine.build(packContext([{ name: 'Dockerfile', data: dockerfile }], []), { tag: PYTHON_IMAGE, labels: {}, network: 'none', onLine: () => undefined });
  }
  const r = await sifpack(['convert', PYTHON_IMAGE, '-o', path.join(dir, 'analysis.sif'), '-q'], { env: { DOCKER_HOST: service('DOCKER_HOST') } });
  if (r.code !== 0) throw new Error(`convert ${PYTHON_IMAGE}: ${r.stderr}`);
}

export async function makeProject(opts: { real?: boolean } = {}): Promise<Project> {
  const slurmConf = service('SLURM_CONF');
  const dir = await tempDir('sifpack-slurm-');
  await fs.writeFile(path.join(dir, 'dump.py'), DUMP_SCRIPT);
  if (opts.real) await realImage(dir);
  else await fs.writeFile(path.join(dir, 'analysis.sif'), 'stand-in image: the apptainer double only checks that it exists\n');
  const env = {
    PATH: opts.real ? `${path.dirname(apptainerBin())}:${process.env.PATH}` : `${path.join(ROOT, 'test/doubles/bin')}:${process.env.PATH}`,
    HOME: dir,
    SLURM_CONF: slurmConf,
    SIFPACK_RECORD: dir,
  };
  return { dir, env, cli: (args, extraEnv = {}) => sifpack(args, { cwd: dir, env: { ...env, ...extraEnv } }) };
}

/** Renders a job script with `sifpack sbatch` and returns its file name. */
export async function writeJob(p: Project, file: string, args: string[]): Promise<string> {
  const r = await p.cli(['sbatch', 'dump.py', '--image', 'analysis.sif', '--partition', service('SIFPACK_TEST_PARTITION'), '--script-out', file, ...args]);
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  return file;
}

/** Submits and returns the job id. */
export async function submit(p: Project, file: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await p.cli(['submit', file, ...extra], env);
  expect(r.stderr).not.toMatch(/error/);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^\d+\n$/);
  return r.stdout.trim();
}

/** Polls `sifpack status ID --json` until the job finished (or `until` says stop). */
export async function waitFor(p: Project, id: string, until: (s: JobStatus) => boolean = (s) => s.phase === 'done' || s.phase === 'failed', seconds = 90): Promise<JobStatus> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const r = await p.cli(['status', id, '--json']);
    expect(r.code).toBe(0);
    const [st] = JSON.parse(r.stdout) as JobStatus[];
    if (until(st!)) return st!;
    if (Date.now() > end) throw new Error(`job ${id} still ${st!.state} (${st!.explanation}) after ${seconds}s`);
    await new Promise((res) => setTimeout(res, 500));
  }
}
