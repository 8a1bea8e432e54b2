/**
 * The checks made before a --from-prefix env is copied: each problem named
 * with its path, exit 2 (InputError) unless --allow-local, which lists and
 * leaves them out; another platform cannot be left out. Prefixes are written
 * the way conda 24 writes them (test/fixtures/prefix-builder.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKeepPrefixPath, checkPrefix, resolveProblems } from '../../src/env/prefix-check.js';
import { readPrefix } from '../../src/env/prefix.js';
import { InputError } from '../../src/errors.js';
import { analysisEnv, writePrefix } from '../fixtures/prefix-builder.js';
import { tempDir } from '../helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-pcheck-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const errorOf = (f: () => unknown): InputError => {
  try {
    f();
  } catch (e) {
    return e as InputError;
  }
  throw new Error('no error');
};

describe('checks before copying a prefix', () => {
  it('a clean linux-64 env passes; conda records name the files that carry the prefix, text or binary', async () => {
    const p = await writePrefix(path.join(dir, 'clean'), analysisEnv());
    const rec = path.join(p, 'conda-meta', 'python-3.11.8-hab00c5b_0_cpython.json');
    const raw = JSON.parse(await fs.readFile(rec, 'utf8'));
    raw.paths_data.paths.push({ _path: 'bin/python3.11', path_type: 'hardlink', file_mode: 'binary', prefix_placeholder: '/home/conda/feedstock_root/build_artifacts/python_placehold' });
    raw.paths_data.paths.push({ _path: 'lib/python3.11/_sysconfigdata.py', path_type: 'hardlink', file_mode: 'text', prefix_placeholder: '/home/conda/x_placehold' });
    await fs.writeFile(rec, JSON.stringify(raw));
    const check = await checkPrefix(await readPrefix(p), { uid: 0, subdir: 'linux-64' });
    expect(check.problems).toEqual([]);
    expect([...check.fileModes]).toEqual([
      ['bin/python3.11', 'binary'],
      ['lib/python3.11/_sysconfigdata.py', 'text'],
    ]);
  });

  it('editable install, .pth outside, dangling symlink, a file you do not own: each named, exit 2; --allow-local lists and skips them', async () => {
    const p = await writePrefix(path.join(dir, 'local'), analysisEnv({ editable: true }));
    const sp = path.join(p, 'lib', 'python3.11', 'site-packages');
    await fs.writeFile(path.join(sp, '__editable__.mylab-0.1.dev0.pth'), 'import __editable___mylab_0_1_dev0_finder; __editable___mylab_0_1_dev0_finder.install()\n');
    await fs.writeFile(path.join(sp, 'easy-install.pth'), '# comment\n/home/researcher/src/legacy\n');
    await fs.mkdir(path.join(p, 'bin'), { recursive: true });
    await fs.symlink('../gone/nowhere', path.join(p, 'bin', 'broken'));
    await fs.writeFile(path.join(p, 'theirs.txt'), 'x');
    await fs.chown(path.join(p, 'theirs.txt'), 4242, 4242);
    const me = 1000;
    // Everything else is root's here: make it "mine" by checking as root for the rest, then as uid 1000 for ownership.
    const data = await readPrefix(p);
    const asRoot = await checkPrefix(data, { uid: 0, subdir: 'linux-64' });
    const err = errorOf(() => resolveProblems(asRoot, p, false));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toContain(`${path.join(sp, 'mylab-0.1.dev0.dist-info')}: pip package mylab 0.1.dev0 is an editable install of /home/researcher/src/mylab`);
    expect(err.message).toContain(`${path.join(sp, 'easy-install.pth')}: line 2 adds /home/researcher/src/legacy to sys.path, outside the prefix`);
    expect(err.message).toContain(`${path.join(p, 'bin', 'broken')}: dangling symlink to ../gone/nowhere`);
    expect(err.hint).toContain('--allow-local');
    const { skip, skipped } = resolveProblems(asRoot, p, true);
    expect(skipped).toHaveLength(3);
    expect([...skip].sort()).toEqual(['bin/broken', 'lib/python3.11/site-packages/__editable__.mylab-0.1.dev0.pth', 'lib/python3.11/site-packages/easy-install.pth', 'lib/python3.11/site-packages/mylab-0.1.dev0.dist-info']);

    const asUser = await checkPrefix(data, { uid: me, subdir: 'linux-64' });
    const owned = asUser.problems.find((x) => x.path === path.join(p, 'theirs.txt'));
    expect(owned).toMatchObject({ what: 'owned by uid 4242, not you (uid 1000)', skippable: true, skip: ['theirs.txt'] });
  });

  it('an osx-arm64 prefix: refused even with --allow-local, the record and its platform named', async () => {
    const spec = analysisEnv();
    spec.packages = spec.packages.map((x) => (x.name === 'python' || x.name === 'numpy' ? { ...x, subdir: 'osx-arm64' } : x));
    const p = await writePrefix(path.join(dir, 'mac'), spec);
    const check = await checkPrefix(await readPrefix(p), { uid: 0, subdir: 'linux-64' });
    const err = errorOf(() => resolveProblems(check, '~/envs/mac', true));
    expect(err.message).toMatch(/^--from-prefix ~\/envs\/mac: 2 thing\(s\) would not work in the image:/);
    expect(err.message).toContain(`${path.join(p, 'conda-meta', 'python-3.11.8-hab00c5b_0_cpython.json')}: python 3.11.8 is built for osx-arm64; the image runs linux-64`);
    expect(err.hint).toContain('recreate the env for this platform');
  });
});

describe('--keep-prefix-path', () => {
  it('refused under $HOME, /home, /tmp, /var/tmp and the working directory, with the reason', () => {
    const e = errorOf(() => checkKeepPrefixPath('/home/ana/miniforge3/envs/x', { home: '/home/ana', cwd: '/srv' }));
    expect(e.message).toBe('--keep-prefix-path: /home/ana/miniforge3/envs/x is under /home, $HOME (/home/ana), which apptainer mounts over the image by default at run time');
    expect(e.hint).toContain('/opt/env');
    expect(() => checkKeepPrefixPath('/tmp/envs/x', { cwd: '/srv' })).toThrow(/under \/tmp,? /);
    expect(() => checkKeepPrefixPath('/var/tmp/x', { cwd: '/srv' })).toThrow(/under \/var\/tmp/);
    expect(() => checkKeepPrefixPath('/u/ana/envs/x', { home: '/u/ana', cwd: '/srv' })).toThrow(/\$HOME \(\/u\/ana\)/);
    expect(() => checkKeepPrefixPath('/srv/proj/envs/x', { cwd: '/srv/proj' })).toThrow(/the current directory \(\/srv\/proj\)/);
  });
  it('allowed elsewhere (a site software tree)', () => {
    expect(() => checkKeepPrefixPath('/sw/envs/x', { home: '/home/ana', cwd: '/home/ana/proj' })).not.toThrow();
    expect(() => checkKeepPrefixPath('/tmpfoo/x', { cwd: '/srv' })).not.toThrow();
  });
});
