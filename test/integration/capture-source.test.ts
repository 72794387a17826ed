/**
 * CaptureSource with the real ffmpeg on lavfi test sources: what comes out is what the hub would
 * publish (valid JPEGs at the frame rate, 5 ms PCM packets at real time carrying the tone), a bad
 * device fails start() with ffmpeg's words, a killed ffmpeg is restarted, close() reaps the child.
 */
import t from 'tap';
import sharp from 'sharp';
import { CaptureSource, type AudioPacketEncoder, type CaptureState } from '../../src/server/capture/capture-source.js';
import { OpusPacketEncoder } from '../../src/server/capture/opus-packet-encoder.js';
import { opusSamples } from '../../src/client/decoders/opus-decoder.js';
import { buildAudioArgs, buildVideoArgs } from '../../src/server/capture/ffmpeg-args.js';
import { locateFfmpeg } from '../../src/server/capture/ffmpeg-locate.js';
import { AUDIO_PACKET_MS, Platform, type CapturedChunk } from '../../src/server/capture/capture-types.js';
import { MediaFlag } from '../../src/protocol/constants.js';
import { SLEW_STEP_US } from '../../src/server/capture/pcm-packetiser.js';
import { LanstreamError } from '../../src/shared/errors.js';
import { nowUs } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { pidAlive } from '../helpers/process.js';
import { burstWaitShare } from '../helpers/arrival-pace.js';

const ffmpegPath = await locateFfmpeg({});
const logger = silentLogger();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Received {
  chunk: CapturedChunk;
  arrivalUs: number;
}

function videoSource(extra: { inputArgs?: string; onStatus?: (s: CaptureState, d?: string) => void; stallTimeoutMs?: number } = {}) {
  const received: Received[] = [];
  const source = new CaptureSource({
    kind: 'video',
    ffmpegPath,
    args: buildVideoArgs({
      platform: Platform.LINUX,
      source: 'test',
      width: 320,
      height: 240,
      fps: 30,
      quality: 5,
      ...(extra.inputArgs ? { inputArgs: extra.inputArgs, source: 'device' } : {}),
    }),
    logger,
    onChunk: (chunk) => received.push({ chunk, arrivalUs: nowUs() }),
    ...(extra.onStatus ? { onStatus: extra.onStatus } : {}),
    ...(extra.stallTimeoutMs ? { stallTimeoutMs: extra.stallTimeoutMs } : {}),
    restart: { backoffMs: [100] },
    graceMs: 300,
  });
  return { source, received };
}

function stats(values: number[]): { p50: number; p95: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p95: at(0.95), max: s.at(-1)! };
}

/** Power of one frequency in a block of samples (Goertzel), normalised by block length. */
function goertzel(samples: Int16Array, sampleRateHz: number, freqHz: number): number {
  const w = (2 * Math.PI * freqHz) / sampleRateHz;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.length;
}

t.test('test-source video: valid JPEG frames at about 30 fps', async (t) => {
  const { source, received } = videoSource();
  t.teardown(() => source.close());
  const t0 = nowUs();
  await source.start();
  const firstChunkMs = (nowUs() - t0) / 1000;
  t.equal(source.running, true);
  await sleep(2_000);
  const frames = received.map((r) => r.chunk);
  t.ok(frames.length >= 50, `${frames.length} frames in ~2 s`);
  for (const f of frames) {
    if (f.data[0] !== 0xff || f.data[1] !== 0xd8 || f.data.at(-2) !== 0xff || f.data.at(-1) !== 0xd9) {
      t.fail('frame without SOI/EOI');
      break;
    }
  }
  t.ok(
    frames.every((f) => f.flags === MediaFlag.KEYFRAME),
    'every frame is a keyframe, no discontinuity',
  );
  const meta = await sharp(frames[frames.length >> 1]!.data).metadata();
  t.equal(meta.width, 320);
  t.equal(meta.height, 240);
  const { data, info } = await sharp(frames[5]!.data).raw().toBuffer({ resolveWithObject: true });
  t.equal(data.length, info.width * info.height * info.channels, 'decodes to 320x240 pixels');
  const spanUs = frames.at(-1)!.ptsUs - frames[0]!.ptsUs;
  const fps = ((frames.length - 1) * 1e6) / spanUs;
  const gapsMs = frames.slice(1).map((f, i) => (f.ptsUs - frames[i]!.ptsUs) / 1000);
  const g = stats(gapsMs);
  t.comment(
    `video: first frame after ${firstChunkMs.toFixed(0)} ms; ${fps.toFixed(2)} fps; frame gap p50 ${g.p50.toFixed(1)} ms p95 ${g.p95.toFixed(1)} ms max ${g.max.toFixed(1)} ms; ~${Math.round(frames[5]!.data.length / 1024)} KiB/frame`,
  );
  t.ok(fps > 27 && fps < 33, `fps ${fps.toFixed(2)} ≈ 30`);
  t.ok(
    frames.every((f, i) => i === 0 || f.ptsUs > frames[i - 1]!.ptsUs),
    'PTS increase',
  );
  const pid = source.pid!;
  await source.close();
  t.equal(pidAlive(pid), false, 'close() reaped ffmpeg');
  t.equal(source.running, false);
  const after = received.length;
  await sleep(100);
  t.equal(received.length, after, 'nothing after close');
});

