/**
 * Test helper: what is on an X display (usually a private Xvfb from xvfb.ts). One frame is grabbed
 * with ffmpeg's x11grab as raw RGB, so tests can assert what the viewer's window really shows
 * (colour of a region, change over time) rather than what we think we sent it.
 */
import { run, sleep, spawnTracked, stopChild } from './process.js';

export interface RgbImage {
  width: number;
  height: number;
  /** rgb24, row-major, no padding. */
  rgb: Buffer;
}

export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Screen size from xdpyinfo ("dimensions:    640x480 pixels"). */
export async function screenSize(display: string): Promise<{ width: number; height: number }> {
  const res = await run('xdpyinfo', ['-display', display], { timeoutMs: 5000 });
  const m = res.stdout.toString().match(/dimensions:\s+(\d+)x(\d+) pixels/);
  if (res.code !== 0 || !m) throw new Error(`xdpyinfo -display ${display} failed: ${res.stderr.trim()}`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** One frame of the display (or of its top-left width×height). */
export async function grabScreen(display: string, opts: { width?: number; height?: number } = {}): Promise<RgbImage> {
  const size = opts.width && opts.height ? { width: opts.width, height: opts.height } : await screenSize(display);
  const res = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-f',
      'x11grab',
      '-draw_mouse',
      '0',
      '-video_size',
      `${size.width}x${size.height}`,
      '-i',
      display,
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-',
    ],
    { timeoutMs: 10_000 },
  );
  const expected = size.width * size.height * 3;
  if (res.code !== 0 || res.stdout.length !== expected) {
    throw new Error(`x11grab of ${display} failed (exit ${res.code}, ${res.stdout.length}/${expected} bytes): ${res.stderr.trim()}`);
  }
  return { ...size, rgb: res.stdout };
}

/** Copy of a rectangle of an image. */
export function crop(img: RgbImage, r: Region): RgbImage {
  const out = Buffer.alloc(r.width * r.height * 3);
  for (let y = 0; y < r.height; y++) {
    const from = ((r.y + y) * img.width + r.x) * 3;
    img.rgb.copy(out, y * r.width * 3, from, from + r.width * 3);
  }
  return { width: r.width, height: r.height, rgb: out };
}

/** Mean colour of an image, per channel (0–255). */
export function meanColor(img: RgbImage | Buffer): { r: number; g: number; b: number } {
  const rgb = Buffer.isBuffer(img) ? img : img.rgb;
  const n = Math.floor(rgb.length / 3) || 1;
  let r = 0;
  let g = 0;
  let b = 0;
  for (let i = 0; i + 2 < rgb.length; i += 3) {
    r += rgb[i]!;
    g += rgb[i + 1]!;
    b += rgb[i + 2]!;
  }
  return { r: r / n, g: g / n, b: b / n };
}

/** Mean and standard deviation over all bytes (a flat picture has stddev ~0; an empty screen is black). */
export function imageStats(rgb: Buffer | RgbImage): { mean: number; stddev: number } {
  const bytes = Buffer.isBuffer(rgb) ? rgb : rgb.rgb;
  if (bytes.length === 0) return { mean: 0, stddev: 0 };
  let sum = 0;
  let sq = 0;
  for (const v of bytes) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / bytes.length;
  return { mean, stddev: Math.sqrt(Math.max(0, sq / bytes.length - mean * mean)) };
}

/** Mean absolute byte difference of two same-sized images (0 = identical, 255 = opposite). */
export function meanAbsDiff(a: Buffer | RgbImage, b: Buffer | RgbImage): number {
  const x = Buffer.isBuffer(a) ? a : a.rgb;
  const y = Buffer.isBuffer(b) ? b : b.rgb;
  if (x.length !== y.length) throw new Error(`meanAbsDiff: sizes differ (${x.length} vs ${y.length} bytes)`);
  if (x.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]! - y[i]!);
  return sum / x.length;
}

/** X window id (decimal string) of the first window whose name matches, or null. */
export async function findWindowByName(display: string, name: string): Promise<string | null> {
  const res = await run('xdotool', ['search', '--name', name], {
    env: { ...process.env, DISPLAY: display },
    timeoutMs: 5000,
  });
  const first = res.stdout
    .toString()
    .split('\n')
    .find((l) => /^\d+$/.test(l.trim()));
  return first ? first.trim() : null;
}

/** Window geometry via xdotool (position on screen and size), or null if it is gone. */
export async function windowGeometry(display: string, windowId: string): Promise<Region | null> {
  const res = await run('xdotool', ['getwindowgeometry', '--shell', windowId], {
    env: { ...process.env, DISPLAY: display },
    timeoutMs: 5000,
  });
  if (res.code !== 0) return null;
  const v = Object.fromEntries(
    res.stdout
      .toString()
      .split('\n')
      .map((l) => l.split('='))
      .filter((p) => p.length === 2)
      .map(([k, val]) => [k!, Number(val)]),
  );
  return { x: v.X ?? 0, y: v.Y ?? 0, width: v.WIDTH ?? 0, height: v.HEIGHT ?? 0 };
}

export interface ScreenSample {
  /** Wall-clock ms (Date.now() scale, sub-ms) at which x11grab grabbed this frame. */
  grabWallMs: number;
  color: { r: number; g: number; b: number };
}

