/**
 * --record in process: a real server (ffmpeg test source) → viewer over TLS → RecorderSink → ffmpeg →
 * Matroska, then ffprobe. Frames are matched by their bytes (stream copy), so each frame's time in
 * the file can be compared with the server PTS it arrived with.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MAX_GAP_US, PHASE_FRAMES, RecorderSink, RecordingTimeline, type TimelineWrite } from '../../src/client/sinks/recorder-sink.js';
import { nowUs } from '../../src/shared/clock.js';
import type { LanstreamError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { Server } from '../../src/server/serve.js';
import { startTestServer, testServeOptions, testViewer } from '../helpers/lanstream.js';
import { decodeErrors, lastPacketS, probeMedia } from '../helpers/media-probe.js';
import { hasCommand, pidAlive, sleep, waitFor } from '../helpers/process.js';
import { seededRandom } from '../helpers/hostile-streams.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const FPS = 30;

async function recordingSetup(t: Test, serveOverrides: Parameters<typeof startTestServer>[0] = {}) {
  const ts = await startTestServer({ fps: FPS, ...serveOverrides });
  t.teardown(() => ts.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'rec.mkv');
  const recorder = new RecorderSink({ file, ffmpegPath: 'ffmpeg', logger: silentLogger() });
  const v = testViewer(ts, { recorder });
  const recordErrors: LanstreamError[] = [];
  v.viewer.on('record-error', (err) => recordErrors.push(err));
  t.teardown(() => v.viewer.close());
  return { ts, file, recorder, v, recordErrors };
}

t.test(
  'the file has an mjpeg and an audio stream, frames at their server PTS, the whole span',
  { skip: !hasCommand('ffprobe') && 'ffprobe missing' },
  async (t) => {
    const { file, recorder, v, recordErrors } = await recordingSetup(t);
    await v.viewer.start();
    await waitFor(() => recorder.baseUs !== null, 5000, 20, 'recording started');
    await sleep(3000);
    await v.viewer.close(); // the recorder closes last: the file is complete when this resolves
    t.same(recordErrors, [], 'no recorder error');

    const probe = await probeMedia(file);
    const videoStream = probe.streams.find((s) => s.codecType === 'video');
    const audioStream = probe.streams.find((s) => s.codecType === 'audio');
    t.equal(videoStream?.codecName, 'mjpeg', 'video stream is MJPEG (frames copied, not re-encoded)');
    t.equal(audioStream?.codecName, 'pcm_s16le', 'audio stream is the PCM that was received');
    t.ok(probe.durationS !== null && Math.abs(probe.durationS - 3) < 0.5, `container duration ${probe.durationS} s ≈ 3 s recorded`);

    const base = recorder.baseUs!;
    const serverPts = new Map<string, number>();
    for (const f of v.video) if (!serverPts.has(md5(f.data))) serverPts.set(md5(f.data), f.ptsUs);
    const seen = new Set<string>();
    const errorsUs: number[] = []; // file time − server time
    for (const p of probe.packets.filter((p) => p.streamIndex === videoStream!.index)) {
      if (seen.has(p.md5)) continue; // a repeated frame fills an empty slot after its own
      seen.add(p.md5);
      const pts = serverPts.get(p.md5);
      if (pts === undefined) continue;
      errorsUs.push(p.ptsTimeS * 1e6 - (pts - base));
    }
    const received = v.video.filter((f) => f.ptsUs >= base).length;
    t.ok(errorsUs.length >= received * 0.9, `${errorsUs.length} of ${received} received frames are in the file byte for byte`);
    const frameUs = 1e6 / FPS;
    const earliestUs = Math.min(...errorsUs);
    // The grid is shifted by −¼ to +¾ of a frame to put the frames' mean phase on slot centres, then
    // each frame is rounded to its slot (±½): a frame stamped late by its own jitter can sit up to ¾
    // of a frame before its PTS (a CI run under load: −17.7 ms at 30 fps), never more.
    t.ok(
      earliestUs >= (-frameUs * 3) / 4 - 1000,
      `no frame shown more than ¾ frame (+1 ms Matroska rounding) before its server PTS: ${(earliestUs / 1000).toFixed(1)} ms`,
    );
    const medianOf = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const medianUs = medianOf(errorsUs);
    // Each frame is rounded to the slot nearest its PTS, so beyond the grid shift the typical frame is
    // off by the typical distance of its PTS from the phase the grid was set to (the mean phase of the
    // first PHASE_FRAMES frames): ~1–3 ms from an even camera, more when a loaded machine stamps frames
    // unevenly or their phase drifts (a CI run: median 29.1 ms against a fixed ¾-frame bound of 26 ms).
    // That distance, from the server's own PTS:
    const phases = v.video.filter((f) => f.ptsUs >= base).map((f) => (((f.ptsUs - base) % frameUs) / frameUs) * 2 * Math.PI);
    const first = phases.slice(0, PHASE_FRAMES);
    const gridPhase = Math.atan2(
      first.reduce((a, p) => a + Math.sin(p), 0),
      first.reduce((a, p) => a + Math.cos(p), 0),
    );
    const spreadUs = medianOf(phases.map((p) => Math.abs(Math.atan2(Math.sin(p - gridPhase), Math.cos(p - gridPhase))) * (frameUs / (2 * Math.PI))));
    t.ok(
      medianUs >= -frameUs / 4 - spreadUs - 1000 && medianUs <= (frameUs * 3) / 4 + spreadUs + 1000,
      `the typical frame sits inside the grid shift (−¼ to +¾ frame) ± the PTS spread (${(spreadUs / 1000).toFixed(1)} ms): median ${(medianUs / 1000).toFixed(1)} ms`,
    );
    // A frame that lost its slot can still fill a later empty one (newest frame wins), so not all are within 1 frame.
    const near = errorsUs.filter((e) => e <= frameUs + 1000).length;
    t.ok(near >= errorsUs.length * 0.9, `${near} of ${errorsUs.length} frames within one frame interval of their server PTS`);
    const meanErrUs = errorsUs.reduce((a, b) => a + Math.abs(b), 0) / errorsUs.length;
    const { framesDropped, framesRepeated } = recorder.stats();
    // These depend on how evenly the server's ffmpeg delivered frames (CPU load): informative only.
    t.comment(`mean distance ${(meanErrUs / 1000).toFixed(1)} ms; ${framesDropped} dropped, ${framesRepeated} repeated of ${received}`);

    const lastVideo = lastPacketS(probe, 'video');
    const lastAudio = lastPacketS(probe, 'audio');
    const lastServerS = (v.video[v.video.length - 1]!.ptsUs - base) / 1e6;
    t.ok(Math.abs(lastVideo - lastServerS) < 0.1, `last frame at ${lastVideo.toFixed(3)} s = last server frame ${lastServerS.toFixed(3)} s`);
    t.ok(Math.abs(lastAudio - lastVideo) < 0.15, `audio ends with the video (${lastAudio.toFixed(3)} vs ${lastVideo.toFixed(3)} s)`);
    t.equal(await decodeErrors(file), '', 'the whole file decodes without an error');
  },
);

t.test(
  'ffmpeg itself killed with SIGKILL: the file still plays up to the last second, and the viewer reports it',
  { skip: !hasCommand('ffprobe') && 'ffprobe missing' },
  async (t) => {
    const { file, recorder, v, recordErrors } = await recordingSetup(t);
    await v.viewer.start();
    await waitFor(() => recorder.baseUs !== null, 5000, 20, 'recording started');
    await sleep(2500);
    const pid = recorder.pid!;
    const spanS = (nowUs() - recorder.baseUs!) / 1e6;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => recordErrors.length > 0, 3000, 20, 'record-error event');
    t.equal(recordErrors[0]!.code, 'LS_ERR_RECORD_FAILED', 'the viewer reports the dead recorder with its code');
    t.notOk(pidAlive(pid), 'ffmpeg is gone');

    const probe = await probeMedia(file);
    t.same(probe.streams.map((s) => s.codecType).sort(), ['audio', 'video'], 'both streams are in the cut-off file');
    const lastVideo = lastPacketS(probe, 'video');
    const lastAudio = lastPacketS(probe, 'audio');
    // Clusters are closed every second (-cluster_time_limit 1000): at most the open one is lost.
    t.ok(lastVideo > spanS - 1.2 && lastVideo <= spanS + 0.05, `video plays to ${lastVideo.toFixed(2)} s of ${spanS.toFixed(2)} s recorded`);
    t.ok(lastAudio > spanS - 1.2, `audio plays to ${lastAudio.toFixed(2)} s of ${spanS.toFixed(2)} s recorded`);
    t.equal(await decodeErrors(file), '', 'the cut-off file decodes without an error');
  },
);

/** Pure timeline cases (no I/O): what ffmpeg's constant-rate inputs receive for given server PTS. */
t.test('timeline: server PTS → constant-rate inputs', async (t) => {
  const F = 1e6 / 30;
  const video = { codec: 'mjpeg' as const, width: 16, height: 16, fps: 30 };
  const audio = { codec: 'pcm_s16le' as const, sampleRateHz: 48000, channels: 1, packetMs: 10 };
  const frame = (n: number): Buffer => Buffer.from([n & 0xff, n >> 8]);
  const frames = (writes: TimelineWrite[]): number[] =>
    writes.flatMap((w) => (w.kind === 'video' ? Array<number>(w.repeats).fill(w.jpeg.readUInt16LE(0)) : []));
  const samples = (writes: TimelineWrite[]): number => writes.reduce((n, w) => n + (w.kind === 'audio' ? w.pcm.length / 2 : 0), 0);

  t.test('frames in pairs (server stamps two at once, then a gap): nothing dropped or repeated', async (t) => {
    const tl = new RecordingTimeline({ video, audio: null });
    const out: number[] = [];
    for (let n = 0; n < 60; n++) out.push(...frames(tl.video(frame(n), 1_000_000 + Math.floor(n / 2) * 2 * F + (n % 2) * 1000)));
    t.same([tl.stats.framesDropped, tl.stats.framesRepeated], [0, 0], 'no drop, no repeat');
    t.same(out, [...Array(60).keys()], 'every frame once, in order');
  });

  t.test('a steady source after one burst does not stay a frame late', async (t) => {
    const tl = new RecordingTimeline({ video, audio: null });
    const placed: number[] = [];
    // phase 0.3 of a frame, one extra frame squeezed in at n = 5
    const pts = [...Array(40).keys()].map((n) => 1_000_000 + (n + 0.3) * F);
    pts.splice(5, 0, pts[5]! - 1000);
    let slot = 0;
    for (const [i, p] of pts.entries()) {
      for (const n of frames(tl.video(frame(i), p))) placed[slot++] = n;
    }
    const lastErrorF = slot - 1 - (pts[pts.length - 1]! - pts[0]!) / F;
    t.ok(Math.abs(lastErrorF) < 0.5, `the last frame is back within half a frame of its PTS (${lastErrorF.toFixed(2)} frames)`);
  });

  t.test('missing frames repeat the previous one; a pause longer than MAX_GAP_US is cut out', async (t) => {
    const tl = new RecordingTimeline({ video, audio: null });
    const out = [...frames(tl.video(frame(1), 0)), ...frames(tl.video(frame(2), 3 * F)), ...frames(tl.video(frame(3), 3 * F + MAX_GAP_US + 5e6))];
    t.same(out, [1, 1, 1, 2, 3], '2 slots filled with frame 1, then frame 3 right after frame 2');
    t.equal(tl.stats.gapsSkipped, 1, 'one pause skipped');
  });

  t.test('frames half a frame off second 0 (audio started later) with a few ms of jitter: nothing dropped or repeated', async (t) => {
    const tl = new RecordingTimeline({ video, audio });
    const pcm = Buffer.alloc(960);
    // Video from 1 s, audio from half a frame later: second 0 is the audio's start, so every frame is
    // stamped half a frame off the grid; ±3 ms of jitter used to flip frames between two slots.
    const out: number[] = [];
    out.push(...frames(tl.video(frame(0), 1_000_000)));
    out.push(...frames(tl.audio(pcm, 1_000_000 + F / 2)));
    t.equal(tl.baseUs, 1_000_000 + F / 2, 'second 0 = where both have data');
    let seed = 11;
    const jitterUs = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return ((seed >>> 8) % 6001) - 3000; // ±3 ms
    };
    for (let n = 1; n < 90; n++) out.push(...frames(tl.video(frame(n), 1_000_000 + n * F + jitterUs())));
    t.same([tl.stats.framesDropped, tl.stats.framesRepeated], [0, 0], 'no drop, no repeat');
    t.same(out, [...Array(90).keys()], 'every frame once, in order (frame 0, half a frame before second 0, in slot 0)');
  });

  t.test('any phase, ±12 ms of jitter: no frame more than ¾ of a frame before its PTS, none more than 1¾ after', async (t) => {
    const rand = seededRandom(7);
    let earliest = Infinity;
    let latest = -Infinity;
    for (let phase = 0; phase < 1; phase += 0.05) {
      const tl = new RecordingTimeline({ video, audio: null });
      const pts = [...Array(90).keys()].map((n) => 1_000_000 + (n + phase) * F + (rand() - 0.5) * 24_000);
      const firstSlot = new Map<number, number>();
      let slot = 0;
      for (const [i, p] of pts.entries()) {
        for (const n of frames(tl.video(frame(i), p))) {
          if (!firstSlot.has(n)) firstSlot.set(n, slot); // a repeat fills a later slot: not its placement
          slot++;
        }
      }
      for (const [n, s] of firstSlot) {
        const errUs = s * F - (pts[n]! - tl.baseUs!);
        earliest = Math.min(earliest, errUs);
        latest = Math.max(latest, errUs);
      }
    }
    t.ok(earliest >= (-F * 3) / 4, `earliest ${(earliest / F).toFixed(2)} frames`);
    t.ok(latest <= (F * 7) / 4, `latest ${(latest / F).toFixed(2)} frames`);
  });

  t.test('video announced but not one frame comes (a camera that never delivers): the placeholder fills it', async (t) => {
    const pcm = Buffer.alloc(480); // 5 ms
    const run = (placeholder: Buffer | null): TimelineWrite[] => {
      const tl = new RecordingTimeline({ video, audio });
      if (placeholder) tl.setPlaceholderFrame(placeholder);
      const writes: TimelineWrite[] = [];
      for (let n = 0; n <= 600; n++) writes.push(...tl.audio(pcm, 1_000_000 + n * 5000)); // 3 s of sound
      return writes;
    };
    t.same(frames(run(null)), [], 'without one, nothing for the video input (ffmpeg then waits on it)');
    const filled = frames(run(frame(7)));
    t.ok(filled.length >= 30 && filled.every((n) => n === 7), `${filled.length} slots of the placeholder for ~2.5 s of sound`);
  });

  t.test('audio: a lost packet becomes silence, an overlap is trimmed, both media start together', async (t) => {
    const tl = new RecordingTimeline({ video, audio });
    const pcm = Buffer.alloc(960); // 10 ms
    t.same(tl.audio(pcm, 1_000_000), [], 'nothing written before video arrived');
    const start = [...tl.video(frame(0), 1_000_000), ...tl.audio(pcm, 1_010_000)];
    t.equal(tl.baseUs, 1_000_000, 'second 0 = where both have data');
    t.equal(samples(start), 960, 'two packets of audio');
    t.equal(samples(tl.audio(pcm, 1_060_000)), 1920 + 480, '40 ms lost (beyond the 30 ms tolerance) → 40 ms of silence, then the packet');
    t.equal(samples(tl.audio(pcm, 1_020_000)), 0, 'a packet entirely in the past is dropped');
  });

  t.test('one medium stops (a microphone unplugged, a camera gone): the other is not held back by more than 1 s', async (t) => {
    const pcm = Buffer.alloc(480); // 5 ms
    const tl = new RecordingTimeline({ video, audio });
    let writes = [...tl.video(frame(0), 1_000_000), ...tl.audio(pcm, 1_000_000)];
    for (let n = 1; n <= 90; n++) writes.push(...tl.video(frame(n), 1_000_000 + n * F)); // 3 s of video, no sound
    const videoS = frames(writes).length / 30;
    const audioS = samples(writes) / 48000;
    t.ok(videoS - audioS <= 1, `video ${videoS.toFixed(2)} s, audio (silence) ${audioS.toFixed(2)} s: ffmpeg gets both`);

    const tl2 = new RecordingTimeline({ video, audio });
    writes = [...tl2.video(frame(0), 1_000_000), ...tl2.audio(pcm, 1_000_000)];
    for (let n = 1; n <= 600; n++) writes.push(...tl2.audio(pcm, 1_000_000 + n * 5000)); // 3 s of sound, no frames
    const videoS2 = frames(writes).length / 30;
    const audioS2 = samples(writes) / 48000;
    t.ok(audioS2 - videoS2 <= 1, `audio ${audioS2.toFixed(2)} s, video (the last frame repeated) ${videoS2.toFixed(2)} s`);
    t.same([...new Set(frames(writes))], [0], 'the repeated frame is the last one received');
  });
});

