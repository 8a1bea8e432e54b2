import { describe, expect, it } from 'vitest';
import { parseConfig, resolveSettings } from '../../src/config/load.js';
import { InputError } from '../../src/errors.js';

const yml = `
partition: short
time: "01:00:00"
module: [apptainer/1.3]
env:
  OMP_NUM_THREADS: 1
profiles:
  lumi:
    partition: small-g
    runtime: singularity
    gpu-vendor: amd
    module: [LUMI/24.03]
    defs: [./site-presets]
`;

describe('settings resolution: defaults < sifpack.yml < profile < SIFPACK_* < flags', () => {
  const config = parseConfig(yml, '/proj/sifpack.yml');

  it('defaults when nothing is set', () => {
    const { settings } = resolveSettings({ cwd: '/w' });
    expect(settings.base).toBe('micromamba');
    expect(settings.runtime).toBe('apptainer');
    expect(settings.cleanenv).toBe(true);
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('file, then profile, then environment, then flags; each source recorded', () => {
    const r = resolveSettings({ config, profile: 'lumi', env: { SIFPACK_TIME: '02:00:00', SIFPACK_PARTITION: 'from-env' }, flags: { partition: 'from-flag' }, cwd: '/w' });
    expect(r.settings.partition).toBe('from-flag');
    expect(r.sources.partition).toBe('--partition');
    expect(r.settings.time).toBe('02:00:00');
    expect(r.sources.time).toBe('SIFPACK_TIME');
    expect(r.settings.runtime).toBe('singularity');
    expect(r.sources.runtime).toBe('/proj/sifpack.yml: profiles.lumi.runtime');
    expect(r.settings.gpuVendor).toBe('amd');
  });

  it('lists and maps accumulate across layers; paths resolve against the file', () => {
    const r = resolveSettings({ config, profile: 'lumi', flags: { module: ['cuda/12.2'], env: ['SEED=42'] }, cwd: '/w' });
    expect(r.settings.module).toEqual(['apptainer/1.3', 'LUMI/24.03', 'cuda/12.2']);
    expect(r.settings.env).toEqual({ OMP_NUM_THREADS: '1', SEED: '42' });
    expect(r.settings.defs).toEqual(['/proj/site-presets']);
  });

  it('SIFPACK_PROFILE picks the profile', () => {
    expect(resolveSettings({ config, env: { SIFPACK_PROFILE: 'lumi' }, cwd: '/w' }).settings.partition).toBe('small-g');
  });

  it('environment booleans and numbers are parsed, bad ones named', () => {
    expect(resolveSettings({ env: { SIFPACK_NO_BUILDS: 'yes', SIFPACK_GPUS: '2' }, cwd: '/w' }).settings).toMatchObject({ noBuilds: true, gpus: 2 });
    expect(() => resolveSettings({ env: { SIFPACK_GPUS: 'two' }, cwd: '/w' })).toThrow('SIFPACK_GPUS: "two" is not valid; expected a whole number >= 0');
  });
});

describe('sifpack.yml validation names the field path and the allowed values', () => {
  const bad = (text: string, msg: string | RegExp) => {
    const run = () => parseConfig(text, 'sifpack.yml');
    expect(run).toThrowError(InputError);
    expect(run).toThrow(msg);
  };
  it('unknown key with a suggestion', () => bad('partiton: gpu\n', "sifpack.yml: partiton: unknown setting; did you mean 'partition'?"));
  it('unknown key inside a profile', () => bad('profiles:\n  lumi:\n    gpu-vendr: amd\n', "sifpack.yml: profiles.lumi.gpu-vendr: unknown setting; did you mean 'gpu-vendor'?"));
  it('wrong enum value', () => bad('profiles:\n  x:\n    runtime: docker\n', 'sifpack.yml: profiles.x.runtime: "docker" is not valid; expected one of apptainer, singularity'));
  it('wrong type', () => bad('cpus-per-task: many\n', 'sifpack.yml: cpus-per-task: "many" is not valid; expected a whole number >= 1'));
  it('list expected', () => bad('module: apptainer\n', 'sifpack.yml: module: "apptainer" is not valid; expected a list of strings'));
  it('broken YAML', () => bad('partition: [gpu\n', /sifpack.yml: not valid YAML/));
  it('profiles must be a mapping', () => bad('profiles: [a, b]\n', 'sifpack.yml: profiles: expected a mapping of NAME: settings'));

  it('an unknown --profile lists the profiles there are', () => {
    const config = parseConfig('profiles:\n  lumi: {}\n  puhti: {}\n', 'sifpack.yml');
    expect(() => resolveSettings({ config, profile: 'lumii', cwd: '/w' })).toThrow("--profile lumii: no such profile in sifpack.yml; did you mean 'lumi'?");
  });
});
