/**
 * Viewer sinks share one lifecycle (scrcpy style): start() opens the device, push*() never blocks
 * and never throws (a busy sink drops or replaces what it cannot take), close() is graceful and
 * idempotent (same promise twice), destroy() is immediate. A sink that fails after start reports
 * through `onError` once; the composition root decides what to do (e.g. keep the other sink).
 */
import type { AudioParams, VideoParams } from '../../protocol/messages.js';

export interface SinkEvents {
  /** Called at most once, when the sink dies on its own (window closed, device lost). */
  onError?: (err: Error) => void;
  /** The user closed the window (ffplay exited with status 0 or by the window's close button). */
  onUserClose?: () => void;
}

export interface VideoSink {
  readonly name: string;
  start(params: VideoParams): Promise<void>;
  /** One complete JPEG frame. Shown as soon as possible; if the sink is busy, only the newest waits. */
  pushFrame(jpeg: Buffer, ptsUs: number): void;
  /** Frames handed to the device / replaced because it was busy. */
  stats(): { framesShown: number; framesDropped: number };
  close(): Promise<void>;
  destroy(err?: Error): void;
}

export interface AudioSink {
  readonly name: string;
  start(params: AudioParams): Promise<void>;
  /** Interleaved s16le PCM in the stream's format. Paced by the sink to keep its delay near the target. */
  pushPcm(pcm: Buffer, ptsUs: number, discontinuity: boolean): void;
  /** 0–100, applied in lanstream's own audio path (not the system mixer). */
  setVolume(volume: number): void;
  stats(): { bufferedMs: number; underruns: number; droppedMs: number };
  close(): Promise<void>;
  destroy(err?: Error): void;
}

/** `--audio-output` values; `auto` tries the outputs in the order openAudio() documents. */
export const AUDIO_OUTPUTS = ['auto', 'audio-io', 'pulse', 'speaker', 'pacat'] as const;
export type AudioOutputChoice = (typeof AUDIO_OUTPUTS)[number];