/** The test source's 440 Hz tone as mono 48 kHz packets (serve's default length unless given), collected into `received`. */
function testToneSource(received: Received[], extra: Partial<ConstructorParameters<typeof CaptureSource>[0]> = {}, packetMs = AUDIO_PACKET_MS): CaptureSource {
  return new CaptureSource({
    kind: 'audio',
    ffmpegPath,
    args: buildAudioArgs({ platform: Platform.LINUX, source: 'test', sampleRateHz: 48_000, channels: 1, packetMs }),
    logger,
    audio: { sampleRateHz: 48_000, channels: 1, packetMs },
    onChunk: (chunk) => received.push({ chunk, arrivalUs: nowUs() }),
    ...extra,
  });
}

t.test('test-source audio: 5 ms packets at real time carrying the 440 Hz tone', async (t) => {
  const received: Received[] = [];
  const source = testToneSource(received);
  t.teardown(() => source.close());
  await source.start();
  await sleep(2_000);
  const pid = source.pid!;
  await source.close();
  t.equal(pidAlive(pid), false, 'close() reaped ffmpeg');

  const packets = received.map((r) => r.chunk);
  t.equal(AUDIO_PACKET_MS, 5);
  t.ok(packets.length >= 300, `${packets.length} packets in ~2 s`);
  t.ok(
    packets.every((p) => p.data.length === 480),
    'every packet is 480 bytes (5 ms, 48 kHz mono s16)',
  );
  // 5 ms by sample count; the anchor may move toward the earliest arrivals by one SLEW_STEP_US per
  // 500 ms window (here when the first packet, which set it, came a little late).
  const steps = packets.slice(1).map((p, i) => p.ptsUs - packets[i]!.ptsUs);
  const slews = steps.filter((d) => d !== 5_000);
  t.ok(
    slews.every((d) => Math.abs(d - 5_000) <= SLEW_STEP_US) && slews.length <= Math.ceil(packets.length / 100),
    `PTS step 5 ms, but for at most one slew of ≤ ${SLEW_STEP_US} µs per window (saw ${[...new Set(steps)].join(',')})`,
  );
  t.equal(packets.filter((p) => p.flags & MediaFlag.DISCONTINUITY).length, 0, 'no re-anchor on a steady source');
  // Arrival pace: real time, not bursts. Compare arrival span with audio duration.
  const spanUs = received.at(-1)!.arrivalUs - received[0]!.arrivalUs;
  const audioUs = (packets.length - 1) * 5_000;
  const rate = audioUs / spanUs;
  const gaps = stats(received.slice(1).map((r, i) => (r.arrivalUs - received[i]!.arrivalUs) / 1000));
  const lag = stats(received.map((r) => (r.arrivalUs - r.chunk.ptsUs) / 1000));
  t.comment(
    `audio: ${packets.length} packets; pace ${rate.toFixed(3)}× real time; arrival gap p50 ${gaps.p50.toFixed(1)} ms p95 ${gaps.p95.toFixed(1)} ms max ${gaps.max.toFixed(1)} ms; arrival − PTS p50 ${lag.p50.toFixed(1)} ms max ${lag.max.toFixed(1)} ms`,
  );
  t.ok(rate > 0.95 && rate < 1.05, `real-time pace (${rate.toFixed(3)})`);
  // One packet at a time, like a microphone with 5 ms fragments: with -re, ffmpeg's 10 ms sleeps
  // delivered them in pairs (half the gaps near 0, the other half 10 ms).
  const paired = received.slice(1).filter((r, i) => r.arrivalUs - received[i]!.arrivalUs < 1_000).length / (received.length - 1);
  t.ok(gaps.p50 > 3.5 && gaps.p50 < 7.5, `arrival gap p50 one packet (${gaps.p50.toFixed(1)} ms)`);
  t.ok(paired < 0.25, `few packets arrive together (${(paired * 100).toFixed(0)} % under 1 ms apart)`);
  // Steady: 0-3 % of the time in waits over 3 packets (15 ms).
  // ffmpeg's default 1024-sample frames bring 4-5 packets every 21 ms: 99 % (their p95 gap, 21 ms,
  // passed the old bound of 25 ms). A loaded machine's late packets add only their own waits: 33 %
  // at a load average of 6 on 2 cores, so the bound sits between that and the 99 % of bursts.
  const burstShare = burstWaitShare(
    received.map((r) => r.arrivalUs),
    AUDIO_PACKET_MS,
  );
  t.ok(burstShare < 0.6, `packets arrive in small pieces, not bursts (${(burstShare * 100).toFixed(0)} % of the time in waits over 3 packets)`);

  const pcm = Buffer.concat(packets.slice(10, 60).map((p) => p.data));
  const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
  const at440 = goertzel(samples, 48_000, 440);
  const at1000 = goertzel(samples, 48_000, 1000);
  const at300 = goertzel(samples, 48_000, 300);
  t.ok(
    at440 > 100 * at1000 && at440 > 100 * at300,
    `440 Hz dominates (440: ${at440.toExponential(2)}, 300: ${at300.toExponential(2)}, 1000: ${at1000.toExponential(2)})`,
  );
  let crossings = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i - 1]! < 0 !== samples[i]! < 0) crossings++;
  const hz = crossings / 2 / (samples.length / 48_000);
  t.ok(Math.abs(hz - 440) < 10, `zero crossings say ${hz.toFixed(1)} Hz`);
});

