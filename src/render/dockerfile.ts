/**
 * Recipe → Dockerfile, with the same meaning as the definition file.
 *
 * Format:
 *   FROM mambaorg/micromamba:2.3.2-debian12-slim
 *   USER 0
 *   COPY ["environment.yml", "/opt/sifpack/environment.yml"]
 *   RUN set -eu; export MAMBA_ROOT_PREFIX=/opt/conda; /bin/micromamba create ...; /bin/micromamba clean -a -y;
 *       mkdir -p /.singularity.d/env && printf '%s\n' … > /.singularity.d/env/91-sifpack-environment.sh
 *   ENV PATH="/opt/env/bin:$PATH" CONDA_PREFIX="/opt/env" PYTHONNOUSERSITE="1"
 *   LABEL "sifpack.env-hash"="sha256:…"
 *   RUN python -c 'import numpy, pandas'
 *   ENTRYPOINT ["python"]
 *
 * What Docker cannot say the way Apptainer does comes back as warnings.
 */
import { IMAGE_ENV_ARCHIVE, IMAGE_ENV_PREFIX, type Recipe } from '../model/recipe.js';
import { captureActivationLine } from './activation.js';
import { environmentLines, helpLines, installEnvLine, osInstallCommands, testCommand } from './def.js';
import { shellJoin, shellQuote } from './shell-quote.js';
import { type Rendered, renderTemplate } from './template.js';

/** The env script's place: after apptainer's 90-environment.sh, before 95-apps.sh and 99-base.sh. */
export const ENV_SCRIPT = '/.singularity.d/env/91-sifpack-environment.sh';

/** What `apptainer run-help` prints; apptainer's conversion and sifpack convert keep it. */
export const HELP_FILE = '/.singularity.d/runscript.help';

export const HOOKS_WARNING =
  "Dockerfile: what conda activation hooks (etc/conda/activate.d) export reaches the SIF made from this image (captured at build time into /.singularity.d/env/92-sifpack-conda-activate.sh, or sourced by 91-sifpack-environment.sh), but ENV cannot run scripts: variables they set (e.g. GDAL_DATA) are missing under `docker run` unless the env file's variables: sets them";
export const COPY_WARNING =
  `Dockerfile: COPY expects the env under prefix/ in the build context already relocated to ${IMAGE_ENV_PREFIX}; \`sifpack build --from-prefix ... --builder docker\` packs that context (a plain copy of the env would keep its old paths)`;

/** A Dockerfile double-quoted word: JSON escapes, plus `$` escaped unless it is a deliberate $PATH. */
function dockerString(value: string, keepPathVar = false): string {
  const json = JSON.stringify(value);
  return keepPathVar ? json.replace(/\$(?!PATH\b)/g, '\\$') : json.replace(/\$/g, '\\$');
}

export function renderDockerfile(recipe: Recipe, opts: { version: string; contextPrefixDir?: string }): Rendered {
  const warnings: string[] = [];
  const copies = recipe.files.map((f) => {
    // --from-prefix: the build context holds the relocated prefix under a fixed name, not a tarball.
    if (recipe.source.kind === 'prefix' && f.dest === IMAGE_ENV_ARCHIVE) return `[${JSON.stringify(`${opts.contextPrefixDir ?? 'prefix'}/`)}, ${JSON.stringify(`${recipe.envPrefix}/`)}]`;
    return `[${JSON.stringify(f.source)}, ${JSON.stringify(f.dest)}]`;
  });
  const commands: string[] = ['set -eu'];
  commands.push(...osInstallCommands(recipe));
  for (const [k, v] of Object.entries(recipe.install.env)) commands.push(`export ${installEnvLine(k, v)}`);
  for (const step of recipe.install.steps) commands.push(shellJoin(step));
  commands.push(captureActivationLine(recipe.envPrefix));
  // What apptainer's %environment would hold, as a script apptainer (and sifpack
  // convert) keeps in the SIF: sourced after the image's ENV, for exec, run and shell.
  const envScript = ['#!/bin/sh', '# Written by sifpack: the same runtime environment as the definition file\'s %environment.', ...environmentLines(recipe)];
  const envScriptCommand = `mkdir -p /.singularity.d/env && printf '%s\\n' \\\n    ${envScript.map(shellQuote).join(' \\\n    ')} \\\n    > ${ENV_SCRIPT}`;
  // In the install step's RUN: one container less per build.
  commands.push(envScriptCommand);
  // The def's %help, in the file apptainer writes %help to.
  commands.push(`printf '%s\\n' \\\n    ${helpLines(recipe, opts.version).map(shellQuote).join(' \\\n    ')} \\\n    > ${HELP_FILE}`);
  const runInstall = commands.join('; \\\n    ');

  const envLines = recipe.environment.map(([k, v]) => `${k}=${dockerString(v, k === 'PATH')}`).join(' \\\n    ');
  const labelLines = recipe.labels.map(([k, v]) => `${JSON.stringify(k)}=${dockerString(v)}`).join(' \\\n      ');

  if (recipe.environment.length > 4) {
    warnings.push('Dockerfile: ENV also applies while the image is built, where apptainer\'s %environment is runtime-only; the environment.yml variables are set during the build steps too');
  }
  // About `docker run` of the image: the SIF made from it runs the hooks. An env file's
  // packages may bring hooks; an installed prefix shows whether it has any.
  if (recipe.source.kind === 'env-file' || recipe.source.activationHooks !== false) warnings.push(HOOKS_WARNING);
  if (recipe.source.kind === 'prefix' && !recipe.source.keepPath) {
    warnings.push(COPY_WARNING);
  }

  const text = renderTemplate('Dockerfile.mustache', {
    envName: recipe.envName,
    version: opts.version,
    presetName: recipe.preset.name,
    presetDescription: recipe.preset.description,
    baseImage: recipe.baseImage,
    copies,
    prefixContext: recipe.source.kind === 'prefix' && !recipe.source.keepPath,
    envPrefix: recipe.envPrefix,
    runInstall,
    envLines,
    labelLines,
    testCommand: testCommand(recipe),
  });
  return { text, warnings };
}
