/**
 * Volume for the audio sinks, applied to s16le PCM in Node (the system mixer is not ours to touch,
 * and `speaker`/`pacat` have no volume of their own). Gain changes are ramped over a few ms because
 * a step in gain is a step in the waveform: an audible click. Pure: no I/O, no timers.
 */

/** Ramps shorter than ~5 ms still click on low tones; longer ones make the slider feel sluggish. */
export const DEFAULT_GAIN_RAMP_MS = 10;

/**
 * 0–100 → amplitude factor, cubic like PulseAudio's own volume sliders (50 % ≈ −18 dB), so the
 * slider is perceptually even instead of doing nothing over its top half.
 */
export function volumeToGain(volume: number): number {
  const v = Math.min(100, Math.max(0, volume)) / 100;
  return v * v * v;
}

export class PcmGain {
  private readonly channels: number;
  private readonly rampFrames: number;
  private current: number;
  private target: number;
  private step = 0;
  private volumeValue: number;

  constructor(opts: { sampleRateHz: number; channels: number; volume?: number; rampMs?: number }) {
    this.channels = Math.max(1, opts.channels);
    this.rampFrames = Math.max(1, Math.round(((opts.rampMs ?? DEFAULT_GAIN_RAMP_MS) * opts.sampleRateHz) / 1000));
    this.volumeValue = clampVolume(opts.volume ?? 100);
    this.current = volumeToGain(this.volumeValue);
    this.target = this.current;
  }

  get volume(): number {
    return this.volumeValue;
  }

  /** 0–100; values outside are clamped, non-numbers ignored. Takes effect over the ramp. */
  setVolume(volume: number): void {
    if (!Number.isFinite(volume)) return;
    this.volumeValue = clampVolume(volume);
    this.target = volumeToGain(this.volumeValue);
    this.step = (this.target - this.current) / this.rampFrames;
  }

  /**
   * Returns the PCM with the gain applied: the same buffer when the gain is exactly 1 (the common
   * case costs nothing), a new buffer otherwise. Samples are clamped to the s16 range.
   */
  apply(pcm: Buffer): Buffer {
    if (this.current === this.target && this.current === 1) return pcm;
    const frameBytes = this.channels * 2;
    const frames = Math.floor(pcm.length / frameBytes);
    if (this.current === this.target && this.current === 0) return Buffer.alloc(pcm.length);
    const out = Buffer.from(pcm);
    for (let f = 0; f < frames; f++) {
      if (this.current !== this.target) {
        this.current += this.step;
        if ((this.step > 0 && this.current >= this.target) || (this.step < 0 && this.current <= this.target) || this.step === 0) {
          this.current = this.target;
        }
      }
      const g = this.current;
      for (let c = 0; c < this.channels; c++) {
        const at = (f * this.channels + c) * 2;
        const v = Math.round(out.readInt16LE(at) * g);
        out.writeInt16LE(v > 32767 ? 32767 : v < -32768 ? -32768 : v, at);
      }
    }
    return out;
  }
}

function clampVolume(volume: number): number {
  return Math.min(100, Math.max(0, volume));
}
