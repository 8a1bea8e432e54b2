import { describe, expect, it } from 'vitest';
import { loadPreset } from '../../src/config/presets.js';
import { parseEnvironmentYaml } from '../../src/model/environment.js';
import { type RecipeSource, buildRecipe } from '../../src/model/recipe.js';

const preset = await loadPreset('micromamba', []);
const hashOf = (envText: string, opts: { version?: string; baseImage?: string; source?: RecipeSource } = {}) =>
  buildRecipe({
    preset,
    spec: parseEnvironmentYaml(envText, 'e.yml'),
    source: opts.source ?? { kind: 'env-file', envFile: { source: 'environment.yml', name: 'environment.yml', text: envText } },
    sifpackVersion: opts.version ?? '1.0.0',
    ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
  }).labels.find(([k]) => k === 'sifpack.build-hash')![1];

describe('the build hash: what decides the image, and nothing else', () => {
  const env = 'name: a\ndependencies:\n  - numpy=1.26.4\n';
  it('is stable for the same inputs, and ignores comments and layout', () => {
    expect(hashOf(env)).toBe(hashOf(env));
    expect(hashOf(`# a comment\n${env}\n\n`)).toBe(hashOf(env));
  });
  it('changes with the env, the sifpack version and the base image', () => {
    expect(hashOf(env.replace('1.26.4', '1.26.3'))).not.toBe(hashOf(env));
    expect(hashOf(env, { version: '1.0.1' })).not.toBe(hashOf(env));
    expect(hashOf(env, { baseImage: 'mirror.site/micromamba:2.3.2-debian12-slim' })).not.toBe(hashOf(env));
  });
  it('--from-prefix: the same records at another path are another build', () => {
    const at = (p: string) => hashOf(env, { source: { kind: 'prefix', hostPath: p, recordsDigest: 'sha256:aa', archive: 'a-env.tar', fileModes: [], skip: [] } });
    expect(at('/home/u/envs/a')).toBe(at('/home/u/envs/a'));
    expect(at('/home/u/envs/a')).not.toBe(at('/scratch/u/envs/a'));
  });
});
