/**
 * A real job that runs past --time=1 (one minute, Slurm's smallest limit):
 * status must say it hit its time limit. The job runs its script in a real
 * SIF through the real apptainer on the node, as the other Slurm tests do
 * (slurm-harness.ts, `real`). In its own file so it runs beside the other
 * tests instead of after them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { processesWith } from '../helpers.js';
import { type Project, makeProject, submit, waitFor, writeJob } from './slurm-harness.js';

let p: Project;
beforeAll(async () => {
  p = await makeProject({ real: true });
}, 300_000);
afterAll(async () => {
  await fs.rm(p.dir, { recursive: true, force: true });
});


it('a job with --time=1 that sleeps past it in the container: "hit its 00:01:00 time limit", and its apptainer is stopped', async () => {
  await writeJob(p, 'slow.sbatch', ['--time', '1', '--env', 'SLEEP=600']);
  const id = await submit(p, 'slow.sbatch');
  const image = path.join(p.dir, 'analysis.sif');
  // While it runs, the node has `apptainer exec IMAGE python dump.py` (and the check below can see it).
  const seen = await waitFor(p, id, () => processesWith(image).length > 0, 90);
  expect(seen.phase).not.toBe('done');
  const st = await waitFor(p, id, undefined, 150);
  expect(st.state).toBe('TIMEOUT');
  expect(st.explanation).toBe('hit its 00:01:00 time limit (raise --time)');
  // It really ran in the image: the script wrote this before it slept.
  const dump = JSON.parse(await fs.readFile(path.join(p.dir, 'dump.json'), 'utf8')) as { container: string };
  expect(dump.container).toBe(path.join(p.dir, 'analysis.sif'));
  // Slurm's SIGTERM (then SIGKILL after KillWait, 30 s by default) reaches the containerised python.
  const end = Date.now() + 60_000;
  while (processesWith(image).length && Date.now() < end) await new Promise((r) => setTimeout(r, 1000));
  expect(processesWith(image)).toEqual([]);
}, 300_000);
