/**
 * Download progress on stderr: one line redrawn in place on a terminal, a line per file otherwise (logs).
 * Written here rather than with a progress-bar package: it is one line, like the job progress of
 * src/cli/progress.ts, and needs no dependency of its own.
 */
import { formatBytes } from '../config/units.js';

const WIDTH = 24;
const REDRAW_MS = 100;

export interface PullProgress {
  start(label: string, totalBytes: number): void;
  /** `bytes` more of `file` arrived (or were already there, when resuming). */
  advance(file: string, bytes: number): void;
  fileDone(file: string, note: string): void;
  finish(summary: string): void;
}

export class StderrProgress implements PullProgress {
  private label = '';
  private total = 0;
  private done = 0;
  private lastDraw = 0;
  private readonly interactive: boolean;

  constructor(private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr) {
    this.interactive = Boolean(stream.isTTY);
  }

  start(label: string, totalBytes: number): void {
    this.label = label;
    this.total = totalBytes;
    this.done = 0;
  }

  advance(file: string, bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    if (!this.interactive || now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const share = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(share * WIDTH);
    this.stream.write(
      `\r\x1b[2K${this.label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ` +
        `${String(Math.round(share * 100)).padStart(3)}% ${formatBytes(this.done)} / ${formatBytes(this.total)} ${file}`,
    );
  }

  fileDone(file: string, note: string): void {
    if (!this.interactive) this.stream.write(`${this.label} ${file}: ${note}\n`);
  }

  finish(summary: string): void {
    this.stream.write(`${this.interactive ? '\r\x1b[2K' : ''}${this.label} ${summary}\n`);
  }
}

/** For pulls nobody watches (tests, MODELS at start, which logs its own lines). */
export const SILENT_PROGRESS: PullProgress = { start() {}, advance() {}, fileDone() {}, finish() {} };