t.test(
  'a camera that never delivers: the file still has the sound, with a black picture (it was 0 bytes)',
  { skip: !hasCommand('ffprobe') && 'ffprobe missing' },
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-record-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'no-camera.mkv');
    const recorder = new RecorderSink({ file, ffmpegPath: 'ffmpeg', logger: silentLogger() });
    const errors: LanstreamError[] = [];
    recorder.start(
      { video: { codec: 'mjpeg', width: 320, height: 240, fps: 30 }, audio: { codec: 'pcm_s16le', sampleRateHz: 48000, channels: 1, packetMs: 5 } },
      (err) => errors.push(err),
    );
    const pcm = Buffer.alloc(480); // 5 ms of silence
    const startUs = nowUs();
    // 3 s of sound as a server sends it, no frame at all.
    for (let n = 0; n < 600; n++) {
      recorder.pushPcm(pcm, startUs + n * 5000);
      if (n % 20 === 19) await sleep(100);
    }
    await recorder.close();
    t.same(errors, [], 'no recorder error');
    t.equal(recorder.closeError, null, 'ffmpeg finished the file');
    const probe = await probeMedia(file);
    t.same(probe.streams.map((s) => s.codecType).sort(), ['audio', 'video'], 'both streams');
    t.ok(lastPacketS(probe, 'audio') > 2.5, `the sound is there (${lastPacketS(probe, 'audio').toFixed(2)} s)`);
    t.ok(lastPacketS(probe, 'video') > 1.5, `black picture to ${lastPacketS(probe, 'video').toFixed(2)} s`);
    t.equal(await decodeErrors(file), '', 'the whole file decodes without an error');
  },
);

