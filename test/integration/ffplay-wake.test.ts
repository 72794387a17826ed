/**
 * native/ffplay-wake.so in the real ffplay that WindowSink starts, on a private Xvfb: it is loaded,
 * ffplay's main loop is woken by its decoder instead of only by its 10 ms poll (the library counts
 * both), the pictures and keys still work, and LANSTREAM_FFPLAY_WAKE=0 leaves ffplay as it is.
 * What it is worth in latency is a benchmark, not a test: bench/results/diag-20261127-0715-ffplay-wake.md.
 */
import t, { type Test } from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startXvfb, type XvfbDisplay } from '../helpers/xvfb.js';
import { crop, grabScreen, meanColor } from '../helpers/screen.js';
import { hasCommand, killAll, waitFor } from '../helpers/process.js';
import { FFPLAY_WAKE_ENV, WindowSink, ffplayWakeLibrary } from '../../src/client/sinks/window-sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { feedFrames, nearColor, solidJpeg, type Rgb } from '../helpers/window-frames.js';

const W = 320;
const H = 240;
const PARAMS = { codec: 'mjpeg', width: W, height: H, fps: 30 } as const;

const missing = ['ffplay', 'Xvfb', 'xdotool', 'xdpyinfo'].filter((c) => !hasCommand(c));
if (missing.length) t.plan(0, `missing tools: ${missing.join(', ')}`);
else if (!ffplayWakeLibrary({})) t.fail('native/ffplay-wake.so is not built: npm run build (needs a C compiler) before the tests');

t.teardown(() => killAll());

async function windowColor(x: XvfbDisplay): Promise<Rgb> {
  return meanColor(crop(await grabScreen(x.display), { x: 20, y: 20, width: W - 40, height: H - 40 }));
}

/** A window fed ~30 fps of one colour until the colour is on screen and `frames` were pushed; then closed. */
async function showFrames(t: Test, env: NodeJS.ProcessEnv, frames: number): Promise<{ maps: string; pushed: number }> {
  const x = await startXvfb({ width: 640, height: 480 });
  t.teardown(() => x.close());
  const sink = new WindowSink({
    playerPath: 'ffplay',
    title: 'lanstream-wake-test',
    logger: silentLogger(),
    position: { x: 0, y: 0 },
    borderless: true,
    env: { ...x.env, ...env },
  });
  await sink.start(PARAMS);
  const green = await solidJpeg(W, H, { r: 0, g: 255, b: 0 });
  const camera = feedFrames(sink, () => green);
  t.teardown(() => camera.stop());
  await waitFor(async () => nearColor(await windowColor(x), { r: 0, g: 255, b: 0 }), 5000, 100, 'green on screen');
  const maps = await readFile(`/proc/${sink.pid}/maps`, 'latin1');
  await waitFor(() => sink.stats().framesShown >= frames, 10_000, 20, `${frames} frames pushed`);
  camera.stop();
  await sink.close();
  return { maps, pushed: sink.stats().framesShown };
}

t.test('loaded into ffplay, which then wakes for its frames instead of polling for them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lanstream-wake-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const statsFile = join(dir, 'stats');
  const { maps, pushed } = await showFrames(t, { LANSTREAM_FFPLAY_WAKE_STATS: statsFile }, 60);
  t.match(maps, /\/native\/ffplay-wake\.so/, 'the library is mapped into ffplay');
  t.pass(`green on screen (${pushed} frames pushed)`);
  await waitFor(() => existsSync(statsFile), 3000, 20, 'ffplay-wake stats written at exit');
  const m = /^wakes (\d+) timeouts (\d+)\n$/.exec(await readFile(statsFile, 'utf8'));
  t.ok(m, 'stats line');
  const wakes = Number(m![1]);
  const timeouts = Number(m![2]);
  // Each frame posts at least one wake-up (its packet queued, then its picture); without the library
  // ffplay's loop only ever times out (10 ms polls: ~100 a second).
  t.ok(wakes >= pushed / 2, `woken by the decoder: ${wakes} wakes for ${pushed} frames (${timeouts} polls timed out)`);
});

t.test(`${FFPLAY_WAKE_ENV}=0: ffplay runs without it`, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lanstream-wake-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const statsFile = join(dir, 'stats');
  const { maps } = await showFrames(t, { [FFPLAY_WAKE_ENV]: '0', LANSTREAM_FFPLAY_WAKE_STATS: statsFile }, 15);
  t.notMatch(maps, /ffplay-wake/, 'not mapped');
  t.notOk(existsSync(statsFile), 'and nothing counted');
});
