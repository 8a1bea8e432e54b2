/**
 * The environment spec: what environment.yml holds, as data. Parsing and
 * rendering live here so `export` writes exactly what `def` reads back.
 *
 * Format:
 *   name: analysis
 *   channels:
 *     - conda-forge
 *   dependencies:
 *     - numpy=1.26.4
 *     - pip:
 *         - requests==2.31.0
 *   variables:
 *     OMP_NUM_THREADS: "1"
 */
import { parseYamlFile, yamlLib } from '../util/yaml.js';
import { InputError } from '../errors.js';
import { closest } from '../util/suggest.js';
import { matchSpecProblem, parseMatchSpec, pipLineProblem } from './match-spec.js';
import { vcsSchemes } from './vcs.js';

export interface EnvironmentSpec {
  name?: string;
  /** In priority order, `nodefaults` included when present. */
  channels: string[];
  /** Conda match specs as text, e.g. `numpy=1.26.4=py311h64a7726_0`. */
  dependencies: string[];
  /** pip requirement lines, e.g. `requests==2.31.0`. */
  pip: string[];
  /** Environment variables conda sets on activation. */
  variables: Record<string, string>;
}

/** Keys conda's environment.yml accepts (conda/env/env.py VALID_KEYS). */
export const ENV_FILE_KEYS = ['name', 'channels', 'dependencies', 'prefix', 'variables'] as const;

function asStringList(value: unknown, where: string): string[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new InputError(`${where}: expected a list`);
  return value.map((v, i) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return String(v);
    throw new InputError(`${where}[${i}]: expected a string, got ${JSON.stringify(v)}`);
  });
}

/**
 * Parses environment.yml text. `file` names the file in errors. A `prefix:`
 * line is accepted and dropped: it is a path on somebody else's machine.
 */
export function parseEnvironmentYaml(text: string, file: string): EnvironmentSpec {
  const raw: unknown = parseYamlFile(text, file) ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    throw new InputError(`${file}: expected a mapping with name, channels, dependencies`);
  }
  for (const key of Object.keys(raw)) {
    if (!(ENV_FILE_KEYS as readonly string[]).includes(key)) {
      const guess = closest(key, ENV_FILE_KEYS);
      throw new InputError(`${file}: unknown key '${key}'${guess ? `; did you mean '${guess}'?` : ''}`, {
        hint: `environment.yml keys: ${ENV_FILE_KEYS.join(', ')}`,
      });
    }
  }
  const r = raw as Record<string, unknown>;
  const spec: EnvironmentSpec = { channels: asStringList(r.channels, `${file}: channels`), dependencies: [], pip: [], variables: {} };
  if (r.name !== undefined && r.name !== null) {
    if (typeof r.name !== 'string' || r.name === '') throw new InputError(`${file}: name: expected a non-empty string`);
    spec.name = r.name;
  }
  const deps = r.dependencies ?? [];
  if (!Array.isArray(deps)) throw new InputError(`${file}: dependencies: expected a list`);
  deps.forEach((d: unknown, i: number) => {
    if (typeof d === 'string' || typeof d === 'number') {
      const problem = matchSpecProblem(String(d));
      if (problem) throw new InputError(`${file}: dependencies[${i}] ${JSON.stringify(String(d))}: not a conda package spec: ${problem}`, { hint: 'one spec per list item, e.g. "numpy", "numpy=1.26", "numpy>=1.26,<2", "conda-forge::numpy=1.26.4=py311_0"' });
      spec.dependencies.push(String(d));
    } else if (d && typeof d === 'object' && !Array.isArray(d) && Object.keys(d).length === 1 && 'pip' in d) {
      const lines = asStringList((d as { pip: unknown }).pip, `${file}: dependencies[${i}].pip`);
      lines.forEach((l, j) => {
        const problem = pipLineProblem(l);
        if (problem) throw new InputError(`${file}: dependencies[${i}].pip[${j}]: ${problem}`, { hint: 'one requirement per list item, e.g. "requests==2.31.0"' });
      });
      spec.pip.push(...lines);
    } else {
      throw new InputError(`${file}: dependencies[${i}]: expected a package spec or a 'pip:' list, got ${JSON.stringify(d)}`);
    }
  });
  const vars = r.variables ?? {};
  if (typeof vars !== 'object' || Array.isArray(vars) || vars === null) throw new InputError(`${file}: variables: expected a mapping`);
  for (const [k, v] of Object.entries(vars)) {
    if (!ENV_VAR_NAME.test(k)) throw new InputError(`${file}: variables: ${JSON.stringify(k)} is not a valid environment variable name`, { hint: 'names are letters, digits and _, not starting with a digit (e.g. OMP_NUM_THREADS)' });
    if (v === null || typeof v === 'object') throw new InputError(`${file}: variables.${k}: expected a string`);
    spec.variables[k] = String(v);
  }
  checkOneLine(spec, file);
  return spec;
}

