/**
 * What apptainer expects in a root filesystem besides the image's own files:
 * /.singularity.d/ (environment scripts sourced in order, the actions that
 * exec/run/shell/start/test go through, the runscript, labels, the def file),
 * the compatibility symlinks, and a few files and mount points the runtime
 * binds over. Pure: from the image's config to a list of entries.
 */
import { envScriptQuote, shellJoin } from '../render/shell-quote.js';

/** The parts of a Docker image config that matter here (docker inspect's Config). */
export interface ImageConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  User?: string;
}

export type MetaEntry =
  | { type: 'file'; path: string; mode: number; content: string }
  | { type: 'directory'; path: string; mode: number }
  | { type: 'symlink'; path: string; target: string };

const sh = (body: string) => `#!/bin/sh\n${body}`;

const SOURCE_ENV = `for script in /.singularity.d/env/*.sh; do
    if [ -f "$script" ]; then
        . "$script"
    fi
done
`;

/**
 * 10-docker2singularity.sh, with apptainer's semantics: PATH is set, every
 * other variable is a default a value already in the container's environment
 * keeps (`${LANG:-C.UTF-8}`). Values are literal (Docker already expanded
 * them) and double-quoted, which apptainer's env interpreter reads exactly.
 */
export function dockerEnvScript(env: readonly string[]): string {
  const lines = env
    .map((kv) => {
      const eq = kv.indexOf('=');
      if (eq <= 0) return undefined;
      const name = kv.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return undefined;
      const value = envScriptQuote(kv.slice(eq + 1));
      return name === 'PATH' ? `export PATH=${value}` : `export ${name}="\${${name}:-${value}}"`;
    })
    .filter((l): l is string => l !== undefined);
  return sh(`# The Docker image's ENV.\n${lines.join('\n')}${lines.length ? '\n' : ''}`);
}

/**
 * The runscript: ENTRYPOINT then CMD, with arguments replacing CMD, as
 * `docker run` does. It never changes directory (apptainer keeps the
 * caller's, so `run IMAGE rel/script.py` works), and arguments are passed as
 * they are, not re-evaluated by a shell the way apptainer's own runscript
 * does (docs/COMPATIBILITY.md).
 */
export function runscript(cfg: ImageConfig): string {
  const ep = cfg.Entrypoint ?? [];
  const cmd = cfg.Cmd ?? [];
  if (ep.length === 0 && cmd.length === 0) return sh('exec /bin/sh "$@"\n');
  if (ep.length === 0) return sh(`# CMD, replaced by any arguments given.\nif [ $# -gt 0 ]; then\n    exec "$@"\nfi\nexec ${shellJoin(cmd)}\n`);
  return sh(`# ENTRYPOINT, with CMD as default arguments that given arguments replace.\nif [ $# -gt 0 ]; then\n    exec ${shellJoin(ep)} "$@"\nfi\nexec ${shellJoin([...ep, ...cmd])}\n`);
}

/** The def file's %environment goes here; a converted Docker image has none. */
export const ENVIRONMENT_SH = sh('# Custom environment shell code should follow\n');

/** What `instance start` runs: nothing of the image's, as apptainer's conversion does. */
export const STARTSCRIPT = sh('# No startscript: a Docker image has none to convert.\n');

/** labels.json: string values, as apptainer writes them. */
export function labelsJson(labels: Record<string, string>): string {
  return `${JSON.stringify(labels, null, '\t')}\n`;
}