/**
 * Watches a region continuously (x11grab at `fps`, each grab time-stamped by ffmpeg with the wall
 * clock just before the grab, kept by -copyts and printed by showinfo) and reports its mean colour.
 * Compare grabWallMs with `performance.timeOrigin + performance.now()` taken when a frame was
 * pushed to get push-to-pixels latency (±1/fps per sample; the probe's own pipe delay is not in it).
 */
export function startScreenWatch(
  display: string,
  region: Region,
  opts: { fps?: number; env?: NodeJS.ProcessEnv } = {},
): { samples: ScreenSample[]; close(): Promise<void> } {
  const fps = opts.fps ?? 60;
  const child = spawnTracked(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'info',
      '-copyts',
      '-f',
      'x11grab',
      '-draw_mouse',
      '0',
      '-framerate',
      String(fps),
      '-video_size',
      `${region.width}x${region.height}`,
      '-i',
      `${display}+${region.x},${region.y}`,
      '-vf',
      'scale=4:4:flags=area,showinfo',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-',
    ],
    { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const samples: ScreenSample[] = [];
  const times: number[] = [];
  const colors: ScreenSample['color'][] = [];
  const pair = (): void => {
    while (times.length && colors.length) samples.push({ grabWallMs: times.shift()!, color: colors.shift()! });
  };
  let pixels = Buffer.alloc(0);
  child.stdout?.on('data', (b: Buffer) => {
    pixels = Buffer.concat([pixels, b]);
    while (pixels.length >= 48) {
      colors.push(meanColor(pixels.subarray(0, 48)));
      pixels = pixels.subarray(48);
    }
    pair();
  });
  let text = '';
  let timeBaseMs = 1e-3; // x11grab stamps in µs
  child.stderr?.on('data', (b: Buffer) => {
    text += b.toString();
    const lines = text.split('\n');
    text = lines.pop() ?? '';
    for (const line of lines) {
      // pts_time is printed with 6 significant digits only: use the integer pts and the time base.
      const tb = line.match(/Parsed_showinfo.*config in time_base:\s*(\d+)\/(\d+)/);
      if (tb) timeBaseMs = (Number(tb[1]) / Number(tb[2])) * 1000;
      const m = line.match(/Parsed_showinfo.*\bpts:\s*(\d+)/);
      if (m) times.push(Number(m[1]) * timeBaseMs);
    }
    pair();
  });
  return { samples, close: () => stopChild(child, 1000) };
}

/** X keycodes the server holds down on a display (XQueryKeymap through python3's ctypes and libX11). */
export async function keysDown(display: string): Promise<number[]> {
  const script = [
    'import ctypes, sys',
    'x = ctypes.cdll.LoadLibrary("libX11.so.6")',
    'x.XOpenDisplay.restype = ctypes.c_void_p',
    'd = x.XOpenDisplay(None)',
    'if not d: sys.exit(2)',
    'keys = (ctypes.c_ubyte * 32)()',
    'x.XQueryKeymap(ctypes.c_void_p(d), keys)',
    'print(" ".join(str(i) for i in range(256) if keys[i // 8] & (1 << (i % 8))))',
  ].join('\n');
  const res = await run('python3', ['-c', script], { env: { ...process.env, DISPLAY: display }, timeoutMs: 5000 });
  if (res.code !== 0) throw new Error(`XQueryKeymap on ${display} failed (exit ${res.code}): ${res.stderr.trim()}`);
  return res.stdout.toString().trim().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Presses a key in a window as a person would, and makes sure it is released. Not `xdotool key
 * --window W`: when the key closes W before its release, that xdotool exits 0 without releasing it
 * (under two busy loops, 7 runs in about 105: a RawKeyPress and no RawKeyRelease in `xinput
 * test-xi2`). The key then stays down in Xvfb, and its auto-repeat (every 40 ms after 660 ms)
 * presses it into the next window opened on the display: q closed a reopened ffplay 190 ms after it
 * started. So: focus W, press and release through XTEST in two runs that do not name the window,
 * then check that the server holds no key down (XQueryKeymap shows a key XTEST holds while a window
 * such as ffplay's listens: checked with a key held by hand, which made this throw).
 */
export async function pressKey(display: string, windowId: string, key: string): Promise<void> {
  const env = { ...process.env, DISPLAY: display };
  const focus = await run('xdotool', ['windowfocus', '--sync', windowId], { env, timeoutMs: 5000 });
  if (focus.code !== 0) throw new Error(`xdotool windowfocus ${windowId} failed: ${focus.stderr.trim()}`);
  await run('xdotool', ['keydown', key], { env, timeoutMs: 5000 });
  await run('xdotool', ['keyup', key], { env, timeoutMs: 5000 });
  // Each xdotool is its own X client, so its key-up may reach the server a moment after it exits.
  const deadline = Date.now() + 2000;
  for (;;) {
    const down = await keysDown(display);
    if (down.length === 0) return;
    if (Date.now() > deadline) throw new Error(`keycodes ${down.join(', ')} still down on ${display} 2 s after pressing ${key}`);
    await sleep(25);
  }
}
