/**
 * FfmpegStandby with the real ffmpeg: a gated child opens nothing until the gate opens (a device
 * that does not exist would make it exit at once), the gate gives data, close() leaves no child and
 * no FIFO dir, a standby killed while it waits is replaced once and never shows as a capture
 * failure, and serve hands a fresh standby to the next viewer after the last one left.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import t from 'tap';
import path from 'node:path';
import { CaptureSource, type CaptureState } from '../../src/server/capture/capture-source.js';
import { FfmpegStandby } from '../../src/server/capture/ffmpeg-standby.js';
import { buildVideoArgs } from '../../src/server/capture/ffmpeg-args.js';
import { locateFfmpeg } from '../../src/server/capture/ffmpeg-locate.js';
import { Platform } from '../../src/server/capture/capture-types.js';
import { silentLogger } from '../../src/shared/logger.js';
import { nowUs } from '../../src/shared/clock.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { pidAlive, sleep, waitFor } from '../helpers/process.js';

const ffmpegPath = await locateFfmpeg({});
const logger = silentLogger();
const testArgs = buildVideoArgs({ platform: Platform.LINUX, source: 'test', width: 320, height: 240, fps: 30, quality: 5 });
// A camera that does not exist: a cold ffmpeg with these args exits within ~100 ms.
const missingCameraArgs = buildVideoArgs({
  platform: Platform.LINUX,
  source: 'device',
  device: '/dev/video-lanstream-missing',
  width: 320,
  height: 240,
  fps: 30,
  quality: 5,
});

function standby(args = testArgs): FfmpegStandby {
  return new FfmpegStandby({ ffmpegPath, args, name: 'video', platform: Platform.LINUX, logger, graceMs: 500 });
}

function source(s: FfmpegStandby, onStatus?: (state: CaptureState) => void): CaptureSource {
  return new CaptureSource({ kind: 'video', ffmpegPath, args: testArgs, logger, standby: s, onChunk: () => {}, ...(onStatus ? { onStatus } : {}) });
}

t.test('the gate holds: a gated ffmpeg with a missing camera stays alive, silent and without the device until the gate opens', async (t) => {
  const s = standby(missingCameraArgs);
  t.teardown(() => s.close());
  await s.refill();
  const pid = s.pid!;
  t.ok(pid, 'a standby child was spawned');
  await sleep(600);
  t.ok(pidAlive(pid), 'still alive after 600 ms: it never tried to open the camera');
  t.match(readFileSync(`/proc/${pid}/wchan`, 'utf8'), /wait_for_partner|pipe|fifo/, 'blocked opening its gate FIFO');
  const child = s.take()!;
  t.equal(child.pid, pid, 'take() hands over the gated child');
  const exit = await new Promise<{ code: number | null; stderrTail: string[] }>((resolve) => child.once('exit', resolve));
  t.not(exit.code, 0, 'once the gate opened it tried the camera and failed');
  t.match(exit.stderrTail.join('\n'), /video-lanstream-missing/, 'with the camera named in its stderr');
  t.equal(s.take(), null, 'nothing waits after a take (no standby while capture runs)');
});

t.test('opening the gate gives frames: CaptureSource.start() takes the standby child', async (t) => {
  const s = standby();
  t.teardown(() => s.close());
  await s.refill();
  const pid = s.pid;
  await sleep(300);
  const src = source(s);
  t.teardown(() => src.close());
  const t0 = nowUs();
  await src.start();
  const ms = (nowUs() - t0) / 1000;
  t.equal(src.pid, pid, 'capture runs in the child that waited');
  t.ok(ms < 1000, `first chunk ${ms.toFixed(0)} ms after start()`);
  t.comment(`gate → first chunk (lavfi 320x240): ${ms.toFixed(1)} ms`);
  await src.close();
  t.notOk(pidAlive(pid!), 'close() of the source reaps the former standby');
});

t.test('close() leaves no child and no FIFO dir', async (t) => {
  const s = standby();
  await s.refill();
  const pid = s.pid!;
  const dir = s.dir!;
  t.ok(existsSync(dir) && readdirSync(dir).filter((e) => e.startsWith('gate-')).length === 1, 'one FIFO in the private dir while waiting');
  t.equal(readFileSync(path.join(dir, 'owner'), 'utf8'), String(process.pid), 'and the owner PID, for the orphan sweep');
  await s.close();
  t.notOk(pidAlive(pid), 'the gated child is gone');
  t.notOk(existsSync(dir), 'the FIFO dir is removed');
  await s.refill();
  t.equal(s.pid, undefined, 'no refill after close()');
});

t.test('a standby killed while it waits is replaced once, and start() still works without a capture failure', async (t) => {
  const s = standby();
  t.teardown(() => s.close());
  await s.refill();
  const first = s.pid!;
  process.kill(first, 'SIGKILL');
  await waitFor(() => s.pid !== undefined && s.pid !== first, 3000, 10);
  const second = s.pid!;
  t.pass('replaced by a new gated child');
  process.kill(second, 'SIGKILL');
  await sleep(500);
  t.equal(s.pid, undefined, 'a second death is not replaced (until the next refill)');
  const states: CaptureState[] = [];
  const cold = source(s, (st) => states.push(st));
  t.teardown(() => cold.close());
  await cold.start();
  t.ok(cold.pid && cold.pid !== second, 'start() spawned cold');
  await cold.close();

  await s.refill();
  const third = s.pid!;
  await sleep(200);
  // Killed just before the viewer comes: its exit may not have been seen when start() takes it.
  process.kill(third, 'SIGKILL');
  const racing = source(s, (st) => states.push(st));
  t.teardown(() => racing.close());
  await racing.start();
  t.ok(racing.pid && racing.pid !== third, 'start() fell back to a cold spawn');
  t.notOk(states.includes('failed') || states.includes('restarting'), `no failure reported (states: ${states.join(',')})`);
});

t.test('serve: the first viewer gets the standby child, the next viewer after the last left gets a fresh one; close() leaves none', async (t) => {
  const ts = await startTestServer({ audio: false, lingerMs: 100 });
  let closed = false;
  t.teardown(() => (closed ? undefined : ts.close()));
  const firstStandby = ts.server.standbyPids().video!;
  t.ok(firstStandby, 'a standby waits before any viewer');
  const a = testViewer(ts);
  t.teardown(() => a.viewer.close());
  const joinedUs = nowUs();
  await a.viewer.start();
  await waitFor(() => a.video.length >= 3, 5000, 20);
  t.equal(ts.server.capturePids().video, firstStandby, 'capture runs in the standby child');
  t.ok(a.video[0]!.ptsUs >= joinedUs, 'the first frame was captured after the viewer joined');
  t.equal(ts.server.standbyPids().video, undefined, 'no standby while capture runs');
  await a.viewer.close();
  await waitFor(() => ts.server.standbyPids().video !== undefined, 5000, 20);
  const secondStandby = ts.server.standbyPids().video!;
  t.not(secondStandby, firstStandby, 'a fresh standby once idle');
  t.notOk(pidAlive(firstStandby), 'the old capture child is gone');
  const b = testViewer(ts);
  t.teardown(() => b.viewer.close());
  await b.viewer.start();
  await waitFor(() => b.video.length >= 3, 5000, 20);
  t.equal(ts.server.capturePids().video, secondStandby, 'the next viewer got the fresh standby');
  await b.viewer.close();
  await waitFor(() => ts.server.standbyPids().video !== undefined, 5000, 20);
  const third = ts.server.standbyPids().video!;
  closed = true;
  await ts.close();
  t.notOk(pidAlive(third), 'close() killed the waiting standby');
  t.notOk(pidAlive(secondStandby), 'and the capture child');
});

t.test('serve --keep-warm and captureStandby false keep no standby', async (t) => {
  for (const overrides of [{ keepWarm: true }, { captureStandby: false }]) {
    const ts = await startTestServer({ audio: false, ...overrides });
    t.equal(ts.server.standbyPids().video, undefined, JSON.stringify(overrides));
    await ts.close();
  }
});
