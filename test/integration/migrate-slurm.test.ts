/**
 * A job script migrated by the built CLI, submitted to the real one-node
 * Slurm (test/services), runs to COMPLETED: sbatch accepts the kept #SBATCH
 * lines, and on the node the apptainer double (test/doubles/migrate) runs
 * the python commands with the image's recording python.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { type Project, makeProject, submit, waitFor } from './slurm-harness.js';

const MIGRATE = path.join(ROOT, 'test/doubles/migrate');
let p: Project;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  p = await makeProject();
  for (const [target, at] of [['apptainer', 'host-bin/apptainer'], ['python', 'image-bin/python'], ['python', 'image-bin/python3']] as const) {
    await fs.mkdir(path.join(p.dir, path.dirname(at)), { recursive: true });
    await fs.symlink(path.join(MIGRATE, target), path.join(p.dir, at));
  }
  await fs.writeFile(path.join(p.dir, 'stats.sif'), 'stand-in image: the apptainer double only checks that it exists\n');
  await fs.copyFile(path.join(ROOT, 'test/fixtures/job-scripts/module-source-activate.slurm'), path.join(p.dir, 'job.slurm'));
  // sbatch hands this environment to the job: the migrate apptainer double first, then srun/module doubles.
  env = { PATH: `${path.join(p.dir, 'host-bin')}:${p.env.PATH}`, SIFPACK_IMAGE_BIN: path.join(p.dir, 'image-bin') };
});
afterAll(async () => {
  await fs.rm(p.dir, { recursive: true, force: true });
});

describe('real Slurm: a migrated job script', () => {
  it('module-source-activate.slurm, migrated, runs to COMPLETED with both python commands in the image', async () => {
    const m = await p.cli(['migrate', 'job.slurm', '--image', 'stats.sif', '-o', 'job-sif.slurm'], env);
    expect(m.stderr).toContain('wrote job-sif.slurm');
    expect(m.code).toBe(0);
    const id = await submit(p, 'job-sif.slurm', [], env);
    const st = await waitFor(p, id);
    expect(st).toMatchObject({ state: 'COMPLETED', explanation: 'completed (exit code 0)' });
    const calls = (await fs.readFile(path.join(p.dir, 'python.calls'), 'utf8')).split('\n').filter(Boolean).map((l) => l.split('\0').slice(0, -1));
    expect(calls).toEqual([
      ['image', 'python', p.dir, '-u', 'analysis.py'],
      ['image', 'python', p.dir, 'summarize.py', 'analysis.log'],
    ]);
    expect(await fs.readFile(path.join(p.dir, 'analysis.log'), 'utf8')).toBe('python double ran: -u analysis.py\n');
    const apptainer = (await fs.readFile(path.join(p.dir, 'apptainer.calls'), 'utf8')).split('\n').filter(Boolean).map((l) => l.split('\0').slice(0, -1));
    expect(apptainer).toEqual([
      ['exec', 'stats.sif', 'python', '-u', 'analysis.py'],
      ['exec', 'stats.sif', 'python', 'summarize.py', 'analysis.log'],
    ]);
  }, 180_000);
});
