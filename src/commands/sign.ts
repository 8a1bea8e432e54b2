/** `sifpack sign`: add signatures to a SIF in apptainer's format, without apptainer. */
import type { Command } from 'commander';
import path from 'node:path';
import { InputError } from '../errors.js';
import { keyFingerprint } from '../sif/integrity/dsse.js';
import { type SignedGroup, type SigningKey, signSif } from '../sif/integrity/sign.js';
import { displayPath } from '../util/display-path.js';
import { type CliContext, Log, globalOptions } from './context.js';
import { collect } from './setting-options.js';
import { abortOnSigint } from './interrupt.js';
import { loadSigningKey } from './signing-keys.js';

interface SignFlags {
  key: string;
  groupId?: string[];
  sifId?: string[];
  passphraseStdin?: boolean;
  json?: boolean;
}

/** Parses repeatable positive-integer ids, naming the flag on bad input. */
export function parseIds(values: string[] | undefined, flag: string): number[] {
  return (values ?? []).map((v) => {
    if (!/^[1-9][0-9]{0,9}$/.test(v) || Number(v) > 0x0fffffff) throw new InputError(`${flag} ${JSON.stringify(v)}: not an id (a positive whole number, as siftool list shows)`);
    return Number(v);
  });
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('sign')
    .summary("sign a SIF in place, in apptainer's signature format")
    .description(
      'Add a signature to a SIF as `apptainer sign` does, without apptainer. By\n' +
        "default one signature per object group, covering the header, the group's\n" +
        'descriptors and its data. A PEM private key (ed25519, ECDSA, RSA) makes a\n' +
        'DSSE envelope (apptainer sign --key); an armored OpenPGP secret key\n' +
        '(apptainer key export --secret) an OpenPGP clear-signed message. The image\n' +
        'is rewritten atomically: an interrupted run leaves the original as it was.',
    )
    .argument('<IMAGE.sif>', 'the image to sign')
    .requiredOption('--key <FILE>', 'PEM private key or armored OpenPGP secret key')
    .option('-g, --group-id <ID>', 'sign this object group only (repeatable)', collect)
    .option('-i, --sif-id <ID>', 'sign this object only (repeatable)', collect)
    .option('--passphrase-stdin', 'read the key passphrase from stdin (default: ask on a terminal)')
    .option('--json', 'print one JSON result')
    .addHelpText(
      'after',
      `
Examples:
  sifpack sign analysis.sif --key ~/.keys/sign-ed25519.pem
  apptainer key export --secret me.asc && sifpack sign analysis.sif --key me.asc
  printf %s "$PASS" | sifpack sign analysis.sif --key me.asc --passphrase-stdin
  sifpack verify analysis.sif --key ~/.keys/sign-ed25519.pub.pem`,
    )
    .action(async (file: string, flags: SignFlags, cmd: Command) => {
      await run(file, flags, cmd, ctx);
    });
}

/** Who a key signs as: the OpenPGP fingerprint or the PEM key's SHA256 fingerprint. */
export function signerName(key: SigningKey): string {
  return key.kind === 'pgp' ? key.key.getFingerprint().toUpperCase() : key.keys.map((k) => keyFingerprint(k)).join(', ');
}

export async function run(file: string, flags: SignFlags, cmd: Command, ctx: CliContext): Promise<SignedGroup[]> {
  const log = new Log(ctx.stderr, globalOptions(cmd).quiet);
  const groupIds = parseIds(flags.groupId, '--group-id');
  const objectIds = parseIds(flags.sifId, '--sif-id');
  const key = await loadSigningKey(flags.key, !!flags.passphraseStdin, ctx);
  const image = path.resolve(ctx.cwd, file);
  const interrupt = abortOnSigint();
  let signed: SignedGroup[];
  try {
    signed = await signSif(image, key, { groupIds, objectIds, signal: interrupt.signal });
  } finally {
    interrupt.dispose();
  }
  const signer = signerName(key);
  if (flags.json) ctx.stdout.write(`${JSON.stringify({ image, format: key.kind === 'pgp' ? 'pgp' : 'dsse', signer, signatures: signed })}\n`);
  else {
    for (const s of signed) ctx.stdout.write(`signature object ${s.signatureId}: group ${s.group} (objects ${s.objects.join(', ')}) signed by ${signer}\n`);
    log.info(`signed ${displayPath(image, ctx.cwd)}`);
  }
  return signed;
}
