/** Test helper: the dominant frequency of s16le mono PCM, by counting zero crossings (a clean tone is enough). */
export function dominantFrequencyHz(pcm: Buffer, sampleRateHz: number): number {
  const n = Math.floor(pcm.length / 2);
  let crossings = 0;
  let prev = pcm.readInt16LE(0);
  for (let i = 1; i < n; i++) {
    const v = pcm.readInt16LE(i * 2);
    if ((prev < 0 && v >= 0) || (prev >= 0 && v < 0)) crossings++;
    prev = v;
  }
  return (crossings / 2) * (sampleRateHz / n);
}

/** Test helper: s16le sine PCM, one frequency per channel (interleaved), half scale, starting at sample `fromSample`. */
export function sineS16le(frequenciesHz: number[], sampleRateHz: number, samples: number, fromSample = 0): Buffer {
  const channels = frequenciesHz.length;
  const pcm = Buffer.alloc(samples * channels * 2);
  for (let i = 0; i < samples; i++) {
    for (const [c, hz] of frequenciesHz.entries()) {
      pcm.writeInt16LE(Math.round(16_000 * Math.sin((2 * Math.PI * hz * (fromSample + i)) / sampleRateHz)), (i * channels + c) * 2);
    }
  }
  return pcm;
}
