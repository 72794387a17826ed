/**
 * --fps 29.97 (cameras that offer only NTSC rates; avfoundation will not select them for 30): an
 * in-process server on the ffmpeg test source at 29.97 fps, over real TLS, says so in WELCOME,
 * delivers that rate, and a viewer's recording spaces its frames at 1/29.97 s. The protocol always
 * took a fractional rate; the CLI took whole numbers only (test/unit/cli-parse.test.ts parseFps).
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RecorderSink } from '../../src/client/sinks/recorder-sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { framesBetween, startTestServer, testViewer } from '../helpers/lanstream.js';
import { probeMedia } from '../helpers/media-probe.js';
import { hasCommand, sleep, waitFor } from '../helpers/process.js';
import { nowUs } from '../../src/shared/clock.js';

t.test('29.97 fps end to end: WELCOME, delivered rate, recorded frame spacing', { skip: !hasCommand('ffprobe') && 'ffprobe missing' }, async (t) => {
  const ts = await startTestServer({ fps: 29.97 });
  t.teardown(() => ts.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-ntsc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ntsc.mkv');
  const recorder = new RecorderSink({ file, ffmpegPath: 'ffmpeg', logger: silentLogger() });
  const v = testViewer(ts, { recorder, audio: false });
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  t.equal(v.viewer.welcome?.video?.fps, 29.97, 'WELCOME says 29.97');
  await waitFor(() => recorder.baseUs !== null, 5000, 20, 'recording started');
  await sleep(1000); // past the start
  const fromUs = nowUs();
  await sleep(4000);
  const frames = framesBetween(v.video, fromUs, nowUs()).length;
  // A fractional rate reaches capture and streaming intact (29.97 and 30 differ by 0.1 %, one frame in 4 s:
  // told apart by the recording's spacing below, not here).
  t.ok(Math.abs(frames / 4 - 29.97) < 1.5, `${frames} frames in 4 s (${(frames / 4).toFixed(2)} fps)`);
  await v.viewer.close();

  const probe = await probeMedia(file);
  const video = probe.streams.find((s) => s.codecType === 'video')!;
  const pts = probe.packets.filter((p) => p.streamIndex === video.index).map((p) => p.ptsTimeS);
  const steps = pts.slice(1).map((p, i) => p - pts[i]!);
  const median = [...steps].sort((a, b) => a - b)[Math.floor(steps.length / 2)]!;
  t.ok(pts.length > 100, `${pts.length} frames recorded`);
  // Matroska keeps milliseconds: 1/29.97 s is 33.37 ms, stored as 33 or 34.
  t.ok(Math.abs(median - 1 / 29.97) <= 0.0011, `recorded frame spacing ${(median * 1000).toFixed(1)} ms ≈ ${(1000 / 29.97).toFixed(2)} ms`);
  const spanS = pts.at(-1)! - pts[0]!;
  // Over 100+ frames the millisecond rounding averages out to < 0.01 ms; 29.97 and 30 fps differ by 0.033 ms.
  const meanS = spanS / (pts.length - 1);
  t.ok(Math.abs(meanS - 1 / 29.97) < 0.000012, `mean spacing over the file ${(meanS * 1000).toFixed(4)} ms (29.97 fps: 33.3667; 30 fps: 33.3333)`);
});