/** What a shell (and so %environment, ENV, APPTAINERENV_*) accepts as a variable name. */
export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** conda's own rule for env names (conda/base/context.py: validate_prefix_name). */
const NAME_FORBIDDEN = /[/ :#]/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Every value of the spec is written into line-based files (the def file's
 * %labels and %help, Dockerfile instructions, job scripts): a line break or
 * other control character in one would start a new line there, so it is
 * refused, naming the field.
 */
function checkOneLine(spec: EnvironmentSpec, file: string): void {
  const refuse = (where: string, value: string) => {
    throw new InputError(`${file}: ${where}: ${JSON.stringify(value)} contains a line break or control character`, { hint: 'each name, channel, package spec and variable must be one line of plain text' });
  };
  if (spec.name !== undefined) {
    if (CONTROL.test(spec.name)) refuse('name', spec.name);
    if (NAME_FORBIDDEN.test(spec.name)) throw new InputError(`${file}: name: ${JSON.stringify(spec.name)} is not a valid environment name`, { hint: "as in conda, an env name may not contain '/', ' ', ':' or '#'" });
  }
  spec.channels.forEach((c, i) => CONTROL.test(c) && refuse(`channels[${i}]`, c));
  spec.dependencies.forEach((d, i) => {
    if (CONTROL.test(d)) refuse(`dependencies: item ${i + 1}`, d);
    if (!parseMatchSpec(d)) throw new InputError(`${file}: dependencies: item ${i + 1}, ${JSON.stringify(d)}, is not a conda package spec`, { hint: 'a spec is NAME, NAME=VERSION, NAME=VERSION=BUILD or CHANNEL::NAME..., e.g. numpy=1.26.4' });
  });
  spec.pip.forEach((d, i) => CONTROL.test(d) && refuse(`pip item ${i + 1}`, d));
  for (const [k, v] of Object.entries(spec.variables)) if (CONTROL.test(v)) refuse(`variables.${k}`, v);
}

/** A YAML scalar, quoted only when YAML needs it. */
function scalar(s: string): string {
  return yamlLib().stringify(s, { lineWidth: 0 }).trimEnd();
}

/**
 * Renders the spec as environment.yml. `header` lines become `#` comments at
 * the top (provenance, skipped local installs); they are not part of the model.
 */
export function renderEnvironmentYaml(spec: EnvironmentSpec, header: readonly string[] = []): string {
  const out: string[] = header.map((h) => (h ? `# ${h}` : '#'));
  if (spec.name !== undefined) out.push(`name: ${scalar(spec.name)}`);
  if (spec.channels.length > 0) {
    out.push('channels:');
    for (const c of spec.channels) out.push(`  - ${scalar(c)}`);
  }
  out.push(spec.dependencies.length + spec.pip.length > 0 ? 'dependencies:' : 'dependencies: []');
  for (const d of spec.dependencies) out.push(`  - ${scalar(d)}`);
  if (spec.pip.length > 0) {
    out.push('  - pip:');
    for (const p of spec.pip) out.push(`      - ${scalar(p)}`);
  }
  const vars = Object.entries(spec.variables);
  if (vars.length > 0) {
    out.push('variables:');
    for (const [k, v] of vars) out.push(`  ${scalar(k)}: ${scalar(v)}`);
  }
  return `${out.join('\n')}\n`;
}

/** Problems an environment has that would only show when a job runs. */
export function environmentWarnings(spec: EnvironmentSpec, file: string): string[] {
  const warnings: string[] = [];
  const names = spec.dependencies.map((d) => parseMatchSpec(d)?.name.toLowerCase());
  if (!names.includes('python')) {
    warnings.push(`${file}: no python among the dependencies: the image gets no python of its own, and the job \`sifpack sbatch\` writes runs \`apptainer exec IMAGE python SCRIPT\`, which will then fail (add python, e.g. python=3.11)`);
  }
  // git+ gets conda-forge's git during the build (buildRecipe); the others need the preset's OS packages.
  const tools = { hg: 'mercurial', svn: 'subversion', bzr: 'bzr' } as const;
  for (const scheme of vcsSchemes(spec.pip)) {
    if (scheme === 'git') continue;
    warnings.push(`${file}: a pip requirement installs from a ${scheme}+ URL, and pip then runs \`${scheme}\`, which the base images lack: add it to the preset's os-packages (e.g. ${tools[scheme]}) or install from a released version`);
  }
  return warnings;
}
