/**
 * The real Apptainer (1.4.5, installed by test/services/install-apptainer.sh)
 * for integration tests: run it as root or as an unprivileged user, and make
 * Docker images with any config (an ENV no Dockerfile can write, e.g. with a
 * newline) by rewriting a saved image's config and loading it back.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { service } from '../helpers.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The apptainer binary (SIFPACK_TEST_APPTAINER); missing fails the test, never skips it. */
export function apptainerBin(): string {
  return service('SIFPACK_TEST_APPTAINER');
}

/** An unprivileged user for the non-root runs, created once (needs root, as the suite runs here). */
export const TEST_USER = 'sifpack-test';

export function ensureTestUser(): void {
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', TEST_USER]);
  }
}

/**
 * Runs apptainer with a small, fixed environment (so the host's variables do
 * not decide the outcome) plus `env`. `asUser`: through runuser as TEST_USER,
 * with APPTAINER_UNSQUASH=1 because /dev/fuse is 0600 here (FACTS.md).
 */
export function apptainer(args: string[], opts: { cwd?: string; env?: Record<string, string>; asUser?: boolean; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  const base: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
  if (process.env.DOCKER_HOST) base.DOCKER_HOST = process.env.DOCKER_HOST;
  const env = { ...base, HOME: opts.asUser ? `/home/${TEST_USER}` : '/root', ...opts.env };
  const [cmd, argv] = opts.asUser
    ? ['runuser', ['-u', TEST_USER, '--', 'env', '-i', ...Object.entries({ ...env, APPTAINER_UNSQUASH: '1' }).map(([k, v]) => `${k}=${v}`), apptainerBin(), ...args]]
    : [apptainerBin(), args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv as string[], { cwd: opts.cwd ?? '/', env: opts.asUser ? { PATH: base.PATH } : env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** apptainer build OUT docker-daemon://IMAGE: apptainer's own conversion, the reference. */
export async function apptainerConvert(image: string, out: string): Promise<void> {
  const r = await apptainer(['build', '--force', out, `docker-daemon://${image}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`apptainer build ${out} docker-daemon://${image} failed (${r.code}):\n${r.stderr.slice(-2000)}`);
  await fs.chmod(out, 0o644);
}

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * Loads `base` back into the engine as `tag` with its config changed by
 * `edit` (docker save → rewrite the config JSON and manifest → docker load).
 * The layers are untouched, so their digests still match.
 */
export async function loadWithConfig(docker: Docker, base: string, tag: string, edit: (config: Record<string, unknown>) => void): Promise<void> {
  const saved = (await docker.getImage(base).get()) as unknown as Readable;
  const files = new Map<string, { header: tar.Header; data: Buffer }>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      readAll(stream as unknown as Readable).then((data) => {
        files.set(header.name, { header, data });
        next();
      }, reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  saved.pipe(extract);
  await done;
  const manifest = JSON.parse(files.get('manifest.json')!.data.toString()) as { Config: string; RepoTags: string[] | null; Layers: string[] }[];
  const m = manifest[0]!;
  const doc = JSON.parse(files.get(m.Config)!.data.toString()) as { config: Record<string, unknown> };
  edit(doc.config);
  const configData = Buffer.from(JSON.stringify(doc));
  const configName = `${createHash('sha256').update(configData).digest('hex')}.json`;
  files.delete(m.Config);
  files.delete('repositories');
  const newManifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: m.Layers }]));
  const pack = tar.pack();
  for (const [name, f] of files) if (name !== 'manifest.json') pack.entry({ ...f.header, name }, f.data);
  pack.entry({ name: configName, mode: 0o644 }, configData);
  pack.entry({ name: 'manifest.json', mode: 0o644 }, newManifest);
  pack.finalize();
  const body = new PassThrough();
  (pack as unknown as Readable).pipe(body);
  const res = (await docker.loadImage(body)) as unknown as Readable;
  const out = (await readAll(res)).toString();
  if (/"error"/.test(out)) throw new Error(`docker load ${tag}: ${out}`);
}
