/**
 * Issue 11, "AMD GPUs": `sifpack sbatch --gpus N` compares gpu-vendor with
 * what the image was built for (its sifpack.base-image / sifpack.preset
 * labels, read from a real SIF that `sifpack convert` made from a Docker
 * image carrying them) and warns on a mismatch; the job script is still
 * written, with --rocm or --nv as gpu-vendor says.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';

const IMAGES = {
  cuda: { tag: 'issue11-gpu-cuda:1', base: 'mambaorg/micromamba:2.3.2-cuda12.6.3-ubuntu22.04', preset: 'cuda' },
  rocm: { tag: 'issue11-gpu-rocm:1', base: 'rocm/dev-ubuntu-22.04:6.2.4', preset: 'site-rocm' },
} as const;
let dir: string;
const env = () => ({ DOCKER_HOST: service('DOCKER_HOST') });
const docker = (args: string[], input?: string) => execFileSync('/usr/bin/docker', args, { env: { ...process.env, ...env() }, input }).toString();

beforeAll(async () => {
  dir = await tempDir('sifpack-gpu-vendor-');
  await fs.writeFile(path.join(dir, 'train.py'), 'print("train")\n');
  for (const [name, i] of Object.entries(IMAGES)) {
    docker(['build', '-q', '--network', 'none', '-t', i.tag, '-'], `FROM ${service('SIFPACK_TEST_BUSYBOX_IMAGE')}\nLABEL "sifpack.preset"="${i.preset}" "sifpack.base-image"="${i.base}"\n`);
    const r = await sifpack(['convert', i.tag, '-o', path.join(dir, `${name}.sif`)], { env: env() });
    expect(r.code).toBe(0);
  }
}, 180_000);

afterAll(async () => {
  for (const i of Object.values(IMAGES)) {
    try {
      docker(['rmi', '-f', i.tag]);
    } catch {
      /* not built */
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
});

const sbatch = (image: string, vendor: string, out: string) => sifpack(['sbatch', 'train.py', '--image', image, '--gpus', '1', '--gpu-vendor', vendor, '--script-out', out], { cwd: dir });

describe('gpu-vendor against the image the job runs', () => {
  it('gpu-vendor amd with a CUDA image: a warning naming the image, its base and what to do; the script still uses --rocm', async () => {
    const r = await sbatch('cuda.sif', 'amd', 'a.sbatch');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warning: gpu-vendor amd (--rocm), but ${path.join(dir, 'cuda.sif')} was built for CUDA (sifpack.base-image ${IMAGES.cuda.base}, preset cuda)`);
    expect(await fs.readFile(path.join(dir, 'a.sbatch'), 'utf8')).toContain('--rocm');
  });

  it('gpu-vendor nvidia with a ROCm image: the reverse warning', async () => {
    const r = await sbatch('rocm.sif', 'nvidia', 'b.sbatch');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: gpu-vendor nvidia (--nv), but');
    expect(r.stderr).toContain('was built for ROCm');
  });

  it('matching vendors, or no GPUs asked for: no such warning', async () => {
    for (const [image, vendor] of [['cuda.sif', 'nvidia'], ['rocm.sif', 'amd']] as const) {
      const r = await sbatch(image, vendor, `${vendor}.sbatch`);
      expect(r.code).toBe(0);
      expect(r.stderr).not.toContain('was built for');
    }
    const cpu = await sifpack(['sbatch', 'train.py', '--image', 'cuda.sif', '--gpu-vendor', 'amd', '--script-out', 'cpu.sbatch'], { cwd: dir });
    expect(cpu.stderr).not.toContain('was built for');
  });
});
