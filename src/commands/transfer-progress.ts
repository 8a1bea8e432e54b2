/**
 * Byte progress for push and pull on stderr: on a terminal a bar with bytes,
 * percentage, rate and ETA (cli-progress); otherwise a timestamped line every
 * 10% or 15 s, so a batch log shows it moved; nothing with --quiet.
 */
import cliProgress from 'cli-progress';
import type { Output } from './context.js';

/** 1.5 MiB, 312 KiB, 12 B: for progress, where a byte count to the unit is noise. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
const formatBytes = humanBytes;

export class TransferProgress {
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private lastPct = -1;
  private readonly started = Date.now();

  constructor(private readonly out: Output & { isTTY?: boolean; columns?: number }, private readonly label: string, private readonly quiet = false) {}

  update(done: number, total: number): void {
    if (this.quiet) return;
    if (this.out.isTTY) {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          {
            stream: this.out as unknown as NodeJS.WritableStream,
            format: `${this.label} [{bar}] {percentage}% | {sent} of {size} | {speed}/s | ETA {eta_formatted}`,
            barsize: 24,
            hideCursor: false,
            clearOnComplete: true,
            etaBuffer: 50,
            fps: 8,
            noTTYOutput: false,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total, 0, { sent: formatBytes(0), size: formatBytes(total), speed: formatBytes(0) });
      }
      this.bar.setTotal(total);
      this.bar.update(done, { sent: formatBytes(done), size: formatBytes(total), speed: formatBytes(this.rate(done)) });
      return;
    }
    const pct = total ? Math.floor((done / total) * 10) * 10 : 100;
    const now = Date.now();
    // Every 10% at most every 2 s (a small file is one line), at least every 15 s, and the end.
    if ((pct !== this.lastPct && (now - this.lastLine >= 2000 || (pct === 100 && done === total))) || now - this.lastLine > 15_000) {
      this.lastPct = pct;
      this.lastLine = now;
      const t = new Date().toISOString().slice(11, 19);
      this.out.write(`[${t}] ${this.label}: ${formatBytes(done)} of ${formatBytes(total)} (${pct}%), ${formatBytes(this.rate(done))}/s\n`);
    }
  }

  private rate(done: number): number {
    const secs = (Date.now() - this.started) / 1000;
    return secs > 0 ? done / secs : 0;
  }

  /** A line that must not be drawn over by the bar (a retry notice). */
  note(line: string): void {
    if (this.bar) this.out.write('\r\x1b[K');
    this.out.write(`${line}\n`);
  }

  done(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
