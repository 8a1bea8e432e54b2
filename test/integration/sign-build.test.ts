/**
 * `convert --sign` and `build --sign` against the real Docker engine, checked
 * by Sylabs' siftool and the real apptainer 1.4.5 (`verify --key`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, service, tempDir } from '../helpers.js';
import { sifpack } from '../e2e/cli.js';

const KEY = (f: string) => path.join(ROOT, 'test', 'fixtures', 'signing', 'keys', f);

/** The real apptainer, from test/services/start.sh; unset is a failure, not a skip. */
const apptainer = (): string => service('SIFPACK_TEST_APPTAINER');

let dir: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none' };
  dir = await tempDir('sifpack-sign-build-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
  spawnSync('docker', ['rmi', '-f', 'issue18-signed/tool:1'], { env: { ...process.env, ...env } });
});

describe('signing as the last step', { timeout: 300_000 }, () => {
  it('convert --sign --key (ed25519): apptainer verify --key accepts it, siftool lists the signature on group 1', async () => {
    const out = path.join(dir, 'bb.sif');
    const r = await sifpack(['convert', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '-o', out, '--sign', '--key', KEY('ed25519-private.pem'), '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { size: number; signed: { signer: string; signatures: number[] } };
    expect(res.signed).toEqual({ signer: 'SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs', signatures: [expect.any(Number)] });
    expect(res.size).toBe((await fs.stat(out)).size);
    expect(execFileSync('siftool', ['list', out]).toString()).toMatch(new RegExp(`^${res.signed.signatures[0]}\\s+\\|NONE\\s+\\|1\\s+\\(G\\)\\s+\\|\\d+-\\d+\\s+\\|Signature \\(SHA-256\\)$`, 'm'));
    const v = spawnSync(apptainer(), ['verify', '--key', KEY('ed25519-public.pem'), out], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
  });

  it('convert --sign without --key, or --key without --sign: exit 2 before any work', async () => {
    const a = await sifpack(['convert', 'whatever:1', '-o', path.join(dir, 'x.sif'), '--sign'], { env });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--sign needs --key');
    const b = await sifpack(['convert', 'whatever:1', '-o', path.join(dir, 'x.sif'), '--key', KEY('ed25519-private.pem')], { env });
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--key is given without --sign');
    expect(existsSync(path.join(dir, 'x.sif'))).toBe(false);
  });

  it('build --sign --key (OpenPGP) signs; a cache-hit rebuild does not add a second signature', async () => {
    const prefix = path.join(dir, 'envs', 'signed');
    await fs.mkdir(path.join(prefix, 'conda-meta'), { recursive: true });
    await fs.mkdir(path.join(prefix, 'bin'), { recursive: true });
    await fs.writeFile(path.join(prefix, 'conda-meta', 'tool-1.0-0.json'), JSON.stringify({ name: 'tool', version: '1.0', build: '0', subdir: 'noarch', depends: [] }));
    await fs.writeFile(path.join(prefix, 'bin', 'tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
    const args = ['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--tag', 'issue18-signed/tool:1', '-o', 'signed.sif', '--sign', '--key', KEY('private.asc'), '--json'];
    const r = await sifpack(args, { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const first = JSON.parse(r.stdout) as { sha256: string; signed: { signer: string; signatures: number[] } };
    expect(first.signed.signer).toBe('12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84');
    const img = path.join(dir, 'signed.sif');
    expect(first.sha256).toBe(`sha256:${execFileSync('sha256sum', [img]).toString().split(' ')[0]}`);
    const v = await sifpack(['verify', img, '--key', KEY('private.asc')]);
    expect(v.code, v.stdout).toBe(0);
    const again = await sifpack(args, { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ cached: true, signed: { signatures: first.signed.signatures } });
    expect(again.stderr).toContain('already carries a signature by 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84');
    const sigs = execFileSync('siftool', ['list', img]).toString().split('\n').filter((l) => l.includes('Signature'));
    expect(sigs).toHaveLength(1);
  });
});
