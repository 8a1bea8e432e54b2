/**
 * What must be known about a prefix before it is copied into an image, found
 * in one pass and before any byte is copied (never a failed build twenty
 * minutes in):
 * - which files conda's records say carry the prefix, and as text or binary
 *   (`paths_data.paths[].prefix_placeholder` / `file_mode` in conda-meta/*.json);
 * - what cannot work in the image: packages built for another platform
 *   (an osx-arm64 env), editable pip installs and `.pth` entries that point
 *   outside the prefix (the host's source tree is not in the image), files the
 *   user does not own (another user's files, often unreadable), dangling
 *   symlinks.
 * The platform problem has no way round; the others can be left out with
 * --allow-local, and are then listed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { FileMode } from '../model/relocation.js';
import type { PrefixData } from './prefix.js';
import { findSitePackages } from './site-packages.js';

export interface PrefixProblem {
  /** The file or directory, as a host path. */
  path: string;
  what: string;
  /** False when --allow-local cannot help (another platform). */
  skippable: boolean;
  /** Paths relative to the prefix left out when --allow-local skips it. */
  skip: string[];
}

export interface PrefixCheck {
  /** conda's file_mode for files recorded with a prefix placeholder, relative to the prefix. */
  fileModes: Map<string, FileMode>;
  problems: PrefixProblem[];
}

/** The conda subdir this machine's images run: what a prefix's records must say (or noarch). */
export function hostSubdir(arch: string = process.arch): string {
  return { x64: 'linux-64', arm64: 'linux-aarch64', ppc64: 'linux-ppc64le', s390x: 'linux-s390x' }[arch] ?? `linux-${arch}`;
}

const inside = (p: string, prefix: string) => p === prefix || p.startsWith(`${prefix}/`);

/** Reads the records' prefix files and finds what cannot go into an image. */
export async function checkPrefix(data: PrefixData, opts: { uid: number; subdir?: string }): Promise<PrefixCheck> {
  const prefix = data.prefix;
  const subdir = opts.subdir ?? hostSubdir();
  const fileModes = new Map<string, FileMode>();
  const problems: PrefixProblem[] = [];

  // Platform, and which files carry the prefix: from the records.
  for (const r of data.records) {
    if (r.subdir && r.subdir !== 'noarch' && r.subdir !== subdir) {
      problems.push({ path: r.file, what: `${r.name} ${r.version} is built for ${r.subdir}; the image runs ${subdir}`, skippable: false, skip: [] });
    }
    const raw = JSON.parse(await fs.readFile(r.file, 'utf8')) as { paths_data?: { paths?: { _path?: unknown; prefix_placeholder?: unknown; file_mode?: unknown }[] } };
    for (const p of raw.paths_data?.paths ?? []) {
      if (typeof p._path === 'string' && typeof p.prefix_placeholder === 'string' && p.prefix_placeholder) {
        fileModes.set(p._path, p.file_mode === 'binary' ? 'binary' : 'text');
      }
    }
  }

  // Editable installs: the code lives in the user's checkout, outside the prefix.
  for (const p of data.pip) {
    if (p.source !== 'editable') continue;
    const sp = path.dirname(p.metadataDir);
    const relSp = path.relative(prefix, sp);
    const norm = p.name.toLowerCase().replace(/[-_.]+/g, '_');
    const extra = (await fs.readdir(sp).catch(() => [] as string[])).filter((e) => e.startsWith('__editable__') && e.toLowerCase().replace(/[-_.]+/g, '_').includes(norm));
    problems.push({
      path: p.metadataDir,
      what: `pip package ${p.name} ${p.version} is an editable install of ${p.location ?? 'a directory outside the prefix'}, which the image will not have`,
      skippable: true,
      skip: [path.relative(prefix, p.metadataDir), ...extra.map((e) => path.posix.join(relSp, e))],
    });
  }

  // .pth lines naming directories outside the prefix (legacy editable installs, hand-made ones).
  for (const sp of await findSitePackages(prefix)) {
    for (const e of (await fs.readdir(sp)).filter((n) => n.endsWith('.pth')).sort()) {
      const file = path.join(sp, e);
      const lines = (await fs.readFile(file, 'utf8').catch(() => '')).split(/\r?\n/);
      lines.forEach((line, i) => {
        const l = line.trim();
        if (!l || l.startsWith('#') || /^import[\s\t]/.test(l)) return;
        const target = path.resolve(sp, l);
        if (!inside(target, prefix) && !problems.some((p) => p.path === file)) {
          problems.push({ path: file, what: `line ${i + 1} adds ${target} to sys.path, outside the prefix`, skippable: true, skip: [path.relative(prefix, file)] });
        }
      });
    }
  }

  // Ownership and dangling symlinks: one lstat per entry.
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir)) {
      const host = path.join(dir, e);
      const st = await fs.lstat(host);
      if (opts.uid !== 0 && st.uid !== opts.uid) {
        problems.push({ path: host, what: `owned by uid ${st.uid}, not you (uid ${opts.uid})`, skippable: true, skip: [path.relative(prefix, host)] });
        continue;
      }
      if (st.isSymbolicLink()) {
        if (!(await fs.stat(host).then(() => true, () => false))) {
          problems.push({ path: host, what: `dangling symlink to ${await fs.readlink(host)}`, skippable: true, skip: [path.relative(prefix, host)] });
        }
      } else if (st.isDirectory()) await walk(host);
    }
  };
  await walk(prefix);
  return { fileModes, problems };
}

