/** What push and pull share: the reference, credentials, the client, the cache. */
import type { Command } from 'commander';
import { EXIT, InputError, RuntimeFailure, SifpackError } from '../errors.js';
import { type OrasRef, isLoopbackHost } from '../model/oras-ref.js';
import { BlobCache, defaultCacheDir } from '../runtime/blob-cache.js';
import { RegistryClient, RegistryNetworkError } from '../runtime/registry-client.js';
import { lookupCredentials } from '../runtime/registry-credentials.js';
import { VERSION } from '../util/package-root.js';
import type { CliContext } from './context.js';
import { addSettings } from './setting-options.js';

export interface RegistryFlags {
  https?: boolean;
  username?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

/** The settings push and pull take (flags, sifpack.yml keys, SIFPACK_* variables). */
export const REGISTRY_SETTINGS = ['plain-http', 'cache-dir'] as const;

/** Adds the flags every registry command takes. */
export function registryOptions(cmd: Command): Command {
  return addSettings(cmd, REGISTRY_SETTINGS)
    .option('--no-https', "same as --plain-http (apptainer's name for it)")
    .option('--username <USER>', 'registry user name (the password comes from --password-stdin)')
    .option('--password-stdin', 'read the password or token from standard input');
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of stdin) s += c.toString();
  return s.replace(/\r?\n$/, '');
}

export async function registryFor(
  ref: OrasRef,
  flags: RegistryFlags,
  settings: { plainHttp: boolean; cacheDir?: string | undefined },
  ctx: CliContext & { stdin?: NodeJS.ReadableStream },
  signal?: AbortSignal,
): Promise<{ client: RegistryClient; cache: BlobCache; plainHttp: boolean }> {
  let password: string | undefined;
  if (flags.passwordStdin) {
    if (!flags.username) throw new InputError('--password-stdin needs --username', { hint: 'echo "$TOKEN" | sifpack push IMAGE.sif oras://HOST/REPO:TAG --username USER --password-stdin' });
    password = await readStdin(ctx.stdin ?? process.stdin);
    if (!password) throw new InputError('--password-stdin: standard input was empty');
  } else if (flags.username) throw new InputError('--username needs --password-stdin (a password is never taken as an argument: other users could read it in the process list)');
  const lookup = await lookupCredentials(ref.host, { ...(flags.username ? { username: flags.username, password } : {}), env: ctx.env });
  // commander turns --no-https into https: false.
  const plainHttp = settings.plainHttp || flags.https === false || isLoopbackHost(ref.host);
  const client = new RegistryClient({
    host: ref.host,
    plainHttp,
    credentials: lookup.credentials,
    credentialSources: lookup.tried,
    userAgent: `sifpack/${VERSION}`,
    env: ctx.env,
    ...(signal ? { signal } : {}),
  });
  return { client, cache: new BlobCache(settings.cacheDir ?? defaultCacheDir(ctx.env)), plainHttp };
}

/**
 * Failures said in words: Ctrl-C (exit 130), a connection failure that
 * escaped the retries, a file-system error (cache or output directory).
 */
export function explainNetwork(err: unknown, plainHttp: boolean, signal?: AbortSignal, what = 'transfer'): unknown {
  if (signal?.aborted && !(err instanceof SifpackError && err.exitCode === EXIT.interrupted)) {
    return new SifpackError(`${what} interrupted; no partial file left behind`, EXIT.interrupted);
  }
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof SifpackError) && typeof e?.code === 'string' && typeof e.path === 'string') {
    return new RuntimeFailure(`cannot write ${e.path}: ${e.code === 'EACCES' ? 'permission denied' : e.code === 'ENOSPC' ? 'no space left on the device' : e.message}`, {
      hint: 'choose another place with -o or --cache-dir (setting cache-dir)',
      cause: err,
    });
  }
  if (err instanceof RegistryNetworkError) {
    return new RuntimeFailure(`cannot reach the registry ${err.host} over ${plainHttp ? 'HTTP' : 'HTTPS'} (${err.code})`, {
      hint: `check that it runs and that ${err.host} is the right host and port${plainHttp ? '' : '; for a plain-HTTP registry add --plain-http'}; behind a proxy set HTTPS_PROXY (and NO_PROXY)`,
      cause: err,
    });
  }
  return err;
}
