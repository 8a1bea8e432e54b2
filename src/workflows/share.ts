/**
 * Push a SIF to an OCI registry and pull one back, in the shape
 * `apptainer push/pull oras://` use (src/model/oras-manifest.ts).
 *
 * Push reads the file once: its bytes stream to the registry in PATCH chunks
 * while being hashed, and the digest closes the upload (PUT ?digest=). When
 * the digest is already known (the hash cache, from an earlier push or
 * build), the registry is asked first: a blob it has is not sent again, and
 * one pushed to another repository of the same registry is mounted.
 *
 * Pull streams the layer into a temp file while hashing, and renames it into
 * place only when digest and size match.
 */
import { createHash } from 'node:crypto';
import { promises as fs, createReadStream } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { InputError, RuntimeFailure, SifpackError } from '../errors.js';
import { EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, MANIFEST_ACCEPT, OCI_MANIFEST, sifLayerOf, sifManifest } from '../model/oras-manifest.js';
import { type OrasRef, digestRef, formatRef } from '../model/oras-ref.js';
import type { BlobCache } from '../runtime/blob-cache.js';
import { type RegistryClient, RegistryHttpError, RegistryNetworkError } from '../runtime/registry-client.js';
import { MAGIC } from '../sif/layout.js';
import { readMetadataLabels, readSif } from '../sif/reader.js';
import { refuseOverwrite, sweepStaleTemps, tempPathFor, writeFailure } from '../util/atomic-write.js';
import { cachedSha256, knownSha256, rememberSha256 } from '../util/hash-cache.js';
import { writeHashed } from '../util/hashing-writer.js';

export interface TransferEvents {
  /** Bytes moved so far of `total` (called often; the caller throttles drawing). */
  onBytes?: (done: number, total: number) => void;
  onInfo?: (msg: string) => void;
}

export interface PushOptions extends TransferEvents {
  file: string;
  ref: OrasRef;
  client: RegistryClient;
  cache: BlobCache;
  /** Where .sifpack/hashes.json lives (the digest of an unchanged file is remembered there). */
  stateDir: string;
  /**
   * Bytes per PATCH (default 256 MiB). Each chunk costs the registry a commit
   * (distribution fsyncs it): 64 MiB chunks made a 500 MiB push ~0.4 s slower
   * than 256 MiB ones (docs/BENCHMARKS.md); a resume starts at a chunk boundary.
   */
  chunkSize?: number;
  /** Consecutive failed attempts at a chunk before giving up. */
  retries?: number;
  retryDelayMs?: number;
  /** After each chunk the registry confirmed (the byte count it holds); awaited. */
  onChunk?: (confirmed: number) => void | Promise<void>;
}

export interface PushResult {
  reference: string;
  /** The manifest digest: the reference pins it. */
  digest: string;
  layerDigest: string;
  size: number;
  seconds: number;
  bytesUploaded: number;
  alreadyThere: boolean;
  mountedFrom: string | null;
}

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Passes bytes through, hashing those at file positions not hashed yet (a resent range is hashed once). */
class ChunkHasher extends Transform {
  private pos: number;
  constructor(private readonly state: { hash: ReturnType<typeof createHash>; hashed: number; sent: number }, start: number, private readonly onPos: (pos: number) => void) {
    super({ highWaterMark: 1 * MiB });
    this.pos = start;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    const end = this.pos + chunk.length;
    if (end > this.state.hashed) {
      this.state.hash.update(this.pos >= this.state.hashed ? chunk : chunk.subarray(this.state.hashed - this.pos));
      this.state.hashed = end;
    }
    this.pos = end;
    this.state.sent += chunk.length;
    this.onPos(end);
    cb(null, chunk);
  }
}

function isRetryable(err: unknown): boolean {
  return err instanceof RegistryNetworkError || (err instanceof RegistryHttpError && (err.status >= 500 || err.status === 408 || err.status === 429));
}

