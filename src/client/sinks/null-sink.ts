/**
 * Sinks that show and play nothing: `--no-playback` (record or measure without a window or sound)
 * and tests. They count what reached them so stats and tests see the same numbers as with a real
 * device, and keep the last frame / the PCM when asked (snapshot-style assertions).
 */
import type { AudioParams, VideoParams } from '../../protocol/messages.js';
import type { AudioSink, VideoSink } from './sink.js';

export class NullVideoSink implements VideoSink {
  readonly name = 'null-video';
  params: VideoParams | null = null;
  lastFrame: Buffer | null = null;
  lastPtsUs: number | null = null;
  bytes = 0;
  private framesShown = 0;
  private closed = false;

  async start(params: VideoParams): Promise<void> {
    this.params = params;
  }

  pushFrame(jpeg: Buffer, ptsUs: number): void {
    if (this.closed) return;
    this.framesShown++;
    this.bytes += jpeg.length;
    this.lastFrame = jpeg;
    this.lastPtsUs = ptsUs;
  }

  stats(): { framesShown: number; framesDropped: number } {
    return { framesShown: this.framesShown, framesDropped: 0 };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  destroy(): void {
    this.closed = true;
  }
}

export class NullAudioSink implements AudioSink {
  readonly name = 'null-audio';
  params: AudioParams | null = null;
  bytes = 0;
  packets = 0;
  discontinuities = 0;
  volume = 100;
  /** PCM kept only when constructed with { keepPcm: true } (tests). */
  readonly pcm: Buffer[] = [];
  private readonly keepPcm: boolean;
  private closed = false;

  constructor(opts: { keepPcm?: boolean } = {}) {
    this.keepPcm = opts.keepPcm ?? false;
  }

  async start(params: AudioParams): Promise<void> {
    this.params = params;
  }

  pushPcm(pcm: Buffer, _ptsUs: number, discontinuity: boolean): void {
    if (this.closed) return;
    this.packets++;
    this.bytes += pcm.length;
    if (discontinuity) this.discontinuities++;
    if (this.keepPcm) this.pcm.push(pcm);
  }

  setVolume(volume: number): void {
    if (Number.isFinite(volume)) this.volume = Math.min(100, Math.max(0, volume));
  }

  /** Milliseconds of audio received so far (no device, so nothing is ever buffered). */
  receivedMs(): number {
    const p = this.params;
    return p ? (this.bytes / (2 * p.channels) / p.sampleRateHz) * 1000 : 0;
  }

  stats(): { bufferedMs: number; underruns: number; droppedMs: number } {
    return { bufferedMs: 0, underruns: 0, droppedMs: 0 };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  destroy(): void {
    this.closed = true;
  }
}

/** Opened null sinks, for viewers that play nothing (recorders, tests, `--no-playback`). */
export async function openNullVideoSink(params: VideoParams): Promise<NullVideoSink> {
  const sink = new NullVideoSink();
  await sink.start(params);
  return sink;
}

export async function openNullAudioSink(params: AudioParams): Promise<NullAudioSink> {
  const sink = new NullAudioSink();
  await sink.start(params);
  return sink;
}
