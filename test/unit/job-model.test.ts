/**
 * The Slurm job model: every value is validated, and a bad one is an
 * InputError (exit 2) that names where it came from and lists the valid forms.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig, resolveSettings } from '../../src/config/load.js';
import { EXIT, InputError } from '../../src/errors.js';
import { buildJob, checkArray, checkDirective, checkMem, checkTime, parseBind } from '../../src/model/slurm-job.js';

const PROJECT = '/home/researcher/project';

/** The error `fn` throws; fails the test when it throws none or another kind. */
function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).exitCode).toBe(EXIT.usage);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

/** Message and hint together, as the CLI prints them. */
const text = (e: InputError) => `${e.message}\nhint: ${e.hint ?? ''}`;

function job(flags: Record<string, unknown>, more: { script?: string; args?: string[]; array?: string; yml?: string; profile?: string } = {}) {
  const config = more.yml !== undefined ? parseConfig(more.yml, 'sifpack.yml', PROJECT) : undefined;
  const { settings, sources } = resolveSettings({ ...(config ? { config } : {}), ...(more.profile ? { profile: more.profile } : {}), flags: { image: 'x.sif', ...flags }, cwd: PROJECT });
  return buildJob({ settings, sources, script: more.script ?? 'train.py', args: more.args ?? [], cwd: PROJECT, ...(more.array !== undefined ? { array: more.array } : {}) });
}

describe('--time', () => {
  const FORMS = 'valid forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS';
  // What sbatch 22.05 accepts and refuses (test/integration/sbatch-habits.test.ts asks the real one).
  it.each(['90', '0', '30:00', '01:30:00', '100:00:00', '2-00', '2-12:30', '1-00:00:00', 'UNLIMITED', 'infinite', '-1', '2-', '1:999'])('%s is valid', (t) => expect(checkTime(t, '--time')).toBe(t));
  it.each(['1h', '1:2:3:4', 'abc', '', '1-2-3', ' 90', '01:30:00 ', '1:', '1:1-1', 'inf', '+10'])('%j is refused, with the valid forms', (t) => {
    const e = inputError(() => checkTime(t, '--time'));
    expect(e.message).toBe(`--time: ${JSON.stringify(t)} is not a time limit`);
    expect(e.hint).toContain(FORMS);
  });
});

describe('--mem', () => {
  it.each([['500M', '500M'], ['4g', '4G'], ['1T', '1T'], ['2048', '2048'], ['512K', '512K'], ['4GB', '4G'], ['4gb', '4G'], ['0', '0'], ['4096', '4096'], ['+4G', '4G'], ['-0', '0'], ['4Mb', '4M']])('%s → %s', (m, out) => expect(checkMem(m, '--mem')).toBe(out));
  it.each(['1.5G', 'lots', '-1G', 'G', '4 G', '1P', '4GiB', '4b', '4G '])('%j is refused, with the valid forms', (m) => {
    const e = inputError(() => checkMem(m, '--mem'));
    expect(text(e)).toMatch(/is not a memory size\nhint: valid forms: .*500M, 4G/);
  });
});

describe('--array', () => {
  it.each(['0-99', '1,3,5', '0-99%10', '0-15:4', '7', '0-3,10-20:2%4'])('%s is valid', (a) => expect(checkArray(a, '--array')).toBe(a));
  it.each([
    ['9-1', /runs backwards/],
    ['0-9%0', /%limit/],
    ['a-b', /is not N, N-M or N-M:STEP/],
    ['0-9:0', /step 0/],
    ['1,,2', /"" is not N/],
    ['0-9%2%3', /more than one %/],
    ['%4', /no indexes/],
    ['1-', /is not N, N-M or N-M:STEP/],
  ])('%j is refused: %s, with the valid forms', (a, why) => {
    const e = inputError(() => checkArray(a, '--array'));
    expect(e.message).toMatch(why);
    expect(e.hint).toBe('valid forms: 0-99, 1,3,5, 0-99%10 (at most 10 at once), 0-15:4 (step 4)');
  });
});

describe('--gpus', () => {
  it.each([['0', undefined], ['1', 1], ['8', 8]])('%s → %s', (g, n) => expect(job({ gpus: g }).gpus).toBe(n));
  it.each(['two', '-1', '1.5', 'a100:2'])('%j is refused with the valid form', (g) => {
    const e = inputError(() => job({ gpus: g }));
    expect(e.message).toBe(`--gpus: ${JSON.stringify(g)} is not valid; expected a whole number >= 0`);
  });
});

