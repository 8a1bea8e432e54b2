/** `sifpack pull`: a SIF from an OCI registry (oras://), digest-verified and cached. */
import type { Command } from 'commander';
import path from 'node:path';
import { defaultOutputName, formatRef, parseOrasRef } from '../model/oras-ref.js';
import { displayPath } from '../util/display-path.js';
import { pullImage } from '../workflows/share.js';
import { RuntimeFailure, InputError } from '../errors.js';
import { loadIntegrityImage } from '../sif/integrity/image.js';
import { type VerifyKeys, type VerifyReport, verifySif } from '../sif/integrity/verify.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { collect } from './setting-options.js';
import { loadVerifyKeys } from './signing-keys.js';
import { abortOnSigint } from './interrupt.js';
import { REGISTRY_SETTINGS, type RegistryFlags, explainNetwork, registryFor, registryOptions } from './registry-context.js';
import { settingsFor } from './setting-options.js';
import { TransferProgress, humanBytes as formatBytes } from './transfer-progress.js';

interface PullFlags extends RegistryFlags {
  output?: string;
  force?: boolean;
  cache?: boolean;
  verify?: boolean;
  key?: string[];
  keyring?: string[];
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
    .option('--no-cache', 'download even when the cache has it, and do not cache it')
    .option('--verify', 'refuse the image unless its signatures verify with --key/--keyring, as `sifpack verify` checks them')
    .option('--key <FILE>', 'with --verify: PEM public key (DSSE) or armored OpenPGP public key (repeatable)', collect)
    .option('--keyring <FILE>', 'with --verify: armored OpenPGP keyring (repeatable)', collect);
  registryOptions(cmd)
    .option('--json', 'print one JSON result (reference, output, digest, size, seconds, cached; with --verify the verification report)')
    .addHelpText(
      'after',
      `
Examples:
  sifpack pull oras://ghcr.io/mylab/analysis:1.0                 # writes analysis_1.0.sif
  sifpack pull oras://ghcr.io/mylab/analysis@sha256:3f2a... -o analysis.sif
  sifpack pull oras://127.0.0.1:5000/lab/analysis:1 -o x.sif --force
  sifpack pull oras://ghcr.io/mylab/analysis:1.0 --verify --key sign-ed25519.pub.pem

With --verify, an image that is unsigned, signed by another key or altered
after signing is refused (exit 1) and no file is written.`,
    )
    .action(async (ref: string, flags: PullFlags, c: Command) => run(ref, flags, c, ctx));
}

export async function run(refText: string, flags: PullFlags, cmd: Command, ctx: CliContext): Promise<void> {
  const quiet = globalOptions(cmd).quiet;
  const log = new Log(ctx.stderr, quiet);
  const ref = parseOrasRef(refText, 'REF');
  const { settings } = await settingsFor(cmd, ctx, REGISTRY_SETTINGS);
  // Keys are read before anything is downloaded: a wrong path fails in a second.
  const keys = await verifyKeysFor(flags, ctx);
  const interrupt = abortOnSigint();
  const { client, cache, plainHttp } = await registryFor(ref, flags, settings, ctx, interrupt.signal);
  const output = path.resolve(ctx.cwd, flags.output ?? defaultOutputName(ref));
  let verification: VerifyReport | undefined;
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
      ...(keys
        ? {
            check: async (file: string) => {
              progress.done();
              verification = await verifyPulled(file, keys, formatRef(ref), output);
            },
          }
        : {}),
    }).catch((err: unknown) => {
      throw explainNetwork(err, plainHttp, interrupt.signal, 'pull');
    });
    progress.done();
    if (flags.json) ctx.stdout.write(`${JSON.stringify(verification ? { ...res, verification } : res)}\n`);
    else {
      ctx.stdout.write(`${res.output}\n`);
      if (verification) log.info(`verified ${formatRef(ref)}: ${signersOf(verification)}`);
      log.info(`pulled ${formatRef(ref)} → ${displayPath(res.output, ctx.cwd)} (${formatBytes(res.size)}, ${res.cached ? 'from the cache' : `${res.seconds.toFixed(1)}s`}), ${res.reference}`);
    }
  } finally {
    progress.done();
    interrupt.dispose();
    await client.close();
  }
}

/** The keys for --verify, or undefined without it; --key/--keyring alone are a mistake, not a silent no-op. */
async function verifyKeysFor(flags: PullFlags, ctx: CliContext): Promise<VerifyKeys | undefined> {
  const given = [...(flags.key ?? []), ...(flags.keyring ?? [])].length > 0;
  if (!flags.verify) {
    if (given) throw new InputError(`${flags.key?.length ? '--key' : '--keyring'} is given without --verify`, { hint: 'add --verify to refuse an image that is not signed by that key' });
    return undefined;
  }
  if (!given) throw new InputError('--verify needs --key PUBLIC.pem (DSSE) or --key/--keyring KEYS.asc (OpenPGP)', { hint: 'sifpack keeps no keyring of its own; export yours with `apptainer key export KEYS.asc`' });
  return loadVerifyKeys(flags.key ?? [], flags.keyring ?? [], ctx);
}

function signersOf(r: VerifyReport): string {
  const who = new Set(r.signatures.flatMap((s) => s.signers.map((x) => `${x.fingerprint}${x.userId ? ` ${x.userId}` : ''}`)));
  return `signed by ${[...who].join(', ')}`;
}

/** Every signature checked as `sifpack verify` checks it (same function, default options); throws when the image does not verify. */
async function verifyPulled(file: string, keys: VerifyKeys, shown: string, output: string): Promise<VerifyReport> {
  const report = await verifySif(await loadIntegrityImage(file), keys);
  report.file = output;
  if (report.ok) return report;
  const all = [...report.problems, ...report.signatures.flatMap((s) => s.problems)];
  const problems = all.map((p) => p.message);
  const why =
    report.signatures.length === 0
      ? { text: 'the image is not signed', hint: 'sign it where it was built (`sifpack sign IMAGE.sif --key KEY`) and push it again' }
      : all.some((p) => p.kind === 'header' || p.kind === 'descriptor' || p.kind === 'object')
        ? { text: 'it was changed after it was signed', hint: 'the registry holds an altered image; push the signed original again' }
        : { text: 'its signatures do not verify with the keys given', hint: "check that --key/--keyring hold the signer's public key; `sifpack verify` on a copy pulled without --verify shows the full report" };
  throw new RuntimeFailure(`${shown}: refused: ${why.text}; nothing was written`, {
    details: problems.slice(0, 10).concat(problems.length > 10 ? [`... and ${problems.length - 10} more`] : []),
    hint: why.hint,
  });
}
