/** A one-line progress bar on stderr, fed by a job's events (redrawn in place on a terminal). */
import type { JobEvent } from '../client/client.js';

const WIDTH = 24;

export class ProgressBar {
  private lastLine = '';
  private readonly interactive: boolean;

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
  ) {
    this.interactive = Boolean(stream.isTTY);
  }

  update(event: JobEvent): void {
    this.draw(
      this.describe(event),
      event.__typename === 'JobDoneEvent' ||
        event.__typename === 'JobFailedEvent' ||
        event.__typename === 'JobCancelledEvent',
    );
  }

  private describe(event: JobEvent): string {
    switch (event.__typename) {
      case 'JobQueuedEvent':
        return (
          `${this.bar(0, 1)} queued` +
          `${event.position === null ? '' : ` (#${event.position} waiting for device memory)`}`
        );
      case 'JobRoutedEvent':
        return (
          `${this.bar(0, 1)} routed ${event.stage ? `${stageName(event.stage)}: ` : ''}${event.route.route}` +
          `${event.route.tile ? ` (${event.route.tile} px tiles)` : ''} on ${event.route.target}`
        );
      case 'JobRunningEvent': {
        const tiles = `${event.done}/${event.total}${event.total > 1 ? ' tiles' : ''}`;
        // img2img: the bar is the stage's; DENOISE reports each network call with its timestep.
        if (event.stage === 'DENOISE' && event.step !== null)
          return (
            `${this.bar(event.step, event.total)} denoise step ${event.step}/${event.total} ` +
            `(timestep ${event.timestep})`
          );
        return `${this.bar(event.done, event.total)} ${event.stage ? `${stageName(event.stage)} ` : ''}${tiles}`;
      }
      case 'JobDoneEvent':
        return `${this.bar(1, 1)} done in ${event.result.seconds.toFixed(2)} s`;
      case 'JobFailedEvent':
        return `failed: ${event.error.code}: ${event.error.message}`;
      case 'JobCancelledEvent':
        return `cancelled: ${event.reason}`;
    }
  }

  private bar(done: number, total: number): string {
    const filled = total > 0 ? Math.round((done / total) * WIDTH) : 0;
    const percent = total > 0 ? Math.round((done / total) * 100) : 0;
    return `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(percent).padStart(3)}%`;
  }

  private draw(text: string, final: boolean): void {
    const line = `${this.label} ${text}`;
    if (line === this.lastLine && !final) return;
    this.lastLine = line;
    if (this.interactive) this.stream.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    else this.stream.write(`${line}\n`);
  }
}

/** TEXT_ENCODE -> text encode. */
function stageName(stage: string): string {
  return stage.toLowerCase().replace('_', ' ');
}
