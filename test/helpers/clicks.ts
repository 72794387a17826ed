/**
 * Test helper for the pull outputs: 10 ms mono packets pushed on the wall clock, as the network
 * delivers them, with a click every 250 ms, and the delay from each click's push to when it was
 * heard on the private PulseAudio's speaker (test/helpers/pulse.ts).
 */
import type { AudioSink } from '../../src/client/sinks/sink.js';
import { nowMs } from '../../src/shared/clock.js';
import { sleep } from './process.js';
import { RECORD_RATE_HZ, type PulseServer, type Recording } from './pulse.js';
import { onsets } from './signal.js';

/** 10 ms of 48 kHz mono s16le. */
export const PACKET_BYTES = 960;
const CLICK = Buffer.alloc(PACKET_BYTES);
for (let s = 0; s < 48; s++) CLICK.writeInt16LE(s % 2 ? 20000 : -20000, s * 2);

/** Packet i: a click in every 25th (at 12, 37, …), silence otherwise. */
export function clickPacket(i: number): Buffer {
  return i % 25 === 12 ? CLICK : Buffer.alloc(PACKET_BYTES);
}

/**
 * Pushes `packets` 10 ms packets on the wall clock, one every `periodMs` (a sender whose clock is slower
 * than the sound card: more than 10); `onPush(i, atMs)` just before each push.
 */
export async function feed(
  sink: AudioSink,
  packets: number,
  packet: (i: number) => Buffer,
  onPush?: (i: number, atMs: number) => void,
  periodMs = 10,
): Promise<void> {
  const start = nowMs();
  for (let i = 0; i < packets; i++) {
    const due = start + i * periodMs;
    while (nowMs() < due) await sleep(1);
    onPush?.(i, nowMs());
    sink.pushPcm(packet(i), Math.round(due * 1000), false);
  }
}

/** Clicks fed from packet `first` on; records the nowMs() of each click's push. */
export async function feedClicks(sink: AudioSink, packets: number, pushedAt: number[], first = 0): Promise<void> {
  await feed(
    sink,
    packets,
    (i) => clickPacket(i + first),
    (i, at) => {
      if ((i + first) % 25 === 12) pushedAt.push(at);
    },
  );
}

/** For each push time, the delay until the next click heard in the recording (NaN: not heard). */
export function clickDelays(pcm: Buffer, rec: Recording, pushedAt: number[]): number[] {
  const zero = rec.sampleZeroAtMs();
  const heard = onsets(pcm, 0.3, 2400).map((i) => zero + (i * 1000) / RECORD_RATE_HZ);
  return pushedAt.map((p) => (heard.find((h) => h >= p) ?? Number.NaN) - p);
}

export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/**
 * Records the speaker while `play(pushedAt)` feeds clicks (with 200 ms before and 150 ms after), and
 * returns each click's push → heard delay in push order (NaN: not heard).
 */
export async function measureClicks(pulse: PulseServer, play: (pushedAt: number[]) => Promise<void>): Promise<number[]> {
  const rec = pulse.startRecording();
  await sleep(200);
  const pushedAt: number[] = [];
  await play(pushedAt);
  await sleep(150);
  return clickDelays(await rec.stop(), rec, pushedAt);
}

/** "p50 24.1 ms over 8 clicks (23 24 …)" for a test comment. */
export function describeDelays(delays: number[]): string {
  const sorted = [...delays].sort((a, b) => a - b);
  return `p50 ${median(delays).toFixed(1)} ms over ${delays.length} clicks (${sorted.map((d) => d.toFixed(0)).join(' ')})`;
}
