/**
 * Test helper: pure analysis (and generation) of s16le PCM, for asserting what reached the virtual
 * speaker: which tone (dominantFrequencyHz), how loud (rmsDbfs), how much of one frequency
 * (goertzelPower), and where sound starts (onsets, for latency). No I/O.
 * Multi-channel buffers are analysed as one interleaved series; record mono (pulse.ts does).
 */

/** Samples of an s16le buffer as numbers in [-1, 1). Copies, so odd byte offsets are fine. */
export function toFloat(pcm: Buffer): Float64Array {
  const n = Math.floor(pcm.length / 2);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = pcm.readInt16LE(i * 2) / 32768;
  return out;
}

/** RMS level in dB relative to full scale (a full-scale sine is −3 dBFS; digital silence is −Infinity). */
export function rmsDbfs(pcm: Buffer): number {
  const x = toFloat(pcm);
  if (x.length === 0) return -Infinity;
  let sum = 0;
  for (const v of x) sum += v * v;
  return 10 * Math.log10(sum / x.length);
}

/**
 * Power of one frequency (Goertzel), normalised so a full-scale sine at exactly that frequency gives
 * ~0.5 (its mean square), and other frequencies give ~0.
 */
export function goertzelPower(pcm: Buffer, sampleRateHz: number, freqHz: number): number {
  const x = toFloat(pcm);
  const n = x.length;
  if (n === 0) return 0;
  const w = (2 * Math.PI * freqHz) / sampleRateHz;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = x[i]! + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * power) / (n * n);
}

/**
 * Frequency with the most energy (Hann-windowed FFT over the middle of the buffer, up to 2^16
 * samples, refined by parabolic interpolation; resolution well under 1 Hz for a 1 s tone at 48 kHz).
 * Returns 0 for silence or buffers shorter than 256 samples.
 */
export function dominantFrequencyHz(pcm: Buffer, sampleRateHz: number): number {
  const x = toFloat(pcm);
  let size = 1;
  while (size * 2 <= Math.min(x.length, 65_536)) size *= 2;
  if (size < 256) return 0;
  const start = Math.floor((x.length - size) / 2);
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  for (let i = 0; i < size; i++) re[i] = x[start + i]! * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (size - 1)));
  fft(re, im);
  const mag = new Float64Array(size / 2);
  let best = 1;
  for (let k = 1; k < size / 2; k++) {
    mag[k] = Math.hypot(re[k]!, im[k]!);
    if (mag[k]! > mag[best]!) best = k;
  }
  if (mag[best]! < 1e-9) return 0;
  let offset = 0;
  if (best > 1 && best < size / 2 - 1) {
    const a = Math.log(mag[best - 1]! + 1e-30);
    const b = Math.log(mag[best]! + 1e-30);
    const c = Math.log(mag[best + 1]! + 1e-30);
    const denom = a - 2 * b + c;
    if (denom !== 0) offset = (0.5 * (a - c)) / denom;
  }
  return ((best + offset) * sampleRateHz) / size;
}

/** In-place iterative radix-2 FFT (length must be a power of two). */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b]! * cr - im[b]! * ci;
        const ti = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - tr;
        im[b] = im[a]! - ti;
        re[a] = re[a]! + tr;
        im[a] = im[a]! + ti;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
}

/**
 * Sample indices where sound starts: |x| crosses `threshold` (0–1) after at least `quietSamples`
 * below it. Use with short clicks in silence to measure when each one came out.
 */
export function onsets(pcm: Buffer, threshold: number, quietSamples: number): number[] {
  const x = toFloat(pcm);
  const out: number[] = [];
  let quiet = quietSamples;
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]!) >= threshold) {
      if (quiet >= quietSamples) out.push(i);
      quiet = 0;
    } else {
      quiet++;
    }
  }
  return out;
}

/** A sine tone as interleaved s16le; `startSample` continues the phase across packets. */
export function sineS16(opts: { freqHz: number; sampleRateHz: number; channels?: number; samples: number; amplitude?: number; startSample?: number }): Buffer {
  const channels = opts.channels ?? 1;
  const amplitude = opts.amplitude ?? 0.5;
  const start = opts.startSample ?? 0;
  const buf = Buffer.alloc(opts.samples * channels * 2);
  for (let i = 0; i < opts.samples; i++) {
    const v = Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * opts.freqHz * (start + i)) / opts.sampleRateHz));
    for (let c = 0; c < channels; c++) buf.writeInt16LE(v, (i * channels + c) * 2);
  }
  return buf;
}
