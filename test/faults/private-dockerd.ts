/**
 * A second, private Docker engine for tests that kill it (never the shared
 * one), started the way test/services/start.sh starts the shared one: its own
 * data root, exec root and socket under `dir`, no bridge, no iptables. Its
 * images come from the shared engine through `docker save` / `docker load`
 * (no registry can be reached here). kill() is what a crash or the OOM killer
 * does: SIGKILL to dockerd alone. stop() ends everything it started (dockerd,
 * its containerd and shims, by PID) and unmounts what they left mounted.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const DOCKER = '/usr/bin/docker'; // Debian's client, as start.sh uses (no version skew)

/** All descendants of `pid`, from /proc/N/stat. */
function descendantsOf(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const n of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      parent.set(Number(n), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) if (pp === p) out.push(child), walk(child);
  };
  walk(pid);
  return out;
}

export class PrivateDockerd {
  private child: ChildProcess | undefined;
  /** Every process it started, remembered at each kill (containerd outlives a killed dockerd). */
  private orphans = new Set<number>();
  private starts = 0;

  constructor(readonly dir: string) {}

  get host(): string {
    return `unix://${path.join(this.dir, 'docker.sock')}`;
  }

  docker(args: string[], opts: { input?: Buffer } = {}): string {
    return execFileSync(DOCKER, args, { env: { ...process.env, DOCKER_HOST: this.host }, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...(opts.input ? { input: opts.input } : {}) }).toString();
  }

  async start(): Promise<void> {
    // A fresh exec root per start (containerd's socket and state live there; a killed one's are stale),
    // the same data root (the images survive, as they do when a real engine restarts).
    const exec = path.join(this.dir, `exec-${++this.starts}`);
    for (const d of [path.join(this.dir, 'data'), exec]) await fs.mkdir(d, { recursive: true });
    const log = await fs.open(path.join(this.dir, 'dockerd.log'), 'a');
    this.child = spawn(
      'dockerd',
      ['--data-root', path.join(this.dir, 'data'), '--exec-root', exec, '--pidfile', path.join(this.dir, 'dockerd.pid'), '-H', this.host, '--iptables=false', '--ip-masq=false', '--bridge=none'],
      { stdio: ['ignore', log.fd, log.fd] },
    );
    await log.close();
    const end = Date.now() + 60_000;
    for (;;) {
      try {
        this.docker(['version']);
        return;
      } catch {
        if (Date.now() > end) {
          const log = await fs.readFile(path.join(this.dir, 'dockerd.log'), 'utf8').catch(() => '');
          throw new Error(`private dockerd did not answer on ${this.host}; the end of its log:\n${log.split('\n').slice(-15).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  /** Copies images from the engine at `fromHost` (docker save | docker load). */
  loadFrom(fromHost: string, images: string[]): void {
    const tar = path.join(this.dir, 'images.tar');
    execFileSync(DOCKER, ['save', '-o', tar, ...images], { env: { ...process.env, DOCKER_HOST: fromHost } });
    this.docker(['load', '-q', '-i', tar]);
  }

  /** SIGKILL to dockerd alone, as a crash would; resolves when it is gone. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    for (const p of descendantsOf(c.pid!)) this.orphans.add(p);
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }

  /** Ends dockerd and everything it started, and unmounts what they left under `dir`. */
  async stop(): Promise<void> {
    await this.kill();
    for (const p of this.orphans) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    this.orphans.clear();
    await new Promise((r) => setTimeout(r, 300));
    const mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${this.dir}/`))
      .reverse();
    for (const m of mounts) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      } catch {
        /* already unmounted with its parent */
      }
    }
    await fs.rm(path.join(this.dir, 'docker.sock'), { force: true });
  }
}
