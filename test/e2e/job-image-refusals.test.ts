/**
 * Where an oras:// image is not pulled: migrate writes a file path into the
 * job script (a registry reference there would make every task pull), and
 * run takes a file or oras://, not docker://. Both are exit 2 before anything
 * is written. The pulling itself: test/integration/job-image-oras.test.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-job-image-');
  await fs.copyFile(path.join(ROOT, 'test', 'fixtures', 'job-scripts', 'explicit-python.slurm'), path.join(dir, 'job.slurm'));
  await fs.writeFile(path.join(dir, 'x.py'), 'print(1)\n');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

it('migrate --image oras://... is exit 2 with the pull command to run first; nothing written', async () => {
  const r = await sifpack(['migrate', 'job.slurm', '--image', 'oras://ghcr.io/lab/x:1', '-o', 'new.slurm'], { cwd: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('--image oras://ghcr.io/lab/x:1: migrate takes the path of a .sif file');
  expect(r.stderr).toContain('sifpack pull oras://ghcr.io/lab/x:1 -o IMAGE.sif');
  expect(await fs.stat(path.join(dir, 'new.slurm')).then(() => true, () => false)).toBe(false);
});

it('run --image docker://... is exit 2 naming what run takes', async () => {
  const r = await sifpack(['run', 'x.py', '--image', 'docker://debian:12'], { cwd: dir });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('run takes a local .sif file or oras://HOST/REPO:TAG');
  expect(r.stderr).toContain('sifpack convert');
});