/** Throws the exit-2 error naming each problem, unless all are skippable and allowLocal is set. Returns what to leave out. */
export function resolveProblems(check: PrefixCheck, prefixArg: string, allowLocal: boolean): { skip: Set<string>; skipped: PrefixProblem[] } {
  const fatal = check.problems.filter((p) => !p.skippable || !allowLocal);
  if (fatal.length > 0) {
    const shown = fatal.slice(0, 20).map((p) => `  ${p.path}: ${p.what}`);
    if (fatal.length > 20) shown.push(`  … and ${fatal.length - 20} more`);
    const onlyPlatform = fatal.every((p) => !p.skippable);
    throw new InputError(`--from-prefix ${prefixArg}: ${fatal.length} thing(s) would not work in the image:\n${shown.join('\n')}`, {
      hint: onlyPlatform
        ? 'an image runs Linux packages: recreate the env for this platform (e.g. from its environment.yml with `sifpack build`)'
        : 'fix them, or pass --allow-local to leave these out of the image (they are listed)' +
          (fatal.some((p) => !p.skippable) ? '; packages built for another platform cannot be left out: recreate the env for Linux' : ''),
    });
  }
  const skipped = check.problems.filter((p) => p.skippable);
  return { skip: new Set(skipped.flatMap((p) => p.skip)), skipped };
}

/** Where apptainer mounts over the image at run time by default (besides $HOME and the working directory). */
const MOUNTED = ['/home', '/tmp', '/var/tmp'];

/**
 * --keep-prefix-path puts the env at its host path; refused where apptainer's
 * default mounts ($HOME, /tmp, /var/tmp, the working directory; /home for
 * other users' homes) would hide it at run time.
 */
export function checkKeepPrefixPath(prefix: string, env: { home?: string; cwd: string }): void {
  const hits: string[] = [];
  for (const m of MOUNTED) if (inside(prefix, m)) hits.push(m);
  if (env.home && inside(prefix, env.home)) hits.push(`$HOME (${env.home})`);
  if (inside(prefix, env.cwd)) hits.push(`the current directory (${env.cwd})`);
  if (hits.length === 0) return;
  throw new InputError(`--keep-prefix-path: ${prefix} is under ${hits.join(', ')}, which apptainer mounts over the image by default at run time`, {
    hint: "the image's copy of the env would be hidden (or the host's used instead); leave out --keep-prefix-path so the env goes to /opt/env, or move the env under another path such as /opt or /sw",
  });
}