t.test(
  'a server restarted at another size ends the recording: the file keeps the first size only, the viewer watches on',
  { skip: !hasCommand('ffprobe') && 'ffprobe missing' },
  async (t) => {
    const { ts, file, recorder, v, recordErrors } = await recordingSetup(t, { width: 320, height: 240 });
    await v.viewer.start();
    await waitFor(() => recorder.baseUs !== null, 5000, 20, 'recording started');
    await sleep(1000);
    await ts.server.close(); // its config dir (key, certificate) stays for the second one
    const firstFrames = v.video.length;
    const second = new Server(testServeOptions(ts.configDir, { port: ts.ready.port, width: 640, height: 360 }));
    await second.start();
    t.teardown(() => second.close());
    await waitFor(() => recordErrors.length > 0, 15_000, 50, 'record-error after the reconnect');
    t.equal(recordErrors[0]!.code, 'LS_ERR_RECORD_FAILED');
    t.match(recordErrors[0]!.message, /now sends mjpeg video 640x360 at 30 fps \(was mjpeg video 320x240 at 30 fps\); --record cannot change format/);
    await waitFor(() => v.video.length > firstFrames + 15, 5000, 20, 'the viewer goes on receiving the new size');
    t.equal(v.viewer.connection.state, 'live', 'still watching');
    await v.viewer.close();

    const probe = await probeMedia(file);
    const videoStream = probe.streams.find((s) => s.codecType === 'video')!;
    const firstServer = new Set(v.video.slice(0, firstFrames).map((f) => md5(f.data)));
    const inFile = probe.packets.filter((p) => p.streamIndex === videoStream.index);
    t.ok(inFile.length > 15, `${inFile.length} frames recorded`);
    t.same(inFile.filter((p) => !firstServer.has(p.md5)).length, 0, 'every frame in the file came from the first server: none at the new size');
    t.equal(await decodeErrors(file), '', 'the file decodes without an error');
  },
);

