/**
 * A private docker-registry for tests that must kill, restart or tamper with
 * it (never the shared one): its own port, its own storage under `dir`, a
 * fixed http.secret so an upload URL stays valid across a restart, as in a
 * production setup with several replicas.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export class PrivateRegistry {
  private child: ChildProcess | undefined;
  host = '';
  constructor(readonly dir: string) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  async start(): Promise<void> {
    if (!this.host) {
      const port = await freePort();
      this.host = `127.0.0.1:${port}`;
      await fs.mkdir(this.dataDir, { recursive: true });
      await fs.writeFile(
        path.join(this.dir, 'registry.yml'),
        `version: 0.1\nlog: { level: warn }\nstorage: { filesystem: { rootdirectory: ${this.dataDir} }, delete: { enabled: true } }\nhttp: { addr: "${this.host}", secret: "sifpack-test-fixed-secret" }\n`,
      );
    }
    const log = await fs.open(path.join(this.dir, 'registry.log'), 'a');
    this.child = spawn('docker-registry', ['serve', path.join(this.dir, 'registry.yml')], { stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    const end = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`http://${this.host}/v2/`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > end) throw new Error(`private registry on ${this.host} did not start (see ${this.dir}/registry.log)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** SIGKILL, as a crash or an OOM kill would. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  }

  /** Where the filesystem driver keeps a blob's bytes. */
  blobPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return path.join(this.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  }
}
