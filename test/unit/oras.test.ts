/**
 * The ORAS pieces without a registry: reference parsing, the manifest
 * shape, telling a SIF from a container image, credential sources, auth
 * challenges and NO_PROXY.
 *
 * The manifest shape is checked against apptainer's own code, read in
 * apptainer/apptainer at tag v1.4.5 (the release installed here) and at main
 * 917d66577963ca297352a22e13c86f1748ddc645:
 * internal/pkg/client/oras/image.go (NewImageFromSIF: the manifest, with its
 * example in the comment; main adds config `data` and a created
 * annotation), config.go (SifConfigMediaTypeV1, the `{}` config,
 * its size 2 and digest), layer.go (SifLayerMediaTypeV1 and the old
 * SifLayerMediaTypeProto), oras.go (DownloadImage: one layer of one of those
 * two types, config type not checked) and internal/pkg/util/uri/uri.go
 * (GetName: NAME_TAG.sif).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { EMPTY_CONFIG_DIGEST, OCI_MANIFEST, SIF_CONFIG, SIF_LAYER, SIF_LAYER_PROTO, sifLayerOf, sifManifest } from '../../src/model/oras-manifest.js';
import { defaultOutputName, formatRef, isLoopbackHost, parseOrasRef } from '../../src/model/oras-ref.js';
import { noProxyCovers, parseChallenge } from '../../src/runtime/registry-client.js';
import { lookupCredentials } from '../../src/runtime/registry-credentials.js';
import { tempDir } from '../helpers.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseOrasRef', () => {
  it('reads host, port, repository, tag and digest, with or without oras://', () => {
    expect(parseOrasRef('oras://127.0.0.1:5000/lab/x:1')).toEqual({ host: '127.0.0.1:5000', repository: 'lab/x', tag: '1' });
    expect(parseOrasRef('ghcr.io/my-lab/deep/analysis')).toEqual({ host: 'ghcr.io', repository: 'my-lab/deep/analysis', tag: 'latest' });
    expect(parseOrasRef(`localhost/x@${D}`)).toEqual({ host: 'localhost', repository: 'x', digest: D });
    expect(formatRef(parseOrasRef('oras://h.io/a/b'))).toBe('h.io/a/b:latest');
  });
  it.each([
    ['docker://ghcr.io/a/b:1', /not an ORAS reference.*docker:\/\//],
    ['oras://analysis:1', /needs a registry host/],
    ['oras://lab/analysis:1', /"lab" is not a registry host/],
    ['oras://h.io/Lab/x:1', /"Lab" is not a valid path component/],
    ['oras://h.io/x:-bad', /not a valid tag/],
    ['oras://h.io/x@sha256:abc', /not a sha256 digest/],
    ['oras://h.io/x y:1', /whitespace/],
  ])('refuses %s with a message saying why (exit 2)', (input, why) => {
    let err: unknown;
    try {
      parseOrasRef(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(why);
    expect((err as InputError).hint).toMatch(/oras:\/\/HOST/);
  });
  it('names the pulled file like apptainer pull (uri.GetName): NAME_TAG.sif', () => {
    expect(defaultOutputName(parseOrasRef('oras://h.io/lab/analysis:1.0'))).toBe('analysis_1.0.sif');
    expect(defaultOutputName(parseOrasRef('oras://h.io/lab/analysis'))).toBe('analysis_latest.sif');
    expect(defaultOutputName(parseOrasRef(`oras://h.io/lab/analysis@${D}`))).toBe('analysis_sha256.aaaaaaaaaaaa.sif');
  });
  it('uses plain HTTP for loopback registries only', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('[::1]:5000')).toBe(true);
    expect(isLoopbackHost('127.0.0.1.example.org')).toBe(false);
    expect(isLoopbackHost('ghcr.io')).toBe(false);
  });
});

describe('the ORAS manifest (apptainer internal/pkg/client/oras/image.go)', () => {
  it('is field for field what NewImageFromSIF writes (v1.4.5), in the same byte order', () => {
    const m = sifManifest({ digest: D, size: 29814784, fileName: 'ubuntu_latest.sif' });
    expect(JSON.stringify(m)).toBe(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
        '"config":{"mediaType":"application/vnd.sylabs.sif.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},' +
        `"layers":[{"mediaType":"application/vnd.sylabs.sif.layer.v1.sif","size":29814784,"digest":"${D}","annotations":{"org.opencontainers.image.title":"ubuntu_latest.sif"}}]}`,
    );
    // config.go: emptyConfigDigest is the sha256 of "{}".
    expect(`sha256:${createHash('sha256').update('{}').digest('hex')}`).toBe(EMPTY_CONFIG_DIGEST);
    expect(m.config.mediaType).toBe(SIF_CONFIG);
    expect(m.mediaType).toBe(OCI_MANIFEST);
    // sifpack's own annotations go at the top level, where apptainer main puts --annotation ones.
    expect(sifManifest({ digest: D, size: 1, fileName: 'a.sif' }, { 'io.sifpack.env-hash': 'x' }).annotations).toEqual({ 'io.sifpack.env-hash': 'x' });
  });

  it('accepts one SIF layer of either media type apptainer pulls (oras.go DownloadImage)', () => {
    for (const t of [SIF_LAYER, SIF_LAYER_PROTO]) {
      expect(sifLayerOf({ layers: [{ mediaType: t, digest: D, size: 3 }], config: { mediaType: 'whatever' } }, OCI_MANIFEST, 'h/x:1')).toMatchObject({ digest: D });
    }
  });

  it('turns a container image away with exit 2 and the docker:// hint', () => {
    const docker = {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: D, size: 10 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: D, size: 10 }],
    };
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
    for (const [m, msg] of [[docker, /is not a SIF: 1 layer\(s\) of type application\/vnd.docker.image.rootfs.diff.tar.gzip/], [index, /multi-platform image index/]] as const) {
      try {
        sifLayerOf(m, undefined, 'h.io/x:1');
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(InputError);
        expect((err as InputError).exitCode).toBe(2);
        expect((err as InputError).message).toMatch(msg);
        expect((err as InputError).hint).toContain('apptainer pull docker://h.io/x:1');
      }
    }
  });
  it('refuses a SIF layer with a malformed digest', () => {
    expect(() => sifLayerOf({ layers: [{ mediaType: SIF_LAYER, digest: 'md5:x', size: 1 }] }, undefined, 'h/x:1')).toThrow(/malformed/);
  });
});

describe('credentials', () => {
  const pw = 's3cret-Pa55';
  it('come from the sources in the documented order', async () => {
    const home = await tempDir();
    try {
      await fs.mkdir(path.join(home, '.docker'));
      await fs.mkdir(path.join(home, '.apptainer'));
      const auth = Buffer.from(`docker-user:${pw}`).toString('base64');
      await fs.writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://reg.example.org:5000/v1/': { auth } } }));
      await fs.writeFile(path.join(home, '.apptainer', 'docker-config.json'), JSON.stringify({ auths: { 'reg.example.org:5000': { username: 'app-user', password: pw } } }));
      const host = 'reg.example.org:5000';
      const env = { HOME: home };
      expect((await lookupCredentials(host, { username: 'flag-user', password: pw, env: { ...env, SIFPACK_REGISTRY_USERNAME: 'x', SIFPACK_REGISTRY_PASSWORD: 'y' } })).credentials?.toJSON()).toEqual({ username: 'flag-user', source: '--username/--password-stdin' });
      expect((await lookupCredentials(host, { env: { ...env, SIFPACK_REGISTRY_USERNAME: 'env-user', SIFPACK_REGISTRY_PASSWORD: pw, APPTAINER_DOCKER_USERNAME: 'a', APPTAINER_DOCKER_PASSWORD: 'b' } })).credentials?.username).toBe('env-user');
      expect((await lookupCredentials(host, { env: { ...env, APPTAINER_DOCKER_USERNAME: 'app-env', APPTAINER_DOCKER_PASSWORD: pw } })).credentials?.username).toBe('app-env');
      const fromDocker = (await lookupCredentials(host, { env })).credentials!;
      expect(fromDocker.username).toBe('docker-user');
      expect(fromDocker.source).toContain(path.join(home, '.docker', 'config.json'));
      expect(fromDocker.basic()).toBe(`Basic ${auth}`);
      await fs.rm(path.join(home, '.docker', 'config.json'));
      expect((await lookupCredentials(host, { env })).credentials?.username).toBe('app-user');
      const none = await lookupCredentials('other.example.org', { env });
      expect(none.credentials).toBeUndefined();
      expect(none.tried).toEqual(['SIFPACK_REGISTRY_USERNAME/SIFPACK_REGISTRY_PASSWORD', 'APPTAINER_DOCKER_USERNAME/APPTAINER_DOCKER_PASSWORD', path.join(home, '.docker', 'config.json'), path.join(home, '.apptainer', 'docker-config.json')]);
      // DOCKER_CONFIG points elsewhere
      await fs.mkdir(path.join(home, 'dc'));
      await fs.writeFile(path.join(home, 'dc', 'config.json'), JSON.stringify({ auths: { 'reg.example.org:5000': { auth } } }));
      expect((await lookupCredentials(host, { env: { ...env, DOCKER_CONFIG: path.join(home, 'dc') } })).credentials?.username).toBe('docker-user');
    } finally {
      await fs.rm(home, { recursive: true, force: true });
    }
  });
  it('never show the password in JSON, inspect or string form', async () => {
    const c = (await lookupCredentials('h.io', { username: 'u', password: pw, env: {} })).credentials!;
    expect(JSON.stringify({ c })).not.toContain(pw);
    expect(inspect(c, { showHidden: true, depth: 5 })).not.toContain(pw);
    expect(String(c)).not.toContain(pw);
  });
  it('--username without a password is a usage error', async () => {
    await expect(lookupCredentials('h.io', { username: 'u', env: {} })).rejects.toThrow(/--username and --password-stdin go together/);
  });
});

describe('auth challenge and proxy rules', () => {
  it('parses a Bearer challenge with quoted, comma-holding values', () => {
    expect(parseChallenge('Bearer realm="https://auth.example.org/token",service="registry.example.org",scope="repository:lab/x:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example.org/token', service: 'registry.example.org', scope: 'repository:lab/x:pull,push' },
    });
    expect(parseChallenge('Basic realm="sifpack-test"').scheme).toBe('basic');
  });
  it('NO_PROXY covers hosts, domains, host:port and *', () => {
    expect(noProxyCovers('reg.example.org:5000', 'localhost,.example.org')).toBe(true);
    expect(noProxyCovers('example.org', 'example.org')).toBe(true);
    expect(noProxyCovers('reg.example.org:5000', 'reg.example.org:5000')).toBe(true);
    expect(noProxyCovers('reg.example.org:5000', 'other.org, 10.0.0.1')).toBe(false);
    expect(noProxyCovers('anything', '*')).toBe(true);
    expect(noProxyCovers('notexample.org', 'example.org')).toBe(false);
  });
});