t.test(
  'audio with an encoder (Opus): packets go out encoded with their PTS; a failed encode drops one packet and flags the next; restart resets, close() destroys',
  async (t) => {
    const calls: string[] = [];
    const opus = new OpusPacketEncoder({ channels: 1, bitrateKbps: 64, packetMs: 10 });
    const inputs: CapturedChunk[] = [];
    const encoder: AudioPacketEncoder = {
      encode: (pcm) => {
        inputs.push(pcm);
        if (inputs.length === 20) throw new RangeError('test: this packet cannot be encoded');
        return opus.encode(pcm);
      },
      reset: () => void calls.push('reset'),
      destroy: () => {
        calls.push('destroy');
        opus.destroy();
      },
    };
    const received: Received[] = [];
    const source = testToneSource(received, { audioEncoder: encoder, restart: { backoffMs: [100] } }, 10);
    t.teardown(() => source.close());
    await source.start();
    await sleep(500);
    process.kill(source.pid!, 'SIGKILL');
    const killedAtUs = nowUs();
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && received.filter((r) => r.arrivalUs > killedAtUs).length < 20) await sleep(20);
    await source.close();
    t.same(calls, ['reset', 'destroy'], 'reset() on the restart, destroy() on close()');

    const packets = received.map((r) => r.chunk);
    t.equal(packets.length, inputs.length - 1, 'every PCM packet but the failed one went out');
    t.ok(
      packets.every((p) => opusSamples(p.data) === 480 && p.data.length < 400),
      'each one is a 10 ms Opus packet, not PCM',
    );
    t.same(
      packets.slice(0, 19).map((p) => p.ptsUs),
      inputs.slice(0, 19).map((p) => p.ptsUs),
      'PTS of the PCM packet kept',
    );
    t.same(
      packets.slice(19, 40).map((p) => p.ptsUs),
      inputs.slice(20, 41).map((p) => p.ptsUs),
    );
    t.equal(packets[19]!.flags & MediaFlag.DISCONTINUITY, MediaFlag.DISCONTINUITY, 'the packet after the dropped one is flagged DISCONTINUITY');
    t.equal(
      packets
        .slice(0, 19)
        .concat(packets.slice(20, 40))
        .filter((p) => p.flags & MediaFlag.DISCONTINUITY).length,
      0,
      'no other flag before the restart',
    );
    const restarted = inputs.findIndex((p) => p.flags & MediaFlag.DISCONTINUITY);
    t.ok(restarted > 20, 'the PCM after the restart was flagged by the packetiser');
    t.equal(packets[restarted - 1]!.flags & MediaFlag.DISCONTINUITY, MediaFlag.DISCONTINUITY, 'and stays flagged once encoded');
  },
);

