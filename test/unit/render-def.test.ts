import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, resolveSettings } from '../../src/config/load.js';
import { loadPreset, parsePreset } from '../../src/config/presets.js';
import { recipeFromInputs } from '../../src/commands/def.js';
import { InputError } from '../../src/errors.js';
import type { Recipe } from '../../src/model/recipe.js';
import { captureActivationLine } from '../../src/render/activation.js';
import { renderDef } from '../../src/render/def.js';
import { renderDockerfile } from '../../src/render/dockerfile.js';
import { ROOT, expectGolden, tempDir } from '../helpers.js';

const VERSION = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')).version as string;
const EXAMPLES = ['pandas-analysis', 'gpu-pytorch', 'pip-heavy', 'array-sweep'];

/** The recipe for an example, with its own sifpack.yml applied, as `sifpack def` would build it there. */
async function exampleRecipe(name: string, base?: string): Promise<Recipe> {
  const dir = path.join(ROOT, 'examples', name);
  const config = parseConfig(await fs.readFile(path.join(dir, 'sifpack.yml'), 'utf8'), path.join(dir, 'sifpack.yml'));
  const { settings } = resolveSettings({ config, cwd: dir, flags: base ? { base } : {} });
  return (await recipeFromInputs({ envFile: 'environment.yml', defDir: dir, cwd: dir }, settings)).recipe;
}

/** Splits a definition file into its header lines and %sections (comments dropped). */
function sections(def: string): Record<string, string[]> {
  const out: Record<string, string[]> = { header: [] };
  let cur = 'header';
  for (const line of def.split('\n')) {
    const m = /^%(\w+)\s*$/.exec(line);
    if (m) {
      cur = m[1]!;
      out[cur] = [];
    } else if (line.trim() && !line.trim().startsWith('#')) out[cur]!.push(line.trim());
  }
  return out;
}

describe('golden renders of every example (def and Dockerfile), byte for byte', () => {
  for (const name of EXAMPLES) {
    it(name, async () => {
      const recipe = await exampleRecipe(name);
      const def = renderDef(recipe, { version: VERSION, defName: `${name}.def` });
      const docker = renderDockerfile(recipe, { version: VERSION });
      await expectGolden(path.join(ROOT, 'examples', name, 'expected', 'apptainer.def'), def.text);
      await expectGolden(path.join(ROOT, 'examples', name, 'expected', 'Dockerfile'), docker.text);
    });
  }

  for (const preset of ['micromamba', 'miniforge', 'cuda']) {
    it(`preset ${preset} (pandas-analysis)`, async () => {
      const recipe = await exampleRecipe('pandas-analysis', preset);
      await expectGolden(`def/pandas-analysis-${preset}.def`, renderDef(recipe, { version: VERSION, defName: 'x.def' }).text);
      await expectGolden(`def/pandas-analysis-${preset}.Dockerfile`, renderDockerfile(recipe, { version: VERSION }).text);
    });
  }

  it('preset rocm (gpu-pytorch, amd-site profile, environment-rocm.yml): PyTorch\'s ROCm index for the pip step, labelled for the gpu-vendor check', async () => {
    const dir = path.join(ROOT, 'examples', 'gpu-pytorch');
    const config = parseConfig(await fs.readFile(path.join(dir, 'sifpack.yml'), 'utf8'), path.join(dir, 'sifpack.yml'));
    const { settings } = resolveSettings({ config, cwd: dir, profile: 'amd-site' });
    expect(settings.base).toBe('rocm');
    const { recipe } = await recipeFromInputs({ envFile: 'environment-rocm.yml', defDir: dir, cwd: dir }, settings);
    const def = renderDef(recipe, { version: VERSION, defName: 'x.def' }).text;
    await expectGolden('def/gpu-pytorch-rocm.def', def);
    await expectGolden('def/gpu-pytorch-rocm.Dockerfile', renderDockerfile(recipe, { version: VERSION }).text);
    expect(sections(def).post).toContain('export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/rocm6.2');
    expect(def).not.toContain('CONDA_OVERRIDE_CUDA');
    const { imageGpuStack, gpuVendorMismatch } = await import('../../src/model/slurm-job.js');
    const labels = Object.fromEntries(recipe.labels);
    expect(imageGpuStack(labels)).toBe('amd');
    expect(gpuVendorMismatch({ gpus: 1, gpuVendor: 'amd', image: 'train-rocm.sif' }, labels)).toBeUndefined();
    expect(gpuVendorMismatch({ gpus: 1, gpuVendor: 'nvidia', image: 'train-rocm.sif' }, labels)).toMatch(/built for ROCm/);
  });

  it('a preset\'s pip-extra-index-url must be https without credentials', async () => {
    const { parsePreset } = await import('../../src/config/presets.js');
    const base = { image: 'mambaorg/micromamba:2.3.2-debian12-slim', installer: 'micromamba' };
    expect(parsePreset('x', { ...base, 'pip-extra-index-url': 'https://download.pytorch.org/whl/rocm6.2' }, 'x.yml').pipExtraIndexUrl).toBe('https://download.pytorch.org/whl/rocm6.2');
    for (const bad of ['http://download.pytorch.org/whl/rocm6.2', 'https://u:p@host/simple', 'https://host/a b']) {
      expect(() => parsePreset('x', { ...base, 'pip-extra-index-url': bad }, 'x.yml'), bad).toThrow(/pip-extra-index-url: .* is not valid; expected an https:\/\/ URL without credentials/);
    }
  });

  it('rendering is deterministic: the same input gives the same bytes', async () => {
    const a = renderDef(await exampleRecipe('gpu-pytorch'), { version: VERSION, defName: 'x.def' }).text;
    const b = renderDef(await exampleRecipe('gpu-pytorch'), { version: VERSION, defName: 'x.def' }).text;
    expect(a).toBe(b);
  });
});