t.test(
  'Opus audio is recorded as the PCM the viewer decoded; H.264 video is refused with a way out',
  { skip: !hasCommand('ffprobe') && 'ffprobe missing' },
  async (t) => {
    const { file, recorder, v, recordErrors } = await recordingSetup(t, { audioCodec: 'opus' });
    const dir = path.dirname(file);
    await v.viewer.start();
    await waitFor(() => recorder.baseUs !== null, 5000, 20, 'recording started');
    await sleep(2000);
    await v.viewer.close();
    t.same(recordErrors, [], 'no recorder error with an Opus stream');
    const probe = await probeMedia(file);
    t.equal(probe.streams.find((s) => s.codecType === 'video')?.codecName, 'mjpeg', 'video stream');
    t.equal(probe.streams.find((s) => s.codecType === 'audio')?.codecName, 'pcm_s16le', 'audio stream: the decoded Opus as PCM');
    t.ok(probe.durationS !== null && Math.abs(probe.durationS - 2) < 0.5, `about 2 s recorded (${probe.durationS} s)`);

    const refused = new RecorderSink({ file: path.join(dir, 'h264.mkv'), ffmpegPath: 'ffmpeg', logger: silentLogger() });
    const errors: LanstreamError[] = [];
    refused.start({ video: { codec: 'h264', width: 640, height: 360, fps: 30 }, audio: null }, (err) => errors.push(err));
    t.equal(errors[0]?.code, 'LS_ERR_RECORD_FAILED', 'H.264 video: a record error');
    t.match(errors[0]?.message, /supports MJPEG video; this server sends h264: record with --no-video/, 'naming the way out');
    await refused.close();
  },
);
