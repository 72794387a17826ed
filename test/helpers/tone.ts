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
