/**
 * A small reader of conda match specs, enough to know a spec's channel, name,
 * and whether it constrained version or build. Forms seen in histories and
 * exports: `numpy`, `numpy=1.26`, `numpy==1.26.4`, `numpy>=1.2,<2`,
 * `numpy 1.26.* py311_0`, `numpy=1.26.4=py311_0`, `conda-forge::numpy`,
 * `conda-forge/osx-64::numpy==1.26.4=h0[md5=...]`, `python_abi[build=*_cp313t]`.
 */
export interface MatchSpec {
  channel?: string;
  subdir?: string;
  name: string;
  version?: string;
  build?: string;
}

const SUBDIRS = new Set([
  'noarch', 'linux-32', 'linux-64', 'linux-aarch64', 'linux-armv6l', 'linux-armv7l', 'linux-ppc64', 'linux-ppc64le',
  'linux-riscv64', 'linux-s390x', 'osx-64', 'osx-arm64', 'win-32', 'win-64', 'win-arm64', 'zos-z',
  'emscripten-wasm32', 'wasi-wasm32', 'freebsd-64',
]);

/** True for a conda platform subdirectory name such as `linux-64`. */
export function isSubdir(s: string): boolean {
  return SUBDIRS.has(s);
}

function parseBrackets(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of body.matchAll(/([A-Za-z_]+)\s*=\s*("[^"]*"|'[^']*'|[^,]*)/g)) {
    out[m[1]!] = m[2]!.trim().replace(/^["']|["']$/g, '');
  }
  return out;
}

/** Parses one spec. Returns undefined for text that has no package name. */
export function parseMatchSpec(text: string): MatchSpec | undefined {
  let s = text.trim();
  let bracket: Record<string, string> = {};
  const open = s.indexOf('[');
  if (open > 0 && s.endsWith(']')) {
    bracket = parseBrackets(s.slice(open + 1, -1));
    s = s.slice(0, open).trim();
  }
  const spec: Partial<MatchSpec> = {};
  const sep = s.lastIndexOf('::');
  if (sep >= 0) {
    let chan = s.slice(0, sep);
    s = s.slice(sep + 2);
    const slash = chan.lastIndexOf('/');
    if (slash >= 0 && isSubdir(chan.slice(slash + 1))) {
      spec.subdir = chan.slice(slash + 1);
      chan = chan.slice(0, slash);
    }
    if (chan) spec.channel = chan;
  }
  let version: string | undefined;
  let build: string | undefined;
  const parts = s.split(/\s+/).filter(Boolean);
  if (parts.length > 1) {
    [, version, build] = parts;
    s = parts[0]!;
  }
  const m = /^([A-Za-z0-9_][A-Za-z0-9_.+-]*)(.*)$/.exec(s);
  if (!m) return undefined;
  spec.name = m[1]!;
  const rest = m[2]!;
  if (rest.startsWith('==')) {
    [version, build] = rest.slice(2).split('=');
  } else if (rest.startsWith('=')) {
    [version, build] = rest.slice(1).split('=');
  } else if (rest) {
    version = rest;
  }
  version = bracket.version ?? version;
  build = bracket.build ?? build;
  if (version) spec.version = version;
  if (build) spec.build = build;
  return spec as MatchSpec;
}

const VER = String.raw`[A-Za-z0-9_.*+!]+`;
const BUILD = String.raw`[A-Za-z0-9_.*+]+`;
const CONSTRAINT = String.raw`(?:==|>=|<=|!=|~=|>|<|=)?${VER}`;
/** What may follow the name: =V[=B], ==V[=B], or constraints joined by , and |. */
const REST = new RegExp(String.raw`^(?:={1,2}${VER}(?:=${BUILD})?|${CONSTRAINT}(?:[,|]${CONSTRAINT})*)?$`);
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
const CHANNEL = /^[A-Za-z0-9_.:/@${}~-]+$/;

/**
 * Why `text` is not a conda MatchSpec, or undefined when it is one. Catches a
 * mis-indented YAML list item that turned two specs into one string
 * ("python=3.11 - numpy"), stray words, and bad operators; accepts the forms
 * conda writes and takes (NAME, NAME=V, NAME=V=B, NAME==V, NAME>=A,<B,
 * NAME V B, CHANNEL::NAME..., NAME[version=..., build=...]).
 */
export function matchSpecProblem(text: string): string | undefined {
  let s = text.trim();
  if (!s) return 'an empty spec';
  const open = s.indexOf('[');
  if (open >= 0) {
    if (!s.endsWith(']') || open === 0) return 'a [...] part must close at the end, after the name';
    s = s.slice(0, open).trim();
  }
  const sep = s.lastIndexOf('::');
  if (sep >= 0) {
    const chan = s.slice(0, sep);
    if (!chan || !CHANNEL.test(chan)) return `channel ${JSON.stringify(chan)} before '::' is not a channel name or URL`;
    s = s.slice(sep + 2);
  }
  const parts = s.split(/\s+/).filter(Boolean);
  if (parts.length === 0) return 'no package name';
  const head = parts[0]!;
  const m = /^([A-Za-z0-9_][A-Za-z0-9_.+-]*?)((?:==|>=|<=|!=|~=|=|>|<).*)?$/.exec(head);
  if (!m || !NAME.test(m[1]!)) return `${JSON.stringify(head)} does not start with a package name`;
  if (parts.length > 3) return `${parts.length} words: a spec is NAME, NAME=VERSION[=BUILD] or NAME VERSION [BUILD] (a list item indented under another?)`;
  if (parts.length > 1) {
    if (m[2]) return `${JSON.stringify(parts.slice(1).join(' '))} after ${JSON.stringify(head)}: a version is given twice (a list item indented under another?)`;
    if (!new RegExp(`^${CONSTRAINT}(?:[,|]${CONSTRAINT})*$`).test(parts[1]!)) return `${JSON.stringify(parts[1])} is not a version`;
    if (parts[2] !== undefined && !new RegExp(`^${BUILD}$`).test(parts[2])) return `${JSON.stringify(parts[2])} is not a build string`;
    return undefined;
  }
  if (m[2] && !REST.test(m[2])) return `${JSON.stringify(m[2])} after ${JSON.stringify(m[1])} is not a version constraint`;
  return undefined;
}

/**
 * Why a pip requirement line is not one, or undefined. Options (-e, -r,
 * --index-url ...) and URLs/paths pass; a requirement is NAME[extras]
 * followed by specifiers or `@ URL`, then an optional `; marker`.
 */
export function pipLineProblem(text: string): string | undefined {
  const s = text.trim();
  if (!s) return 'an empty line';
  if (s.startsWith('-')) return undefined;
  if (/^(git\+|hg\+|svn\+|bzr\+|https?:|file:|\.{0,2}\/)/.test(s)) return undefined;
  const spec = String.raw`(?:===|==|>=|<=|!=|~=|>|<)\s*[A-Za-z0-9_.*+!-]+`;
  const re = new RegExp(String.raw`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[A-Za-z0-9_.,\s-]*\])?\s*(?:@\s*\S+|${spec}(?:\s*,\s*${spec})*)?\s*(?:;.*)?$`);
  return re.test(s) ? undefined : `${JSON.stringify(s)} is not a pip requirement (NAME, NAME==VERSION, NAME>=A,<B, NAME @ URL, or a pip option)`;
}
