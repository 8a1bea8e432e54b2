/**
 * A small OCI distribution API client: just what pushing and pulling one
 * SIF needs (blobs: HEAD, mount, chunked upload with resume, GET; manifests:
 * PUT, GET). HTTP through undici, streaming both ways, so memory stays flat
 * whatever the image size. HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured.
 *
 * Auth follows the registry's challenge (distribution's token auth spec):
 * anonymous first; a `Basic` challenge gets the user's credentials; a
 * `Bearer realm=..,service=..,scope=..` challenge gets a token from the realm,
 * with the credentials when there are any. Tokens are kept per scope.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { InputError, RuntimeFailure } from '../errors.js';
import type { Credentials } from './registry-credentials.js';

export interface RegistryClientOptions {
  host: string;
  plainHttp: boolean;
  credentials?: Credentials | undefined;
  /** Credential sources looked at, named in a 401 message. */
  credentialSources?: string[];
  userAgent: string;
  signal?: AbortSignal;
  /** For HTTPS_PROXY / HTTP_PROXY / NO_PROXY (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The connection failed (refused, reset, timed out): the caller may retry. */
export class RegistryNetworkError extends Error {
  constructor(readonly host: string, readonly code: string, cause: unknown) {
    super(`${host}: ${code}`, { cause });
  }
}

/** The registry answered with an unexpected status. */
export class RegistryHttpError extends RuntimeFailure {
  constructor(readonly status: number, message: string, hint?: string) {
    super(message, hint ? { hint } : {});
  }
}

interface SendOptions {
  scopes: string[];
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  /** Statuses that are not errors. */
  ok: number[];
  what: string;
}

type Response = Dispatcher.ResponseData;

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `Bearer realm="x",service="y",scope="a b"` → { scheme, params }. */
export function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(value);
  const params: Record<string, string> = {};
  if (!m) return { scheme: '', params };
  const re = /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Whether NO_PROXY (comma list of hosts, .domains, host:port, or *) covers `host`. */
export function noProxyCovers(host: string, noProxy: string | undefined): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  for (const raw of (noProxy ?? '').split(/[,\s]+/)) {
    const e = raw.trim().toLowerCase();
    if (!e) continue;
    if (e === '*') return true;
    if (e.includes(':') && e === host.toLowerCase()) return true;
    const d = e.replace(/:\d+$/, '').replace(/^\*?\./, '');
    if (name === d || name.endsWith(`.${d}`)) return true;
  }
  return false;
}

/** A direct agent, or a proxy agent when HTTPS_PROXY/HTTP_PROXY apply to this host (as curl and Docker read them). */
type Undici = Pick<typeof import('undici'), 'Agent' | 'ProxyAgent' | 'request'>;
let undici: Promise<Undici> | undefined;
// Loaded on the first request: importing undici costs ~0.15 s, which every other command would pay at start-up.
const loadUndici = () => (undici ??= import('undici'));

function dispatcherFor(host: string, plainHttp: boolean, env: NodeJS.ProcessEnv, { Agent, ProxyAgent }: Undici): Dispatcher {
  const proxy = plainHttp ? env.HTTP_PROXY ?? env.http_proxy : env.HTTPS_PROXY ?? env.https_proxy;
  if (proxy && !noProxyCovers(host, env.NO_PROXY ?? env.no_proxy)) return new ProxyAgent(proxy);
  return new Agent();
}

export class RegistryClient {
  readonly host: string;
  readonly base: string;
  private readonly opts: RegistryClientOptions;
  private dispatcher: Dispatcher | undefined;
  private scheme: 'none' | 'basic' | 'bearer' | undefined;
  private readonly tokens = new Map<string, string>();

  constructor(opts: RegistryClientOptions) {
    this.opts = opts;
    this.host = opts.host;
    this.base = `${opts.plainHttp ? 'http' : 'https'}://${opts.host}`;
  }

  private async http(): Promise<{ request: Undici['request']; dispatcher: Dispatcher }> {
    const u = await loadUndici();
    this.dispatcher ??= dispatcherFor(this.opts.host, this.opts.plainHttp, this.opts.env ?? process.env, u);
    return { request: u.request, dispatcher: this.dispatcher };
  }

  private url(pathOrUrl: string): string {
    return new URL(pathOrUrl, this.base).toString();
  }

  private authFor(scopes: string[]): string | undefined {
    if (this.scheme === 'basic') return this.opts.credentials?.basic();
    if (this.scheme === 'bearer') return this.tokens.get(scopes.join(' '));
    return undefined;
  }

