/**
 * `-n NAME` to a prefix path, looking where conda, mamba and micromamba put
 * environments. The places looked at are returned too, so a miss can list them.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isCondaPrefix } from './prefix.js';

export interface LocateResult {
  prefix?: string;
  looked: string[];
}

/** Candidate prefixes for NAME, in the order they are tried. */
export async function candidatePrefixes(name: string, env: NodeJS.ProcessEnv, home = os.homedir()): Promise<string[]> {
  const out: string[] = [];
  const add = (p: string | undefined) => {
    if (p && !out.includes(path.resolve(p))) out.push(path.resolve(p));
  };
  const roots = [env.CONDA_ROOT, env.MAMBA_ROOT_PREFIX, env.CONDA_PREFIX_1].filter((r): r is string => !!r);
  const active = env.CONDA_PREFIX;
  if (name === 'base') {
    for (const r of roots) add(r);
    if (active && !active.includes(`${path.sep}envs${path.sep}`)) add(active);
  }
  if (active) {
    if (path.basename(active) === name) add(active);
    add(path.join(active, 'envs', name)); // the active env is a base with envs/ below it
    if (path.basename(path.dirname(active)) === 'envs') add(path.join(path.dirname(active), name));
  }
  for (const dir of [env.CONDA_ENVS_PATH, env.CONDA_ENVS_DIRS].flatMap((v) => (v ? v.split(path.delimiter) : []))) {
    if (dir) add(path.join(dir, name));
  }
  for (const r of roots) add(path.join(r, 'envs', name));
  const registry = await fs.readFile(path.join(home, '.conda', 'environments.txt'), 'utf8').catch(() => '');
  for (const line of registry.split(/\r?\n/)) {
    const p = line.trim();
    if (p && (path.basename(p) === name || (name === 'base' && !p.includes(`${path.sep}envs${path.sep}`)))) add(p);
  }
  for (const root of ['miniforge3', 'mambaforge', 'miniconda3', 'anaconda3', 'micromamba', '.local/share/mamba']) {
    add(path.join(home, root, 'envs', name));
    if (name === 'base') add(path.join(home, root));
  }
  add(path.join(home, '.conda', 'envs', name));
  return out;
}

/** The first candidate that is a conda prefix. */
export async function locateEnv(name: string, env: NodeJS.ProcessEnv, home?: string): Promise<LocateResult> {
  const looked = await candidatePrefixes(name, env, home);
  for (const p of looked) if (await isCondaPrefix(p)) return { prefix: p, looked };
  return { looked };
}
