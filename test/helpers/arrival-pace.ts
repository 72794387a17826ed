/**
 * Test helper: whether packets arrived one at a time or in bursts, from their arrival times alone.
 * A p95 of the gaps cannot say it: bursts of N packets leave N − 1 gaps near zero and one long one,
 * so with more than 20 packets a burst the p95 gap is near zero, and 1024-sample ffmpeg frames
 * (21 ms, 4 packets of 5 ms) kept it at 21 ms, under the 25 ms bound that was meant to catch them.
 */

/**
 * Share of the arrival span spent waiting longer than `waitPackets` packet durations for the next
 * packet: near 0 for steady delivery, near 1 for bursts of more than `waitPackets` packets. Time-weighted,
 * so a few late packets on a loaded machine (a GC, a descheduled ffmpeg) add only their own wait.
 */
export function burstWaitShare(arrivalsUs: readonly number[], packetMs: number, waitPackets = 3): number {
  if (arrivalsUs.length < 2) return Number.NaN;
  const limitUs = waitPackets * packetMs * 1000;
  let waitedUs = 0;
  for (let i = 1; i < arrivalsUs.length; i++) {
    const gapUs = arrivalsUs[i]! - arrivalsUs[i - 1]!;
    if (gapUs > limitUs) waitedUs += gapUs;
  }
  return waitedUs / (arrivalsUs.at(-1)! - arrivalsUs[0]!);
}