/** Streams `file` to a new upload in chunks, hashing as it goes; resumes from the registry's offset after a dropped connection. */
async function uploadBlob(o: PushOptions, size: number, scopes: string[], openLocation?: string): Promise<{ digest: string; sent: number }> {
  const { client, file } = o;
  const repo = o.ref.repository;
  const chunkSize = o.chunkSize ?? 256 * MiB;
  const retries = o.retries ?? 5;
  const state = { hash: createHash('sha256'), hashed: 0, sent: 0 };
  let location = openLocation ?? (await client.startUpload(repo, scopes));
  let offset = 0;
  let failures = 0;
  let resume = false;
  let lastError: unknown;
  while (offset < size || resume) {
    try {
      if (resume) {
        try {
          const st = await client.uploadStatus(location, scopes);
          offset = st.offset;
          location = st.location;
        } catch (err) {
          // The registry forgot the upload (restarted without a shared secret, or, like
          // distribution 2.8, it cancels an upload whose data outgrew the last confirmed
          // offset, as a chunk cut off midway leaves it): start over.
          if (!(err instanceof RegistryHttpError) || err.status >= 500) throw err;
          o.onInfo?.(`the registry dropped the upload (${err.message}); starting it again`);
          location = await client.startUpload(repo, scopes);
          offset = 0;
        }
        o.onInfo?.(`resuming the upload at byte ${offset} of ${size}`);
        resume = false;
        if (offset >= size) break;
      }
      const len = Math.min(chunkSize, size - offset);
      const source = createReadStream(file, { start: offset, end: offset + len - 1, highWaterMark: 1 * MiB });
      const hasher = new ChunkHasher(state, offset, (pos) => o.onBytes?.(pos, size));
      source.on('error', (err) => hasher.destroy(err));
      source.pipe(hasher);
      try {
        location = await client.patchChunk(location, offset, len, hasher, scopes);
      } finally {
        source.destroy();
      }
      offset += len;
      failures = 0;
      await o.onChunk?.(offset);
    } catch (err) {
      if (!isRetryable(err)) throw err;
      lastError = err;
      failures++;
      if (failures > retries) {
        throw new RuntimeFailure(
          `upload of ${path.basename(file)} to ${client.host}/${repo} failed after ${failures} attempts in a row: ${state.sent} bytes sent, ${offset} of ${size} confirmed by the registry (${(err as Error).message})`,
          { hint: 'check that the registry is up and has space, then push again (a blob it already has is not sent twice)', cause: lastError },
        );
      }
      o.onInfo?.(`connection to ${client.host} failed (${err instanceof RegistryNetworkError ? err.code : (err as Error).message}); retrying in ${(o.retryDelayMs ?? 1000) * failures} ms (attempt ${failures + 1} of ${retries + 1})`);
      await sleep((o.retryDelayMs ?? 1000) * failures);
      resume = true;
    }
  }
  if (state.hashed !== size) throw new RuntimeFailure(`${file} changed while it was being pushed (read ${state.hashed} of ${size} bytes)`);
  const digest = `sha256:${state.hash.digest('hex')}`;
  await client.finishUpload(location, digest, scopes);
  return { digest, sent: state.sent };
}

/**
 * Annotations for sifpack-built images only (their labels carry the hashes):
 * created time and env/lock/build hashes. An image without them gets none, so
 * its manifest is byte for byte the one apptainer 1.4.5 pushes.
 */
