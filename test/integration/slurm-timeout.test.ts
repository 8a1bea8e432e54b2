/**
 * A real job that runs past --time=1 (one minute, Slurm's smallest limit):
 * status must say it hit its time limit. In its own file so it runs beside
 * the other tests instead of after them.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Project, makeProject, submit, waitFor, writeJob } from './slurm-harness.js';

let p: Project;
beforeAll(async () => {
  p = await makeProject();
});
afterAll(async () => {
  await fs.rm(p.dir, { recursive: true, force: true });
});

it('a job with --time=1 that sleeps past it: "hit its 00:01:00 time limit"', async () => {
  await writeJob(p, 'slow.sbatch', ['--time', '1', '--env', 'SLEEP=600']);
  const id = await submit(p, 'slow.sbatch');
  const st = await waitFor(p, id, undefined, 150);
  expect(st.state).toBe('TIMEOUT');
  expect(st.explanation).toBe('hit its 00:01:00 time limit (raise --time)');
}, 180_000);
