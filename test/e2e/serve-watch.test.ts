/**
 * e2e, the spine of the product: `lanstream serve --source test` and `lanstream watch` as two real
 * processes. The viewer's window goes to a private Xvfb and its sound (npm speaker → ALSA → pulse
 * plugin) to a private PulseAudio null sink, so we assert what a person would see and hear: the
 * window by its title, a moving test picture in it, a 440 Hz tone out of the speaker, and a clean
 * exit after --duration with no ffplay left behind.
 */
import t, { type Test } from 'tap';
import { rm } from 'node:fs/promises';
import { WINDOW_AT_ORIGIN, descendants, jsonLines, localWatchArgs, spawnCli, startServe } from '../helpers/cli.js';
import { hasCommand, killAll, pidAlive, run, sleep, waitFor } from '../helpers/process.js';
import { startPulse, RECORD_RATE_HZ } from '../helpers/pulse.js';
import { crop, findWindowByName, grabScreen, imageStats, meanAbsDiff, windowGeometry, type RgbImage } from '../helpers/screen.js';
import { dominantFrequencyHz, rmsDbfs } from '../helpers/signal.js';
import { startXvfb } from '../helpers/xvfb.js';
import { windowTitles } from '../helpers/window-title.js';

t.teardown(() => killAll());

const missing = ['Xvfb', 'xdotool', 'xprop', 'pulseaudio', 'parec', 'ffplay'].filter((c) => !hasCommand(c));

/**
 * `serve --source test` (plus serveArgs) and a `watch --json` of it for `duration`, its window on a
 * private Xvfb and its sound into a private PulseAudio; everything is torn down with the test.
 */
