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
import { RecorderSink } from '../../src/client/sinks/recorder-sink.js';
import { nowUs } from '../../src/shared/clock.js';
import type { LanstreamError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { decodeErrors, lastPacketS, probeMedia } from '../helpers/media-probe.js';
import { hasCommand, pidAlive, sleep, waitFor } from '../helpers/process.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const FPS = 30;

async function recordingSetup(t: Test) {
  const ts = await startTestServer({ fps: FPS });
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

t.test('the file has an mjpeg and an audio stream, each frame at its server PTS (≤ 1 frame), the whole span', { skip: !hasCommand('ffprobe') && 'ffprobe missing' }, async (t) => {
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
  const errorsUs: number[] = [];
  for (const p of probe.packets.filter((p) => p.streamIndex === videoStream!.index)) {
    if (seen.has(p.md5)) continue; // a repeated frame fills an empty slot after its own
    seen.add(p.md5);
    const pts = serverPts.get(p.md5);
    if (pts === undefined) continue;
    errorsUs.push(Math.abs(p.ptsTimeS * 1e6 - (pts - base)));
  }
  const received = v.video.filter((f) => f.ptsUs >= base).length;
  t.ok(errorsUs.length >= received * 0.9, `${errorsUs.length} of ${received} received frames are in the file byte for byte`);
  const maxErrUs = Math.max(...errorsUs);
  const frameUs = 1e6 / FPS;
  t.ok(maxErrUs <= frameUs + 1000, `every frame within one frame interval (+1 ms Matroska rounding) of its server PTS: max ${(maxErrUs / 1000).toFixed(1)} ms`);
  const meanErrUs = errorsUs.reduce((a, b) => a + b, 0) / errorsUs.length;
  t.ok(meanErrUs <= frameUs / 2, `on average within half a frame: ${(meanErrUs / 1000).toFixed(1)} ms`);
  const { framesDropped, framesRepeated } = recorder.stats();
  t.ok(framesDropped + framesRepeated <= received * 0.05, `few frames dropped (${framesDropped}) or repeated (${framesRepeated}) of ${received}`);

  const lastVideo = lastPacketS(probe, 'video');
  const lastAudio = lastPacketS(probe, 'audio');
  const lastServerS = (v.video[v.video.length - 1]!.ptsUs - base) / 1e6;
  t.ok(Math.abs(lastVideo - lastServerS) < 0.1, `last frame at ${lastVideo.toFixed(3)} s = last server frame ${lastServerS.toFixed(3)} s`);
  t.ok(Math.abs(lastAudio - lastVideo) < 0.15, `audio ends with the video (${lastAudio.toFixed(3)} vs ${lastVideo.toFixed(3)} s)`);
  t.equal(await decodeErrors(file), '', 'the whole file decodes without an error');
});

t.test('ffmpeg itself killed with SIGKILL: the file still plays up to the last second, and the viewer reports it', { skip: !hasCommand('ffprobe') && 'ffprobe missing' }, async (t) => {
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
});
