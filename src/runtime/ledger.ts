/**
 * The run ledger, `.sifpack/runs.jsonl`: one JSON object per line, appended,
 * never rewritten. A submission is one `submit` line; when `status` learns a
 * job's final state it appends a `final` line. Each line goes out in one
 * write() on an O_APPEND descriptor, so a crash can at worst leave a torn
 * last line, which readers skip and the next append starts after.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RuntimeFailure } from '../errors.js';
import { makeStateDir } from '../util/atomic-write.js';

export const LEDGER_DIR = '.sifpack';
export const LEDGER_FILE = 'runs.jsonl';

export interface SubmitEntry {
  type: 'submit';
  jobId: string;
  cluster: string | null;
  sbatch: string;
  sbatchSha256: string;
  image: string | null;
  imageSha256: string | null;
  /** For an image pulled from a registry (--image oras://...): the pinned reference (HOST/REPO@MANIFEST_DIGEST) and the tag it came from. */
  imageRef?: string | null;
  imageSource?: string | null;
  envHash: string | null;
  /** Output file pattern from the script, for `logs` when Slurm has forgotten the job. */
  output: string | null;
  workDir: string;
  submittedAt: string;
}

export interface FinalEntry {
  type: 'final';
  jobId: string;
  state: string;
  explanation: string;
  at: string;
}

/** `sifpack cancel` asked scancel to stop the job. */
export interface CancelEntry {
  type: 'cancel';
  jobId: string;
  at: string;
}

export type LedgerEntry = SubmitEntry | FinalEntry | CancelEntry;

export interface LedgerRun extends SubmitEntry {
  final?: FinalEntry;
  cancelledAt?: string;
}

export class Ledger {
  readonly file: string;
  /** `onProblem` hears about each line that was skipped, naming it. */
  constructor(dir: string, private readonly onProblem: (message: string) => void = () => {}) {
    this.file = path.join(dir, LEDGER_DIR, LEDGER_FILE);
  }

  /** Appends one entry as one line. */
  async append(entry: LedgerEntry): Promise<void> {
    await makeStateDir(path.dirname(this.file));
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(this.file, 'a+', 0o644);
      const { size } = await handle.stat();
      let lead = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) lead = '\n'; // a torn line from a crash: start clean
      }
      await handle.write(`${lead}${JSON.stringify(entry)}\n`);
      await handle.sync();
    } catch (err) {
      throw new RuntimeFailure(`cannot append to the run ledger ${this.file}: ${(err as Error).message}`, { cause: err });
    } finally {
      await handle?.close();
    }
  }

  /** Every readable entry, in order; torn, garbled or newer-format lines are skipped and reported. */
  async entries(): Promise<LedgerEntry[]> {
    const text = await fs.readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw new RuntimeFailure(`cannot read the run ledger ${this.file}: ${err.message}`);
    });
    const out: LedgerEntry[] = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      const where = `${this.file} line ${i + 1}`;
      let e: unknown;
      try {
        e = JSON.parse(line);
      } catch {
        const last = i === lines.length - 1 || (i === lines.length - 2 && lines[i + 1] === '');
        this.onProblem(`${where}: ${last && !text.endsWith('\n') ? 'torn (an interrupted write)' : 'not a JSON record'}; skipped`);
        return;
      }
      const r = e as Partial<LedgerEntry> | null;
      if (r && typeof r === 'object' && (r.type === 'submit' || r.type === 'final' || r.type === 'cancel') && typeof r.jobId === 'string') out.push(r as LedgerEntry);
      else if (r && typeof r === 'object' && typeof r.type === 'string') this.onProblem(`${where}: a '${r.type}' record, which this sifpack version does not know (written by a newer one?); skipped`);
      else this.onProblem(`${where}: not a ledger record; skipped`);
    });
    return out;
  }

  /** Submissions with their final state folded in, oldest first. */
  async runs(): Promise<LedgerRun[]> {
    const runs = new Map<string, LedgerRun>();
    for (const e of await this.entries()) {
      if (e.type === 'submit') runs.set(e.jobId, { ...e });
      else {
        const r = runs.get(e.jobId);
        if (r && e.type === 'final') r.final = e;
        else if (r && e.type === 'cancel') r.cancelledAt = e.at;
      }
    }
    return [...runs.values()];
  }
}
