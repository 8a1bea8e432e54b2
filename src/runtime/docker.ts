/**
 * The Docker engine through dockerode (DOCKER_HOST honoured, so Podman's
 * Docker-compatible socket works too). One small interface, so workflows
 * take an engine as an argument and tests can pass the real one.
 */
import os from 'node:os';
import type Docker from 'dockerode';
import { createRequire } from 'node:module';
import http from 'node:http';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { InputError, RuntimeFailure } from '../errors.js';
import type { ImageConfig } from '../sif/rootfs-metadata.js';
import { readBuildStream } from './docker-build-stream.js';

/**
 * dockerode (with ssh2 and its friends) costs a fifth of a CPU second to
 * load: loaded on first use, so commands that never talk to Docker (push,
 * pull, sbatch, status) start faster.
 */
let dockerode: typeof Docker | undefined;
function Dockerode(): typeof Docker {
  dockerode ??= createRequire(import.meta.url)('dockerode') as typeof Docker;
  return dockerode;
}

export interface ImageInfo {
  id: string;
  config: ImageConfig;
  /** Go arch name: amd64, arm64, ... */
  architecture: string;
  os: string;
  size: number;
}

export interface BuildOptions {
  tag: string;
  labels: Record<string, string>;
  onLine: (line: string) => void;
  /** The build containers' network (`none` where the engine has no bridge); default: the engine's. */
  network?: string;
  signal?: AbortSignal;
}

export interface DockerEngine {
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /**
   * Creates a container (never started), hands its flattened filesystem to `use`, removes it on every path.
   * `readFile` reads one small file of it first (undefined when absent), e.g. metadata written before the stream.
   */
  withExport<T>(ref: string, use: (tar: Readable, readFile: (file: string) => Promise<Buffer | undefined>) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Builds an image from a tar context; resolves with the image id, rejects on the build's own errors. */
  build(context: Readable, opts: BuildOptions): Promise<string>;
  /** Streams `docker save` of an image. */
  save(ref: string): Promise<Readable>;
  removeImage(ref: string): Promise<void>;
}

function engineError(err: unknown, what: string): RuntimeFailure {
  const e = err as { code?: string; message?: string; statusCode?: number; json?: { message?: string } };
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES') {
    return new RuntimeFailure(`cannot reach the Docker engine (${e.code}) to ${what}`, { hint: 'start Docker, or point DOCKER_HOST at its socket (Podman: unix://$XDG_RUNTIME_DIR/podman/podman.sock)' });
  }
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.message === 'aborted' || e.message === 'socket hang up') {
    return new RuntimeFailure(`Docker engine: ${what} failed: the engine broke off the connection (${e.message ?? e.code}); it may have stopped or crashed`, { hint: 'check that Docker runs (`docker info`), then run the command again; nothing was written' });
  }
  return new RuntimeFailure(`Docker engine: ${what} failed: ${e.json?.message ?? e.message ?? String(err)}`);
}

const MAX_FILE = 1 << 20;

/** One regular file of a container (through the archive API), at most 1 MiB; undefined when absent. */
async function readContainerFile(container: Docker.Container, file: string): Promise<Buffer | undefined> {
  let archive: Readable;
  try {
    archive = (await container.getArchive({ path: file })) as unknown as Readable;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw engineError(err, `read ${file}`);
  }
  const extract = tar.extract();
  archive.pipe(extract);
  // The archive of one path: its first entry is the file (or what stands there instead).
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of entry) {
      size += (chunk as Buffer).length;
      if (size <= MAX_FILE) chunks.push(chunk as Buffer);
    }
    return entry.header.type === 'file' && size <= MAX_FILE ? Buffer.concat(chunks) : undefined;
  }
  return undefined;
}

export class DockerodeEngine implements DockerEngine {
  readonly docker: Docker;
  constructor(docker: Docker = new (Dockerode())()) {
    this.docker = docker;
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    try {
      const i = await this.docker.getImage(ref).inspect();
      return { id: i.Id, config: i.Config as ImageConfig, architecture: i.Architecture, os: i.Os, size: i.Size };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw engineError(err, `inspect ${ref}`);
    }
  }