async function annotationsFor(file: string): Promise<{ annotations: Record<string, string>; size: number }> {
  const img = await readSif(file);
  const labels = (await readMetadataLabels(img).catch(() => undefined)) ?? {};
  const a: Record<string, string> = {};
  if (labels['sifpack.env-hash']) a['io.sifpack.env-hash'] = labels['sifpack.env-hash'];
  if (labels['sifpack.lock-hash']) a['io.sifpack.lock-hash'] = labels['sifpack.lock-hash'];
  if (labels['sifpack.build-hash']) a['io.sifpack.build-hash'] = labels['sifpack.build-hash'];
  if (Object.keys(a).length) a['org.opencontainers.image.created'] = new Date(Number(img.header.createdAt) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { annotations: a, size: img.fileSize };
}

export async function pushImage(o: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const { client, ref } = o;
  if (!ref.tag) throw new InputError(`push needs a tag, not a digest: ${formatRef(ref)}`, { hint: 'push to oras://HOST/REPO:TAG; the digest is printed afterwards' });
  const { annotations, size } = await annotationsFor(o.file);
  const repo = ref.repository;
  const scopes = [`repository:${repo}:pull,push`];
  await client.ping(scopes);

  let digest = await knownSha256(o.file, o.stateDir).catch(() => undefined);
  let alreadyThere = false;
  let mountedFrom: string | null = null;
  let openLocation: string | undefined;
  let bytesUploaded = 0;
  if (digest) {
    if ((await client.blobSize(repo, digest, scopes)) === size) alreadyThere = true;
    else {
      for (const hostRepo of await o.cache.pushedTo(digest).catch(() => [] as string[])) {
        if (!hostRepo.startsWith(`${client.host}/`) || hostRepo === `${client.host}/${repo}`) continue;
        const from = hostRepo.slice(client.host.length + 1);
        const r = await client.mount(repo, digest, from, [...scopes, `repository:${from}:pull`]).catch((err: unknown) => {
          if (err instanceof RegistryHttpError) return undefined; // the other repository is gone: upload instead
          throw err;
        });
        if (r === true) {
          mountedFrom = from;
          break;
        }
        if (r) openLocation = r;
        break;
      }
    }
  }
  if (alreadyThere) o.onInfo?.(`${client.host}/${repo} already has ${digest}; nothing to upload`);
  else if (mountedFrom) o.onInfo?.(`mounted ${digest} from ${client.host}/${mountedFrom}; nothing uploaded`);
  else {
    const up = await uploadBlob(o, size, scopes, openLocation);
    if (digest && up.digest !== digest) o.onInfo?.(`${o.file} changed since it was last hashed`);
    digest = up.digest;
    bytesUploaded = up.sent;
    // Best effort: a read-only working directory must not fail a push that worked.
    await rememberSha256(o.file, o.stateDir, digest).catch(() => undefined);
  }
  if (!digest) throw new RuntimeFailure('internal: no digest after the upload');
  if ((await client.blobSize(repo, EMPTY_CONFIG_DIGEST, scopes)) === undefined) {
    await client.putSmallBlob(repo, Buffer.from(EMPTY_CONFIG), EMPTY_CONFIG_DIGEST, scopes);
  }
  const manifest = Buffer.from(JSON.stringify(sifManifest({ digest, size, fileName: path.basename(o.file) }, annotations)));
  const manifestDigest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const stored = await client.putManifest(repo, ref.tag, manifest, OCI_MANIFEST, scopes);
  if (stored !== manifestDigest) throw new RuntimeFailure(`${client.host} stored the manifest as ${stored}, but its digest is ${manifestDigest}`);
  await o.cache.recordPush(digest, `${client.host}/${repo}`).catch(() => undefined); // only for later mounts
  return {
    reference: digestRef(ref, manifestDigest),
    digest: manifestDigest,
    layerDigest: digest,
    size,
    seconds: (Date.now() - started) / 1000,
    bytesUploaded,
    alreadyThere,
    mountedFrom: mountedFrom ? `${client.host}/${mountedFrom}` : null,
  };
}

export interface PullOptions extends TransferEvents {
  ref: OrasRef;
  client: RegistryClient;
  output: string;
  force: boolean;
  cache: BlobCache;
  useCache: boolean;
  /**
   * Runs on the digest-checked file before it is placed at `output` (and
   * before a download enters the cache); a throw refuses the image: nothing
   * is left at the output or in a temp file. Runs on a cache hit too: the
   * cache remembers bytes by digest, never that they were trusted.
   */
  check?: (file: string) => Promise<void>;
}

export interface PullResult {
  reference: string;
  output: string;
  /** The manifest digest. */
  digest: string;
  layerDigest: string;
  size: number;
  seconds: number;
  bytesDownloaded: number;
  cached: boolean;
}

/** The manifest and its SIF layer for `ref` (exit 2 when it is something else). */
export async function resolveSif(client: RegistryClient, ref: OrasRef): Promise<{ digest: string; layer: { digest: string; size: number } }> {
  const repo = ref.repository;
  const scopes = [`repository:${repo}:pull`];
  await client.ping(scopes);
  const shown = formatRef(ref);
  const m = await client.getManifest(repo, ref.digest ?? ref.tag ?? 'latest', MANIFEST_ACCEPT, scopes);
  if (!m) throw new InputError(`${shown} not found in the registry`, { hint: `check the repository and tag; \`curl ${client.base}/v2/${repo}/tags/list\` lists the tags` });
  if (ref.digest && m.digest !== ref.digest) throw new RuntimeFailure(`${shown}: the registry sent a manifest whose digest is ${m.digest}`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(m.bytes.toString('utf8'));
  } catch {
    throw new RuntimeFailure(`${shown}: the manifest is not JSON`);
  }
  const layer = sifLayerOf(manifest, m.mediaType, shown);
  return { digest: m.digest, layer: { digest: layer.digest, size: layer.size } };
}

/** File-system errors of writing (a socket's ECONNRESET is the network's, not these). */
const WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EFBIG', 'EIO']);

/** Downloads the blob into `tmp`, hashing and counting; throws (tmp removed) unless digest and size match. */
async function download(o: PullOptions, layer: { digest: string; size: number }, tmp: string, target: string): Promise<number> {
  const { body } = await o.client.getBlob(o.ref.repository, layer.digest, [`repository:${o.ref.repository}:pull`]);
  let n = 0;
  let head = Buffer.alloc(0);
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const c of body) {
      const chunk = c as Buffer;
      n += chunk.length;
      if (n > layer.size) throw new RuntimeFailure(`${formatRef(o.ref)}: the registry sent more than the ${layer.size} bytes the manifest lists`);
      if (head.length < 64) head = Buffer.concat([head, chunk.subarray(0, 64)]);
      o.onBytes?.(n, layer.size);
      yield chunk;
    }
  }
  try {
    let sha256: string;
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      ({ sha256 } = await writeHashed(counted(), fh, { durable: true }));
    } finally {
      await fh.close();
    }
    if (n !== layer.size) throw new RuntimeFailure(`${formatRef(o.ref)}: short download: ${n} of ${layer.size} bytes`, { hint: 'pull again; nothing was written' });
    const got = `sha256:${sha256}`;
    if (got !== layer.digest) {
      throw new RuntimeFailure(`${formatRef(o.ref)}: digest mismatch: expected ${layer.digest}, got ${got}`, { hint: 'the blob on the registry is corrupt or was altered; nothing was written. Push the image again' });
    }
    if (head.subarray(32, 41).toString('latin1') !== MAGIC) throw new RuntimeFailure(`${formatRef(o.ref)}: the layer is not a SIF (no SIF_MAGIC in its header)`);
    return n;
  } catch (err) {
    await fs.rm(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    // Disk full, quota, permissions while writing: the file system's error, naming the directory.
    if (!(err instanceof SifpackError) && WRITE_ERRORS.has(e?.code ?? '')) throw writeFailure(target, err);
    if (err instanceof RegistryNetworkError || (!(err instanceof SifpackError) && !e?.path && !o.client.aborted)) {
      const code = err instanceof RegistryNetworkError ? err.code : e?.code ?? e?.message;
      throw new RuntimeFailure(`${formatRef(o.ref)}: connection lost after ${n} of ${layer.size} bytes (${code})`, { hint: 'pull again; nothing was written', cause: err });
    }
    throw err;
  }
}

