/**
 * WindowSink with the GStreamer backend (`watch --window gstreamer`) against a real gst-launch-1.0
 * on a private Xvfb: the pictures reach the screen, the status text is drawn into them while there
 * is any, a user closing the window and a crash are told apart, and nothing is left running.
 */
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startXvfb, type XvfbDisplay } from '../helpers/xvfb.js';
import { crop, grabScreen, meanColor, type RgbImage } from '../helpers/screen.js';
import { hasCommand, killAll, pidAlive, run, sleep, waitFor } from '../helpers/process.js';
import { GST_ELEMENT_PACKAGES, WindowSink, gstHint, gstLaunchArgs } from '../../src/client/sinks/window-sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { captureLogger } from '../helpers/log-capture.js';
import { isLanstreamError } from '../../src/shared/errors.js';
import type { SinkEvents } from '../../src/client/sinks/sink.js';
import { feedFrames, nearColor, solidJpeg as solidJpegOf, type Rgb } from '../helpers/window-frames.js';

const W = 640;
const H = 360;
const PARAMS = { codec: 'mjpeg', width: W, height: H, fps: 30 } as const;

t.test('pipelines per codec and platform', async (t) => {
  t.match(gstLaunchArgs('mjpeg', 'linux').join(' '), /^-q fdsrc fd=0 ! multipartdemux .* ! ximagesink sync=false$/);
  t.match(gstLaunchArgs('h264', 'linux').join(' '), /fdsrc fd=0 ! h264parse ! avdec_h264 thread-type=slice ! videoconvert ! ximagesink sync=false$/);
  t.match(gstLaunchArgs('mjpeg', 'darwin').join(' '), /! autovideosink sync=false$/, 'macOS: the platform sink');
  t.match(gstLaunchArgs('mjpeg', 'win32').join(' '), /! autovideosink sync=false$/, 'Windows: the platform sink');
  t.match(
    gstLaunchArgs('mjpeg', 'linux', 'lanstream - 10.0.0.2').join(' '),
    / ! videoconvert ! taginject tags="title=\\"lanstream - 10\.0\.0\.2\\"" ! ximagesink sync=false$/,
    'the title as a tag the sink names its window after',
  );
  t.match(
    gstLaunchArgs('mjpeg', 'linux', 'lanstream - a"b,c\\d!e').join(' '),
    /tags="title=\\"lanstream - a_b_c_d_e\\""/,
    'quotes, commas, backslashes and ! cannot end the tag or the element',
  );
});

t.test('every element of every pipeline has its Debian package named', async (t) => {
  const elements = new Set<string>();
  for (const codec of ['mjpeg', 'h264'] as const) {
    // Elements are the words right after the start or a "!" (the rest are properties).
    const words = gstLaunchArgs(codec, 'linux', 'title').slice(1);
    words.forEach((w, i) => (i === 0 || words[i - 1] === '!') && elements.add(w));
  }
  t.same(
    [...elements].filter((e) => !GST_ELEMENT_PACKAGES[e]),
    [],
    `all of ${[...elements].join(', ')}`,
  );
  t.match(gstHint('gstreamer', 'WARNING: erroneous pipeline: no element "h264parse"'), /install gstreamer1\.0-plugins-bad .*--window ffplay/);
  t.equal(gstHint('ffplay', 'no element "h264parse"'), '', 'ffplay errors get no GStreamer hint');
});

t.test('a missing gst-launch-1.0 rejects start() with what to install', async (t) => {
  const sink = new WindowSink({ backend: 'gstreamer', playerPath: '/nonexistent/gst-launch-1.0', title: 't', logger: silentLogger() });
  await t.rejects(sink.start(PARAMS), { code: 'LS_ERR_GSTREAMER_NOT_FOUND', message: /apt-get install gstreamer1\.0-tools.*--window ffplay/ });
  await sink.close();
});

