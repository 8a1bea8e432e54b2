/** `sifpack pull`: a SIF from an OCI registry (oras://), digest-verified and cached. */
import type { Command } from 'commander';
import path from 'node:path';
import { defaultOutputName, formatRef, parseOrasRef } from '../model/oras-ref.js';
import { displayPath } from '../util/display-path.js';
import { pullImage } from '../workflows/share.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { abortOnSigint } from './interrupt.js';
import { REGISTRY_SETTINGS, type RegistryFlags, explainNetwork, registryFor, registryOptions } from './registry-context.js';
import { settingsFor } from './setting-options.js';
import { TransferProgress, humanBytes as formatBytes } from './transfer-progress.js';

interface PullFlags extends RegistryFlags {
  output?: string;
  force?: boolean;
  cache?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('pull')
    .summary('pull a .sif from an OCI registry (oras://), verified and cached')
    .description(
      'Pull a SIF pushed with `sifpack push` or `apptainer push oras://`. The layer is\n' +
        'streamed into a temp file beside the target while its sha256 and size are\n' +
        'checked, and renamed into place only when both match: a corrupt blob, a short\n' +
        'read or a registry error leaves no file. Pulled images are kept in a cache by\n' +
        'digest, so pulling the same image again costs a hard link, not a download\n' +
        '(the cached file and a linked output are read-only; copy one to change it).',
    )
    .argument('<REF>', '[oras://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]')
    .option('-o, --output <IMAGE.sif>', 'where to write it (default: NAME_TAG.sif here, as apptainer pull names it)')
    .option('-f, --force', 'overwrite an existing file')
    .option('--no-cache', 'download even when the cache has it, and do not cache it');
  registryOptions(cmd)
    .option('--json', 'print one JSON result (reference, output, digest, size, seconds, cached)')
    .addHelpText(
      'after',
      `
Examples:
  sifpack pull oras://ghcr.io/mylab/analysis:1.0                 # writes analysis_1.0.sif
  sifpack pull oras://ghcr.io/mylab/analysis@sha256:3f2a... -o analysis.sif
  sifpack pull oras://127.0.0.1:5000/lab/analysis:1 -o x.sif --force`,
    )
    .action(async (ref: string, flags: PullFlags, c: Command) => run(ref, flags, c, ctx));
}

export async function run(refText: string, flags: PullFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const quiet = globalOptions(cmd).quiet;
  const log = new Log(ctx.stderr, quiet);
  const ref = parseOrasRef(refText, 'REF');
  const { settings } = await settingsFor(cmd, ctx, REGISTRY_SETTINGS);
  const interrupt = abortOnSigint();
  const { client, cache, plainHttp } = await registryFor(ref, flags, settings, ctx, interrupt.signal);
  const output = path.resolve(ctx.cwd, flags.output ?? defaultOutputName(ref));
  const progress = new TransferProgress(ctx.stderr as typeof ctx.stderr & { isTTY?: boolean }, `pull ${path.basename(output)}`, quiet);
  try {
    const res = await pullImage({
      ref,
      client,
      output,
      force: !!flags.force,
      cache,
      useCache: flags.cache !== false,
      onBytes: (done, total) => progress.update(done, total),
      onInfo: (m) => (quiet ? undefined : progress.note(`sifpack: ${m}`)),
    }).catch((err: unknown) => {
      throw explainNetwork(err, plainHttp, interrupt.signal, 'pull');
    });
    progress.done();
    if (flags.json) ctx.stdout.write(`${JSON.stringify(res)}\n`);
    else {
      ctx.stdout.write(`${res.output}\n`);
      log.info(`pulled ${formatRef(ref)} → ${displayPath(res.output, ctx.cwd)} (${formatBytes(res.size)}, ${res.cached ? 'from the cache' : `${res.seconds.toFixed(1)}s`}), ${res.reference}`);
    }
  } finally {
    progress.done();
    interrupt.dispose();
    await client.close();
  }
}