  private async raw(method: string, url: string, headers: Record<string, string>, body: SendOptions['body']): Promise<Response> {
    const { request, dispatcher } = await this.http();
    try {
      return await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': this.opts.userAgent, ...headers },
        ...(body !== undefined ? { body } : {}),
        dispatcher,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
    } catch (err) {
      if (this.opts.signal?.aborted) throw err;
      const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
      const code = e.code ?? e.cause?.code ?? e.name;
      if (/EPROTO|ERR_SSL|wrong version number|packet length too long/i.test(`${code} ${e.message}`)) {
        throw new RuntimeFailure(`cannot talk TLS to ${this.host}: ${e.message}`, { hint: 'if this registry serves plain HTTP, add --plain-http (loopback registries use it without asking)' });
      }
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(String(code))) {
        throw new RuntimeFailure(`TLS certificate of ${this.host} not trusted: ${e.message}`, { hint: "add the site's CA with NODE_EXTRA_CA_CERTS=/path/ca.pem" });
      }
      throw new RegistryNetworkError(this.host, String(code), err);
    }
  }

  /** One request with auth; a 401 is answered once by following the challenge (bodies given as streams are not replayed). */
  async send(method: string, pathOrUrl: string, o: SendOptions): Promise<Response> {
    const url = this.url(pathOrUrl);
    const auth = this.authFor(o.scopes);
    let res = await this.raw(method, url, { ...o.headers, ...(auth ? { authorization: auth } : {}) }, o.body);
    if (res.statusCode === 401 && !auth) {
      const challenge = header(res, 'www-authenticate') ?? '';
      await res.body.dump();
      await this.authenticate(challenge, o.scopes);
      if (o.body !== undefined && typeof o.body !== 'string' && !Buffer.isBuffer(o.body)) {
        throw new RuntimeFailure(`${this.host}: asked for credentials in the middle of ${o.what}`);
      }
      res = await this.raw(method, url, { ...o.headers, authorization: this.authFor(o.scopes)! }, o.body);
    }
    if (o.ok.includes(res.statusCode)) return res;
    const text = await res.body.text().catch(() => '');
    throw this.failure(res.statusCode, text, o.what);
  }

  private failure(status: number, text: string, what: string): RuntimeFailure {
    let detail = text.slice(0, 300).trim();
    try {
      const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      if (j.errors?.length) detail = j.errors.map((e) => `${e.code ?? ''}: ${e.message ?? ''}`).join('; ');
    } catch {
      /* not JSON */
    }
    if (status === 401 || status === 403) return this.deniedError(status, detail, what);
    return new RegistryHttpError(status, `${this.host}: ${what} failed: HTTP ${status}${detail ? ` (${detail})` : ''}`);
  }

  private deniedError(status: number, detail: string, what: string): InputError {
    const c = this.opts.credentials;
    const tried = c ? `credentials of "${c.username}" from ${c.source}` : `no credentials (looked at: ${(this.opts.credentialSources ?? []).join(', ') || 'none'})`;
    return new InputError(`${this.host}: ${what}: ${status === 401 ? 'authentication failed' : 'access denied'} (HTTP ${status}${detail ? `, ${detail}` : ''}); tried ${tried}`, {
      hint: c
        ? `check the user name and password for ${this.host} (${c.source}); the account may also lack ${status === 403 ? 'permission on this repository' : 'access'}`
        : `log in: \`docker login ${this.host}\` or \`apptainer registry login oras://${this.host}\`, set SIFPACK_REGISTRY_USERNAME/SIFPACK_REGISTRY_PASSWORD, or pass --username with --password-stdin`,
    });
  }

  private async authenticate(challenge: string, scopes: string[]): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === 'basic') {
      if (!this.opts.credentials) throw this.deniedError(401, 'the registry wants a user name and password', 'login');
      this.scheme = 'basic';
      return;
    }
    if (scheme !== 'bearer' || !params.realm) throw new RuntimeFailure(`${this.host}: unsupported authentication challenge "${challenge.slice(0, 100)}"`);
    this.scheme = 'bearer';
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    const wanted = new Set(scopes);
    for (const s of (params.scope ?? '').split(' ')) if (s) wanted.add(s);
    for (const s of wanted) realm.searchParams.append('scope', s);
    const c = this.opts.credentials;
    let res: Response;
    const { request, dispatcher } = await this.http();
    try {
      res = await request(realm, {
        method: 'GET',
        headers: { 'user-agent': this.opts.userAgent, ...(c ? { authorization: c.basic() } : {}) },
        dispatcher,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
    } catch (err) {
      throw new RuntimeFailure(`cannot reach the token service of ${this.host} at ${realm.origin}${realm.pathname}: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) throw this.deniedError(res.statusCode, 'token service refused', 'token request');
    if (res.statusCode !== 200) throw new RuntimeFailure(`token service of ${this.host} answered HTTP ${res.statusCode}`);
    let token: string | undefined;
    try {
      const j = JSON.parse(text) as { token?: string; access_token?: string };
      token = j.token ?? j.access_token;
    } catch {
      /* handled below */
    }
    if (!token) throw new RuntimeFailure(`token service of ${this.host} answered without a token`);
    this.tokens.set(scopes.join(' '), `Bearer ${token}`);
  }

  /** GET /v2/: reachable, and which auth it wants (answered by `send`). */
  async ping(scopes: string[]): Promise<void> {
    const res = await this.send('GET', '/v2/', { scopes, ok: [200], what: 'connecting' });
    await res.body.dump();
  }

  /** Size of a blob in `repo`, or undefined when the registry does not have it there. */
  /** Whether the caller's signal (Ctrl-C) stopped the transfer. */
  get aborted(): boolean {
    return !!this.opts.signal?.aborted;
  }

  /** Closes idle connections so the process can exit. */
  async close(): Promise<void> {
    await this.dispatcher?.close().catch(() => undefined);
  }

  async blobSize(repo: string, digest: string, scopes: string[]): Promise<number | undefined> {
    const res = await this.send('HEAD', `/v2/${repo}/blobs/${digest}`, { scopes, ok: [200, 404], what: 'checking for the blob' });
    await res.body.dump();
    return res.statusCode === 200 ? Number(header(res, 'content-length') ?? -1) : undefined;
  }

  /** Cross-repository mount; returns true when mounted, else the upload URL the registry opened instead. */
  async mount(repo: string, digest: string, from: string, scopes: string[]): Promise<true | string> {
    const res = await this.send('POST', `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, {
      scopes,
      headers: { 'content-length': '0' },
      ok: [201, 202],
      what: `mounting the blob from ${from}`,
    });
    await res.body.dump();
    return res.statusCode === 201 ? true : this.location(res);
  }

  private location(res: Response): string {
    const loc = header(res, 'location');
    if (!loc) throw new RuntimeFailure(`${this.host}: the registry opened an upload without a Location header`);
    return this.url(loc);
  }

  async startUpload(repo: string, scopes: string[]): Promise<string> {
    const res = await this.send('POST', `/v2/${repo}/blobs/uploads/`, { scopes, headers: { 'content-length': '0' }, ok: [202], what: 'starting the upload' });
    await res.body.dump();
    return this.location(res);
  }

  /** Where an open upload stands: the byte count the registry has (Range: 0-N), and its current URL. */
  async uploadStatus(location: string, scopes: string[]): Promise<{ offset: number; location: string }> {
    const res = await this.send('GET', location, { scopes, ok: [204], what: 'asking how much of the upload arrived' });
    await res.body.dump();
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
    return { offset: range ? Number(range[1]) + 1 : 0, location: header(res, 'location') ? this.location(res) : location };
  }

  /** PATCH one chunk [start, start+length) streamed from `body`; returns the next upload URL. */
  async patchChunk(location: string, start: number, length: number, body: Readable, scopes: string[]): Promise<string> {
    const res = await this.send('PATCH', location, {
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(length), 'content-range': `${start}-${start + length - 1}` },
      body,
      ok: [202],
      what: `uploading bytes ${start}-${start + length - 1}`,
    });
    await res.body.dump();
    return this.location(res);
  }

  /** Closes an upload: PUT ?digest=, the registry checks the digest of what it got. */
  async finishUpload(location: string, digest: string, scopes: string[], body?: Buffer): Promise<void> {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    const res = await this.send('PUT', u.toString(), {
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
      ...(body ? { body } : {}),
      ok: [201],
      what: 'completing the upload',
    });
    await res.body.dump();
  }

  /** A small blob in one POST + PUT (the `{}` config). */
  async putSmallBlob(repo: string, data: Buffer, digest: string, scopes: string[]): Promise<void> {
    const loc = await this.startUpload(repo, scopes);
    await this.finishUpload(loc, digest, scopes, data);
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string, scopes: string[]): Promise<string> {
    const res = await this.send('PUT', `/v2/${repo}/manifests/${reference}`, {
      scopes,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
      ok: [201],
      what: 'storing the manifest',
    });
    await res.body.dump();
    return header(res, 'docker-content-digest') ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }

  /** The manifest bytes, its media type and digest; undefined when the registry has no such tag or digest. */
  async getManifest(repo: string, reference: string, accept: string, scopes: string[]): Promise<{ bytes: Buffer; mediaType?: string; digest: string } | undefined> {
    const res = await this.send('GET', `/v2/${repo}/manifests/${reference}`, { scopes, headers: { accept }, ok: [200, 404], what: 'reading the manifest' });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > 4 * 1024 * 1024) throw new RuntimeFailure(`${this.host}: manifest of ${repo}:${reference} is larger than 4 MiB`);
      chunks.push(c as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const mediaType = header(res, 'content-type')?.split(';')[0]?.trim();
    return { bytes, ...(mediaType ? { mediaType } : {}), digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
  }

  /** The blob's bytes as a stream, following a redirect to storage (without our Authorization there). */
  async getBlob(repo: string, digest: string, scopes: string[]): Promise<{ body: Readable; length?: number }> {
    let res = await this.send('GET', `/v2/${repo}/blobs/${digest}`, { scopes, ok: [200, 301, 302, 303, 307, 308], what: 'downloading the blob' });
    for (let hops = 0; res.statusCode >= 300 && hops < 5; hops++) {
      const to = header(res, 'location');
      await res.body.dump();
      if (!to) throw new RuntimeFailure(`${this.host}: blob redirect without a Location`);
      res = await this.raw('GET', new URL(to, this.base).toString(), {}, undefined);
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      throw this.failure(res.statusCode, text, 'downloading the blob');
    }
    const len = header(res, 'content-length');
    return { body: res.body, ...(len ? { length: Number(len) } : {}) };
  }
}
