/** `sifpack convert`: a Docker image to a SIF, without apptainer. */
import { type Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DockerodeEngine } from '../runtime/docker.js';
import { formatBytes } from '../runtime/scratch.js';
import { displayPath } from '../util/display-path.js';
import { VERSION } from '../util/package-root.js';
import { type Compression, convertImage } from '../workflows/convert.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { abortOnSigint } from './interrupt.js';
import { signBuiltImage, signingKeyForFlags } from './signing-keys.js';

interface ConvertFlags {
  output: string;
  compression?: Compression;
  force?: boolean;
  json?: boolean;
  sign?: boolean;
  key?: string;
  passphraseStdin?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('convert')
    .summary('turn a Docker image into a .sif without apptainer (streaming)')
    .description(
      'Turn an image in the Docker engine into a SIF file that apptainer runs, without\n' +
        'apptainer: the flattened filesystem is exported, the /.singularity.d metadata\n' +
        "apptainer expects is added (ENV, ENTRYPOINT/CMD as the runscript, labels), and\n" +
        'the stream is squashed straight into the SIF. No root filesystem is unpacked on\n' +
        'disk, so it works where space is short; copy the .sif to the cluster and run it.',
    )
    .argument('<DOCKER_IMAGE>', 'image name or id in the Docker engine (DOCKER_HOST honoured)')
    .requiredOption('-o, --output <IMAGE.sif>', 'the SIF file to write')
    .addOption(new Option('--compression <ALGO>', 'squashfs compression (gzip mounts on every apptainer)').choices(['gzip', 'zstd', 'xz']).default('gzip'))
    .option('-f, --force', 'overwrite an existing file')
    .option('--sign', 'sign the image when it is written (as `sifpack sign`; needs --key)')
    .option('--key <FILE>', 'with --sign: PEM private key or armored OpenPGP secret key')
    .option('--passphrase-stdin', 'with --sign: read the key passphrase from stdin')
    .option('--json', 'print one JSON result')
    .addHelpText(
      'after',
      `
Examples:
  sifpack convert sifpack/analysis:3f2a1b0c -o analysis.sif
  sifpack convert myimage:1.0 -o myimage.sif --compression zstd   # smaller; needs apptainer >= 1.1 to mount`,
    )
    .action(async (image: string, flags: ConvertFlags, cmd: Command) => run(image, flags, cmd, ctx));
}

export async function run(image: string, flags: ConvertFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const output = path.resolve(ctx.cwd, flags.output);
  const signingKey = await signingKeyForFlags(flags, ctx);
  const interrupt = abortOnSigint();
  try {
    const res = await convertImage(new DockerodeEngine(), ctx.runner, {
      image,
      output,
      compression: flags.compression ?? 'gzip',
      force: !!flags.force,
      sifpackVersion: VERSION,
      signal: interrupt.signal,
      onProgress: (m) => log.info(m),
    });
    const signed = signingKey ? await signBuiltImage(res.output, signingKey, interrupt.signal) : undefined;
    if (signed) log.info(`signed ${displayPath(res.output, ctx.cwd)} by ${signed.signer}`);
    if (flags.json) ctx.stdout.write(`${JSON.stringify({ image, output: res.output, size: signed ? (await fs.stat(res.output)).size : res.size, squashfsBytes: res.squashfsBytes, entries: res.entries, seconds: res.seconds, squasher: res.squasher, ...(signed ? { signed: { signer: signed.signer, signatures: signed.signatures } } : {}) })}\n`);
    else {
      ctx.stdout.write(`${res.output}\n`);
      log.info(`wrote ${displayPath(res.output, ctx.cwd)} (${formatBytes(res.size)}, ${res.entries} files) in ${res.seconds.toFixed(1)}s`);
    }
  } finally {
    interrupt.dispose();
  }
}
