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