describe('--bind', () => {
  it.each([
    ['/scratch', { src: '/scratch', dst: '/scratch', readOnly: false }],
    ['/data:/in', { src: '/data', dst: '/in', readOnly: false }],
    ['/data:/in:ro', { src: '/data', dst: '/in', readOnly: true }],
    ['/data:/in:rw', { src: '/data', dst: '/in', readOnly: false }],
    ['/my data/x y:/in put', { src: '/my data/x y', dst: '/in put', readOnly: false }],
  ])('%s is valid', (b, out) => expect(parseBind(b, '--bind')).toEqual(out));
  it.each([
    ['data', 'SRC must be an absolute path'],
    ['/data:in', 'DST must be an absolute path'],
    ['/a:/b:rx', '"rx" is not ro or rw'],
    ['/a:/b:ro:x', 'too many ":"'],
    ['/a,/b', 'apptainer splits binds at ","'],
    ['/a\n/b', 'a path cannot hold a line break'],
  ])('%j is refused: %s, with the valid forms', (b, why) => {
    const e = inputError(() => parseBind(b, '--bind'));
    expect(e.message).toContain(`--bind: ${JSON.stringify(b)} is not a bind: ${why}`);
    expect(e.hint).toBe('valid forms: /scratch, /data:/data, /data:/input:ro (absolute paths; ro or rw)');
  });
});

describe('values on #SBATCH lines', () => {
  it('a line break would end the directive and run the rest as shell: refused', () => {
    expect(checkDirective("it's a $name with \\ and #", '--job-name')).toBe("it's a $name with \\ and #");
    for (const [flag, key] of [['--output', 'output'], ['--partition', 'partition'], ['--account', 'account'], ['--qos', 'qos'], ['--job-name', 'jobName']] as const) {
      const e = inputError(() => job({ [key]: 'x\ntouch pwned' }));
      expect(e.message).toBe(`${flag}: "x\\ntouch pwned" cannot hold a line break: it goes on an #SBATCH line`);
    }
    expect(inputError(() => job({ chdir: '/a\rb' })).message).toMatch(/^--chdir: .* cannot hold a line break/);
  });
  it('a job name taken from the script says so', () => {
    expect(inputError(() => job({}, { script: 'a\nb.py' })).message).toMatch(/^the job name \(from SCRIPT; set one with --job-name\): "a\\nb" cannot hold a line break/);
  });
});

describe('where a bad value came from', () => {
  it('sifpack.yml top level', () => {
    expect(inputError(() => job({}, { yml: 'time: "1h"\n' })).message).toBe('sifpack.yml: time: "1h" is not a time limit');
  });
  it('a profile', () => {
    const e = inputError(() => job({}, { yml: 'profiles:\n  lumi:\n    mem: 4.5G\n', profile: 'lumi' }));
    expect(e.message).toBe('sifpack.yml: profiles.lumi.mem: "4.5G" is not a memory size');
  });
  it('a profile bind', () => {
    expect(inputError(() => job({}, { yml: 'profiles:\n  c:\n    bind: [scratch]\n', profile: 'c' })).message).toMatch(/^sifpack\.yml: profiles\.c\.bind: "scratch" is not a bind/);
  });
  it('a flag beats the file, and names itself', () => {
    expect(inputError(() => job({ time: '1h' }, { yml: 'time: "10"\n' })).message).toBe('--time: "1h" is not a time limit');
  });
  it('no image says how to give one', () => {
    const { settings, sources } = resolveSettings({ cwd: PROJECT });
    expect(inputError(() => buildJob({ settings, sources, script: 'a.py', args: [], cwd: PROJECT })).message).toBe('no image: pass --image IMAGE.sif (or set image: in sifpack.yml)');
  });
});

describe('the job', () => {
  it('defaults: name from the script, %x_%j.out, absolute image, apptainer, --cleanenv', () => {
    expect(job({}, { script: 'src/train.py', args: ['a b'] })).toEqual({
      script: 'src/train.py',
      args: ['a b'],
      image: `${PROJECT}/x.sif`,
      runtime: 'apptainer',
      jobName: 'train',
      gpuRequest: 'gres',
      gpuVendor: 'nvidia',
      output: '%x_%j.out',
      exclusive: false,
      binds: [],
      env: [],
      modules: [],
      cleanenv: true,
    });
  });
  it('an array gets %x_%A_%a.out unless --output says otherwise', () => {
    expect(job({}, { array: '0-99%10' })).toMatchObject({ array: '0-99%10', output: '%x_%A_%a.out' });
    expect(job({ output: 'logs/%A.%a' }, { array: '0-3' }).output).toBe('logs/%A.%a');
  });
  it('arguments are kept exactly, and memory is normalised', () => {
    const args = ['', ' ', '-n', '$(id)', 'naïve\n'];
    expect(job({ mem: '4g' }, { args })).toMatchObject({ args, mem: '4G' });
  });
  it('profile lists accumulate with flags', () => {
    const j = job({ module: ['cuda/12'], bind: ['/data:/in:ro'], env: ['SEED=1'] }, { yml: 'profiles:\n  c:\n    module: [apptainer]\n    bind: [/scratch]\n', profile: 'c' });
    expect(j.modules).toEqual(['apptainer', 'cuda/12']);
    expect(j.binds.map((b) => b.src)).toEqual(['/scratch', '/data']);
    expect(j.env).toEqual([['SEED', '1']]);
  });
});
