/**
 * The export workflow: pick how to read the environment (its prefix, or a
 * conda tool), normalise, and render environment.yml and the lock. Returns
 * texts; writing them is the command's job, so a failure writes nothing.
 */
import path from 'node:path';
import { InputError } from '../errors.js';
import { renderEnvironmentYaml } from '../model/environment.js';
import type { ProcessRunner } from '../runtime/process.js';
import { locateEnv } from './locate.js';
import { type ExportOutcome, type NormalizeOptions, pipSection, renderExplicitLock, renderPipLock, specFromPrefix } from './normalize.js';
import { isCondaPrefix, readPrefix } from './prefix.js';
import { CONDA_TOOLS, type CondaTool, type EnvTarget, exportViaTool } from './tool-export.js';

export type Via = 'auto' | 'prefix' | CondaTool;

export interface ExportRequest {
  prefix?: string;
  name?: string;
  via: Via;
  options: NormalizeOptions;
  /** Render the @EXPLICIT lock (and its pip part) too. */
  lock: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  home?: string;
}

export interface ExportResult {
  environmentYaml: string;
  explicitLock?: string;
  /** The lock's pip part, when the env has pip packages. */
  pipLock?: string;
  warnings: string[];
  /** How it was read. */
  via: 'prefix' | CondaTool;
  prefix?: string;
  platform?: string;
  outcome: ExportOutcome;
}

/** Which conda tool to use: the one that activated the shell, else the first on PATH. */
async function pickTool(runner: ProcessRunner, env: NodeJS.ProcessEnv): Promise<CondaTool | undefined> {
  const preferred: CondaTool[] = [];
  if (env.CONDA_EXE) preferred.push('conda');
  if (env.MAMBA_EXE) preferred.push('micromamba');
  for (const t of [...preferred, ...CONDA_TOOLS]) if (await runner.which(t, env)) return t;
  return undefined;
}

export async function exportEnvironment(req: ExportRequest, runner: ProcessRunner): Promise<ExportResult> {
  if (req.prefix && req.name) throw new InputError('-n NAME and -p PREFIX are mutually exclusive', { hint: 'give one of them' });
  let prefix = req.prefix ? path.resolve(req.cwd, req.prefix) : undefined;
  let looked: string[] = [];
  if (!prefix && req.name && (req.via === 'auto' || req.via === 'prefix')) {
    const found = await locateEnv(req.name, req.env, req.home);
    looked = found.looked;
    prefix = found.prefix;
  }
  if (!prefix && !req.name) {
    if (!req.env.CONDA_PREFIX) {
      throw new InputError('no environment given, and none is active', { hint: 'pass -n NAME or -p PREFIX (or activate the environment first)' });
    }
    prefix = req.env.CONDA_PREFIX;
  }

  let useTool: CondaTool | undefined;
  if (req.via === 'conda' || req.via === 'mamba' || req.via === 'micromamba') useTool = req.via;
  else if (req.via === 'auto' && !(prefix && (await isCondaPrefix(prefix)))) {
    // The prefix can't be read (or the name resolved nowhere): ask a tool.
    useTool = await pickTool(runner, req.env);
    if (!useTool && req.name && !prefix) {
      throw new InputError(`environment '${req.name}' was not found`, {
        details: ['looked in:', ...looked.map((l) => `  ${l}`)],
        hint: 'pass -p PREFIX with its path (`conda env list` shows it), or load conda so sifpack can ask it',
      });
    }
  } else if (req.via === 'prefix' && req.name && !prefix) {
    throw new InputError(`environment '${req.name}' was not found`, {
      details: ['looked in:', ...looked.map((l) => `  ${l}`)],
      hint: 'pass -p PREFIX with its path (`conda env list` shows it)',
    });
  }

  if (useTool) {
    const target: EnvTarget = req.name && !req.prefix ? { name: req.name } : { prefix: prefix! };
    const out = await exportViaTool(runner, useTool, target, req.options);
    return {
      environmentYaml: renderEnvironmentYaml(out.spec, out.header),
      ...(req.lock ? { explicitLock: out.explicitLock } : {}),
      ...(req.lock && out.spec.pip.length > 0 ? { pipLock: renderPipLock(out.spec.pip) } : {}),
      warnings: out.warnings,
      via: useTool,
      ...(out.platform ? { platform: out.platform } : {}),
      outcome: out,
    };
  }

  const data = await readPrefix(prefix!);
  const defaultName = req.name ?? path.basename(data.prefix);
  const outcome = specFromPrefix(data, req.options, defaultName);
  const warnings = [...outcome.warnings];
  let explicitLock: string | undefined;
  let pipLock: string | undefined;
  if (req.lock) {
    const lock = renderExplicitLock(data, outcome.platform);
    explicitLock = lock.text;
    for (const w of lock.warnings) if (!warnings.includes(w)) warnings.push(w);
    const { lines } = pipSection(data.pip, true);
    if (lines.length > 0) pipLock = renderPipLock(lines);
  }
  return {
    environmentYaml: renderEnvironmentYaml(outcome.spec, outcome.header),
    ...(explicitLock ? { explicitLock } : {}),
    ...(pipLock ? { pipLock } : {}),
    warnings,
    via: 'prefix',
    prefix: data.prefix,
    ...(outcome.platform ? { platform: outcome.platform } : {}),
    outcome,
  };
}