/** Runs the caller's check on a fresh download; a refused (or failed) check removes the file. */
async function checkOrRemove(o: PullOptions, tmp: string): Promise<void> {
  if (!o.check) return;
  try {
    await o.check(tmp);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

export async function pullImage(o: PullOptions): Promise<PullResult> {
  const started = Date.now();
  const outDir = path.dirname(o.output);
  if (!(await fs.stat(outDir).then((st) => st.isDirectory(), () => false))) throw new InputError(`-o ${o.output}: the directory ${outDir} does not exist`, { hint: 'create it first, or pick another output path' });
  await refuseOverwrite(o.output, { force: o.force });
  await sweepStaleTemps(o.output); // what a killed pull left beside the target
  const { digest, layer } = await resolveSif(o.client, o.ref);
  let cached = false;
  let bytes = 0;
  const hit = o.useCache ? await o.cache.lookup(layer.digest, layer.size) : undefined;
  if (hit) {
    cached = true;
    await o.check?.(hit);
    const how = await o.cache.place(hit, o.output);
    o.onInfo?.(`${layer.digest} is in the cache (${o.cache.dir}); ${how === 'link' ? 'linked' : 'copied'}, nothing downloaded`);
  } else if (o.useCache) {
    const tmp = await o.cache.tempFor(layer.digest);
    bytes = await download(o, layer, tmp, o.cache.pathOf(layer.digest));
    await checkOrRemove(o, tmp);
    const blob = await o.cache.commit(tmp, layer.digest);
    await o.cache.place(blob, o.output);
  } else {
    const tmp = tempPathFor(o.output);
    bytes = await download(o, layer, tmp, o.output);
    await checkOrRemove(o, tmp);
    await fs.rename(tmp, o.output);
  }
  return { reference: digestRef(o.ref, digest), output: o.output, digest, layerDigest: layer.digest, size: layer.size, seconds: (Date.now() - started) / 1000, bytesDownloaded: bytes, cached };
}

export interface StageOptions extends TransferEvents {
  ref: OrasRef;
  client: RegistryClient;
  cache: BlobCache;
  /** The shared directory jobs read the image from (setting image-dir). */
  dir: string;
  /** Where the hash cache (.sifpack/hashes.json) lives. */
  stateDir: string;
}

export interface StageResult {
  /** The local SIF the job runs. */
  file: string;
  /** HOST/REPO@sha256:MANIFEST. */
  reference: string;
  /** sha256 of the SIF. */
  layerDigest: string;
  size: number;
  /** The file was already in the image directory with this digest: nothing pulled, nothing linked. */
  reused: boolean;
  /** Bytes downloaded (0 when reused or from the blob cache). */
  bytesDownloaded: number;
}

/**
 * Pulls `ref` for jobs, once, into `dir` as NAME_sha256.HEX12.sif: named by
 * the SIF's digest, so a second submit of the same digest finds the file and
 * pulls nothing, and a tag that moves later gets a new file without changing
 * the one queued jobs run. The manifest is resolved once and pulled by digest.
 */
export async function stageImage(o: StageOptions): Promise<StageResult> {
  const resolved = await resolveSif(o.client, o.ref);
  const name = o.ref.repository.split('/').at(-1)!;
  const file = path.join(o.dir, `${name}_sha256.${resolved.layer.digest.slice(7, 19)}.sif`);
  const reference = digestRef(o.ref, resolved.digest);
  const st = await fs.stat(file).catch(() => undefined);
  if (st?.isFile() && st.size === resolved.layer.size) {
    const blob = await fs.stat(o.cache.pathOf(resolved.layer.digest)).catch(() => undefined);
    // A hard link to the cache blob is the verified bytes; anything else is hashed (once: the hash cache remembers it).
    const same = blob?.ino === st.ino && blob.dev === st.dev ? resolved.layer.digest : await cachedSha256(file, o.stateDir);
    if (same === resolved.layer.digest) {
      o.onInfo?.(`${path.basename(file)} is already in ${o.dir} (same sha256); nothing pulled`);
      return { file, reference, layerDigest: resolved.layer.digest, size: resolved.layer.size, reused: true, bytesDownloaded: 0 };
    }
    o.onInfo?.(`${file} does not hold ${resolved.layer.digest}; replacing it`);
  }
  await fs.mkdir(o.dir, { recursive: true });
  const res = await pullImage({ ...o, ref: { host: o.ref.host, repository: o.ref.repository, digest: resolved.digest }, output: file, force: true, useCache: true });
  return { file, reference, layerDigest: res.layerDigest, size: res.size, reused: false, bytesDownloaded: res.bytesDownloaded };
}
