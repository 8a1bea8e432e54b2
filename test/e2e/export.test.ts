import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvironmentYaml } from '../../src/model/environment.js';
import { analysisEnv, writePrefix } from '../fixtures/prefix-builder.js';
import { ROOT, expectGolden, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

const EXAMPLE_PREFIX = path.join(ROOT, 'examples', 'pandas-analysis', 'envs', 'analysis');

let tmp: string;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('sifpack export (built CLI)', () => {
  it('the README command: -p the example prefix, -o and --lock write environment.yml, the lock and its pip part', async () => {
    const out = path.join(tmp, 'readme');
    await fs.mkdir(out);
    const r = await sifpack(['export', '-p', EXAMPLE_PREFIX, '--from-history', '-o', 'environment.yml', '--lock', 'environment.lock'], { cwd: out });
    expect(r.stderr).toContain('sifpack: wrote environment.yml');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const yml = await fs.readFile(path.join(out, 'environment.yml'), 'utf8');
    const spec = parseEnvironmentYaml(yml, 'environment.yml');
    expect(spec.dependencies).toContain('numpy=1.26.4');
    expect(spec.pip).toContain('tqdm==4.66.2');
    expect(yml).not.toMatch(/^prefix:/m);
    // The example's environment.yml is what this command writes (a golden file this test regenerates).
    await expectGolden(path.join(ROOT, 'examples', 'pandas-analysis', 'environment.yml'), yml);
    const lock = await fs.readFile(path.join(out, 'environment.lock'), 'utf8');
    expect(lock).toMatch(/^@EXPLICIT$/m);
    expect(await fs.readFile(path.join(out, 'environment.lock.pip.txt'), 'utf8')).toContain('tqdm==4.66.2');
  });

  it('without -o prints environment.yml on stdout and logs on stderr', async () => {
    const r = await sifpack(['export', '-p', EXAMPLE_PREFIX]);
    expect(r.code).toBe(0);
    expect(parseEnvironmentYaml(r.stdout, 'stdout').name).toBe('analysis');
  });

  it('--json prints one result object', async () => {
    const r = await sifpack(['export', '-p', EXAMPLE_PREFIX, '--json', '--set-name', 'analysis']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { name: string; via: string; dependencies: number; environmentYaml: string };
    expect(j).toMatchObject({ name: 'analysis', via: 'prefix' });
    expect(j.dependencies).toBeGreaterThan(5);
    expect(j.environmentYaml).toContain('name: analysis');
  });

  it('refuses to overwrite without --force (exit 2, file untouched), overwrites with it', async () => {
    const f = path.join(tmp, 'exists.yml');
    await fs.writeFile(f, 'keep me\n');
    const r = await sifpack(['export', '-p', EXAMPLE_PREFIX, '-o', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f} already exists`);
    expect(r.stderr).toContain('hint: pass --force');
    expect(await fs.readFile(f, 'utf8')).toBe('keep me\n');
    expect((await sifpack(['export', '-p', EXAMPLE_PREFIX, '-o', f, '--force'])).code).toBe(0);
    expect(await fs.readFile(f, 'utf8')).toContain('name: analysis');
  });

  it("-f/--file is the output file, as in `conda env export -f`; --force has no short flag here", async () => {
    const f = path.join(tmp, 'conda-habit.yml');
    const r = await sifpack(['export', '-p', EXAMPLE_PREFIX, '-f', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(await fs.readFile(f, 'utf8')).toContain('name: analysis');
    const again = await sifpack(['export', '-p', EXAMPLE_PREFIX, '--file', f]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${f} already exists`);
    expect((await sifpack(['export', '-p', EXAMPLE_PREFIX, '--file', f, '--force'])).code).toBe(0);
    const two = await sifpack(['export', '-p', EXAMPLE_PREFIX, '-o', 'a.yml', '-f', 'b.yml'], { cwd: tmp });
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('-o a.yml and -f b.yml name two output files');
  });

  it('a failed export writes nothing: no output, no lock, no temp files', async () => {
    const dir = path.join(tmp, 'fail');
    await fs.mkdir(dir);
    const p = await writePrefix(path.join(tmp, 'edit-env'), analysisEnv({ editable: true }));
    const r = await sifpack(['export', '-p', p, '-o', 'env.yml', '--lock', 'env.lock'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('mylab 0.1.dev0 (editable, pip install -e) from /home/researcher/src/mylab');
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it.each([
    [['export', '-p', '/definitely/not/here'], /\/definitely\/not\/here: no such directory/],
    [['export', '-p', ROOT, '--via', 'prefix'], /not a conda prefix \(no conda-meta\/ directory\)/],
    [['export', '-n', 'no-such-env-anywhere', '--via', 'prefix'], /environment 'no-such-env-anywhere' was not found[\s\S]*looked in:/],
    [['export', '--bogus'], /unknown option '--bogus'/],
    [['export', '--via', 'pip'], /argument 'pip' is invalid. Allowed choices are auto, prefix, conda, mamba, micromamba/],
    [['exprot'], /unknown command 'exprot'[\s\S]*did you mean export\?/i],
    [['export', '-n', 'a', '-p', '.'], /-n NAME and -p PREFIX are mutually exclusive/],
  ])('bad input %j exits 2 with a message', async (args, message) => {
    const r = await sifpack(args, { env: { HOME: tmp } });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  it('a bad sifpack.yml in the working directory is exit 2 naming the field', async () => {
    const dir = path.join(tmp, 'badcfg');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'sifpack.yml'), 'via: pixi\n');
    const r = await sifpack(['export', '-p', EXAMPLE_PREFIX], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sifpack.yml: via: "pixi" is not valid; expected one of auto, prefix, conda, mamba, micromamba');
  });

  it('--help teaches: examples and exit codes; --version prints the version', async () => {
    const h = await sifpack(['export', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Examples:');
    expect(h.stdout).toContain('--from-history');
    const top = await sifpack(['--help']);
    expect(top.stdout).toMatch(/export \[options\]\s+capture a conda environment/);
    const v = await sifpack(['--version']);
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(v.stdout.trim()).toBe(pkg.version);
  });
});

describe('def --from-prefix runs the checks export runs on the same prefix (built CLI)', () => {
  it('an editable install: both exit 2 naming it; with --allow-local both go on and say what was left out', async () => {
    const p = await writePrefix(path.join(tmp, 'editable'), analysisEnv({ editable: true }));
    const out = path.join(tmp, 'editable-out');
    await fs.mkdir(out);
    const exp = await sifpack(['export', '-p', p, '-o', 'environment.yml'], { cwd: out });
    const def = await sifpack(['def', '--from-prefix', p, '-o', 'x.def'], { cwd: out });
    for (const r of [exp, def]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('mylab');
      expect(r.stderr).toContain('--allow-local');
    }
    expect(await fs.readdir(out)).toEqual([]);
    const exp2 = await sifpack(['export', '-p', p, '-o', 'environment.yml', '--allow-local'], { cwd: out });
    const def2 = await sifpack(['def', '--from-prefix', p, '-o', 'x.def', '--allow-local'], { cwd: out });
    expect(exp2.code, exp2.stderr).toBe(0);
    expect(def2.code, def2.stderr).toBe(0);
    expect(exp2.stderr).toMatch(/left out 1 local pip install\(s\): mylab/);
    expect(def2.stderr).toMatch(/left out of the image \(--allow-local\): .*mylab/);
  });

  it('an osx-arm64 prefix: export warns and recommends --from-history; def refuses (its files cannot run in a linux-64 image), exit 2, nothing written', async () => {
    const spec = analysisEnv();
    spec.packages = spec.packages.map((x) => (x.noarchPython ? x : { ...x, subdir: 'osx-arm64' }));
    const p = await writePrefix(path.join(tmp, 'mac'), spec);
    const out = path.join(tmp, 'mac-out');
    await fs.mkdir(out);
    const exp = await sifpack(['export', '-p', p], { cwd: out });
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stderr).toMatch(/osx-arm64.*--from-history/);
    const def = await sifpack(['def', '--from-prefix', p, '-o', 'x.def', '--allow-local'], { cwd: out });
    expect(def.code).toBe(2);
    expect(def.stderr).toContain('python 3.11.8 is built for osx-arm64; the image runs linux-64');
    expect(await fs.readdir(out)).toEqual([]);
  });
});
