/**
 * The one-line status on a terminal (stderr, refreshed in place): state, end-to-end latency, fps,
 * audio buffer, bitrate, drops, volume. Off when stderr is not a TTY (scripts use --json).
 */
import { drawStatusRow, endStatusRow } from '../shared/status-row.js';
import type { StatsSnapshot } from '../client/viewer-stats.js';

export class StatusLine {
  readonly #enabled: boolean;
  #last = '';

  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  state(state: string, detail?: string): void {
    if (state !== 'live') this.#print(`[${state}]${detail ? ` ${detail}` : ''}`);
  }

  stats(s: StatsSnapshot, volume: number): void {
    const ms = (v: number | null) => (v === null ? '–' : `${Math.round(v)} ms`);
    this.#print(
      `[${s.state}] video ${ms(s.videoLatencyMs)} ${s.fps} fps | audio ${ms(s.audioLatencyMs)} buf ${ms(s.audioBufferMs)} | ` +
        `${(s.bitrateKbps / 1000).toFixed(1)} Mbit/s | rtt ${ms(s.rttMs)} | drops v${s.drops.video} a${s.drops.audio} | vol ${volume}`,
    );
  }

  done(): void {
    if (this.#enabled && this.#last) endStatusRow();
    this.#last = '';
  }

  #print(line: string): void {
    if (!this.#enabled) return;
    this.#last = line;
    drawStatusRow(line);
  }
}
