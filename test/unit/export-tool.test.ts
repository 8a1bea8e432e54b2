/**
 * The conda / micromamba path, through a recording double: each test checks
 * the exact argv sifpack runs and replays output written in the shape the
 * real tools print (see test/fixtures/tool-output/README.md — hand-written,
 * not recorded here, since neither tool can be installed on these machines).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ExportRequest, exportEnvironment } from '../../src/env/export.js';
import { InputError, RuntimeFailure, ToolNotFoundError } from '../../src/errors.js';
import { parseEnvironmentYaml } from '../../src/model/environment.js';
import { RecordingRunner } from '../doubles/recording-runner.js';
import { ROOT, expectGolden } from '../helpers.js';

const out = (f: string) => fs.readFile(path.join(ROOT, 'test/fixtures/tool-output', f), 'utf8');

function req(extra: Partial<ExportRequest>, options: Partial<ExportRequest['options']> = {}): ExportRequest {
  return { via: 'auto', options: { fromHistory: false, noBuilds: false, allowLocal: false, ...options }, lock: false, env: {}, cwd: '/tmp', home: '/nonexistent-home', ...extra };
}

describe('export through conda (recording double, replayed conda-shaped output)', () => {
  it('runs `conda env export -n NAME` and `conda list --explicit --md5 -n NAME`, normalises like a prefix read', async () => {
    const runner = new RecordingRunner(
      [
        { command: 'conda', args: ['env', 'export', '-n', 'analysis'], result: { stdout: await out('conda-env-export.yml') } },
        { command: 'conda', args: ['list', '--explicit', '--md5', '-n', 'analysis'], result: { stdout: await out('conda-list-explicit.txt') } },
      ],
      ['conda'],
    );
    const res = await exportEnvironment(req({ name: 'analysis', lock: true }), runner);
    runner.assertDone();
    expect(res.via).toBe('conda');
    expect(res.environmentYaml).not.toMatch(/^prefix:/m);
    expect(res.environmentYaml).not.toContain('tk-0123456789abcdef');
    expect(res.explicitLock).not.toContain('tk-0123456789abcdef');
    expect(res.warnings).toContainEqual(expect.stringContaining('channel labtools carried credentials'));
    expect(res.pipLock).toContain('Babel==2.14.0');
    await expectGolden('export/conda-tool-full.yml', res.environmentYaml);
  });

  it('--from-history: conda drops versions; sifpack pins them from the full export and adds pip for the pip section', async () => {
    const runner = new RecordingRunner(
      [
        { command: 'conda', args: ['env', 'export', '-n', 'analysis'], result: { stdout: await out('conda-env-export.yml') } },
        { command: 'conda', args: ['list', '--explicit', '--md5', '-n', 'analysis'], result: { stdout: await out('conda-list-explicit.txt') } },
        { command: 'conda', args: ['env', 'export', '--from-history', '-n', 'analysis'], result: { stdout: await out('conda-env-export-from-history.yml') } },
      ],
      ['conda'],
    );
    const res = await exportEnvironment(req({ name: 'analysis', via: 'conda' }, { fromHistory: true }), runner);
    runner.assertDone();
    const spec = parseEnvironmentYaml(res.environmentYaml, 'o');
    expect(spec.dependencies).toEqual(['python=3.11.8', 'pandas=2.2.1', 'numpy=1.26.4', 'labtools::labtools=0.4.2', 'pip=24.0']);
    expect(spec.pip).toEqual(['Babel==2.14.0', 'tqdm==4.66.2']);
    expect(spec.channels).toEqual(['conda-forge', 'labtools', 'defaults']);
  });

  it('-p PREFIX that cannot be read directly goes to the tool as -p', async () => {
    const runner = new RecordingRunner(
      [
        { command: 'conda', args: ['env', 'export', '-p', '/unreadable/env'], result: { stdout: await out('conda-env-export.yml') } },
        { command: 'conda', args: ['list', '--explicit', '--md5', '-p', '/unreadable/env'], result: { stdout: await out('conda-list-explicit.txt') } },
      ],
      ['conda'],
    );
    const res = await exportEnvironment(req({ prefix: '/unreadable/env' }), runner);
    runner.assertDone();
    expect(res.via).toBe('conda');
  });

  it("conda's own error for an unknown env is shown, exit 2", async () => {
    const runner = new RecordingRunner(
      [{ command: 'conda', args: ['env', 'export', '-n', 'ghost'], result: { code: 1, stderr: "\nEnvironmentLocationNotFound: Not a conda environment: /home/researcher/miniforge3/envs/ghost\n\n" } }],
      ['conda'],
    );
    const err = (await exportEnvironment(req({ name: 'ghost', via: 'conda' }), runner).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('conda env export -n ghost failed (exit 1)');
    expect(err.details).toEqual(['EnvironmentLocationNotFound: Not a conda environment: /home/researcher/miniforge3/envs/ghost']);
  });

  it('any other tool failure is exit 1 with its last lines', async () => {
    const runner = new RecordingRunner([{ command: 'conda', args: ['env', 'export', '-n', 'x'], result: { code: 1, stderr: 'CondaError: cannot write lock file\n' } }], ['conda']);
    await expect(exportEnvironment(req({ name: 'x', via: 'conda' }), runner)).rejects.toBeInstanceOf(RuntimeFailure);
  });

  it('--via conda with no conda on PATH says how to get it', async () => {
    const runner = new RecordingRunner([{ command: 'conda', args: ['env', 'export', '-n', 'x'], result: {} }], []);
    const err = (await exportEnvironment(req({ name: 'x', via: 'conda' }), runner).catch((e: unknown) => e)) as ToolNotFoundError;
    expect(err).toBeInstanceOf(ToolNotFoundError);
    expect(err.hint).toMatch(/module load|-p PREFIX/);
  });
});

describe('export through micromamba (recording double, replayed micromamba-2-shaped output)', () => {
  it('reads channel/subdir::name==version=build[md5] entries; keeps a channel prefix only for channels not listed', async () => {
    const runner = new RecordingRunner(
      [
        { command: 'micromamba', args: ['env', 'export', '-n', 'analysis'], result: { stdout: await out('micromamba-env-export.yml') } },
        { command: 'micromamba', args: ['env', 'export', '--explicit', '--md5', '-n', 'analysis'], result: { stdout: await out('micromamba-env-export-explicit.txt') } },
      ],
      ['micromamba'],
    );
    const res = await exportEnvironment(req({ name: 'analysis', lock: true, env: { MAMBA_EXE: '/opt/mm/bin/micromamba' } }, { noBuilds: true }), runner);
    runner.assertDone();
    expect(res.via).toBe('micromamba');
    const spec = parseEnvironmentYaml(res.environmentYaml, 'o');
    expect(spec.dependencies).toEqual(['_libgcc_mutex=0.1', 'libgcc-ng=13.2.0', 'numpy=1.26.4', 'pip=24.0', 'python=3.11.8', 'bioconda::snakemake-minimal=8.5.3']);
    expect(spec.pip).toEqual(['tqdm==4.66.2']);
    expect(res.explicitLock).toContain('@EXPLICIT\nhttps://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex-0.1-conda_forge.tar.bz2#d7c89558ba9fa0495403155b64376d81\n');
  });
});
