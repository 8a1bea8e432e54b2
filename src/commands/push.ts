/** `sifpack push`: a SIF to an OCI registry, as `apptainer push oras://` does. */
import type { Command } from 'commander';
import path from 'node:path';
import { formatRef, parseOrasRef } from '../model/oras-ref.js';
import { pushImage } from '../workflows/share.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { abortOnSigint } from './interrupt.js';
import { REGISTRY_SETTINGS, type RegistryFlags, explainNetwork, registryFor, registryOptions } from './registry-context.js';
import { settingsFor } from './setting-options.js';
import { TransferProgress, humanBytes as formatBytes } from './transfer-progress.js';

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('push')
    .summary('push a .sif to an OCI registry (oras://), pullable by apptainer')
    .description(
      'Push a SIF to any OCI registry (GitLab, GitHub, Harbor, distribution) in the\n' +
        'shape `apptainer push oras://` writes, so `apptainer pull oras://...` on another\n' +
        'cluster gets the same bytes without sifpack. The file is read once: it streams\n' +
        'to the registry in chunks while it is hashed. A blob the registry already has is\n' +
        'not sent again; a blob pushed to another repository there is mounted. Prints the\n' +
        'pinned reference HOST/REPO@sha256:... on stdout.',
    )
    .argument('<IMAGE.sif>', 'the image to push')
    .argument('<REF>', '[oras://]HOST[:PORT]/REPO[:TAG] (tag defaults to latest)');
  registryOptions(cmd)
    .option('--json', 'print one JSON result (reference, digest, size, seconds, bytesUploaded, alreadyThere)')
    .addHelpText(
      'after',
      `
Credentials, first found wins: --username with --password-stdin;
SIFPACK_REGISTRY_USERNAME/_PASSWORD; APPTAINER_DOCKER_USERNAME/_PASSWORD;
$DOCKER_CONFIG/config.json or ~/.docker/config.json (docker login);
~/.apptainer/docker-config.json (apptainer registry login).

Examples:
  sifpack push analysis.sif oras://ghcr.io/mylab/analysis:1.0
  echo "$CI_JOB_TOKEN" | sifpack push analysis.sif oras://registry.example.org/lab/analysis:1 --username ci --password-stdin
  sifpack push analysis.sif oras://127.0.0.1:5000/lab/analysis:1     # loopback: plain HTTP`,
    )
    .action(async (file: string, ref: string, flags: RegistryFlags, c: Command) => run(file, ref, flags, c, ctx));
}

export async function run(file: string, refText: string, flags: RegistryFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const quiet = globalOptions(cmd).quiet;
  const log = new Log(ctx.stderr, quiet);
  const ref = parseOrasRef(refText, 'REF');
  const { settings } = await settingsFor(cmd, ctx, REGISTRY_SETTINGS);
  const interrupt = abortOnSigint();
  const { client, cache, plainHttp } = await registryFor(ref, flags, settings, ctx, interrupt.signal);
  const image = path.resolve(ctx.cwd, file);
  const progress = new TransferProgress(ctx.stderr as typeof ctx.stderr & { isTTY?: boolean }, `push ${path.basename(image)}`, quiet);
  try {
    log.info(`pushing ${path.basename(image)} to ${formatRef(ref)}`);
    const res = await pushImage({
      file: image,
      ref,
      client,
      cache,
      stateDir: ctx.cwd,
      onBytes: (done, total) => progress.update(done, total),
      onInfo: (m) => (quiet ? undefined : progress.note(`sifpack: ${m}`)),
    }).catch((err: unknown) => {
      throw explainNetwork(err, plainHttp, interrupt.signal, 'push');
    });
    progress.done();
    if (flags.json) ctx.stdout.write(`${JSON.stringify(res)}\n`);
    else {
      ctx.stdout.write(`${res.reference}\n`);
      const rate = res.bytesUploaded && res.seconds ? `, ${formatBytes(res.bytesUploaded / res.seconds)}/s` : '';
      log.info(`pushed ${formatBytes(res.size)} in ${res.seconds.toFixed(1)}s (${res.alreadyThere ? 'the registry had it already' : res.mountedFrom ? `mounted from ${res.mountedFrom}` : `${formatBytes(res.bytesUploaded)} uploaded${rate}`}); apptainer pull oras://${formatRef(ref)} gets it`);
    }
  } finally {
    progress.done();
    interrupt.dispose();
    await client.close();
  }
}