async function serveAndWatch(t: Test, serveArgs: string[], duration: string, watchArgs: string[] = []) {
  const [xvfb, pulse, serve] = await Promise.all([startXvfb({ width: 640, height: 480 }), startPulse(), startServe({ args: serveArgs })]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([xvfb.close(), pulse.close(), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const watch = spawnCli(localWatchArgs(serve, ...WINDOW_AT_ORIGIN, '--duration', duration, '--json', ...watchArgs), { env: { ...xvfb.env, ...pulse.env } });
  t.teardown(() => watch.destroy());
  return { xvfb, pulse, serve, watch };
}

/**
 * The stream's 640x360 at the window's place (0,0), grabbed once it passes `shows` (the first frames
 * may still be on their way) and again 0.5 s later.
 */
async function twoGrabs(display: string, shows: (img: RgbImage) => boolean, what: string) {
  const region = { x: 0, y: 0, width: 640, height: 360 };
  const first = await waitFor(
    async () => {
      const img = crop(await grabScreen(display), region);
      return shows(img) ? img : null;
    },
    5000,
    100,
    what,
  );
  await sleep(500);
  return { first, second: crop(await grabScreen(display), region) };
}

t.test(
  'watch shows the test picture in its window and plays the tone, then exits 0 after --duration',
  { skip: missing.length ? `missing ${missing.join(', ')}` : false },
  async (t) => {
    const { xvfb, pulse, watch } = await serveAndWatch(t, [], '6s');
    await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
    const recording = pulse.startRecording();

    const title = 'lanstream - 127.0.0.1';
    // The check that the window exists: waitFor throws (fails the test) without it.
    const windowId = await waitFor(() => findWindowByName(xvfb.display, title), 5000, 100, `a window titled "${title}"`);
    t.same(
      await windowTitles(xvfb.display, windowId),
      { wmName: title, netWmName: title },
      'the title a window manager shows (_NET_WM_NAME) is ours too, not "ffplay"',
    );
    const geometry = await windowGeometry(xvfb.display, windowId);
    t.match(geometry, { x: 0, y: 0, width: 640, height: 360 }, "window at --window-position 0,0, the stream's 640x360, no border");
    const ffplay = descendants(watch.pid).filter((p) => p.comm === 'ffplay');
    t.equal(ffplay.length, 1, 'watch runs one ffplay for the window');

    // The first frames may still be on their way: wait until the window is not black (this wait is the
    // check of that: it throws without it), then check what it shows.
    const { first, second } = await twoGrabs(xvfb.display, (img) => imageStats(img).mean > 20, 'a picture in the window (mean brightness > 20)');
    const stats = imageStats(first);
    t.ok(stats.stddev > 40, `the window shows a detailed picture, not a flat colour (stddev ${stats.stddev.toFixed(1)}, mean ${stats.mean.toFixed(1)})`);
    const diff = meanAbsDiff(first, second);
    t.ok(diff > 0.5, `the picture moves: grabs 0.5 s apart differ by ${diff.toFixed(2)} per byte`);

    await sleep(1000);
    const pcm = await recording.stop();
    const seconds = pcm.length / 2 / RECORD_RATE_HZ;
    t.ok(seconds > 1, `recorded ${seconds.toFixed(2)} s from the speaker sink`);
    const freq = dominantFrequencyHz(pcm, RECORD_RATE_HZ);
    const level = rmsDbfs(pcm);
    t.ok(Math.abs(freq - 440) <= 5, `the speaker plays the 440 Hz test tone (dominant ${freq.toFixed(1)} Hz)`);
    t.ok(level > -40, `the tone is well above silence (${level.toFixed(1)} dBFS)`);

    const { code, signal } = await Promise.race([watch.exited, sleep(10_000).then(() => ({ code: null, signal: 'timeout' as const }))]);
    const ranMs = Date.now() - watch.startedAtMs;
    t.equal(code, 0, `--duration 6s: watch exits 0 by itself (signal ${signal}, after ${ranMs} ms)`, { stderr: watch.stderr.slice(-1500) });
    t.ok(ranMs >= 6000 && ranMs < 15_000, `it ran for the duration, not much longer (${ranMs} ms from spawn)`);
    for (const p of ffplay) t.notOk(pidAlive(p.pid), `ffplay (pid ${p.pid}) is gone after watch exited`);

    const events = jsonLines(watch.stdout);
    t.ok(events.length > 3, `every one of the ${events.length} stdout lines is JSON`);
    const live = events.filter((e) => e.event === 'stats' && e.state === 'live');
    t.ok(live.length >= 3, `stats once a second while live (${live.length})`);
    const fps = live.slice(1).map((e) => Number(e.fps));
    t.ok(fps.length > 0 && fps.every((f) => f > 20), `fps stays above 20 after the first second (${fps.join(', ')})`);
    t.match(events.at(-1), { event: 'stopped', exitCode: 0 }, 'the last event is "stopped" with exit code 0');
    const liveAt = Date.parse(String(events.find((e) => e.event === 'live')?.time));
    const stoppedAt = Date.parse(String(events.at(-1)?.time));
    t.ok(Math.abs(stoppedAt - liveAt - 6000) < 1000, `--duration counts from the first picture: live → stopped ${stoppedAt - liveAt} ms`);
    const welcome = events.find((e) => e.event === 'live')?.welcome as { audio?: { packetMs?: number } } | undefined;
    t.equal(welcome?.audio?.packetMs, 5, 'sound comes in 5 ms packets by default');
    for (const kind of ['video', 'audio']) {
      const first = events.filter((e) => e.event === 'first-media' && e.kind === kind);
      t.equal(first.length, 1, `one first-media event for ${kind}`);
      const at = Date.parse(String(first[0]?.time));
      const sinceStartMs = Number(first[0]?.sinceStartMs);
      // "live" waits for the window and the sound output to be up; the connection's state comes first.
      const connectedAt = Date.parse(String(events.find((e) => e.event === 'state' && e.state === 'live')?.time));
      t.ok(at >= connectedAt && at < connectedAt + 3000, `${kind}: it comes after the connection went live (${at - connectedAt} ms)`);
      t.ok(sinceStartMs > 0 && sinceStartMs < ranMs, `${kind}: sinceStartMs ${sinceStartMs} is within the process's life (${ranMs} ms)`);
      t.ok(Number.isFinite(Number(first[0]?.latencyMs)), `${kind}: with the latency of that first arrival (${String(first[0]?.latencyMs)} ms)`);
    }
    const audioPackets = Number((events.at(-1)?.totals as { audioPackets?: number } | undefined)?.audioPackets);
    const perSecond = audioPackets / ((stoppedAt - liveAt) / 1000);
    t.ok(perSecond > 170 && perSecond < 230, `about 200 audio packets a second (${audioPackets} in ${stoppedAt - liveAt} ms)`);
  },
);

t.test(
  'the compressed pair end to end: H.264 + Opus (20 ms packets) from serve, shown and heard by watch',
  { skip: missing.length ? `missing ${missing.join(', ')}` : false },
  async (t) => {
    const { xvfb, pulse, watch } = await serveAndWatch(
      t,
      ['--video-codec', 'h264', '--encoder', 'libx264', '--bitrate', '500', '--audio-codec', 'opus', '--audio-packet-ms', '20'],
      '4s',
    );
    const live = await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
    t.match(live.welcome, { audio: { codec: 'opus', packetMs: 20 } }, '--audio-packet-ms 20: the viewer is told 20 ms Opus packets');
    const recording = pulse.startRecording();

    const { first, second } = await twoGrabs(xvfb.display, (img) => imageStats(img).stddev > 40, 'a decoded H.264 picture in the window');
    t.ok(imageStats(first).mean > 20, 'the H.264 window is not black');
    t.ok(meanAbsDiff(first, second) > 0.5, 'and the picture moves');
    await sleep(700);
    const pcm = await recording.stop();
    const freq = dominantFrequencyHz(pcm, RECORD_RATE_HZ);
    t.ok(Math.abs(freq - 440) <= 5, `the speaker plays the Opus-coded 440 Hz tone (dominant ${freq.toFixed(1)} Hz)`);
    t.ok(rmsDbfs(pcm) > -40, `well above silence (${rmsDbfs(pcm).toFixed(1)} dBFS)`);
    const { code } = await Promise.race([watch.exited, sleep(10_000).then(() => ({ code: null }))]);
    t.equal(code, 0, 'watch exits 0 after --duration', { stderr: watch.stderr.slice(-1500) });
  },
);

t.test(
  "watch --audio-output pulse plays the tone through PulseAudio's native protocol (the bundled CLI loads that library)",
  { skip: missing.length ? `missing ${missing.join(', ')}` : false },
  async (t) => {
    const [pulse, serve] = await Promise.all([startPulse(), startServe({ args: ['--no-video'] })]);
    t.teardown(async () => {
      await serve.proc.destroy();
      await Promise.all([pulse.close(), rm(serve.configDir, { recursive: true, force: true })]);
    });
    const watch = spawnCli(localWatchArgs(serve, '--no-video', '--audio-output', 'pulse', '--duration', '3s', '--json'), { env: pulse.env });
    t.teardown(() => watch.destroy());
    await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
    // pulseaudio.js names its client "lanstream"; the ALSA plugin (audio-io, speaker) would show up as an ALSA plug-in.
    const inputs = (await run('pactl', ['list', 'sink-inputs'], { env: { ...process.env, ...pulse.env }, timeoutMs: 5000 })).stdout.toString();
    t.match(inputs, /application\.name = "lanstream"/, 'the stream in PulseAudio is our native-protocol client');
    const recording = pulse.startRecording();
    await sleep(1200);
    const pcm = await recording.stop();
    const freq = dominantFrequencyHz(pcm, RECORD_RATE_HZ);
    t.ok(Math.abs(freq - 440) <= 5, `the 440 Hz tone comes out (dominant ${freq.toFixed(1)} Hz)`);
    t.ok(rmsDbfs(pcm) > -40, `well above silence (${rmsDbfs(pcm).toFixed(1)} dBFS)`);
    const { code } = await Promise.race([watch.exited, sleep(10_000).then(() => ({ code: null }))]);
    t.equal(code, 0, 'watch exits 0 after --duration', { stderr: watch.stderr.slice(-1500) });
    t.notOk(
      jsonLines(watch.stdout).some((e) => e.event === 'sink-error'),
      'no sink-error event',
    );
  },
);

const gstMissing = [...missing, 'gst-launch-1.0'].filter((c) => !hasCommand(c));
for (const codec of ['mjpeg', 'h264'] as const) {
  t.test(
    `watch --window gstreamer shows the ${codec === 'h264' ? 'H.264' : 'MJPEG'} picture in a GStreamer window instead of ffplay`,
    { skip: gstMissing.length ? `missing ${gstMissing.join(', ')}` : false },
    async (t) => {
      const serveArgs = codec === 'h264' ? ['--video-codec', 'h264', '--encoder', 'libx264', '--bitrate', '500'] : [];
      const { xvfb, watch } = await serveAndWatch(t, serveArgs, '4s', ['--window', 'gstreamer', '--no-audio']);
      await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
      const region = { x: 0, y: 0, width: 640, height: 360 };
      const first = await waitFor(
        async () => {
          const img = crop(await grabScreen(xvfb.display), region);
          return imageStats(img).stddev > 40 ? img : null;
        },
        5000,
        100,
        'a detailed picture in the window',
      );
      const players = descendants(watch.pid);
      t.equal(players.filter((p) => p.comm === 'gst-launch-1.0').length, 1, 'one gst-launch-1.0 draws the window');
      const title = 'lanstream - 127.0.0.1';
      const windowId = await waitFor(() => findWindowByName(xvfb.display, title), 5000, 100, `a window titled "${title}"`);
      // ximagesink appends the program name gst-launch gives itself ("… : gst-launch-1.0").
      t.equal((await windowTitles(xvfb.display, windowId)).wmName, `${title} : gst-launch-1.0`, 'the window is named after the host, as the ffplay one');
      t.equal(players.filter((p) => p.comm === 'ffplay').length, 0, 'and no ffplay');
      await sleep(500);
      t.ok(meanAbsDiff(first, crop(await grabScreen(xvfb.display), region)) > 0.5, 'the picture moves');
      const { code } = await Promise.race([watch.exited, sleep(10_000).then(() => ({ code: null }))]);
      t.equal(code, 0, 'watch exits 0 after --duration', { stderr: watch.stderr.slice(-1500) });
      for (const p of players) t.notOk(pidAlive(p.pid), `${p.comm} (pid ${p.pid}) is gone after watch exited`);
    },
  );
}
