/**
 * What the pull outputs (audio-io, PulseAudio) share: PCM in through the volume into a jitter buffer,
 * the device's pulls out of it. The volume can be set before the device is open.
 */
import type { AudioParams } from '../../protocol/messages.js';
import { JitterBuffer } from './jitter-buffer.js';
import { PcmGain } from './pcm-gain.js';

export class PullPlayout {
  #buffer: JitterBuffer | null = null;
  #gain: PcmGain | null = null;
  #volume: number;

  constructor(volume = 100) {
    this.#volume = volume;
  }

  /** Creates the jitter buffer (and the gain) for this stream. */
  open(params: AudioParams, targetMs: number): void {
    this.#buffer = new JitterBuffer({ sampleRateHz: params.sampleRateHz, channels: params.channels, targetMs });
    this.#gain = new PcmGain({ sampleRateHz: params.sampleRateHz, channels: params.channels, volume: this.#volume });
  }

  /** The device's pull: fills `out` from the jitter buffer (silence before open()). */
  pull(out: Int16Array): void {
    if (this.#buffer) this.#buffer.pull(out);
    else out.fill(0);
  }

  push(pcm: Buffer, discontinuity: boolean): void {
    if (!this.#buffer || pcm.length === 0) return;
    // Copy: the gain may return the same buffer, and the socket's chunk must not be kept alive.
    const data = this.#gain ? this.#gain.apply(Buffer.from(pcm)) : Buffer.from(pcm);
    this.#buffer.push(data, discontinuity);
  }

  setVolume(volume: number): void {
    if (!Number.isFinite(volume)) return;
    this.#volume = volume;
    this.#gain?.setVolume(volume);
  }

  /** `deviceMs`: what the device side holds on top of the jitter buffer. */
  stats(deviceMs: number, deviceUnderruns = 0): { bufferedMs: number; underruns: number; droppedMs: number } {
    const b = this.#buffer;
    return { bufferedMs: (b?.bufferedMs ?? 0) + deviceMs, underruns: (b?.underruns ?? 0) + deviceUnderruns, droppedMs: b?.droppedMs ?? 0 };
  }
}