/** Every entry the converter adds, in the order it adds them (parents first). */
export function rootfsMetadata(cfg: ImageConfig, deffile: string, labels: Record<string, string>): MetaEntry[] {
  const file = (path: string, content: string, mode = 0o755): MetaEntry => ({ type: 'file', path, mode, content });
  const dir = (path: string, mode = 0o755): MetaEntry => ({ type: 'directory', path, mode });
  return [
    dir('.singularity.d'),
    dir('.singularity.d/env'),
    dir('.singularity.d/actions'),
    // --nv / --rocm bind the host's GPU libraries here; 99-base.sh puts it on LD_LIBRARY_PATH.
    dir('.singularity.d/libs'),
    file('.singularity.d/env/01-base.sh', sh('# Base environment: nothing to set for a converted Docker image.\n')),
    file('.singularity.d/env/10-docker2singularity.sh', dockerEnvScript(cfg.Env ?? [])),
    file('.singularity.d/env/90-environment.sh', ENVIRONMENT_SH),
    // Apptainer writes it for every image it builds (SCIF apps' exports; empty without apps).
    file('.singularity.d/env/94-appsbase.sh', ''),
    file('.singularity.d/env/95-apps.sh', sh('# SCIF apps: images converted by sifpack have none.\n')),
    file(
      '.singularity.d/env/99-base.sh',
      sh(`if [ -z "\${LD_LIBRARY_PATH:-}" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi
if [ -z "\${PS1:-}" ]; then
    PS1="Apptainer> "
fi
export LD_LIBRARY_PATH PS1
`),
    ),
    file(
      '.singularity.d/env/99-runtimevars.sh',
      sh(`# PATH changes asked for at run time (--env PREPEND_PATH=..., APPEND_PATH=..., PATH=...).
if [ -n "\${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then
    PATH="\${SING_USER_DEFINED_PREPEND_PATH}:\${PATH}"
fi
if [ -n "\${SING_USER_DEFINED_APPEND_PATH:-}" ]; then
    PATH="\${PATH}:\${SING_USER_DEFINED_APPEND_PATH}"
fi
if [ -n "\${SING_USER_DEFINED_PATH:-}" ]; then
    PATH="\${SING_USER_DEFINED_PATH}"
fi
unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH
export PATH
`),
    ),
    file('.singularity.d/actions/exec', sh(`${SOURCE_ENV}\nexec "$@"\n`)),
    file('.singularity.d/actions/run', sh(`${SOURCE_ENV}\nif [ -x /.singularity.d/runscript ]; then\n    exec /.singularity.d/runscript "$@"\nfi\necho "No runscript found, running /bin/sh"\nexec /bin/sh "$@"\n`)),
    file('.singularity.d/actions/shell', sh(`${SOURCE_ENV}\nif [ -x /bin/bash ]; then\n    exec /bin/bash --norc "$@"\nfi\nexec /bin/sh "$@"\n`)),
    file('.singularity.d/actions/start', sh(`${SOURCE_ENV}\nexec /.singularity.d/startscript "$@"\n`)),
    file('.singularity.d/actions/test', sh(`${SOURCE_ENV}\nif [ -x /.singularity.d/test ]; then\n    exec /.singularity.d/test "$@"\nfi\necho "No test found in container, executing /bin/sh -c true"\nexec /bin/sh -c true\n`)),
    file('.singularity.d/runscript', runscript(cfg)),
    file('.singularity.d/startscript', STARTSCRIPT),
    file('.singularity.d/labels.json', labelsJson(labels), 0o644),
    file('.singularity.d/Singularity', deffile, 0o644),
    { type: 'symlink', path: 'singularity', target: '.singularity.d/runscript' },
    { type: 'symlink', path: 'environment', target: '.singularity.d/env/90-environment.sh' },
    { type: 'symlink', path: '.exec', target: '.singularity.d/actions/exec' },
    { type: 'symlink', path: '.run', target: '.singularity.d/actions/run' },
    { type: 'symlink', path: '.shell', target: '.singularity.d/actions/shell' },
    { type: 'symlink', path: '.test', target: '.singularity.d/actions/test' },
  ];
}

/** Mount points and files the runtime binds over; added when the image lacks them. */
export const REQUIRED_PATHS: MetaEntry[] = [
  { type: 'directory', path: 'dev', mode: 0o755 },
  { type: 'directory', path: 'proc', mode: 0o555 },
  { type: 'directory', path: 'sys', mode: 0o555 },
  { type: 'directory', path: 'tmp', mode: 0o1777 },
  { type: 'directory', path: 'var', mode: 0o755 },
  { type: 'directory', path: 'var/tmp', mode: 0o1777 },
  { type: 'directory', path: 'home', mode: 0o755 },
  { type: 'directory', path: 'root', mode: 0o700 },
  { type: 'directory', path: 'etc', mode: 0o755 },
  { type: 'file', path: 'etc/hosts', mode: 0o644, content: '' },
  { type: 'file', path: 'etc/resolv.conf', mode: 0o644, content: '' },
  // apptainer adds the calling user to the image's passwd/group at run time and
  // only warns ("passwd file doesn't exist in container, not updating") when
  // there is none: then `id -un` and Python's getpass.getuser() fail. The root
  // entries are those apptainer's own busybox bootstrap writes
  // (internal/pkg/build/sources/conveyorPacker_busybox.go).
  { type: 'file', path: 'etc/passwd', mode: 0o644, content: 'root:x:0:0:root:/root:/bin/sh\n' },
  { type: 'file', path: 'etc/group', mode: 0o644, content: 'root:x:0:\n' },
];

/**
 * Paths of the image the converter replaces: its own files and symlinks (a
 * Docker image's /.dockerenv too). Other files under /.singularity.d stay, as
 * apptainer keeps them (sifpack's Dockerfile puts env/91-sifpack-environment.sh
 * there); directories the image already has are kept, not added twice.
 */
export function replacedPaths(metadata: readonly MetaEntry[]): Set<string> {
  return new Set(['.dockerenv', ...metadata.filter((e) => e.type !== 'directory').map((e) => e.path)]);
}
