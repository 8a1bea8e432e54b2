/**
 * Where registry credentials come from, in this order (first hit wins):
 *   1. --username + --password-stdin
 *   2. SIFPACK_REGISTRY_USERNAME / SIFPACK_REGISTRY_PASSWORD
 *   3. APPTAINER_DOCKER_USERNAME / APPTAINER_DOCKER_PASSWORD (what apptainer reads)
 *   4. the Docker config: $DOCKER_CONFIG/config.json or ~/.docker/config.json:
 *      a credential helper (`credHelpers[host]`, else `credsStore`), as the
 *      Docker CLI picks one (cli/config/configfile/file.go,
 *      getConfiguredCredentialStore), then `auths`
 *   5. apptainer's ~/.apptainer/docker-config.json (written by `apptainer registry login`)
 * The password is kept out of every message: `source` names where it came
 * from, and toJSON/inspect never show it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError, RuntimeFailure, ToolNotFoundError } from '../errors.js';
import { NodeProcessRunner, type ProcessRunner } from './process.js';

export class Credentials {
  readonly #password: string;
  constructor(readonly username: string, password: string, readonly source: string) {
    this.#password = password;
  }
  /** `Basic base64(user:password)` for an Authorization header. */
  basic(): string {
    return `Basic ${Buffer.from(`${this.username}:${this.#password}`).toString('base64')}`;
  }
  toJSON(): { username: string; source: string } {
    return { username: this.username, source: this.source };
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Credentials(${this.username} from ${this.source})`;
  }
}

export interface CredentialLookup {
  credentials?: Credentials;
  /** Every place looked at, for a 401 message when none matched. */
  tried: string[];
}

/** `https://host:port/v1/` → `host:port` (Docker config keys come in several forms). */
function authKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

/**
 * Asks `docker-credential-NAME get` for `host`, the protocol of
 * github.com/docker/docker-credential-helpers client/client.go (Get): the
 * server on stdin, `{"ServerURL","Username","Secret"}` on stdout, and
 * "credentials not found in native keychain" with a non-zero exit when it
 * has none. Only `get` and the host go to the helper: no secret is ever in an
 * argv. An identity token (Username `<token>`, an OAuth refresh token) is not
 * used: sifpack speaks basic and bearer challenges only.
 */
async function fromHelper(helper: string, host: string, label: string, env: NodeJS.ProcessEnv, runner: ProcessRunner, tried: string[]): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new InputError(`${label}: credential helper name "${helper}" is not a plain program name`, { hint: 'credsStore/credHelpers name a program docker-credential-NAME on PATH' });
  tried.push(`${program} (${label})`);
  let r;
  try {
    r = await runner.run(program, ['get'], { input: host, env, timeoutMs: 30_000 });
  } catch (err) {
    // A config copied from a desktop (credsStore: desktop) must not break anonymous pulls: note it and go on.
    if (err instanceof ToolNotFoundError) {
      tried[tried.length - 1] = `${program} (${label}; not found on PATH)`;
      return undefined;
    }
    throw err;
  }
  if (r.timedOut) throw new RuntimeFailure(`${program} get did not answer within 30 s (${label})`, { hint: 'it may be waiting for a desktop keychain to unlock; unlock it, or log in with `sifpack push --username USER --password-stdin`' });
  if (r.code !== 0) {
    if (/credentials not found/i.test(r.stdout)) return undefined;
    const said = `${r.stdout} ${r.stderr}`.trim().replace(/\s+/g, ' ').slice(0, 200);
    throw new RuntimeFailure(`${program} get failed for ${host} (exit ${r.code}${said ? `: ${said}` : ''}) (${label})`, { hint: `run \`echo ${host} | ${program} get\` to see why, or remove the helper from the Docker config` });
  }
  let out: { Username?: unknown; Secret?: unknown };
  try {
    out = JSON.parse(r.stdout) as typeof out;
  } catch {
    throw new RuntimeFailure(`${program} get: its answer for ${host} is not JSON (${label})`, { hint: 'a credential helper prints {"ServerURL":...,"Username":...,"Secret":...}' });
  }
  if (typeof out.Username !== 'string' || typeof out.Secret !== 'string' || !out.Username) return undefined;
  if (out.Username === '<token>') {
    tried[tried.length - 1] = `${program} (${label}; holds an identity token, which sifpack does not use)`;
    return undefined;
  }
  return new Credentials(out.Username, out.Secret, `${program} (${label})`);
}

async function fromDockerConfig(file: string, host: string, label: string, env: NodeJS.ProcessEnv, runner: ProcessRunner, tried: string[]): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let cfg: { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credsStore?: unknown; credHelpers?: Record<string, unknown> };
  try {
    cfg = JSON.parse(text) as typeof cfg;
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`, { hint: 'fix or move the file; sifpack reads its `auths` entries for registry logins' });
  }
  const want = host.toLowerCase();
  const perHost = Object.entries(cfg.credHelpers ?? {}).find(([k]) => authKeyHost(k) === want);
  const helper = perHost ? perHost[1] : cfg.credsStore;
  if (typeof helper === 'string' && helper) {
    const c = await fromHelper(helper, host, perHost ? `${label}, credHelpers["${perHost[0]}"]` : `${label}, credsStore`, env, runner, tried);
    if (c) return c;
  }
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (authKeyHost(key) !== want || !entry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return new Credentials(decoded.slice(0, colon), decoded.slice(colon + 1), `${label} (auths["${key}"])`);
    }
    if (entry.username && entry.password) return new Credentials(entry.username, entry.password, `${label} (auths["${key}"])`);
  }
  return undefined;
}

/** Finds credentials for `host` (HOST[:PORT]) from the sources above. */
export async function lookupCredentials(
  host: string,
  opts: { username?: string; password?: string; env: NodeJS.ProcessEnv; runner?: ProcessRunner },
): Promise<CredentialLookup> {
  const { env } = opts;
  const tried: string[] = [];
  if (opts.username !== undefined || opts.password !== undefined) {
    if (!opts.username || opts.password === undefined) throw new InputError('--username and --password-stdin go together', { hint: 'echo "$TOKEN" | sifpack push IMAGE.sif oras://HOST/REPO:TAG --username USER --password-stdin' });
    return { credentials: new Credentials(opts.username, opts.password, '--username/--password-stdin'), tried: ['--username/--password-stdin'] };
  }
  for (const [u, p] of [
    ['SIFPACK_REGISTRY_USERNAME', 'SIFPACK_REGISTRY_PASSWORD'],
    ['APPTAINER_DOCKER_USERNAME', 'APPTAINER_DOCKER_PASSWORD'],
  ] as const) {
    tried.push(`${u}/${p}`);
    if (env[u] && env[p] !== undefined) return { credentials: new Credentials(env[u]!, env[p]!, `${u}/${p}`), tried };
  }
  const home = env.HOME || os.homedir();
  const dockerConfig = path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json');
  const apptainerConfig = path.join(home, '.apptainer', 'docker-config.json');
  for (const file of [dockerConfig, apptainerConfig]) {
    tried.push(file);
    const c = await fromDockerConfig(file, host, file, env, opts.runner ?? new NodeProcessRunner(), tried);
    if (c) return { credentials: c, tried };
  }
  return { tried };
}
