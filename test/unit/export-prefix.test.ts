import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExportRequest, exportEnvironment } from '../../src/env/export.js';
import { readPrefix } from '../../src/env/prefix.js';
import { InputError } from '../../src/errors.js';
import { parseEnvironmentYaml } from '../../src/model/environment.js';
import { RecordingRunner } from '../doubles/recording-runner.js';
import { analysisEnv, history, writePrefix } from '../fixtures/prefix-builder.js';
import { CONDA_TESTDATA, expectGolden, tempDir } from '../helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await tempDir();
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** No conda tool is on PATH and none may be called: these exports read the prefix only. */
const noTools = () => new RecordingRunner([]);

function request(prefix: string, extra: Partial<ExportRequest> = {}, options: Partial<ExportRequest['options']> = {}): ExportRequest {
  return { prefix, via: 'auto', options: { fromHistory: false, noBuilds: false, allowLocal: false, ...options }, lock: false, env: {}, cwd: tmp, ...extra };
}

async function prefixOf(name: string, spec = analysisEnv()): Promise<string> {
  return writePrefix(path.join(tmp, name), spec);
}

describe('export from a prefix (no conda)', () => {
  it('full export: every record name=version=build, pip nested, no prefix line', async () => {
    const p = await prefixOf('analysis');
    const res = await exportEnvironment(request(p), noTools());
    expect(res.via).toBe('prefix');
    expect(res.environmentYaml).not.toMatch(/^prefix:/m);
    await expectGolden('export/analysis-full.yml', res.environmentYaml);
  });

  it('--from-history: the requested specs pinned to the installed versions, removed ones gone, pip section kept', async () => {
    const p = await prefixOf('analysis-hist');
    const res = await exportEnvironment(request(p, {}, { fromHistory: true }), noTools());
    const spec = parseEnvironmentYaml(res.environmentYaml, 'out');
    expect(spec.dependencies).toEqual(['python=3.11.8', 'pandas=2.2.1', 'pip=24.0', 'numpy=1.26.4', 'matplotlib-base=3.8.3', 'labtools::labtools=0.4.2']);
    expect(spec.dependencies.join(' ')).not.toMatch(/scipy/);
    expect(spec.pip).toEqual(['seaborn-extras @ git+https://github.com/lab/seaborn-extras@3f2a1b0c4d5e6f708192a3b4c5d6e7f8091a2b3c', 'tqdm==4.66.2']);
    await expectGolden('export/analysis-from-history.yml', res.environmentYaml);
  });

  it('--no-builds drops build strings', async () => {
    const p = await prefixOf('analysis-nb');
    const res = await exportEnvironment(request(p, {}, { noBuilds: true }), noTools());
    const spec = parseEnvironmentYaml(res.environmentYaml, 'out');
    expect(spec.dependencies).toContain('numpy=1.26.4');
    expect(spec.dependencies.every((d) => d.split('=').length === 2)).toBe(true);
  });

  it('channels: the history -c order first, then by use; anaconda.org URLs as names', async () => {
    const p = await prefixOf('analysis-ch');
    const spec = parseEnvironmentYaml((await exportEnvironment(request(p), noTools())).environmentYaml, 'out');
    expect(spec.channels).toEqual(['conda-forge', 'labtools']);
  });

  it("a prefix's own .condarc sets the channel order, nodefaults included", async () => {
    const p = await prefixOf('analysis-rc', { ...analysisEnv(), condarc: 'channels:\n  - labtools\n  - conda-forge\n  - nodefaults\n' });
    const spec = parseEnvironmentYaml((await exportEnvironment(request(p), noTools())).environmentYaml, 'out');
    expect(spec.channels).toEqual(['labtools', 'conda-forge', 'nodefaults']);
  });

  it('removes a channel token from channels and lock URLs, and warns naming the channel', async () => {
    const p = await prefixOf('analysis-token', analysisEnv({ token: true }));
    const res = await exportEnvironment(request(p, { lock: true }), noTools());
    expect(res.environmentYaml).not.toContain('tk-0123456789abcdef');
    expect(res.explicitLock).not.toContain('tk-0123456789abcdef');
    expect(res.explicitLock).toContain('https://conda.anaconda.org/labtools/noarch/labtools-0.4.2-py_0.conda#');
    expect(res.warnings.filter((w) => w.includes('channel labtools carried credentials'))).toHaveLength(1);
  });

  it('an editable pip install fails the export (exit 2) naming the package and its path', async () => {
    const p = await prefixOf('analysis-edit', analysisEnv({ editable: true }));
    const err = await exportEnvironment(request(p), noTools()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(2);
    expect((err as InputError).details.join('\n')).toContain('mylab 0.1.dev0 (editable, pip install -e) from /home/researcher/src/mylab');
    expect((err as InputError).hint).toContain('--allow-local');
  });

  it('--allow-local leaves an editable install out and lists it in a comment', async () => {
    const p = await prefixOf('analysis-edit-ok', analysisEnv({ editable: true }));
    const res = await exportEnvironment(request(p, {}, { allowLocal: true }), noTools());
    expect(res.environmentYaml).toContain('# skipped local pip install: mylab==0.1.dev0 from /home/researcher/src/mylab');
    expect(parseEnvironmentYaml(res.environmentYaml, 'o').pip.join(' ')).not.toContain('mylab');
    expect(res.outcome.skippedLocal.map((s) => s.name)).toEqual(['mylab']);
  });

  it('--lock: @EXPLICIT, one URL#md5 per record, dependencies before dependents; pip part pinned', async () => {
    const p = await prefixOf('analysis-lock');
    const res = await exportEnvironment(request(p, { lock: true }), noTools());
    const urls = res.explicitLock!.split('\n').filter((l) => l.startsWith('https://'));
    expect(urls).toHaveLength(analysisEnv().packages.length);
    for (const u of urls) expect(u).toMatch(/\.conda#[0-9a-f]{32}$/);
    const idx = (n: string) => urls.findIndex((u) => u.includes(`/${n}-`));
    expect(idx('_libgcc_mutex')).toBeLessThan(idx('libgcc-ng'));
    expect(idx('libgcc-ng')).toBeLessThan(idx('python'));
    expect(idx('numpy')).toBeLessThan(idx('pandas'));
    await expectGolden('export/analysis.lock', res.explicitLock!);
    expect(res.pipLock).toContain('tqdm==4.66.2\n');
  });

  it('--lock fails, naming the record, when a package has no download URL', async () => {
    const spec = analysisEnv();
    spec.packages[3] = { ...spec.packages[3]!, noUrl: true };
    const p = await prefixOf('analysis-nourl', spec);
    await expect(exportEnvironment(request(p, { lock: true }), noTools())).rejects.toThrow(/1 record\(s\) have no download URL/);
  });

  it('osx-arm64 env: warns, recommends --from-history, lists the macOS-only packages', async () => {
    const p = await prefixOf('mac', {
      packages: [
        { name: 'python', version: '3.12.2', build: 'hdf0ec26_0_cpython', subdir: 'osx-arm64', requested: 'python=3.12' },
        { name: 'libcxx', version: '16.0.6', build: 'h4653b0c_0', subdir: 'osx-arm64' },
        { name: 'llvm-openmp', version: '18.1.2', build: 'hcd81f8e_0', subdir: 'osx-arm64' },
        { name: 'appnope', version: '0.1.4', build: 'pyhd8ed1ab_0', noarchPython: true, requested: 'appnope' },
      ],
      history: history([{ cmd: 'conda create -n mac python=3.12 appnope', lines: [], update: ['python=3.12', 'appnope'] }]),
    });
    const res = await exportEnvironment(request(p), noTools());
    expect(res.platform).toBe('osx-arm64');
    expect(res.warnings[0]).toMatch(/made for osx-arm64, but cluster images are linux-64.*--from-history/);
    expect(res.warnings[1]).toBe('packages that exist only on macOS: appnope, libcxx');
    const hist = await exportEnvironment(request(p, {}, { fromHistory: true }), noTools());
    expect(hist.warnings[1]).toBe('packages that exist only on macOS (remove them from the file): appnope');
  });

  it("conda's own macOS test env: platform warning, pip package found by ownership (no INSTALLER file)", async () => {
    const p = path.join(CONDA_TESTDATA, 'env_metadata/envpy313tosx_whl');
    const res = await exportEnvironment(request(p, {}, { fromHistory: true }), noTools());
    await expectGolden('export/envpy313tosx_whl-from-history.yml', res.environmentYaml);
    expect(res.platform).toBe('osx-arm64');
  });

  it("conda's own macOS py3.7 env: 55 pip wheels, a pip upgraded over conda's", async () => {
    const p = path.join(CONDA_TESTDATA, 'env_metadata/envpy37osx_whl');
    const data = await readPrefix(p);
    expect(data.records).toHaveLength(17);
    expect(data.pip).toHaveLength(55);
    expect(data.pip.find((x) => x.name === 'pip')?.version).toBe('18.0');
    const res = await exportEnvironment(request(p), noTools());
    await expectGolden('export/envpy37osx_whl-full.yml', res.environmentYaml);
  });

  it('requested_spec is used when there is no history', async () => {
    const spec = analysisEnv();
    delete spec.history;
    const p = await prefixOf('no-history', spec);
    const res = await exportEnvironment(request(p, {}, { fromHistory: true }), noTools());
    expect(parseEnvironmentYaml(res.environmentYaml, 'o').dependencies).toEqual(['labtools::labtools=0.4.2', 'matplotlib-base=3.8.3', 'numpy=1.26.4', 'pandas=2.2.1', 'pip=24.0', 'python=3.11.8']);
  });
});

describe('export: bad input is exit 2 with a message naming the thing', () => {
  const fails = async (req: ExportRequest, pattern: RegExp) => {
    const err = await exportEnvironment(req, noTools()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(pattern);
  };

  it('a directory that is not a conda prefix', async () => {
    const d = path.join(tmp, 'not-a-prefix');
    await fs.mkdir(d, { recursive: true });
    await fails(request(d, { via: 'prefix' }), /not-a-prefix: not a conda prefix \(no conda-meta\/ directory\)/);
  });

  it('a path that does not exist', async () => {
    await fails(request(path.join(tmp, 'nope'), { via: 'prefix' }), /nope: no such directory/);
  });

  it('a corrupt record names the file', async () => {
    const p = await prefixOf('corrupt');
    const f = path.join(p, 'conda-meta', 'numpy-1.26.4-py311h64a7726_0.json');
    await fs.writeFile(f, '{"name": "numpy", "version": ');
    await fails(request(p), /numpy-1\.26\.4-py311h64a7726_0\.json: corrupt conda record: not valid JSON/);
  });

  it('a record missing its version names the file and field', async () => {
    const p = await prefixOf('corrupt-field');
    const f = path.join(p, 'conda-meta', 'pip-24.0-pyhd8ed1ab_0.json');
    await fs.writeFile(f, JSON.stringify({ name: 'pip', build: 'x' }));
    await fails(request(p), /pip-24\.0-pyhd8ed1ab_0\.json: corrupt conda record: field 'version' is missing/);
  });

  it('an unreadable history (here: a directory where the file should be)', async () => {
    const spec = analysisEnv();
    delete spec.history;
    const p = await prefixOf('bad-history', spec);
    await fs.mkdir(path.join(p, 'conda-meta', 'history'));
    await fails(request(p), /conda-meta\/history: cannot read the history/);
  });

  it('an env name that resolves nowhere lists where it looked', async () => {
    const home = path.join(tmp, 'home');
    const err = (await exportEnvironment({ ...request(''), prefix: undefined, name: 'ghost', home, env: { CONDA_ENVS_PATH: '/shared/envs' } } as ExportRequest, noTools()).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe("environment 'ghost' was not found");
    expect(err.details).toContain(`  /shared/envs/ghost`);
    expect(err.details).toContain(`  ${home}/miniforge3/envs/ghost`);
  });

  it('-n finds an env registered in ~/.conda/environments.txt', async () => {
    const home = path.join(tmp, 'home2');
    const p = await prefixOf('registered/envs/labenv');
    await fs.mkdir(path.join(home, '.conda'), { recursive: true });
    await fs.writeFile(path.join(home, '.conda', 'environments.txt'), `/opt/elsewhere\n${p}\n`);
    const res = await exportEnvironment({ ...request(''), prefix: undefined, name: 'labenv', home } as ExportRequest, noTools());
    expect(res.prefix).toBe(p);
    expect(res.outcome.spec.name).toBe('labenv');
  });
});
