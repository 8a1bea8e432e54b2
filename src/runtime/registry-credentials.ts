/**
 * Where registry credentials come from, in this order (first hit wins):
 *   1. --username + --password-stdin
 *   2. SIFPACK_REGISTRY_USERNAME / SIFPACK_REGISTRY_PASSWORD
 *   3. APPTAINER_DOCKER_USERNAME / APPTAINER_DOCKER_PASSWORD (what apptainer reads)
 *   4. the Docker config: $DOCKER_CONFIG/config.json or ~/.docker/config.json, `auths`
 *   5. apptainer's ~/.apptainer/docker-config.json (written by `apptainer registry login`)
 * The password is kept out of every message: `source` names where it came
 * from, and toJSON/inspect never show it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError } from '../errors.js';

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

async function fromDockerConfig(file: string, host: string, label: string): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let cfg: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    cfg = JSON.parse(text) as typeof cfg;
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`, { hint: 'fix or move the file; sifpack reads its `auths` entries for registry logins' });
  }
  const want = host.toLowerCase();
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
  opts: { username?: string; password?: string; env: NodeJS.ProcessEnv },
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
    const c = await fromDockerConfig(file, host, file);
    if (c) return { credentials: c, tried };
  }
  return { tried };
}
