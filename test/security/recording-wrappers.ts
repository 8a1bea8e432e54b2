/**
 * Recording wrappers (test only, named as such): for each real tool sifpack
 * may start, a tiny sh script with the tool's name that saves the argv and
 * the environment it was started with — its own /proc/self/cmdline and
 * /proc/self/environ, exactly what `ps` and other users see — and then execs
 * the real tool. With their directory first on PATH, every child sifpack
 * starts leaves a record, and a test greps the records for a canary.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { findOnPath } from '../../src/runtime/process.js';
import { shellQuote } from '../../src/render/shell-quote.js';

/** Every program sifpack's source starts (src/runtime, src/workflows, src/env), plus a few it might. */
export const CHILD_TOOLS = ['sbatch', 'scontrol', 'scancel', 'sacct', 'squeue', 'mksquashfs', 'tar2sqfs', 'unsquashfs', 'tar', 'docker', 'apptainer', 'singularity', 'conda', 'mamba', 'micromamba'];

export interface ChildRecord {
  tool: string;
  pid: number;
  /** Who started it: sifpack, or another recorded tool (apptainer runs mksquashfs from PATH too). */
  ppid: number;
  argv: string[];
  env: Record<string, string>;
}

export class RecordingWrappers {
  readonly bin: string;
  readonly records: string;
  /** Tools wrapped (found on PATH, or given with a path in `extra`). */
  readonly wrapped: string[] = [];

  constructor(readonly dir: string) {
    this.bin = path.join(dir, 'recording-bin');
    this.records = path.join(dir, 'child-records');
  }

  /** Writes a wrapper for each tool found on `PATH`; `extra` maps more names to real binaries (e.g. apptainer off PATH). */
  async install(PATH: string, extra: Record<string, string> = {}): Promise<void> {
    await fs.mkdir(this.bin, { recursive: true });
    await fs.mkdir(this.records, { recursive: true });
    const real: Record<string, string> = {};
    for (const t of CHILD_TOOLS) {
      const p = await findOnPath(t, { PATH });
      if (p) real[t] = p;
    }
    Object.assign(real, extra);
    for (const [tool, target] of Object.entries(real)) {
      const rec = shellQuote(path.join(this.records, tool));
      await fs.writeFile(
        path.join(this.bin, tool),
        `#!/bin/sh\n# recording wrapper (test only): save this process's argv and environment, then run the real ${tool}\n` +
          `cat /proc/$$/cmdline > ${rec}.$$.cmdline\ncat /proc/$$/environ > ${rec}.$$.environ\necho $PPID > ${rec}.$$.ppid\nexec ${shellQuote(target)} "$@"\n`,
        { mode: 0o755 },
      );
      this.wrapped.push(tool);
    }
  }

  /** PATH with the wrappers first. */
  path(PATH: string): string {
    return `${this.bin}:${PATH}`;
  }

  /** Every child recorded so far. */
  async read(): Promise<ChildRecord[]> {
    const out: ChildRecord[] = [];
    for (const f of (await fs.readdir(this.records)).filter((n) => n.endsWith('.cmdline')).sort()) {
      const m = /^(.+)\.(\d+)\.cmdline$/.exec(f)!;
      const argv = (await fs.readFile(path.join(this.records, f), 'utf8')).split('\0').slice(0, -1);
      const envText = await fs.readFile(path.join(this.records, f.replace(/cmdline$/, 'environ')), 'utf8').catch(() => '');
      const env = Object.fromEntries(envText.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      // argv[0] is /bin/sh, argv[1] the wrapper: what the child was given starts after.
      const ppid = Number(await fs.readFile(path.join(this.records, f.replace(/cmdline$/, 'ppid')), 'utf8').catch(() => '0'));
      out.push({ tool: m[1]!, pid: Number(m[2]), ppid, argv: argv.slice(2), env });
    }
    return out;
  }

  async clear(): Promise<void> {
    for (const f of await fs.readdir(this.records)) await fs.rm(path.join(this.records, f));
  }
}