t.test('a missing camera rejects start() with DEVICE_NOT_FOUND and ffmpeg stderr', async (t) => {
  const { source } = videoSource({ inputArgs: '-f v4l2 -i /dev/video99' });
  t.teardown(() => source.close());
  const err = await source.start().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof LanstreamError, 'LanstreamError');
  const le = err as LanstreamError;
  t.equal(le.code, 'LS_ERR_DEVICE_NOT_FOUND');
  t.match(le.message, /video99/);
  t.ok(Array.isArray(le.details.stderrTail) && (le.details.stderrTail as string[]).some((l) => /video99/.test(l)), 'stderr tail kept');
  t.equal(source.running, false);
});

t.test('a killed ffmpeg is restarted and frames resume; close() reaps the new child', async (t) => {
  const states: string[] = [];
  const { source, received } = videoSource({ onStatus: (s) => states.push(s) });
  t.teardown(() => source.close());
  await source.start();
  await sleep(300);
  const firstPid = source.pid!;
  process.kill(firstPid, 'SIGKILL');
  const killedAtUs = nowUs();
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && !(states.at(-1) === 'live' && states.includes('restarting'))) await sleep(20);
  t.same(states, ['starting', 'live', 'restarting', 'live']);
  const secondPid = source.pid!;
  t.not(secondPid, firstPid, 'a new ffmpeg');
  t.equal(pidAlive(firstPid), false, 'the killed one is gone');
  const resumed = received.find((r) => r.arrivalUs > killedAtUs && (r.chunk.flags & MediaFlag.DISCONTINUITY) !== 0);
  t.ok(resumed, 'the first frame after the restart is flagged DISCONTINUITY');
  t.comment(`restart: frames resumed ${((resumed!.arrivalUs - killedAtUs) / 1000).toFixed(0)} ms after the kill (backoff 100 ms)`);
  const before = received.length;
  await sleep(300);
  t.ok(received.length > before + 5, 'frames keep coming');
  await source.close();
  t.equal(pidAlive(secondPid), false, 'close() reaped the restarted ffmpeg');
  await source.close(); // idempotent
});

t.test('an ffmpeg that stops sending without exiting (a stalled camera) is restarted, not left frozen', async (t) => {
  const states: string[] = [];
  const { source, received } = videoSource({ onStatus: (s) => states.push(s), stallTimeoutMs: 700 });
  t.teardown(() => source.close());
  await source.start();
  await sleep(300);
  const stuckPid = source.pid!;
  process.kill(stuckPid, 'SIGSTOP'); // blocked as in a read that never returns: no data, no exit
  t.teardown(() => {
    if (pidAlive(stuckPid)) process.kill(stuckPid, 'SIGKILL');
  });
  const stoppedAtUs = nowUs();
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && !received.some((r) => r.arrivalUs > stoppedAtUs + 100_000)) await sleep(20);
  const resumed = received.find((r) => r.arrivalUs > stoppedAtUs + 100_000);
  t.ok(
    resumed,
    `frames again ${resumed ? ((resumed.arrivalUs - stoppedAtUs) / 1000).toFixed(0) : '–'} ms after the child stopped (stall limit 700 ms, SIGKILL after 300 ms)`,
  );
  t.not(source.pid, stuckPid, 'from a new ffmpeg');
  t.same(states.slice(0, 4), ['starting', 'live', 'restarting', 'live'], 'reported as a restart');
});

t.test('repeated failures after live end in "failed"', async (t) => {
  const states: string[] = [];
  const details: (string | undefined)[] = [];
  const { source } = videoSource({ onStatus: (s, d) => (states.push(s), details.push(d)) });
  t.teardown(() => source.close());
  // Each restart is killed as soon as it exists: none gets back to live.
  await source.start();
  const deadline = Date.now() + 8_000;
  let lastKilled = 0;
  while (Date.now() < deadline && source.state !== 'failed') {
    const pid = source.pid;
    if (pid !== undefined && pid !== lastKilled) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      lastKilled = pid;
    }
    await sleep(5);
  }
  t.equal(source.state, 'failed');
  t.equal(states.at(-1), 'failed');
  t.ok(source.lastError instanceof LanstreamError);
  t.equal(source.running, false);
});
