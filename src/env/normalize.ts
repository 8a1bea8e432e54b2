/**
 * From what a prefix (or a conda tool) says to a portable EnvironmentSpec:
 * no prefix, credentials out of channels, pip packages in a nested list,
 * history specs pinned to installed versions, and warnings for anything that
 * will not rebuild on a Linux cluster. Pure functions: no I/O here.
 */
import { InputError } from '../errors.js';
import { channelName, stripCredentials } from '../model/channel.js';
import type { EnvironmentSpec } from '../model/environment.js';
import { parseMatchSpec } from '../model/match-spec.js';
import { TARGET_PLATFORM, dominantPlatform, isPlatformOnly } from '../model/platform.js';
import type { CondaRecord, PrefixData } from './prefix.js';
import type { PipPackage } from './site-packages.js';

export interface NormalizeOptions {
  /** The `name:` written; defaults to the env's own name. */
  name?: string;
  fromHistory: boolean;
  noBuilds: boolean;
  allowLocal: boolean;
}

export interface ExportOutcome {
  spec: EnvironmentSpec;
  /** Comment lines for the top of environment.yml. */
  header: string[];
  warnings: string[];
  /** The records' platform (e.g. osx-arm64), when known. */
  platform?: string;
  /** Editable / local-path pip installs left out (only with allowLocal). */
  skippedLocal: PipPackage[];
}

/** Collects "carried credentials" warnings once per channel. */
export class CredentialScrubber {
  private readonly warned = new Set<string>();
  readonly warnings: string[] = [];

  clean(url: string): string {
    const { url: out, hadCredentials } = stripCredentials(url);
    if (hadCredentials) {
      const name = channelName(out);
      if (!this.warned.has(name)) {
        this.warned.add(name);
        this.warnings.push(
          `channel ${name} carried credentials (a /t/TOKEN/ segment or user:password); they were removed from the export. ` +
            'Give the build host access through its own ~/.condarc or a token variable (/t/${CONDA_TOKEN}/) instead.',
        );
      }
    }
    return out;
  }
}

/** `name=version[=build]`, the form conda env export writes. */
function pin(name: string, version: string, build: string | undefined): string {
  return build ? `${name}=${version}=${build}` : `${name}=${version}`;
}

/** A pip requirement line that can be installed anywhere, or undefined for local ones. */
export function pipRequirement(p: PipPackage): string | undefined {
  switch (p.source) {
    case 'index':
      return p.version ? `${p.name}==${p.version}` : p.name;
    case 'vcs':
    case 'url':
      return `${p.name} @ ${p.location}`;
    default:
      return undefined;
  }
}

/** Splits pip packages into rebuildable requirement lines and local installs, failing on the latter unless allowed. */
export function pipSection(pip: readonly PipPackage[], allowLocal: boolean): { lines: string[]; local: PipPackage[] } {
  const sorted = [...pip].sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  const lines: string[] = [];
  const local: PipPackage[] = [];
  for (const p of sorted) {
    const req = pipRequirement(p);
    if (req) lines.push(req);
    else local.push(p);
  }
  if (local.length > 0 && !allowLocal) {
    throw new InputError(`${local.length} pip package(s) were installed from a local path and cannot be rebuilt on another machine:`, {
      details: local.map((p) => `${p.name}${p.version ? ` ${p.version}` : ''} (${p.source === 'editable' ? 'editable, pip install -e' : 'local path'}) from ${p.location ?? p.metadataDir}`),
      hint: 'install them from a git URL or a package index, or pass --allow-local to leave them out of the export',
    });
  }
  return { lines, local };
}

/** conda's marker for a package installed from a file, or a file:// channel. */
function isLocalChannel(channel: string): boolean {
  return channel === '<unknown>' || channel.startsWith('file:');
}

