/**
 * serve + watch in-process over real TLS with each codec pair: what arrives decodes (H.264 → frames
 * with ffmpeg, Opus → the test tone, played on a private PulseAudio's speaker), a viewer joining
 * mid-stream starts at a keyframe, and a missing hardware encoder falls back to libx264 with one warning.
 */
import t from 'tap';
import { MediaFlag } from '../../src/protocol/constants.js';
import { NullVideoSink } from '../../src/client/sinks/null-sink.js';
import { PulseSink } from '../../src/client/sinks/pulse-sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { nowUs } from '../../src/shared/clock.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { captureLogger } from '../helpers/log-capture.js';
import { dominantFrequencyHz, rmsDbfs } from '../helpers/signal.js';
import { startPulse, RECORD_RATE_HZ } from '../helpers/pulse.js';
import { hasCommand } from '../helpers/process.js';
import { decodeAnnexB } from '../helpers/h264-decode.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** No PulseAudio, no speaker to play the decoded Opus on (npm test installs it). */
const noPulse = !hasCommand('pulseaudio') && 'pulseaudio not installed';

t.test('h264 + opus: frames decode, the tone plays, a late joiner starts at a keyframe', { timeout: 30_000, skip: noPulse }, async (t) => {
  const ts = await startTestServer({ videoCodec: 'h264', audioCodec: 'opus', gopFrames: 15, videoBitrateKbps: 500, encoder: 'libx264' });
  t.teardown(() => ts.close());
  // The decoded Opus plays on a real output (PulseSink) into a private PulseAudio's speaker, recorded.
  const pulse = await startPulse();
  t.teardown(() => pulse.close());
  const rec = pulse.startRecording();
  const a = testViewer(ts, {
    openAudioSink: async (params) => {
      const sink = new PulseSink({ targetMs: 20, logger: silentLogger(), env: pulse.env });
      await sink.start(params);
      return sink;
    },
  });
  t.teardown(() => a.viewer.close());
  await a.viewer.start();
  t.match(a.viewer.welcome, { video: { codec: 'h264' }, audio: { codec: 'opus', sampleRateHz: 48000 } });
  await sleep(1500);

  // A second viewer joins mid-GOP.
  const joinUs = nowUs();
  const b = testViewer(ts, { audio: false });
  t.teardown(() => b.viewer.close());
  await b.viewer.start();
  const liveUs = nowUs();
  await sleep(1200);
  await Promise.all([a.viewer.close(), b.viewer.close()]);
  const played = await rec.stop();

  t.ok(a.video.length > 30, `${a.video.length} access units in ~2.7 s (30 fps; > 30 even on a loaded 2-core machine)`);
  t.ok((a.video[0]!.flags & MediaFlag.KEYFRAME) !== 0, 'first viewer starts at a keyframe');
  const keyframes = a.video.filter((v) => (v.flags & MediaFlag.KEYFRAME) !== 0).length;
  t.ok(keyframes >= 4, `${keyframes} keyframes (GOP 15 at 30 fps)`);
  const decoded = await decodeAnnexB(Buffer.concat(a.video.map((v) => v.data)));
  t.equal(decoded.frames, a.video.length, 'every access unit decodes to a picture');
  t.equal(decoded.stderr.trim(), '', 'without decoder errors');

  t.ok(b.video.length > 0, 'late joiner got video');
  t.ok((b.video[0]!.flags & MediaFlag.KEYFRAME) !== 0, 'late joiner starts at a keyframe');
  const lateDecoded = await decodeAnnexB(Buffer.concat(b.video.map((v) => v.data)));
  t.equal(lateDecoded.frames, b.video.length, 'and all it got decodes');
  t.comment(
    `first picture after join: ${((b.video[0]!.arrivalUs - joinUs) / 1000).toFixed(0)} ms from connect, ${((b.video[0]!.arrivalUs - liveUs) / 1000).toFixed(0)} ms from live`,
  );

  t.ok(a.audio.length > 150, `${a.audio.length} Opus packets`);
  t.ok(
    a.audio.every((p) => p.bytes < 400),
    'Opus packets, not PCM (960 bytes)',
  );
  // One second of the recording that ends 0.3 s before it did: the tone had long started, the viewer not yet closed.
  const bytesPerS = 2 * RECORD_RATE_HZ;
  const end = played.length - Math.round(0.3 * bytesPerS);
  const lastSecond = played.subarray(Math.max(0, end - bytesPerS), end);
  const hz = dominantFrequencyHz(lastSecond, RECORD_RATE_HZ);
  t.ok(rmsDbfs(lastSecond) > -40, `the speaker played sound (${rmsDbfs(lastSecond).toFixed(1)} dBFS)`);
  t.ok(Math.abs(hz - 440) < 15, `decoded tone at ${hz.toFixed(0)} Hz on the speaker (test source: 440 Hz)`);
});

t.test('mjpeg + pcm stays the default', { timeout: 15_000 }, async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const v = testViewer(ts);
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  await sleep(500);
  await v.viewer.close();
  t.match(v.viewer.welcome, { video: { codec: 'mjpeg' }, audio: { codec: 'pcm_s16le' } });
  t.ok(v.video.length > 0 && v.video.every((f) => f.data[0] === 0xff && f.data[1] === 0xd8), 'JPEG frames');
});

t.test('a hardware encoder that does not work falls back to libx264 with one warning', { timeout: 20_000 }, async (t) => {
  const logs = captureLogger('info');
  const ts = await startTestServer({ videoCodec: 'h264', audio: false, encoder: 'h264_nvenc', logger: logs.logger });
  t.teardown(() => ts.close());
  const warnings = logs.lines.filter((l) => l.level === 40 && String(l.msg).includes('does not work here'));
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0]?.msg, /^--encoder h264_nvenc does not work here \(.+\): using libx264 instead$/);
  const v = testViewer(ts, {
    audio: false,
    openVideoSink: async (p) => {
      const s = new NullVideoSink();
      await s.start(p);
      return s;
    },
  });
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  await sleep(700);
  await v.viewer.close();
  t.ok(v.video.length > 5, 'video flows with libx264');
});
