/**
 * Issue 11, "Images" and "AMD GPUs": what the rendered def file, Dockerfile
 * and presets say, checked line by line (the builds themselves are in
 * test/integration/pip-cache.test.ts and image-runtime-notes.test.ts).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPreset } from '../../src/config/presets.js';
import { buildRecipe } from '../../src/model/recipe.js';
import { renderDef } from '../../src/render/def.js';
import { renderDockerfile } from '../../src/render/dockerfile.js';
import { ROOT } from '../helpers.js';

const spec = (pip: string[] = []) => ({ name: 'demo', channels: ['conda-forge'], dependencies: ['python=3.11', 'pip'], pip, variables: {} });
const envFile = { source: 'environment.yml', name: 'environment.yml', text: 'name: demo\n' };

/** The body of one %section of a def file. */
function section(def: string, name: string): string {
  const m = new RegExp(`^%${name}\\n([\\s\\S]*?)(?=^%\\w+\\n|$(?![\\s\\S]))`, 'm').exec(def);
  if (!m) throw new Error(`no %${name} in:\n${def}`);
  return m[1]!;
}

async function recipe(pip: string[] = [], base = 'micromamba') {
  const preset = await loadPreset(base, []);
  return buildRecipe({ preset, spec: spec(pip), source: { kind: 'env-file', envFile }, sifpackVersion: '0.0.0' });
}

describe('pip cache in images', () => {
  it('def %post and the Dockerfile RUN both set PIP_NO_CACHE_DIR=1 before the solve and remove /root/.cache after it', async () => {
    const r = await recipe(['requests==2.32.3']);
    const post = section(renderDef(r, { version: '0', defName: 'x.def' }).text, 'post');
    expect(post.indexOf('export PIP_NO_CACHE_DIR=1')).toBeGreaterThan(0);
    expect(post.indexOf('export PIP_NO_CACHE_DIR=1')).toBeLessThan(post.indexOf('micromamba create'));
    expect(post.indexOf('rm -rf /root/.cache')).toBeGreaterThan(post.indexOf('micromamba clean'));
    const run = renderDockerfile(r, { version: '0' }).text;
    expect(run.indexOf('export PIP_NO_CACHE_DIR=1; \\')).toBeLessThan(run.indexOf('micromamba create'));
    expect(run.indexOf('rm -rf /root/.cache; \\')).toBeGreaterThan(run.indexOf('micromamba clean'));
  });
});

describe('Dockerfile front matter', () => {
  it('has no `# syntax=` line: BuildKit would fetch a frontend image from Docker Hub, and no newer syntax is used', async () => {
    const text = renderDockerfile(await recipe(), { version: '0' }).text;
    expect(text).not.toMatch(/^#\s*syntax\s*=/im);
    expect(await fs.readFile(path.join(ROOT, 'templates', 'Dockerfile.mustache'), 'utf8')).not.toMatch(/syntax=/);
  });
});

describe('defs/cuda.yml', () => {
  it("states the real minimum driver (525, CUDA 12.x minor version compatibility) and the PTX JIT caveat, citing NVIDIA's document", async () => {
    const cuda = await loadPreset('cuda', []);
    const notes = cuda.notes.join('\n');
    expect(notes).toMatch(/>= 525/);
    expect(notes).toMatch(/PTX/);
    expect(notes).toContain('https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html');
    expect(notes).not.toMatch(/must support CUDA 12\.6 \(driver >= 560\)/);
  });
});