/** Channels in priority order: the prefix's .condarc, then -c flags from the history, then the records' own. */
function orderChannels(data: PrefixData, scrub: CredentialScrubber): string[] {
  const out: string[] = [];
  const add = (c: string) => {
    const name = c === 'nodefaults' ? c : channelName(scrub.clean(c));
    if (!out.includes(name)) out.push(name);
  };
  for (const c of data.condarcChannels ?? []) add(c);
  for (const c of data.history?.channels ?? []) add(c);
  const counts = new Map<string, number>();
  for (const r of data.records) {
    if (r.url) scrub.clean(r.url);
    if (!r.channel || isLocalChannel(r.channel)) continue;
    const name = channelName(scrub.clean(r.channel));
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const byUse = [...counts].sort(([a, na], [b, nb]) => nb - na || a.localeCompare(b)).map(([c]) => c);
  for (const c of byUse) if (c !== 'defaults') add(c);
  if (counts.has('defaults')) add('defaults');
  // A user who created the env with --override-channels and no anaconda.com
  // package meant it: keep defaults out on the cluster too.
  if (data.history?.overrideChannels && !out.includes('defaults')) add('nodefaults');
  const nd = out.indexOf('nodefaults');
  if (nd >= 0 && nd !== out.length - 1) out.push(...out.splice(nd, 1));
  return out;
}

/** The specs the user asked for, from the history or, lacking one, the records' requested_spec. */
function requestedSpecs(data: PrefixData): { specs: string[]; from: string } {
  if (data.history && data.history.requested.size > 0) return { specs: [...data.history.requested.values()], from: 'history' };
  const fromRecords = data.records.map((r) => r.requestedSpec).filter((s): s is string => !!s && s !== 'None');
  if (fromRecords.length > 0) return { specs: fromRecords, from: 'records' };
  throw new InputError(`--from-history: ${data.prefix}/conda-meta/history says nothing about what was requested`, {
    hint: 'export without --from-history to get every installed package with its exact version',
  });
}

/** Warnings about a non-Linux environment, naming the packages that will not exist on linux-64. */
export function platformWarnings(platform: string | undefined, names: string[], fromHistory: boolean): string[] {
  if (!platform || platform === TARGET_PLATFORM || platform.startsWith('linux-')) return [];
  const only = names.filter(isPlatformOnly).sort();
  const out = [
    `this environment was made for ${platform}, but cluster images are ${TARGET_PLATFORM}: build strings and some packages will not exist there.` +
      (fromHistory ? '' : ' Export with --from-history for a file that solves on Linux.'),
  ];
  if (only.length > 0) out.push(`packages that exist only on ${platform.startsWith('win') ? 'Windows' : 'macOS'}${fromHistory ? ' (remove them from the file)' : ''}: ${only.join(', ')}`);
  return out;
}

/** Builds the portable spec from a prefix read by readPrefix(). */
export function specFromPrefix(data: PrefixData, opts: NormalizeOptions, defaultName: string): ExportOutcome {
  const scrub = new CredentialScrubber();
  const channels = orderChannels(data, scrub);
  const platform = dominantPlatform(data.records.map((r) => r.subdir));
  const byName = new Map(data.records.map((r) => [r.name, r]));
  const warnings: string[] = [];
  const { lines: pipLines, local } = pipSection(data.pip, opts.allowLocal);

  let dependencies: string[];
  let listed: string[];
  if (opts.fromHistory) {
    const { specs } = requestedSpecs(data);
    dependencies = [];
    listed = [];
    for (const text of specs) {
      const spec = parseMatchSpec(text);
      if (!spec) continue;
      const rec = byName.get(spec.name);
      if (!rec) {
        warnings.push(`the history asks for ${text}, but ${spec.name} is not installed; left out`);
        continue;
      }
      const chan = spec.channel ? `${channelName(scrub.clean(spec.channel))}::` : '';
      dependencies.push(chan + pin(rec.name, rec.version, opts.noBuilds ? undefined : spec.build));
      listed.push(rec.name);
    }
    // conda installs a pip: section only when pip itself is in the env.
    if (pipLines.length > 0 && !listed.includes('pip')) {
      const rec = byName.get('pip');
      dependencies.push(rec ? pin('pip', rec.version, undefined) : 'pip');
      listed.push('pip');
    }
  } else {
    const sorted = [...data.records].sort((a, b) => a.name.localeCompare(b.name));
    dependencies = sorted.map((r) => pin(r.name, r.version, opts.noBuilds ? undefined : r.build));
    listed = sorted.map((r) => r.name);
  }

  warnings.push(...scrub.warnings, ...platformWarnings(platform, listed, opts.fromHistory));
  if (local.length > 0) {
    warnings.push(`left out ${local.length} local pip install(s): ${local.map((p) => p.name).join(', ')} (--allow-local)`);
  }
  const header = [
    `exported by sifpack from an environment for ${platform ?? "an unknown platform"}: ${data.records.length} conda package(s), ${data.pip.length} pip package(s)${opts.fromHistory ? ', requested specs only' : ''}`,
    ...local.map((p) => `skipped local pip install: ${p.name}${p.version ? `==${p.version}` : ''} from ${p.location ?? p.metadataDir}`),
  ];
  const spec: EnvironmentSpec = {
    name: opts.name ?? defaultName,
    channels,
    dependencies,
    pip: pipLines,
    variables: {},
  };
  return { spec, header, warnings, ...(platform ? { platform } : {}), skippedLocal: local };
}

/** Records in dependency order (dependencies first), ties by name: CEP 23 asks explicit files to be topological. */
export function topologicalRecords(records: readonly CondaRecord[]): CondaRecord[] {
  const byName = new Map(records.map((r) => [r.name, r]));
  const done = new Set<string>();
  const visiting = new Set<string>();
  const out: CondaRecord[] = [];
  const visit = (r: CondaRecord) => {
    if (done.has(r.name) || visiting.has(r.name)) return; // a cycle is broken where it is found
    visiting.add(r.name);
    for (const d of [...r.depends].sort()) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    visiting.delete(r.name);
    done.add(r.name);
    out.push(r);
  };
  for (const r of [...records].sort((a, b) => a.name.localeCompare(b.name))) visit(r);
  return out;
}

/** The URL a record was downloaded from, rebuilt from channel/subdir/fn for records that lack `url`. */
function recordUrl(r: CondaRecord): string | undefined {
  // A file:// URL is a tarball on the user's disk: no other machine has it.
  if (r.url) return r.url.startsWith('file:') ? undefined : r.url;
  if (r.channel && /^[a-z]+:\/\//.test(r.channel) && r.fn) {
    const base = r.channel.replace(/\/+$/, '');
    return base.endsWith(`/${r.subdir}`) ? `${base}/${r.fn}` : `${base}/${r.subdir ?? 'noarch'}/${r.fn}`;
  }
  return undefined;
}

/**
 * conda's explicit format: `@EXPLICIT` then one URL per line with `#md5`
 * (or `#sha256:` when a record has no md5), for a byte-exact rebuild without
 * a solver: `conda create -n NAME --file FILE` or `micromamba create -f FILE`.
 */
export function renderExplicitLock(data: PrefixData, platform: string | undefined, scrub = new CredentialScrubber()): { text: string; warnings: string[] } {
  const lines = [
    '# This file may be used to create an environment using:',
    '# $ conda create --name <env> --file <this file>',
    `# platform: ${platform ?? 'unknown'}`,
    '# created by sifpack from the conda-meta records',
    '@EXPLICIT',
  ];
  const missing: string[] = [];
  for (const r of topologicalRecords(data.records)) {
    const url = recordUrl(r);
    if (!url) {
      missing.push(`${r.name}-${r.version}-${r.build} (${r.file})`);
      continue;
    }
    const hash = r.md5 ? `#${r.md5}` : r.sha256 ? `#sha256:${r.sha256}` : '';
    lines.push(scrub.clean(url) + hash);
  }
  if (missing.length > 0) {
    throw new InputError(`--lock: ${missing.length} record(s) have no download URL, so no exact lock can be written:`, {
      details: missing,
      hint: 'these packages were installed from a local file; export without --lock, or reinstall them from a channel',
    });
  }
  return { text: `${lines.join('\n')}\n`, warnings: scrub.warnings };
}

/** Where the pip part of a lock goes: beside it, `<lock>.pip.txt`. */
export function pipLockPath(lockPath: string): string {
  return `${lockPath}.pip.txt`;
}

/** Pinned pip requirements for the lock's pip part. */
export function renderPipLock(lines: readonly string[]): string {
  return [
    '# pip packages of the environment, pinned; install after the conda lock with:',
    '# $ pip install --no-deps -r <this file>',
    ...lines,
    '',
  ].join('\n');
}
