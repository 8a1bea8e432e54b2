import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig, resolveSettings } from '../../src/config/load.js';
import { InputError } from '../../src/errors.js';
import { type SlurmJob, buildJob, checkArray, checkMem, checkTime, parseBind } from '../../src/model/slurm-job.js';
import { renderSbatch } from '../../src/render/sbatch.js';
import { ROOT, expectGolden } from '../helpers.js';

const VERSION = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')).version as string;
/** Goldens are rendered as if the project lived here, so they do not depend on the checkout's path. */
const PROJECT = '/home/researcher/project';

async function exampleJob(name: string, script: string, args: string[], flags: Record<string, unknown> = {}, profile?: string, array?: string): Promise<SlurmJob> {
  const dir = path.join(ROOT, 'examples', name);
  const config = parseConfig(await fs.readFile(path.join(dir, 'sifpack.yml'), 'utf8'), 'sifpack.yml', PROJECT);
  const { settings, sources } = resolveSettings({ config, ...(profile ? { profile } : {}), flags, cwd: PROJECT });
  return buildJob({ settings, sources, script, args, cwd: PROJECT, ...(array ? { array } : {}) });
}

describe('validation names the source and the valid forms (exit 2)', () => {
  it.each(['90', '30:00', '01:30:00', '2-00', '2-12:30', '1-00:00:00'])('time %s is valid', (t) => expect(checkTime(t, '--time')).toBe(t));
  it.each(['1h', '1:2:3:4', '-1', 'abc', '2-', ''])('time %j is refused with the valid forms', (t) => {
    expect(() => checkTime(t, '--time')).toThrowError(InputError);
    expect(() => checkTime(t, '--time')).toThrow(/is not a time limit/);
    try {
      checkTime(t, '--time');
    } catch (e) {
      expect((e as InputError).hint).toBe('valid forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 90, 01:30:00, 2-00)');
    }
  });
  it.each([['500M', '500M'], ['4g', '4G'], ['1T', '1T'], ['2048', '2048']])('mem %s → %s', (m, out) => expect(checkMem(m, '--mem')).toBe(out));
  it.each(['4GB', '1.5G', 'lots', '-1G'])('mem %j is refused', (m) => expect(() => checkMem(m, '--mem')).toThrow(/is not a memory size/));
  it.each(['0-99', '1,3,5', '0-99%10', '0-15:4', '7'])('array %s is valid', (a) => expect(checkArray(a, '--array')).toBe(a));
  it.each([['9-1', /runs backwards/], ['0-9%0', /%limit/], ['a-b', /is not N, N-M or N-M:STEP/], ['0-9:0', /step 0/], ['1,,2', /"" is not N/], ['0-9%2%3', /more than one %/]])('array %j is refused: %s', (a, why) => {
    expect(() => checkArray(a, '--array')).toThrow(why);
  });
  it('binds: forms and errors', () => {
    expect(parseBind('/scratch', '--bind')).toEqual({ src: '/scratch', dst: '/scratch', readOnly: false });
    expect(parseBind('/data:/in:ro', '--bind')).toEqual({ src: '/data', dst: '/in', readOnly: true });
    expect(() => parseBind('data', '--bind')).toThrow('--bind: "data" is not a bind: SRC must be an absolute path');
    expect(() => parseBind('/a:/b:rx', '--bind')).toThrow('"rx" is not ro or rw');
  });
  it('a bad value from sifpack.yml names the file and field', async () => {
    const config = parseConfig('time: "1h"\n', 'sifpack.yml');
    const { settings, sources } = resolveSettings({ config, flags: { image: 'x.sif' }, cwd: PROJECT });
    expect(() => buildJob({ settings, sources, script: 'a.py', args: [], cwd: PROJECT })).toThrow('sifpack.yml: time: "1h" is not a time limit');
  });
  it('no image is an error that says how to give one', () => {
    const { settings, sources } = resolveSettings({ cwd: PROJECT });
    expect(() => buildJob({ settings, sources, script: 'a.py', args: [], cwd: PROJECT })).toThrow('no image: pass --image IMAGE.sif');
  });
  it('--gpus must be a whole number', () => {
    expect(() => resolveSettings({ flags: { gpus: 'two' }, cwd: PROJECT })).toThrow('--gpus: "two" is not valid; expected a whole number >= 0');
  });
});

describe('golden job scripts next to each example', () => {
  it('pandas-analysis (CPU, cluster profile with module and bind)', async () => {
    const job = await exampleJob('pandas-analysis', 'analyze.py', ['measurements.csv', '--out', 'summary.csv'], {}, 'cluster');
    await expectGolden(path.join(ROOT, 'examples/pandas-analysis/expected/job.sbatch'), renderSbatch(job, { version: VERSION }).text);
  });
  it('gpu-pytorch (NVIDIA, --gres, --nv)', async () => {
    const job = await exampleJob('gpu-pytorch', 'train.py', ['--epochs', '10', '--lr', '0.1'], {}, 'nvidia-site');
    const text = renderSbatch(job, { version: VERSION }).text;
    expect(text).toContain('#SBATCH --gres=gpu:1\n');
    expect(text).toMatch(/srun apptainer exec --cleanenv --nv /);
    await expectGolden(path.join(ROOT, 'examples/gpu-pytorch/expected/job.sbatch'), text);
  });
  it('gpu-pytorch on an AMD site (--gpus, --rocm, singularity)', async () => {
    const job = await exampleJob('gpu-pytorch', 'train.py', [], { gpus: '8' }, 'amd-site');
    const text = renderSbatch(job, { version: VERSION }).text;
    expect(text).toContain('#SBATCH --gpus=8\n');
    expect(text).toMatch(/srun singularity exec --cleanenv --rocm /);
    expect(text).toContain('export "SINGULARITYENV_$v=${!v}"');
    await expectGolden('sbatch/gpu-pytorch-amd.sbatch', text);
  });
  it('pip-heavy (env variables for the container, bind)', async () => {
    const job = await exampleJob('pip-heavy', 'classify.py', ['it\'s "quoted"', '$HOME and `id`', 'a;b'], {});
    const text = renderSbatch(job, { version: VERSION }).text;
    expect(text).toContain("export APPTAINERENV_TOKENIZERS_PARALLELISM=false\n");
    await expectGolden(path.join(ROOT, 'examples/pip-heavy/expected/job.sbatch'), text);
  });
  it('array-sweep (array, default output pattern)', async () => {
    const job = await exampleJob('array-sweep', 'sweep.py', ['results'], {}, undefined, '0-99%10');
    const text = renderSbatch(job, { version: VERSION }).text;
    expect(text).toContain("#SBATCH --output=%x_%A_%a.out\n");
    expect(text).toContain('#SBATCH --array=0-99%10\n');
    await expectGolden(path.join(ROOT, 'examples/array-sweep/expected/job.sbatch'), text);
  });
  it('rendering is deterministic', async () => {
    const a = renderSbatch(await exampleJob('pip-heavy', 'x.py', ['a b']), { version: VERSION }).text;
    const b = renderSbatch(await exampleJob('pip-heavy', 'x.py', ['a b']), { version: VERSION }).text;
    expect(a).toBe(b);
  });
});
