/**
 * environment.yml entries are checked as conda MatchSpecs and pip
 * requirement lines: a mis-indented list item is refused (it used to become
 * the spec "python=3.11 - numpy"), every spec in conda's own test files and
 * the examples still passes, and an env without python is warned about.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { environmentWarnings, parseEnvironmentYaml } from '../../src/model/environment.js';
import { matchSpecProblem, pipLineProblem } from '../../src/model/match-spec.js';
import { CONDA_TESTDATA, ROOT } from '../helpers.js';

describe('MatchSpec and pip line validation', () => {
  it('a list item indented under another is refused, naming the entry and why', () => {
    const err = (() => {
      try {
        parseEnvironmentYaml('name: x\ndependencies:\n  - python=3.11\n     - numpy\n', 'environment.yml');
      } catch (e) {
        return e as InputError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toBe('environment.yml: dependencies[0] "python=3.11 - numpy": not a conda package spec: "- numpy" after "python=3.11": a version is given twice (a list item indented under another?)');
    expect(err!.exitCode).toBe(2);
  });

  it.each(['numpy', 'numpy=1.26', 'numpy==1.26.4', 'numpy>=1.2,<2', 'numpy 1.26.* py311_0', 'numpy=1.26.4=py311_0', 'conda-forge::numpy', 'conda-forge/osx-64::numpy==1.26.4=h0', 'python_abi[build=*_cp313t]', 'pytorch=2.3.1=cuda120*', 'https://104.17.92.24:443::flask=1.0.2', 'python 3.11.*', 'openssl>=3|<1.1'])('accepts %s', (s) => {
    expect(matchSpecProblem(s)).toBeUndefined();
  });

  it.each([['python=3.11 - numpy', /given twice/], ['numpy =1.2 extra words here', /5 words/], ['- numpy', /package name/], ['numpy=>1.2', /not a version constraint/], ['numpy 1.2 build extra', /4 words/], ['::numpy', /channel/], ['', /empty/]])('refuses %j', (s, why) => {
    expect(matchSpecProblem(s)).toMatch(why);
  });

  it.each(['requests', 'requests==2.31.0', 'requests>=2,<3', 'requests[socks]==2.31', 'torch==2.3.1+cpu', 'mylab-utils @ git+https://github.com/lab/mylab-utils@v0.3.1', 'pkg; python_version < "3.12"', '-e ./module', '--index-url https://pypi.org/simple', 'git+https://github.com/a/b', './local/path'])('pip accepts %s', (s) => {
    expect(pipLineProblem(s)).toBeUndefined();
  });

  it.each(['requests - numpy', 'requests 2.31', '==2.31'])('pip refuses %j', (s) => {
    expect(pipLineProblem(s)).toMatch(/not a pip requirement/);
  });

  it("every dependency in conda's own test environment files and in examples/ still passes", async () => {
    const dir = path.join(CONDA_TESTDATA, 'env-files');
    const files = [...(await fs.readdir(dir)).filter((f) => /\.ya?ml$/.test(f) && f !== 'invalid_keys.yml').map((f) => path.join(dir, f)), path.join(ROOT, 'examples/pandas-analysis/environment.yml')];
    let specs = 0;
    for (const f of files) {
      const spec = parseEnvironmentYaml(await fs.readFile(f, 'utf8'), f);
      specs += spec.dependencies.length + spec.pip.length;
    }
    expect(specs).toBeGreaterThan(30);
  });

  it('an environment without python gets a warning naming what the job will fail on', () => {
    const empty = parseEnvironmentYaml('name: x\ndependencies: []\n', 'env.yml');
    expect(environmentWarnings(empty, 'env.yml')).toEqual(['env.yml: no python among the dependencies: the image gets no python of its own, and the job `sifpack sbatch` writes runs `apptainer exec IMAGE python SCRIPT`, which will then fail (add python, e.g. python=3.11)']);
    expect(environmentWarnings(parseEnvironmentYaml('dependencies: [conda-forge::python=3.11, numpy]\n', 'e'), 'e')).toEqual([]);
  });
});