describe('the definition file, section by section', () => {
  it('gpu-pytorch with the cuda preset', async () => {
    const recipe = await exampleRecipe('gpu-pytorch');
    const s = sections(renderDef(recipe, { version: VERSION, defName: 'train.def' }).text);
    expect(s.header).toEqual(['Bootstrap: docker', 'From: mambaorg/micromamba:2.3.2-cuda12.6.3-ubuntu22.04']);
    expect(s.files).toEqual(['environment.yml /opt/sifpack/environment.yml']);
    expect(s.post).toEqual([
      'set -eu',
      'export MAMBA_ROOT_PREFIX=/opt/conda',
      'export CONDA_OVERRIDE_CUDA=12.6',
      'export PIP_NO_CACHE_DIR=1',
      '/bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml',
      '/bin/micromamba clean -a -y',
      'rm -rf /root/.cache',
      captureActivationLine('/opt/env'),
    ]);
    expect(s.environment!.slice(0, 7)).toEqual([
      'export LANG="${LANG:-C.UTF-8}"',
      'export PATH=/opt/env/bin:"$PATH"',
      'export CONDA_PREFIX=/opt/env',
      'export CONDA_DEFAULT_ENV=train',
      'export PYTHONNOUSERSITE=1',
      'export OMP_NUM_THREADS=1',
      'if [ ! -f /.singularity.d/env/92-sifpack-conda-activate.sh ] && [ -d /opt/env/etc/conda/activate.d ]; then',
    ]);
    expect(s.runscript).toEqual(['exec python "$@"']);
    expect(s.test![0]).toBe('python -c \'import torch, torchvision, numpy, yaml; import importlib.util as u; [u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ["wandb"]]\'');
    const labels = Object.fromEntries(s.labels!.map((l) => l.split(' ') as [string, string]));
    expect(labels['sifpack.env-hash']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(labels).toMatchObject({ 'sifpack.preset': 'cuda', 'sifpack.env-name': 'train', 'sifpack.version': VERSION, 'sifpack.base-image': 'mambaorg/micromamba:2.3.2-cuda12.6.3-ubuntu22.04' });
    expect(s.help).toContain('pytorch=2.3.1=cuda120*');
    expect(s.help).toContain('pip: wandb==0.17.0');
  });

  it('the %environment really puts the env first on PATH and keeps ~/.local out (run with sh)', async () => {
    const { execFileSync } = await import('node:child_process');
    const recipe = await exampleRecipe('pandas-analysis');
    const env = sections(renderDef(recipe, { version: VERSION, defName: 'x.def' }).text).environment!.join('\n');
    const out = execFileSync('sh', ['-c', `${env}\nprintf '%s|%s|%s' "$PATH" "$PYTHONNOUSERSITE" "$CONDA_PREFIX"`], { env: { PATH: '/usr/bin:/bin' } }).toString();
    expect(out).toBe('/opt/env/bin:/usr/bin:/bin|1|/opt/env');
  });

  it('--lock installs the exact lock (no solve) and its pip part, and labels the lock hash', async () => {
    const dir = await tempDir();
    await fs.writeFile(path.join(dir, 'environment.yml'), 'name: x\ndependencies:\n  - numpy=1.26.4\n  - pip:\n      - tqdm==4.66.2\n');
    await fs.writeFile(path.join(dir, 'env.lock'), '@EXPLICIT\nhttps://conda.anaconda.org/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda#a502d7aad449a1206efb366d6a12c52d\n');
    await fs.writeFile(path.join(dir, 'env.lock.pip.txt'), 'tqdm==4.66.2\n');
    const { settings } = resolveSettings({ cwd: dir, flags: { base: 'miniforge' } });
    const { recipe } = await recipeFromInputs({ envFile: 'environment.yml', lock: 'env.lock', defDir: dir, cwd: dir }, settings);
    const s = sections(renderDef(recipe, { version: VERSION, defName: 'x.def' }).text);
    expect(s.files).toEqual(['environment.yml /opt/sifpack/environment.yml', 'env.lock /opt/sifpack/environment.lock', 'env.lock.pip.txt /opt/sifpack/environment.lock.pip.txt']);
    expect(s.post).toEqual([
      'set -eu',
      'export PIP_NO_CACHE_DIR=1',
      '/opt/conda/bin/conda create -y -p /opt/env --file /opt/sifpack/environment.lock',
      '/opt/env/bin/python -m pip install --no-deps --no-cache-dir -r /opt/sifpack/environment.lock.pip.txt',
      '/opt/conda/bin/conda clean -a -y',
      'rm -rf /root/.cache',
      captureActivationLine('/opt/env'),
    ]);
    expect(s.labels!.some((l) => /^sifpack\.lock-hash sha256:[0-9a-f]{64}$/.test(l))).toBe(true);
    await fs.rm(dir, { recursive: true });
  });

  it('--from-prefix ships the prefix as one tarball unpacked to /opt/env in %post (links, modes, root); no solve', async () => {
    const prefix = path.join(ROOT, 'examples/pandas-analysis/envs/analysis');
    const { settings } = resolveSettings({ cwd: ROOT });
    const { recipe } = await recipeFromInputs({ fromPrefix: prefix, defDir: ROOT, cwd: ROOT }, settings);
    const s = sections(renderDef(recipe, { version: VERSION, defName: 'x.def' }).text);
    expect(s.files).toEqual(['analysis-env.tar /opt/sifpack/env.tar']);
    expect(s.post!.filter((l) => !l.startsWith('#'))).toEqual(['set -eu', 'mkdir -p /opt/env', 'tar -xf /opt/sifpack/env.tar -C /opt/env --no-same-owner', 'rm -f /opt/sifpack/env.tar', 'rmdir --ignore-fail-on-non-empty /opt/sifpack', captureActivationLine('/opt/env')]);
    expect(s.environment!.slice(0, 2)).toEqual(['export LANG="${LANG:-C.UTF-8}"', 'export PATH=/opt/env/bin:"$PATH"']);
    expect(s.labels).toContain(`sifpack.prefix-path ${prefix}`);
    expect(s.labels).toContain('sifpack.env-prefix /opt/env');
    expect(s.labels!.some((l) => /^sifpack\.prefix-hash sha256:/.test(l))).toBe(true);
    const docker = renderDockerfile(recipe, { version: VERSION }).text;
    expect(docker).toContain('COPY ["prefix/", "/opt/env/"]');
    expect(docker).not.toContain('micromamba create');
  });

  it('--from-prefix: %help and the Dockerfile warnings claim no /opt/sifpack, which such an image lacks', async () => {
    const prefix = path.join(ROOT, 'examples/pandas-analysis/envs/analysis');
    const { settings } = resolveSettings({ cwd: ROOT });
    const { recipe } = await recipeFromInputs({ fromPrefix: prefix, defDir: ROOT, cwd: ROOT }, settings);
    const def = renderDef(recipe, { version: VERSION, defName: 'x.def' }).text;
    // The env's tarball passes through /opt/sifpack during %post and is removed there; nothing claims it stays.
    expect(sections(def).help!.join('\n')).not.toContain('/opt/sifpack');
    expect(sections(def).post!.join('\n')).toMatch(/rm -f \/opt\/sifpack\/env\.tar|rm -rf? \/opt\/sifpack/);
    expect(sections(def).help).toContain(`The environment was copied from the installed prefix ${prefix} (no environment file in the image).`);
    const docker = renderDockerfile(recipe, { version: VERSION });
    expect(docker.text).not.toContain('/opt/sifpack');
    expect(docker.warnings.join('\n')).not.toContain('/opt/sifpack');
    // and an env-file image still names it, where it exists
    const withFile = await exampleRecipe('pandas-analysis');
    expect(sections(renderDef(withFile, { version: VERSION, defName: 'x.def' }).text).help).toContain('The environment file it was built from: /opt/sifpack/');
  });

  it('--from-prefix Dockerfile: the file says what prefix/ is; the activation-hooks warning only when the prefix has hooks', async () => {
    const { HOOKS_WARNING } = await import('../../src/render/dockerfile.js');
    const { settings } = resolveSettings({ cwd: ROOT });
    const plain = path.join(ROOT, 'examples/pandas-analysis/envs/analysis');
    const dir = await tempDir();
    const hooked = path.join(dir, 'analysis');
    await fs.cp(plain, hooked, { recursive: true, verbatimSymlinks: true });
    await fs.mkdir(path.join(hooked, 'etc/conda/activate.d'), { recursive: true });
    await fs.writeFile(path.join(hooked, 'etc/conda/activate.d/gdal.sh'), 'export GDAL_DATA="$CONDA_PREFIX/share/gdal"\n');
    const render = async (prefix: string) => renderDockerfile((await recipeFromInputs({ fromPrefix: prefix, defDir: dir, cwd: dir }, settings)).recipe, { version: VERSION });
    const without = await render(plain);
    expect(without.warnings).not.toContain(HOOKS_WARNING);
    expect(without.text).toMatch(/^# prefix\/ is the build context `sifpack build --from-prefix \.\.\. --builder docker` packs:\n# the env relocated to \/opt\/env\. .*\nCOPY \["prefix\/", "\/opt\/env\/"\]$/m);
    expect((await render(hooked)).warnings).toContain(HOOKS_WARNING);
    // An env file's packages may bring hooks: the warning stays.
    expect(renderDockerfile(await exampleRecipe('pandas-analysis'), { version: VERSION }).warnings).toContain(HOOKS_WARNING);
    await fs.rm(dir, { recursive: true });
  });

  it('the Dockerfile writes the %environment (exports and activate.d hooks) as a /.singularity.d/env script and the %help as runscript.help, and sh runs them', async () => {
    const { execFileSync } = await import('node:child_process');
    const recipe = await exampleRecipe('pandas-analysis');
    const docker = renderDockerfile(recipe, { version: VERSION }).text;
    const run = /(mkdir -p \/\.singularity\.d\/env[\s\S]*?runscript\.help)$/m.exec(docker);
    expect(run).not.toBeNull();
    const dir = await tempDir();
    // the RUN line, re-rooted into a temp dir, then the script sourced with an activate.d hook in place
    const cmd = run![1]!.replace(/\\\n/g, ' ').replaceAll('/.singularity.d', `${dir}/.singularity.d`);
    execFileSync('sh', ['-c', cmd]);
    const script = (await fs.readFile(path.join(dir, '.singularity.d/env/91-sifpack-environment.sh'), 'utf8')).replaceAll(`${dir}/.singularity.d`, '/.singularity.d');
    const def = renderDef(recipe, { version: VERSION, defName: 'x.def' }).text;
    for (const line of sections(def).environment!) expect(script).toContain(line);
    // What `apptainer run-help` prints for a def-built image, line for line (sections() trims the def's indent).
    const help = await fs.readFile(path.join(dir, '.singularity.d/runscript.help'), 'utf8');
    expect(help.trimEnd().split('\n').map((l) => l.trim())).toEqual(sections(def).help);
    await fs.rm(dir, { recursive: true });
  });

  it('--bootstrap docker-daemon|docker-archive|localimage: the def header says so; a file agent needs --base-image', async () => {
    const { checkBaseImage } = await import('../../src/commands/def.js');
    for (const bootstrap of ['docker-daemon', 'docker-archive', 'localimage'] as const) {
      const { settings } = resolveSettings({ cwd: ROOT, flags: { bootstrap, baseImage: bootstrap === 'docker-daemon' ? 'local/base:1' : '/srv/base.img' } });
      const dir = path.join(ROOT, 'examples', 'pandas-analysis');
      const { recipe } = await recipeFromInputs({ envFile: 'environment.yml', defDir: dir, cwd: dir }, settings);
      expect(sections(renderDef(recipe, { version: VERSION, defName: 'x.def' }).text).header).toEqual([`Bootstrap: ${bootstrap}`, `From: ${settings.baseImage}`]);
    }
    expect(() => checkBaseImage({ bootstrap: 'localimage' })).toThrow('--bootstrap localimage needs --base-image naming a .sif file');
    expect(() => checkBaseImage({ bootstrap: 'docker-archive', baseImage: '/a b/base.tar' })).toThrow('the path holds whitespace');
    expect(() => checkBaseImage({ bootstrap: 'docker-daemon', baseImage: 'local/base' })).toThrow('is not pinned');
    expect(() => resolveSettings({ cwd: ROOT, flags: { bootstrap: 'shub' } })).toThrow(/bootstrap/);
  });

  it('--keep-prefix-path keeps the host path, and is another build than the relocated one', async () => {
    // A path apptainer does not mount over (the checkout itself may sit under /tmp or $HOME, where
    // --keep-prefix-path is refused): a copy in /dev/shm.
    const shm = await fs.mkdtemp('/dev/shm/sifpack-keep-');
    const prefix = path.join(shm, 'analysis');
    await fs.cp(path.join(ROOT, 'examples/pandas-analysis/envs/analysis'), prefix, { recursive: true });
    const { settings } = resolveSettings({ cwd: ROOT });
    const moved = (await recipeFromInputs({ fromPrefix: prefix, defDir: ROOT, cwd: '/', home: '/nonexistent-home' }, settings)).recipe;
    const kept = (await recipeFromInputs({ fromPrefix: prefix, keepPrefixPath: true, defDir: ROOT, cwd: '/', home: '/nonexistent-home' }, settings)).recipe;
    expect(kept.envPrefix).toBe(prefix);
    const s = sections(renderDef(kept, { version: VERSION, defName: 'x.def' }).text);
    expect(s.post).toContain(`tar -xf /opt/sifpack/env.tar -C ${prefix} --no-same-owner`);
    expect(kept.labels.find(([k]) => k === 'sifpack.build-hash')![1]).not.toBe(moved.labels.find(([k]) => k === 'sifpack.build-hash')![1]);
    await fs.rm(shm, { recursive: true, force: true });
  });
});

describe('presets', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('an unknown preset lists the available ones', async () => {
    const err = (await loadPreset('cudda', []).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe("--base cudda: no such preset; did you mean 'cuda'?");
    expect(err.hint).toBe('available presets: cuda, micromamba, miniforge, rocm (add your own with --defs DIR)');
  });

  it('every shipped preset pins its image and loads', async () => {
    for (const name of ['micromamba', 'miniforge', 'cuda', 'rocm']) {
      const p = await loadPreset(name, []);
      expect(p.image).toMatch(/:[^:/]+$/);
      expect(p.image).not.toMatch(/:latest$/);
    }
  });

  it('a user directory adds presets and can shadow a shipped one', async () => {
    await fs.writeFile(path.join(dir, 'site.yml'), 'image: registry.site.org/mirror/micromamba:2.3.2-debian12-slim\ninstaller: micromamba\ninstaller-path: /bin/micromamba\nos-packages: [ca-certificates]\n');
    const p = await loadPreset('site', [dir]);
    expect(p.osPackages).toEqual(['ca-certificates']);
    expect(p.file).toBe(path.join(dir, 'site.yml'));
  });

  it("a preset's OS packages: one command a line in %post and in the Dockerfile's RUN (set -e stops at a failing apt-get; in an && list it would not)", async () => {
    await fs.writeFile(path.join(dir, 'ospkgs.yml'), 'image: registry.site.org/mirror/micromamba:2.3.2-debian12-slim\ninstaller: micromamba\ninstaller-path: /bin/micromamba\nos-packages: [ca-certificates, "lib with space"]\n');
    const preset = await loadPreset('ospkgs', [dir]);
    const recipe = { ...(await exampleRecipe('pandas-analysis')), preset };
    const post = sections(renderDef(recipe, { version: VERSION, defName: 'x.def' }).text).post!;
    expect(post.slice(0, 4)).toEqual(['set -eu', 'apt-get update', "apt-get install -y --no-install-recommends ca-certificates 'lib with space'", 'rm -rf /var/lib/apt/lists/*']);
    expect(renderDockerfile(recipe, { version: VERSION }).text).toContain("RUN set -eu; \\\n    apt-get update; \\\n    apt-get install -y --no-install-recommends ca-certificates 'lib with space'; \\\n    rm -rf /var/lib/apt/lists/*; \\\n");
  });

  it.each([
    [{ image: 'mambaorg/micromamba:latest', installer: 'micromamba' }, 'p.yml: image: "mambaorg/micromamba:latest" is not pinned'],
    [{ image: 'mambaorg/micromamba', installer: 'micromamba' }, 'p.yml: image: "mambaorg/micromamba" is not pinned'],
    [{ image: 'a:1', installer: 'pixi' }, 'p.yml: installer: "pixi" is not valid; expected one of micromamba, conda'],
    [{ image: 'a:1', installer: 'conda', imag: 'x' }, "p.yml: imag: unknown field; did you mean 'image'?"],
    [{ image: 'a:1', installer: 'conda', cuda: 'twelve' }, 'p.yml: cuda: "twelve" is not valid; expected a CUDA version like "12.6" (quote it in YAML)'],
  ])('a bad preset file is named with its field: %j', (raw, message) => {
    expect(() => parsePreset('p', raw, 'p.yml')).toThrow(message);
  });
});
