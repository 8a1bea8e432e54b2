/**
 * Recipe → Apptainer definition file.
 *
 * Format:
 *   Bootstrap: docker
 *   From: mambaorg/micromamba:2.3.2-debian12-slim
 *   %files      environment.yml /opt/sifpack/environment.yml
 *   %post       /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml
 *   %environment export PATH=/opt/env/bin:"$PATH"  (…, PYTHONNOUSERSITE=1)
 *   %runscript  exec python "$@"
 *   %test       python -c 'import numpy, pandas'
 *   %labels     sifpack.env-hash sha256:…
 *   %help       the package list
 */
import { BUILD_GIT_PREFIX, IMAGE_ENV_ARCHIVE, IMAGE_SIFPACK_DIR, type Recipe } from '../model/recipe.js';
import { ACTIVATE_SCRIPT, captureActivationLine } from './activation.js';
import { envScriptQuote, shellJoin, shellQuote } from './shell-quote.js';
import { type Rendered, renderTemplate } from './template.js';

/**
 * `export NAME=value` bodies; PATH keeps "$PATH" live, every other value is
 * literal. Double-quoted: apptainer's own interpreter reads these (see envScriptQuote).
 */
export function exportLines(environment: Recipe['environment']): string[] {
  return environment.map(([k, v]) => (k === 'PATH' && v.endsWith(':$PATH') ? `PATH=${envScriptQuote(v.slice(0, -':$PATH'.length))}:"$PATH"` : `${k}=${envScriptQuote(v)}`));
}

/**
 * The runtime environment as shell lines: the def's %environment, and the
 * /.singularity.d/env script the Dockerfile adds, so an image built either
 * way sets the same variables and runs the same activation hooks.
 */
export function environmentLines(recipe: Recipe): string[] {
  const prefix = envScriptQuote(recipe.envPrefix);
  return [
    '# The env is active for exec, run and shell alike: no conda activate, no entrypoint.',
    // `--cleanenv` sets LANG=C; a UTF-8 default unless the image's own ENV set one. Not
    // LC_ALL: it would override a user's `--env LANG=...`, which apptainer applies after this.
    'export LANG="${LANG:-C.UTF-8}"',
    ...exportLines(recipe.environment).map((l) => `export ${l}`),
    "# The env's conda activation hooks (GDAL_DATA, PROJ_DATA, ...): what they export was captured",
    `# at build time into ${ACTIVATE_SCRIPT}; sourced here only when that was not possible.`,
    `if [ ! -f ${ACTIVATE_SCRIPT} ] && [ -d ${prefix}/etc/conda/activate.d ]; then`,
    `    for f in ${prefix}/etc/conda/activate.d/*.sh; do [ -r "$f" ] && . "$f"; done`,
    'fi',
  ];
}

/** An install-time `NAME=value` (after `export`): a PATH ending in :$PATH keeps "$PATH" live. */
export function installEnvLine(name: string, value: string): string {
  return name === 'PATH' && value.endsWith(':$PATH') ? `PATH=${shellQuote(value.slice(0, -':$PATH'.length))}:"$PATH"` : `${name}=${shellQuote(value)}`;
}

/** Whether /opt/sifpack exists in the image (not for --from-prefix, which copies only the env). */
export function hasSifpackDir(recipe: Recipe): boolean {
  // The env tarball of --from-prefix passes through there and is removed in %post.
  return recipe.files.some((f) => f.dest.startsWith(`${IMAGE_SIFPACK_DIR}/`) && f.dest !== IMAGE_ENV_ARCHIVE);
}

/**
 * The OS package install commands for the preset's package manager (none
 * without packages), one a line in %post and in the Dockerfile's RUN: never
 * joined by `&&`, because `set -e` ignores a failure anywhere but in the last
 * command of an `&&` list (apt-get's "Unable to locate package" went by and
 * the image was built without the package).
 */
export function osInstallCommands(recipe: Recipe): string[] {
  const pkgs = recipe.preset.osPackages;
  if (pkgs.length === 0 || recipe.preset.osPackageManager === 'none') return [];
  if (recipe.preset.osPackageManager === 'dnf') return [`dnf install -y ${shellJoin(pkgs)}`, 'dnf clean all'];
  return ['apt-get update', `apt-get install -y --no-install-recommends ${shellJoin(pkgs)}`, 'rm -rf /var/lib/apt/lists/*'];
}