  async withExport<T>(ref: string, use: (tar: Readable, readFile: (file: string) => Promise<Buffer | undefined>) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let container: Docker.Container;
    try {
      // Never started: the entrypoint only has to be non-empty for create to accept it.
      await this.removeStaleExports();
      const Labels = { 'sifpack.export': '1', 'sifpack.pid': String(process.pid), 'sifpack.host': os.hostname() };
      container = await this.docker.createContainer({ Image: ref, Entrypoint: ['/sifpack-export'], Cmd: [], NetworkDisabled: true, Labels, HostConfig: { NetworkMode: 'none' } });
    } catch (err) {
      throw engineError(err, `create a container from ${ref}`);
    }
    const remove = () => container.remove({ force: true }).catch(() => undefined);
    const onAbort = () => void remove();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const readFile = (file: string) => readContainerFile(container, file);
      let stream: Readable;
      try {
        stream = (await container.export()) as unknown as Readable;
      } catch (err) {
        throw engineError(err, `export ${ref}`);
      }
      // The engine dying mid-export breaks the response ("aborted"); what fails
      // further down (a broken pipe into mksquashfs) is a symptom: name the cause.
      // The response also breaks when the consumer gives up (disk full), so the
      // engine is blamed only when it no longer answers.
      let exportError: Error | undefined;
      stream.on('error', (err: Error) => (exportError ??= err));
      try {
        return await use(stream, readFile);
      } catch (err) {
        if (exportError && !signal?.aborted && !(await pingEngine(this.docker, 3000).then(() => true, () => false))) throw engineError(exportError, `export ${ref}`);
        throw err;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await remove();
    }
  }

  /**
   * Export containers that a killed sifpack run on this host left behind (its
   * PID is gone): removed, so SIGKILL during convert leaves no lasting debris.
   */
  private async removeStaleExports(): Promise<void> {
    const list = await this.docker.listContainers({ all: true, filters: { label: ['sifpack.export=1'] } }).catch(() => []);
    for (const c of list) {
      const pid = Number(c.Labels?.['sifpack.pid']);
      if (c.Labels?.['sifpack.host'] !== os.hostname() || !Number.isInteger(pid) || pid === process.pid) continue;
      let gone = false;
      try {
        process.kill(pid, 0);
      } catch (err) {
        gone = (err as NodeJS.ErrnoException).code === 'ESRCH';
      }
      if (gone) await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
  }

  async build(context: Readable, opts: BuildOptions): Promise<string> {
    let stream: Readable;
    try {
      stream = (await this.docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: opts.tag, labels: opts.labels, rm: true, forcerm: true, ...(opts.network ? { networkmode: opts.network } : {}), ...(opts.signal ? { abortSignal: opts.signal } : {}) })) as unknown as Readable;
    } catch (err) {
      throw engineError(err, 'start the build');
    }
    const { imageId } = await readBuildStream(stream, opts.onLine);
    return imageId;
  }

  async save(ref: string): Promise<Readable> {
    try {
      return (await this.docker.getImage(ref).get()) as unknown as Readable;
    } catch (err) {
      throw engineError(err, `save ${ref}`);
    }
  }

  async removeImage(ref: string): Promise<void> {
    await this.docker.getImage(ref).remove({ force: true }).catch(() => undefined);
  }
}

/** Fails with exit 2 when the image is not in the engine. */
export async function requireImage(engine: DockerEngine, ref: string): Promise<ImageInfo> {
  const info = await engine.inspectImage(ref);
  if (!info) throw new InputError(`no image ${ref} in the Docker engine`, { hint: '`docker images` lists them; build or pull it first' });
  return info;
}

export interface EngineAnswer {
  version: string;
  apiVersion: string;
  arch: string;
}

/**
 * Asks the engine for its version within `timeoutMs`; the request is
 * aborted on timeout, so a hung socket cannot keep the process alive.
 * Rejects with a RuntimeFailure saying why it got no answer.
 */
export async function pingEngine(docker: Docker, timeoutMs: number): Promise<EngineAnswer> {
  const signal = AbortSignal.timeout(timeoutMs);
  const opts = { abortSignal: signal } as never;
  try {
    // GET /version answers like a ping, with what doctor reports.
    const v = await (docker.version as (o: never) => Promise<Docker.DockerVersion>)(opts);
    return { version: v.Version, apiVersion: v.ApiVersion, arch: v.Arch };
  } catch (err) {
    if (signal.aborted) throw new RuntimeFailure(`no answer within ${timeoutMs / 1000}s`);
    throw engineError(err, 'answer a ping');
  }
}

/**
 * A client for the engine DOCKER_HOST names. On a unix socket it does not
 * keep idle connections: Node's default agent holds them open for 5 s, which
 * kept short commands (doctor, a cached run) alive that long after their work.
 */
export function dockerClient(env: NodeJS.ProcessEnv = process.env): Docker {
  const host = env.DOCKER_HOST ?? '';
  return host === '' || host.startsWith('unix://') ? new (Dockerode())({ agent: new http.Agent({ keepAlive: false }) } as Docker.DockerOptions) : new (Dockerode())();
}
