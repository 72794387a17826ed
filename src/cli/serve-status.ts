/**
 * serve's view of its viewers, once a second: for --json each session's server-side numbers plus
 * the ones only the viewer knows (end-to-end latency and fps, from its STATS message) flattened
 * next to them, and on a terminal one line refreshed in place (stderr), like watch's status line.
 */
import { drawStatusRow, endStatusRow } from '../shared/status-row.js';
import type { SessionInfo } from '../server/session.js';

export interface ViewerSummary extends SessionInfo {
  /** What the server wrote to this viewer's socket over the last interval, kbit/s. */
  bitrateKbps: number;
  /** Capture → arrival at the viewer, ms, as the viewer reported it (null until its first report). */
  latencyMs: number | null;
  /** Capture → leaving the viewer's speaker, ms (viewer-reported). */
  audioLatencyMs: number | null;
  /** Frames per second the viewer received (viewer-reported). */
  fps: number | null;
  /** Everything the server dropped for this viewer to keep it live (all kinds). */
  droppedTotal: number;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export class ServeStatus {
  readonly enabled: boolean;
  #prev = new Map<string, { sentBytes: number; atMs: number }>();
  #printed = false;

  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  /** Summaries of the live sessions now; prints the status line when enabled. */
  update(sessions: readonly SessionInfo[], nowMs = Date.now()): ViewerSummary[] {
    const next = new Map<string, { sentBytes: number; atMs: number }>();
    const viewers = sessions
      .filter((s) => s.state === 'live')
      .map((s): ViewerSummary => {
        const prev = this.#prev.get(s.id);
        next.set(s.id, { sentBytes: s.sentBytes, atMs: nowMs });
        const spanMs = prev ? nowMs - prev.atMs : nowMs - s.connectedAtMs;
        const bytes = s.sentBytes - (prev?.sentBytes ?? 0);
        const reported = s.viewerStats ?? {};
        return {
          ...s,
          bitrateKbps: spanMs > 0 ? Math.round((bytes * 8) / spanMs) : 0,
          latencyMs: num(reported.videoLatencyMs),
          audioLatencyMs: num(reported.audioLatencyMs),
          fps: num(reported.fps),
          droppedTotal: Object.values(s.drops).reduce((a, b) => a + b, 0),
        };
      });
    this.#prev = next;
    if (this.enabled) this.#print(ServeStatus.line(viewers));
    return viewers;
  }

  /** The terminal line, e.g. `[serving] 1 viewer | 192.168.1.20 video 12 ms 30 fps 4.1 Mbit/s rtt 1 ms drops 0`. */
  static line(viewers: readonly ViewerSummary[]): string {
    if (viewers.length === 0) return '[serving] no viewers';
    const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v)} ms`);
    const each = viewers.map(
      (v) => `${v.address} video ${ms(v.latencyMs)} ${v.fps ?? '-'} fps ${(v.bitrateKbps / 1000).toFixed(1)} Mbit/s rtt ${ms(v.rttMs)} drops ${v.droppedTotal}`,
    );
    return `[serving] ${viewers.length} viewer${viewers.length === 1 ? '' : 's'} | ${each.join(' | ')}`;
  }

  done(): void {
    if (this.#printed) endStatusRow();
    this.#printed = false;
  }

  #print(line: string): void {
    // A line wider than the terminal wraps, and \r would then only redraw its last row.
    const columns = process.stderr.columns || 0;
    const fitted = columns > 1 && line.length >= columns ? `${line.slice(0, columns - 2)}…` : line;
    this.#printed = true;
    drawStatusRow(fitted);
  }
}