/**
 * The %test check: known modules must import; guessed ones (pip packages
 * whose module name is not in our table) are tried and a miss only printed.
 */
export function testCommand(recipe: Recipe): string | undefined {
  const { testImports: sure, testGuessed: guessed } = recipe;
  if (sure.length + guessed.length === 0) return undefined;
  const parts: string[] = [];
  if (sure.length) parts.push(`import ${sure.join(', ')}`);
  if (guessed.length) {
    parts.push('import importlib.util as u');
    parts.push(`[u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ${JSON.stringify(guessed)}]`);
  }
  return `python -c ${shellQuote(parts.join('; '))}`;
}

/**
 * --from-prefix: %files brings the prefix as one tarball (apptainer's %files
 * runs `cp -fLr`, which would turn symlinks into copies, abort on a dangling
 * one and keep 0750/0640 modes); tar unpacks it with its links, hard links
 * and a+rX modes, owned by root (`--no-same-owner`).
 */
export function unpackPrefixLines(recipe: Recipe): string[] {
  if (recipe.source.kind !== 'prefix') return [];
  return [
    shellJoin(['mkdir', '-p', recipe.envPrefix]),
    shellJoin(['tar', '-xf', IMAGE_ENV_ARCHIVE, '-C', recipe.envPrefix, '--no-same-owner']),
    shellJoin(['rm', '-f', IMAGE_ENV_ARCHIVE]),
    // Nothing else lives there in a --from-prefix image: leave no empty /opt/sifpack behind.
    shellJoin(['rmdir', '--ignore-fail-on-non-empty', IMAGE_SIFPACK_DIR]),
  ];
}

/**
 * What `apptainer run-help` shows: the def's %help, and the
 * /.singularity.d/runscript.help the Dockerfile writes, so both builders give it.
 */
export function helpLines(recipe: Recipe, version: string): string[] {
  const lines = [`Conda environment "${recipe.envName}" packed by sifpack ${version} (preset ${recipe.preset.name}).`, 'Run a script:   apptainer exec IMAGE.sif python script.py ARGS'];
  const lock = recipe.source.kind === 'env-file' && !!recipe.source.lock;
  if (hasSifpackDir(recipe)) lines.push(`The environment file${lock ? ' and lock' : ''} it was built from: ${IMAGE_SIFPACK_DIR}/`);
  if (recipe.source.kind === 'prefix') lines.push(`The environment was copied from the installed prefix ${recipe.source.hostPath} (no environment file in the image).`);
  return [...lines, 'Packages:', ...recipe.packages.map((p) => `  ${p}`)];
}

export function renderDef(recipe: Recipe, opts: { version: string; defName: string }): Rendered {
  const test = testCommand(recipe);
  const text = renderTemplate('apptainer.def.mustache', {
    envName: recipe.envName,
    version: opts.version,
    defName: opts.defName,
    presetName: recipe.preset.name,
    presetDescription: recipe.preset.description,
    baseImage: recipe.baseImage,
    bootstrap: recipe.bootstrap,
    files: recipe.files,
    // One command a line, so %post's `set -e` stops at the one that fails.
    osInstall: osInstallCommands(recipe),
    prefixCopy: recipe.source.kind === 'prefix',
    prefixHostPath: recipe.source.kind === 'prefix' ? recipe.source.hostPath : '',
    prefixKept: recipe.source.kind === 'prefix' && !!recipe.source.keepPath,
    unpackPrefix: unpackPrefixLines(recipe),
    envPrefix: recipe.envPrefix,
    installEnv: Object.entries(recipe.install.env).map(([k, v]) => installEnvLine(k, v)),
    gitNote: 'PATH' in recipe.install.env,
    gitPrefix: BUILD_GIT_PREFIX,
    cudaNote: 'CONDA_OVERRIDE_CUDA' in recipe.install.env,
    pipNote: 'PIP_NO_CACHE_DIR' in recipe.install.env,
    installSteps: recipe.install.steps.map(shellJoin),
    captureActivation: captureActivationLine(recipe.envPrefix),
    environment: environmentLines(recipe),
    testSkipped: recipe.testSkipped.join(', '),
    testCommand: test,
    testEcho: shellQuote(`sifpack test: checked ${[...recipe.testImports, ...recipe.testGuessed].join(', ')}`),
    labels: recipe.labels.map(([key, value]) => ({ key, value })),
    help: helpLines(recipe, opts.version),
  });
  return { text, warnings: [] };
}