const missing = ['gst-launch-1.0', 'Xvfb', 'xdotool', 'xdpyinfo'].filter((c) => !hasCommand(c));
if (missing.length) {
  t.comment(`skipping the window tests: missing ${missing.join(', ')}`);
} else {
  t.teardown(() => killAll());

  const solidJpeg = (c: Rgb): Promise<Buffer> => solidJpegOf(W, H, c);
  const near = nearColor;
  /** The window opens at 0,0 on an Xvfb without a window manager. */
  const middle = async (x: XvfbDisplay): Promise<Rgb> => meanColor(crop(await grabScreen(x.display), { x: 100, y: 150, width: W - 200, height: H - 200 }));
  const overlayCorner = async (x: XvfbDisplay): Promise<RgbImage> => crop(await grabScreen(x.display), { x: 12, y: 12, width: 200, height: 20 });
  const overlay = { text: '' };
  const makeSink = (x: XvfbDisplay, events: SinkEvents = {}): WindowSink =>
    new WindowSink({ backend: 'gstreamer', playerPath: 'gst-launch-1.0', title: 't', logger: silentLogger(), env: x.env, events, overlay });
  const feed = feedFrames;
  /** Share of pixels near white: the overlay's letters. */
  const whiteShare = (img: RgbImage): number => {
    let white = 0;
    for (let i = 0; i < img.rgb.length; i += 3) if (img.rgb[i]! > 200 && img.rgb[i + 1]! > 200 && img.rgb[i + 2]! > 200) white++;
    return white / (img.rgb.length / 3);
  };

  t.test('shows red then blue, draws the status text only while there is some, close() leaves nothing', async (t) => {
    const x = await startXvfb({ width: W, height: H });
    t.teardown(() => x.close());
    const red = await solidJpeg({ r: 255, g: 0, b: 0 });
    const blue = await solidJpeg({ r: 0, g: 0, b: 255 });
    const errors: Error[] = [];
    const sink = makeSink(x, { onError: (e) => errors.push(e) });
    await sink.start(PARAMS);
    const pid = sink.pid;
    t.ok(pid, 'gst-launch-1.0 runs');
    let current = red;
    const camera = feed(sink, () => current);
    t.teardown(() => camera.stop());
    await waitFor(async () => near(await middle(x), { r: 255, g: 0, b: 0 }), 5000, 100, 'red on screen');
    t.pass('red frame on screen');
    t.equal(whiteShare(await overlayCorner(x)), 0, 'no status text: the picture is untouched');

    overlay.text = 'reconnecting (server gone) - attempt 2';
    await waitFor(async () => whiteShare(await overlayCorner(x)) > 0.05, 3000, 100, 'status text drawn');
    const corner = meanColor(await overlayCorner(x));
    t.ok(corner.r < 200, `the text sits on a dark box (mean red ${corner.r.toFixed(0)} of the corner)`);
    t.ok(near(await middle(x), { r: 255, g: 0, b: 0 }), 'the rest of the picture is unchanged');

    overlay.text = '';
    current = blue;
    await waitFor(async () => near(await middle(x), { r: 0, g: 0, b: 255 }), 3000, 100, 'blue on screen');
    await waitFor(async () => whiteShare(await overlayCorner(x)) === 0, 3000, 100, 'status text gone');
    t.pass('blue replaced red and the text went with it');

    camera.stop();
    await sink.close();
    t.notOk(pidAlive(pid!), 'gst-launch-1.0 is gone after close()');
    t.same(errors, [], 'no error for a requested close');
    t.ok(sink.stats().framesShown > 10, `frames handed to GStreamer: ${sink.stats().framesShown}`);
  });

  t.test('the debug log names gst-launch-1.0 as the program the first frame went to, not ffplay', async (t) => {
    const x = await startXvfb({ width: W, height: H });
    t.teardown(() => x.close());
    const log = captureLogger('debug');
    const sink = new WindowSink({ backend: 'gstreamer', playerPath: 'gst-launch-1.0', title: 't', logger: log.logger, env: x.env, overlay: { text: '' } });
    const red = await solidJpeg({ r: 255, g: 0, b: 0 });
    await sink.start(PARAMS);
    const camera = feed(sink, () => red);
    t.teardown(() => camera.stop());
    await waitFor(() => log.matching('first frame written').length > 0, 5000, 50, 'first-frame log line');
    camera.stop();
    await sink.close();
    t.same(
      log.matching('first frame written').map((l) => l.msg),
      ['first frame written to gst-launch-1.0'],
      'names the program that draws the window',
    );
    t.same(log.matching('ffplay'), [], 'no log line mentions ffplay');
  });

  t.test('H.264: a single access unit is shown on its own, without waiting for the next frame', async (t) => {
    // One IDR of a solid colour, Annex-B, as serve sends it (SPS/PPS in front). h264parse holds an
    // access unit until the NAL after it is complete: the sink's trailer must complete it by itself.
    const { stdout } = await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `color=c=0x00c800:s=${W}x${H}:r=30`,
      '-frames:v',
      '1',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-pix_fmt',
      'yuv420p',
      '-f',
      'h264',
      '-',
    ]);
    t.ok(stdout.length > 100, `one encoded frame (${stdout.length} bytes)`);
    const x = await startXvfb({ width: W, height: H });
    t.teardown(() => x.close());
    const sink = makeSink(x);
    await sink.start({ ...PARAMS, codec: 'h264' });
    t.teardown(() => sink.close());
    sink.pushFrame(stdout, 0);
    await waitFor(async () => near(await middle(x), { r: 0, g: 200, b: 0 }), 5000, 100, 'the single H.264 frame on screen');
    t.pass('one access unit pushed, one picture shown');
    t.equal(sink.stats().framesShown, 1, 'exactly one frame handed to GStreamer');
  });

  t.test('a plugin that is not installed: the error names its Debian package', async (t) => {
    // A private plugin directory with everything but the one that has h264parse (gstreamer1.0-plugins-bad),
    // and a private registry, so the real gst-launch-1.0 finds the element missing as on a machine without it.
    const { stdout } = await run('gst-inspect-1.0', ['h264parse']).catch(() => ({ stdout: '' }));
    const file = /Filename\s+(\S+)/.exec(stdout.toString())?.[1];
    t.ok(file, 'h264parse is installed (gstreamer1.0-plugins-bad, by scripts/system-deps.sh)');
    if (!file) return;
    const dir = await mkdtemp(join(tmpdir(), 'ls-gst-plugins-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const pluginDir = file.slice(0, file.lastIndexOf('/'));
    for (const f of await readdir(pluginDir)) if (f !== file.slice(pluginDir.length + 1)) await symlink(join(pluginDir, f), join(dir, f));
    const x = await startXvfb({ width: W, height: H });
    t.teardown(() => x.close());
    const errors: Error[] = [];
    const env = { ...x.env, GST_PLUGIN_SYSTEM_PATH_1_0: dir, GST_PLUGIN_PATH_1_0: '', GST_REGISTRY_1_0: join(dir, 'registry.bin') };
    const sink = new WindowSink({
      backend: 'gstreamer',
      playerPath: 'gst-launch-1.0',
      title: 't',
      logger: silentLogger(),
      env,
      events: { onError: (e) => errors.push(e) },
    });
    t.teardown(() => sink.close());
    await sink.start({ ...PARAMS, codec: 'h264' }).catch((e: Error) => errors.push(e));
    await waitFor(() => errors.length > 0, 10_000, 50, 'the window reports its failure');
    t.match(errors[0]!.message, /no element "h264parse".*install gstreamer1\.0-plugins-bad/, errors[0]!.message);
  });

  t.test('the window closed by its user → onUserClose once; a crash → onError once', async (t) => {
    const x = await startXvfb({ width: W, height: H });
    t.teardown(() => x.close());
    const green = await solidJpeg({ r: 0, g: 200, b: 0 });

    const events = { user: 0, errors: [] as Error[] };
    const a = makeSink(x, { onUserClose: () => events.user++, onError: (e) => events.errors.push(e) });
    await a.start(PARAMS);
    const camera = feed(a, () => green);
    t.teardown(() => camera.stop());
    await waitFor(async () => near(await middle(x), { r: 0, g: 200, b: 0 }), 5000, 100, 'green on screen');
    // What a window manager's close button sends: WM_DELETE_WINDOW to the (only) window.
    const { stdout } = await run('xdotool', ['search', '--onlyvisible', '--name', '.*'], { env: x.env });
    const id = stdout.toString().trim().split('\n').pop()!;
    await run('python3', ['-c', WM_DELETE, id], { env: x.env });
    await waitFor(() => events.user === 1, 5000, 50, 'onUserClose');
    camera.stop();
    t.same(events.errors, [], 'a user close is not an error');
    await a.close();
    t.equal(events.user, 1, 'reported once');

    const crashed: Error[] = [];
    const b = makeSink(x, { onError: (e) => crashed.push(e), onUserClose: () => crashed.push(new Error('user')) });
    await b.start(PARAMS);
    b.pushFrame(green, 0);
    await sleep(300);
    process.kill(b.pid!, 'SIGKILL');
    await waitFor(() => crashed.length > 0, 5000, 50, 'onError');
    await sleep(100);
    t.equal(crashed.length, 1, 'reported once');
    t.ok(isLanstreamError(crashed[0]) && crashed[0].code === 'LS_ERR_SINK_FAILED', 'as LS_ERR_SINK_FAILED');
    t.match(crashed[0]!.message, /gst-launch-1\.0.*SIGKILL/);
    await b.close();
  });
}

/** Sends WM_DELETE_WINDOW to the window id in argv[1] with plain Xlib through ctypes (no extra packages). */
const WM_DELETE = String.raw`
import ctypes, ctypes.util, sys
x = ctypes.cdll.LoadLibrary(ctypes.util.find_library('X11'))
x.XOpenDisplay.restype = ctypes.c_void_p
x.XInternAtom.restype = ctypes.c_ulong
d = x.XOpenDisplay(None)
class Ev(ctypes.Structure):
    _fields_ = [('type', ctypes.c_int), ('serial', ctypes.c_ulong), ('send_event', ctypes.c_int), ('display', ctypes.c_void_p),
                ('window', ctypes.c_ulong), ('message_type', ctypes.c_ulong), ('format', ctypes.c_int), ('data', ctypes.c_long * 5), ('pad', ctypes.c_long * 19)]  # sizeof(XEvent)
w = int(sys.argv[1])
e = Ev(33, 0, 1, d, w, x.XInternAtom(ctypes.c_void_p(d), b'WM_PROTOCOLS', 0), 32)
e.data[0] = x.XInternAtom(ctypes.c_void_p(d), b'WM_DELETE_WINDOW', 0)
x.XSendEvent(ctypes.c_void_p(d), ctypes.c_ulong(w), 0, ctypes.c_long(0), ctypes.byref(e))
x.XFlush(ctypes.c_void_p(d))
`;
