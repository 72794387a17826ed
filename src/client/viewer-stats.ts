/**
 * The viewer's once-a-second numbers: what the user sees in the status line and `--json`, and what
 * the server sees in STATS. Latency is end to end on the server's clock (capture → arrival here),
 * thanks to the PING/PONG clock offset; the audio output buffer is added for the audio path.
 */
import type { ClockSync } from './clock-sync.js';
import type { ConnectionState } from './connection.js';
import type { AudioSink, VideoSink } from './sinks/sink.js';

export interface StatsSnapshot {
  state: ConnectionState;
  fps: number;
  /** Median lip-sync hold of video frames, ms. */
  videoHoldMs: number | null;
  /** Capture → arrival on this machine, ms (p50 over the last second). */
  videoLatencyMs: number | null;
  /** Capture → leaving the speaker, ms (arrival latency + output buffer). */
  audioLatencyMs: number | null;
  /** audio − video latency, ms: positive = sound late. */
  avSkewMs: number | null;
  bitrateKbps: number;
  rttMs: number | null;
  audioBufferMs: number | null;
  drops: { video: number; audio: number; windowReplaced: number; audioUnderruns: number };
  totals: { videoFrames: number; audioPackets: number; bytes: number };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export class ViewerStats {
  state: ConnectionState = 'connecting';
  readonly #clock: ClockSync;
  #videoLat: number[] = [];
  #audioLat: number[] = [];
  #holds: number[] = [];
  #frames = 0;
  #bytes = 0;
  #drops = { video: 0, audio: 0 };
  #totals = { videoFrames: 0, audioPackets: 0, bytes: 0 };

  constructor(clock: ClockSync) {
    this.#clock = clock;
  }

  onVideo(ptsUs: number, arrivalUs: number, bytes: number, discontinuity: boolean): void {
    this.#frames++;
    this.#bytes += bytes;
    this.#totals.videoFrames++;
    this.#totals.bytes += bytes;
    if (discontinuity) this.#drops.video++;
    this.#videoLat.push(this.#clock.latencyUs(ptsUs, arrivalUs) / 1000);
  }

  /** A frame held back for lip sync by this long (0 = shown at once). */
  onVideoHold(holdMs: number): void {
    this.#holds.push(holdMs);
  }

  onAudio(ptsUs: number, arrivalUs: number, bytes: number, discontinuity: boolean): void {
    this.#bytes += bytes;
    this.#totals.audioPackets++;
    this.#totals.bytes += bytes;
    if (discontinuity) this.#drops.audio++;
    this.#audioLat.push(this.#clock.latencyUs(ptsUs, arrivalUs) / 1000);
  }

  /** Returns the last second's numbers and starts a new second. */
  snapshot(audioBufferMs: number | null, audio: AudioSink | null, video: VideoSink | null): StatsSnapshot {
    const arrivalVideoMs = median(this.#videoLat);
    const holdMs = median(this.#holds) ?? 0;
    // What the user sees: arrival plus the lip-sync hold (the window's own delay is not measurable here).
    const videoLatencyMs = arrivalVideoMs === null ? null : arrivalVideoMs + holdMs;
    const arrival = median(this.#audioLat);
    const audioLatencyMs = arrival === null ? null : arrival + (audioBufferMs ?? 0);
    const snap: StatsSnapshot = {
      state: this.state,
      fps: this.#frames,
      videoHoldMs: round(holdMs),
      videoLatencyMs: round(videoLatencyMs),
      audioLatencyMs: round(audioLatencyMs),
      avSkewMs: videoLatencyMs === null || audioLatencyMs === null ? null : round(audioLatencyMs - videoLatencyMs),
      bitrateKbps: Math.round((this.#bytes * 8) / 1000),
      rttMs: round(this.#clock.rttMs),
      audioBufferMs: round(audioBufferMs),
      drops: {
        video: this.#drops.video,
        audio: this.#drops.audio,
        windowReplaced: video?.stats().framesDropped ?? 0,
        audioUnderruns: audio?.stats().underruns ?? 0,
      },
      totals: { ...this.#totals },
    };
    this.#videoLat = [];
    this.#holds = [];
    this.#audioLat = [];
    this.#frames = 0;
    this.#bytes = 0;
    return snap;
  }
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 10) / 10;
}
