/**
 * Reading key files for `sign` and `verify`: the file, and for an
 * encrypted private key its passphrase, from stdin (--passphrase-stdin,
 * for scripts and CI) or typed at a terminal prompt without echo.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { PassphraseNeeded, addVerifyKeys, parseSigningKey } from '../sif/integrity/keys.js';
import type { SigningKey } from '../sif/integrity/sign.js';
import type { VerifyKeys } from '../sif/integrity/verify.js';
import type { CliContext } from './context.js';

async function readKeyFile(file: string, ctx: CliContext, flag: string): Promise<{ abs: string; text: string }> {
  const abs = path.resolve(ctx.cwd, file);
  try {
    return { abs, text: await fs.readFile(abs, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads a line from the terminal without echoing it. */
async function promptHidden(prompt: string, ctx: CliContext): Promise<string> {
  const stdin = process.stdin;
  ctx.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      ctx.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new InputError('passphrase entry cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The private key for `sign --key`, asking for a passphrase when it is encrypted. */
export async function loadSigningKey(file: string, passphraseStdin: boolean, ctx: CliContext): Promise<SigningKey> {
  const { text } = await readKeyFile(file, ctx, '--key');
  const pass = passphraseStdin ? await readAllStdin() : undefined;
  try {
    return await parseSigningKey(text, file, pass);
  } catch (err) {
    if (!(err instanceof PassphraseNeeded)) throw err;
    if (!process.stdin.isTTY) throw new InputError(`--key ${file} is encrypted and no passphrase was given`, { hint: 'pass --passphrase-stdin and the passphrase on stdin, or run on a terminal to be asked' });
    return parseSigningKey(text, file, await promptHidden(`Passphrase for ${file}: `, ctx));
  }
}

/** Public keys from every --key and --keyring file. */
export async function loadVerifyKeys(keys: string[], keyrings: string[], ctx: CliContext): Promise<VerifyKeys> {
  const out: VerifyKeys = { dsse: [], pgp: [] };
  for (const k of keys) {
    const { text } = await readKeyFile(k, ctx, '--key');
    await addVerifyKeys(text, k, out);
  }
  for (const k of keyrings) {
    const { text } = await readKeyFile(k, ctx, '--keyring');
    if (!text.includes('-----BEGIN PGP')) throw new InputError(`--keyring ${k}: not an armored OpenPGP keyring`, { hint: 'export one with `apptainer key export KEYRING.asc` or `gpg --export --armor`' });
    await addVerifyKeys(text, k, out);
  }
  return out;
}

export interface SignFlagSet {
  sign?: boolean;
  key?: string;
  passphraseStdin?: boolean;
}

/**
 * For `build --sign` / `convert --sign`: checks the flags and loads the key
 * before the long work starts, so a wrong key or passphrase fails in a second,
 * not after the build. Undefined when not signing.
 */
export async function signingKeyForFlags(flags: SignFlagSet, ctx: CliContext): Promise<SigningKey | undefined> {
  if (!flags.sign) {
    if (flags.key) throw new InputError('--key is given without --sign', { hint: 'add --sign to sign the image with that key' });
    return undefined;
  }
  if (!flags.key) throw new InputError('--sign needs --key FILE (a PEM private key or an armored OpenPGP secret key)');
  return loadSigningKey(flags.key, !!flags.passphraseStdin, ctx);
}

/**
 * Signs a freshly written image (one signature per group). An image the
 * build cache kept that already carries this signer's signature is left as it
 * is, so re-running `build --sign` does not pile up signatures.
 */
export async function signBuiltImage(image: string, key: SigningKey, signal?: AbortSignal): Promise<{ signer: string; signatures: number[]; alreadySigned: boolean }> {
  const { describeSignatures } = await import('../sif/integrity/describe.js');
  const { loadIntegrityImage } = await import('../sif/integrity/image.js');
  const { signSif } = await import('../sif/integrity/sign.js');
  const { keyFingerprint } = await import('../sif/integrity/dsse.js');
  const signer = key.kind === 'pgp' ? key.key.getFingerprint().toUpperCase() : key.keys.map((k) => keyFingerprint(k)).join(', ');
  const claims = await describeSignatures(await loadIntegrityImage(image));
  const mine = claims.filter((c) => c.signer.length > 0 && c.signer.every((s) => signer.split(', ').includes(s)));
  if (mine.length) return { signer, signatures: mine.map((c) => c.id), alreadySigned: true };
  const done = await signSif(image, key, signal ? { signal } : {});
  return { signer, signatures: done.map((d) => d.signatureId), alreadySigned: false };
}
