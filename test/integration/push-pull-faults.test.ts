/**
 * Push/pull faults against a private docker-registry this file starts
 * (registry-harness.ts), so it can be killed mid-upload and its blobs
 * tampered with on disk without touching the shared services; and a 500 MiB
 * round trip through the CLI with the Node process's peak memory measured.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuntimeFailure } from '../../src/errors.js';
import { parseOrasRef } from '../../src/model/oras-ref.js';
import { BlobCache } from '../../src/runtime/blob-cache.js';
import { RegistryClient } from '../../src/runtime/registry-client.js';
import { pushImage } from '../../src/workflows/share.js';
import { CLI, sifpack } from '../e2e/cli.js';
import { makeSif } from '../fixtures/sif-maker.js';
import { tempDir, peakRss } from '../helpers.js';
import { PrivateRegistry } from './registry-harness.js';

const MiB = 1024 * 1024;
let dir: string;
let env: NodeJS.ProcessEnv;
let reg: PrivateRegistry;
const exists = (p: string) => fs.stat(p).then(() => true, () => false);

beforeAll(async () => {
  dir = await tempDir('sifpack-oras-faults-');
  await fs.mkdir(path.join(dir, 'home'));
  env = { HOME: path.join(dir, 'home'), XDG_CACHE_HOME: path.join(dir, 'cache') };
  reg = new PrivateRegistry(path.join(dir, 'registry'));
  await reg.start();
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});


function client(): RegistryClient {
  return new RegistryClient({ host: reg.host, plainHttp: true, userAgent: 'sifpack-test', env: {} });
}

describe('faults', { timeout: 300_000 }, () => {
  it('a tampered blob on the registry disk: pull fails with exit 1 naming both digests, no file, nothing cached', async () => {
    const sif = await makeSif(path.join(dir, 'tamper.sif'), 2 * MiB);
    const ref = `oras://${reg.host}/issue13/tamper:1`;
    const push = await sifpack(['push', sif, ref, '--json'], { cwd: dir, env });
    expect(push.code, push.stderr).toBe(0);
    const { layerDigest } = JSON.parse(push.stdout);
    const blob = reg.blobPath(layerDigest);
    const bytes = await fs.readFile(blob);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff; // same size, different content
    await fs.writeFile(blob, bytes);
    for (const extra of [[], ['--no-cache']]) {
      const r = await sifpack(['pull', ref, '-o', 'tampered.sif', ...extra], { cwd: dir, env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`digest mismatch: expected ${layerDigest}, got sha256:[a-f0-9]{64}`));
      expect(await exists(path.join(dir, 'tampered.sif'))).toBe(false);
    }
    const left = await fs.readdir(dir);
    expect(left.filter((f) => f.includes('tampered'))).toEqual([]);
    const cacheDir = path.join(dir, 'cache', 'sifpack', 'blobs', 'sha256');
    expect((await fs.readdir(cacheDir).catch(() => [])).filter((f) => f.includes(layerDigest.slice(7)))).toEqual([]);
  });

  it('the registry down between chunks and back: the push resumes from the offset it reports (GET upload URL, Range)', async () => {
    const sif = await makeSif(path.join(dir, 'resume.sif'), 64 * MiB);
    const size = (await fs.stat(sif)).size;
    const notes: string[] = [];
    let restarted: Promise<void> | undefined;
    const res = await pushImage({
      file: sif,
      ref: parseOrasRef(`oras://${reg.host}/issue13/resume:1`),
      client: client(),
      cache: new BlobCache(path.join(dir, 'cache-resume')),
      stateDir: dir,
      chunkSize: 16 * MiB,
      retryDelayMs: 1000,
      onInfo: (m) => notes.push(m),
      onChunk: async (confirmed) => {
        if (confirmed === 32 * MiB && !restarted) {
          await reg.kill();
          restarted = new Promise((r) => setTimeout(r, 1500)).then(() => reg.start());
        }
      },
    });
    await restarted;
    expect(notes.some((n) => /connection to .* failed \(ECONNREFUSED\)/.test(n)), notes.join('\n')).toBe(true);
    expect(notes).toContain(`resuming the upload at byte ${32 * MiB} of ${size}`);
    expect(res.bytesUploaded).toBe(size); // nothing sent twice
    const pull = await sifpack(['pull', `oras://${reg.host}/issue13/resume:1`, '-o', 'resumed.sif', '--no-cache'], { cwd: dir, env });
    expect(pull.code, pull.stderr).toBe(0);
    execFileSync('cmp', [sif, path.join(dir, 'resumed.sif')]);
  });

  it('the registry killed in the middle of a chunk and restarted: the upload starts over and the bytes arrive whole', async () => {
    const sif = await makeSif(path.join(dir, 'restart.sif'), 64 * MiB);
    const size = (await fs.stat(sif)).size;
    const notes: string[] = [];
    let killed = false;
    let restarted: Promise<void> | undefined;
    const res = await pushImage({
      file: sif,
      ref: parseOrasRef(`oras://${reg.host}/issue13/restart:1`),
      client: client(),
      cache: new BlobCache(path.join(dir, 'cache-restart')),
      stateDir: dir,
      chunkSize: 16 * MiB,
      retryDelayMs: 1500,
      onInfo: (m) => notes.push(m),
      onBytes: (done) => {
        if (!killed && done > 40 * MiB) {
          killed = true;
          restarted = reg.kill().then(() => reg.start());
        }
      },
    });
    await restarted;
    expect(killed).toBe(true);
    // distribution 2.8 (registry/handlers/blobupload.go, ResumeBlobUpload) cancels an
    // upload whose data outgrew the offset in its state token, which a chunk cut off
    // midway leaves behind; so the client starts over rather than resuming.
    expect(notes.some((n) => n.startsWith('the registry dropped the upload')), notes.join('\n')).toBe(true);
    expect(res.bytesUploaded).toBeGreaterThan(size);
    const pull = await sifpack(['pull', `oras://${reg.host}/issue13/restart:1`, '-o', 'restarted.sif', '--no-cache'], { cwd: dir, env });
    expect(pull.code, pull.stderr).toBe(0);
    execFileSync('cmp', [sif, path.join(dir, 'restarted.sif')]);
  });

  it('the registry killed and not coming back: a clean failure that says how much was sent', async () => {
    const sif = await makeSif(path.join(dir, 'dead.sif'), 64 * MiB);
    const size = (await fs.stat(sif)).size;
    let killed = false;
    let err: unknown;
    try {
      await pushImage({
        file: sif,
        ref: parseOrasRef(`oras://${reg.host}/issue13/dead:1`),
        client: client(),
        cache: new BlobCache(path.join(dir, 'cache-dead')),
        stateDir: dir,
        chunkSize: 8 * MiB,
        retries: 3,
        retryDelayMs: 100,
        onBytes: (done) => {
          if (!killed && done > size / 2) {
            killed = true;
            void reg.kill();
          }
        },
      });
    } catch (e) {
      err = e;
    } finally {
      await reg.start();
    }
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect((err as RuntimeFailure).exitCode).toBe(1);
    expect((err as Error).message).toMatch(new RegExp(`upload of dead.sif to ${reg.host}/issue13/dead failed after 4 attempts in a row: \\d+ bytes sent, \\d+ of ${size} confirmed by the registry`));
  });

  it('HTTPS is the default: talking TLS to a plain-HTTP registry fails with the --plain-http hint', async () => {
    const tls = new RegistryClient({ host: reg.host, plainHttp: false, userAgent: 'sifpack-test', env: {} });
    let err: unknown;
    try {
      await tls.ping(['repository:issue13/x:pull']);
    } catch (e) {
      err = e;
    } finally {
      await tls.close();
    }
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect((err as RuntimeFailure).message).toContain(`cannot talk TLS to ${reg.host}`);
    expect((err as RuntimeFailure).hint).toContain('--plain-http');
  });

  it(`a 500 MiB SIF round trip through the CLI with the Node process's memory flat`, async () => {
    const sif = await makeSif(path.join(dir, 'big.sif'), 500 * MiB);
    const ref = `oras://${reg.host}/issue13/big-${randomBytes(3).toString('hex')}:1`;
    const run = (args: string[]) => peakRss(spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { PATH: process.env.PATH, ...env } }));
    const push = await run(['push', sif, ref, '--json']);
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ bytesUploaded: (await fs.stat(sif)).size, alreadyThere: false });
    const pull = await run(['pull', ref, '-o', 'big-back.sif', '--json']);
    expect(pull.code, pull.stderr).toBe(0);
    execFileSync('cmp', [sif, path.join(dir, 'big-back.sif')]);
    // Flat: a streamed 500 MiB transfer stays far below the file size (Node itself is ~50 MB).
    expect(push.peakKb).toBeGreaterThan(0);
    expect(push.peakKb / 1024).toBeLessThan(150);
    expect(pull.peakKb / 1024).toBeLessThan(150);
    console.log(`500 MiB: push ${JSON.parse(push.stdout).seconds}s peak ${(push.peakKb / 1024).toFixed(0)} MB; pull ${JSON.parse(pull.stdout).seconds}s peak ${(pull.peakKb / 1024).toFixed(0)} MB`);
  });
});
