/**
 * `oras://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]`, the reference form
 * `apptainer push/pull oras://` takes. Pure parsing, no I/O.
 *
 * Format: oras://127.0.0.1:5000/lab/analysis:1 → host 127.0.0.1:5000,
 * repository lab/analysis, tag 1. The host is required (apptainer would
 * default to Docker Hub, which never holds SIFs a lab pushed).
 */
import { InputError } from '../errors.js';

export interface OrasRef {
  /** HOST or HOST:PORT, as written. */
  host: string;
  repository: string;
  tag?: string;
  digest?: string;
}

// From the OCI distribution spec's grammar (repository path components, tags).
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

const EXAMPLE = 'oras://HOST[:PORT]/REPO[:TAG] or oras://HOST/REPO@sha256:DIGEST, e.g. oras://ghcr.io/lab/analysis:1';

/** Parses a reference; `what` names the argument in errors. Tag defaults to `latest` unless a digest is given. */
export function parseOrasRef(input: string, what = 'reference'): OrasRef {
  const bad = (why: string) => new InputError(`${what} "${input}": ${why}`, { hint: `write it as ${EXAMPLE}` });
  if (/[\s\0]/.test(input)) throw bad('contains whitespace or control characters');
  let rest = input;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== 'oras') throw bad(`${scheme[1]}:// is not an ORAS reference${scheme[1]!.toLowerCase() === 'docker' ? ' (Docker images: `apptainer pull docker://...` or `sifpack convert`)' : ''}`);
    rest = rest.slice(scheme[0].length);
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) throw bad('needs a registry host and a repository');
  const host = rest.slice(0, slash);
  if (!HOST.test(host) || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    throw bad(`"${host}" is not a registry host (a name with a dot, a HOST:PORT, or localhost)`);
  }
  let path = rest.slice(slash + 1);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = path.indexOf('@');
  if (at >= 0) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`"${digest}" is not a sha256 digest (sha256: and 64 lowercase hex digits)`);
  } else {
    const colon = path.lastIndexOf(':');
    if (colon >= 0 && !path.slice(colon).includes('/')) {
      tag = path.slice(colon + 1);
      path = path.slice(0, colon);
      if (!TAG.test(tag)) throw bad(`"${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
    }
  }
  if (!path) throw bad('has no repository');
  for (const c of path.split('/')) {
    if (!COMPONENT.test(c)) throw bad(`repository "${path}": "${c}" is not a valid path component (lowercase letters and digits, separated by . _ __ or -)`);
  }
  return { host, repository: path, ...(digest ? { digest } : { tag: tag ?? 'latest' }) };
}

/** The reference as text, without the scheme: HOST/REPO:TAG or HOST/REPO@DIGEST. */
export function formatRef(ref: OrasRef): string {
  return `${ref.host}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}

/** HOST/REPO@DIGEST: the pinned form `push` prints. */
export function digestRef(ref: OrasRef, digest: string): string {
  return `${ref.host}/${ref.repository}@${digest}`;
}

/**
 * The file name `pull` writes when no -o is given: NAME_TAG.sif as apptainer
 * pull does (its uri.GetName), NAME being the repository's last component. A
 * digest reference gets NAME_sha256.HEX12.sif instead of apptainer's
 * `NAME@sha256_HEX.sif`, which has an @ that shells and Slurm patterns dislike.
 */
export function defaultOutputName(ref: OrasRef): string {
  const name = ref.repository.split('/').at(-1)!;
  if (ref.digest) return `${name}_sha256.${ref.digest.slice(7, 19)}.sif`;
  return `${name}_${ref.tag ?? 'latest'}.sif`;
}

/** Plain HTTP without asking for loopback registries, as ORAS and go-containerregistry do. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]';
}
