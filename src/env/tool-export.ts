/**
 * Exporting through conda, mamba or micromamba, for environments whose prefix
 * we cannot read directly. Their output is normalised exactly like a prefix
 * read: same channel names, no prefix, no credentials, builds on request, and
 * --from-history pinned to installed versions (which conda's own does not do).
 */
import { InputError, RuntimeFailure } from '../errors.js';
import { channelName } from '../model/channel.js';
import { type EnvironmentSpec, parseEnvironmentYaml } from '../model/environment.js';
import { parseMatchSpec } from '../model/match-spec.js';
import { dominantPlatform } from '../model/platform.js';
import type { ProcessRunner } from '../runtime/process.js';
import { CredentialScrubber, type ExportOutcome, type NormalizeOptions, platformWarnings } from './normalize.js';

export type CondaTool = 'conda' | 'mamba' | 'micromamba';
export const CONDA_TOOLS: readonly CondaTool[] = ['conda', 'mamba', 'micromamba'];

export type EnvTarget = { name: string } | { prefix: string };

function targetArgs(t: EnvTarget): string[] {
  return 'name' in t ? ['-n', t.name] : ['-p', t.prefix];
}

/** The argv sifpack runs, one place so the tests' recorded argv match. */
export function toolArgv(tool: CondaTool, what: 'export' | 'history' | 'explicit', target: EnvTarget): string[] {
  if (what === 'explicit') {
    return tool === 'micromamba' ? ['env', 'export', '--explicit', '--md5', ...targetArgs(target)] : ['list', '--explicit', '--md5', ...targetArgs(target)];
  }
  return ['env', 'export', ...(what === 'history' ? ['--from-history'] : []), ...targetArgs(target)];
}

async function runTool(runner: ProcessRunner, tool: CondaTool, args: string[]): Promise<string> {
  const res = await runner.run(tool, args, { notFoundHint: `load it first (e.g. \`module load ${tool === 'micromamba' ? 'micromamba' : 'miniforge'}\`), or pass -p PREFIX to read the environment directly` });
  if (res.code !== 0) {
    const msg = res.stderr.trim().split('\n').filter(Boolean).slice(-5);
    const missing = /could not find|does not exist|not found|EnvironmentLocationNotFound/i.test(res.stderr);
    const err = `${tool} ${args.join(' ')} failed (exit ${res.code})`;
    if (missing) throw new InputError(err, { details: msg, hint: '`conda env list` shows the environments that exist' });
    throw new RuntimeFailure(err, { details: msg });
  }
  return res.stdout;
}

/** Reads `name==1.2=build`, `chan/subdir::name=1.2=b[md5=..]` and friends into name/version/build/channel. */
function readDependency(text: string): { channel?: string; name: string; version?: string; build?: string } {
  const s = parseMatchSpec(text);
  if (!s) throw new RuntimeFailure(`cannot read the dependency ${JSON.stringify(text)} in the tool's export`);
  return s;
}

/** URLs from an @EXPLICIT listing, and the `# platform:` it states. */
export function parseExplicit(text: string): { platform?: string; urls: string[] } {
  const urls: string[] = [];
  let platform: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const p = /^#\s*platform:\s*(\S+)/.exec(line);
    if (p) platform = p[1];
    if (/^[a-z]+:\/\//i.test(line.trim())) urls.push(line.trim());
  }
  platform ??= dominantPlatform(urls.map((u) => u.split('#')[0]!.split('/').at(-2)));
  return { ...(platform ? { platform } : {}), urls };
}

export interface ToolExport extends ExportOutcome {
  /** The explicit listing, credentials removed, for --lock. */
  explicitLock: string;
}

/** Runs the tool and normalises its output. */
export async function exportViaTool(runner: ProcessRunner, tool: CondaTool, target: EnvTarget, opts: NormalizeOptions): Promise<ToolExport> {
  const fullText = await runTool(runner, tool, toolArgv(tool, 'export', target));
  const full = parseEnvironmentYaml(fullText, `output of ${tool} env export`);
  const explicitText = await runTool(runner, tool, toolArgv(tool, 'explicit', target));
  const explicit = parseExplicit(explicitText);
  const scrub = new CredentialScrubber();

  const channels: string[] = [];
  for (const c of full.channels) {
    const name = c === 'nodefaults' ? c : channelName(scrub.clean(c));
    if (!channels.includes(name)) channels.push(name);
  }
  const installed = new Map(full.dependencies.map((d) => [readDependency(d).name, readDependency(d)]));
  // A channel the user typed (`labtools::labtools`) stays; one the tool adds
  // to every entry (micromamba 2) stays only when the channel list lacks it.
  const form = (d: { channel?: string; name: string; version?: string; build?: string }, build: string | undefined, keepChannel = false): string => {
    const chan = d.channel ? channelName(scrub.clean(d.channel)) : undefined;
    const prefix = chan && (keepChannel || !channels.includes(chan)) ? `${chan}::` : '';
    const v = d.version ? `=${d.version}${build ? `=${build}` : ''}` : '';
    return `${prefix}${d.name}${v}`;
  };

  let dependencies: string[];
  if (opts.fromHistory) {
    const hist = parseEnvironmentYaml(await runTool(runner, tool, toolArgv(tool, 'history', target)), `output of ${tool} env export --from-history`);
    dependencies = hist.dependencies.map((text) => {
      const asked = readDependency(text);
      const inst = installed.get(asked.name);
      const pinned = { ...asked, ...(inst?.version ? { version: inst.version } : {}) };
      return form(pinned, opts.noBuilds ? undefined : asked.build, true);
    });
    if (full.pip.length > 0 && !hist.dependencies.some((d) => readDependency(d).name === 'pip')) {
      const p = installed.get('pip');
      dependencies.push(p?.version ? `pip=${p.version}` : 'pip');
    }
  } else {
    dependencies = [...installed.values()].sort((a, b) => a.name.localeCompare(b.name)).map((d) => form(d, opts.noBuilds ? undefined : d.build));
  }

  const lockUrls = explicit.urls.map((u) => scrub.clean(u));
  const explicitLock = [
    '# This file may be used to create an environment using:',
    '# $ conda create --name <env> --file <this file>',
    `# platform: ${explicit.platform ?? 'unknown'}`,
    `# created by sifpack from ${tool} ${toolArgv(tool, 'explicit', target).join(' ')}`,
    '@EXPLICIT',
    ...lockUrls,
    '',
  ].join('\n');

  const defaultName = full.name ?? ('name' in target ? target.name : target.prefix.split('/').filter(Boolean).at(-1) ?? 'env');
  const spec: EnvironmentSpec = { name: opts.name ?? defaultName, channels, dependencies, pip: [...full.pip].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase())), variables: full.variables };
  return {
    spec,
    header: [`exported by sifpack through ${tool}: ${installed.size} conda package(s), ${full.pip.length} pip package(s)${opts.fromHistory ? ', requested specs only' : ''}`],
    warnings: [...scrub.warnings, ...platformWarnings(explicit.platform, [...installed.keys()], opts.fromHistory)],
    ...(explicit.platform ? { platform: explicit.platform } : {}),
    skippedLocal: [],
    explicitLock,
  };
}
