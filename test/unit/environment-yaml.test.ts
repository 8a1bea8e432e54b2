import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { type EnvironmentSpec, parseEnvironmentYaml, renderEnvironmentYaml } from '../../src/model/environment.js';
import { CONDA_TESTDATA } from '../helpers.js';

const ENV_FILES = path.join(CONDA_TESTDATA, 'env-files');
const read = (f: string) => fs.readFile(path.join(ENV_FILES, f), 'utf8');

describe('parseEnvironmentYaml on the environment files from conda\'s test suite', () => {
  it('reads a pip section nested in dependencies', async () => {
    expect(parseEnvironmentYaml(await read('example_environment_with_pip.yml'), 'f')).toEqual({
      name: 'test',
      channels: [],
      dependencies: ['pip', 'python'],
      pip: ['httpx'],
      variables: {},
    });
  });

  it('reads variables and == pins', async () => {
    const spec = parseEnvironmentYaml(await read('example_environment_pinned.yml'), 'f');
    expect(spec.dependencies).toEqual(['flask==2.0.2']);
    expect(spec.variables).toEqual({ FIXED: 'fixed', CHANGES: 'original_value', GETS_DELETED: 'not_actually_removed_though' });
  });

  it('keeps channels with ${VAR} tokens and host:port channel prefixes as written', async () => {
    expect(parseEnvironmentYaml(await read('channels_with_envvars.yml'), 'f').channels).toEqual([
      'https://localhost/t/${CONDA_TOKEN}/stable',
      'https://localhost/t/${OTHER_KEY}/stable',
      'conda-forge',
      'defaults',
    ]);
    expect(parseEnvironmentYaml(await read('example_environment_host_port.yml'), 'f').dependencies).toEqual(['https://104.17.92.24:443::flask=1.0.2']);
  });

  it('accepts empty dependencies and envs without dependencies', async () => {
    expect(parseEnvironmentYaml(await read('empty_deps.yml'), 'f').dependencies).toEqual([]);
    expect(parseEnvironmentYaml(await read('empty_env.yml'), 'f')).toEqual({ channels: ['conda-forge', 'defaults'], dependencies: [], pip: [], variables: {} });
  });

  it('rejects misspelt keys, naming the file, the key and the likely meant one', async () => {
    const text = await read('invalid_keys.yml');
    expect(() => parseEnvironmentYaml(text, 'invalid_keys.yml')).toThrowError(InputError);
    expect(() => parseEnvironmentYaml(text, 'invalid_keys.yml')).toThrow("invalid_keys.yml: unknown key 'names'; did you mean 'name'?");
  });

  it('rejects a dependency that is neither a spec nor a pip list', () => {
    expect(() => parseEnvironmentYaml('dependencies:\n  - {conda: [x]}\n', 'env.yml')).toThrow(/env.yml: dependencies\[0\]/);
  });

  it('reads every parseable file in the folder without error', async () => {
    for (const f of (await fs.readdir(ENV_FILES)).filter((n) => /\.ya?ml$/.test(n) && n !== 'invalid_keys.yml')) {
      expect(() => parseEnvironmentYaml('', f)).not.toThrow();
      const spec = parseEnvironmentYaml(await read(f), f);
      expect(Array.isArray(spec.dependencies)).toBe(true);
    }
  });
});

describe('renderEnvironmentYaml', () => {
  const spec: EnvironmentSpec = {
    name: 'analysis',
    channels: ['conda-forge', 'nodefaults'],
    dependencies: ['python=3.11.8', 'numpy=1.26.4=py311h64a7726_0', 'python_abi=3.13=*_cp313t'],
    pip: ['tqdm==4.66.2', 'seaborn-extras @ git+https://github.com/lab/seaborn-extras@3f2a1b0'],
    variables: { OMP_NUM_THREADS: '1', GREETING: 'a: b # not a comment' },
  };

  it('round-trips: parsing our own output gives back the same model', () => {
    expect(parseEnvironmentYaml(renderEnvironmentYaml(spec, ['a header']), 'out.yml')).toEqual(spec);
  });

  it('round-trips conda\'s test files through our renderer', async () => {
    for (const f of ['advanced-pip_env_template.yml', 'example_environment_pinned.yml', 'channels_with_envvars.yml', 'pip_argh.yml']) {
      const parsed = parseEnvironmentYaml(await read(f), f);
      expect(parseEnvironmentYaml(renderEnvironmentYaml(parsed), f)).toEqual(parsed);
    }
  });

  it('writes the layout conda writes', () => {
    expect(renderEnvironmentYaml(spec, ['exported'])).toBe(
      [
        '# exported',
        'name: analysis',
        'channels:',
        '  - conda-forge',
        '  - nodefaults',
        'dependencies:',
        '  - python=3.11.8',
        '  - numpy=1.26.4=py311h64a7726_0',
        '  - python_abi=3.13=*_cp313t',
        '  - pip:',
        '      - tqdm==4.66.2',
        '      - seaborn-extras @ git+https://github.com/lab/seaborn-extras@3f2a1b0',
        'variables:',
        '  OMP_NUM_THREADS: "1"',
        '  GREETING: "a: b # not a comment"',
        '',
      ].join('\n'),
    );
  });
});
