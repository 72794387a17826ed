/**
 * Video sink: the viewer's window is a player child fed complete frames on stdin — ffplay by default,
 * or a GStreamer pipeline (`watch --window gstreamer`), which shows them sooner (see below).
 *
 * How it is fed is the whole point (DESIGN.md "Viewer: sinks", measured 40–43 ms glass to glass vs
 * 215–264 ms with `-f mjpeg`): each frame is one multipart part with a Content-Length (`-f mpjpeg`),
 * so ffplay's demuxer knows where a frame ends without waiting for the next one, and
 * `setpts=N/120/TB` + `-sync ext` give timestamps that never make it wait or queue. When ffplay's
 * stdin is busy we never queue behind it: only the newest frame waits for 'drain', older ones are
 * counted as dropped.
 *
 * GStreamer (`jpegdec ! videoconvert ! ximagesink sync=false`, fed the same multipart stream): on the
 * rig, the same ffmpeg sender into it measured 25–32 ms glass to glass against 43–45 ms into ffplay
 * (2 runs each, same batch); ffplay's extra is its 10 ms refresh loop, the decoder → display queue and
 * texture upload through software OpenGL (the last one since avoided on Linux: ffplayEnv). gst-launch
 * cannot change a text overlay while it runs, so with this backend the status text is drawn into the
 * JPEG itself (sharp), only while there is text to show (MJPEG only; an H.264 stream shows no overlay
 * in this window).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { VideoCodec, VideoParams } from '../../protocol/messages.js';
import { AUD_TRAILER, isIdrAccessUnit } from '../decoders/h264-annexb.js';
import { installHint } from '../../server/capture/ffmpeg-locate.js';
import { burnOverlay } from '../overlay.js';
import type { SinkEvents, VideoSink } from './sink.js';

/** Which program draws the window. */
export type WindowBackend = 'ffplay' | 'gstreamer';
export const WINDOW_BACKENDS: readonly WindowBackend[] = ['ffplay', 'gstreamer'];
/**
 * What to do when gst-launch-1.0 is missing (the CLI's lookup and the sink's spawn say the same), in
 * the platform's own terms: it said `sudo apt-get` on macOS and Windows too. Homebrew's `gstreamer`
 * formula holds the plugins; Windows has the project's installer.
 */
export function gstreamerInstallHint(platform: NodeJS.Platform = process.platform): string {
  switch (platform) {
    case 'darwin':
      return 'install GStreamer (brew install gstreamer) or use --window ffplay';
    case 'win32':
      return 'install GStreamer (https://gstreamer.freedesktop.org/download/, the runtime with its complete set of plugins) or use --window ffplay';
    default:
      return 'install GStreamer (e.g. sudo apt-get install gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-x) or use --window ffplay';
  }
}

/** Multipart boundary; any token works, ffmpeg 5.1's demuxer only needs each part to start with `--`. */
export const MPJPEG_BOUNDARY = 'lanstreamframe';

/** ffplay gets this long to exit after stdin ends (it does at once with -autoexit), then SIGTERM, then SIGKILL. */
const EXIT_GRACE_MS = 300;
const KILL_GRACE_MS = 1000;
/**
 * H.264: ffplay's input may stay busy this long before the queued frames are dropped and the next IDR
 * awaited (3 frames at 30 fps). Time, not a count: a joining viewer gets the server's cached GOP as a
 * burst (up to a GOP of frames at once) that ffplay reads in a few ms, and that must not be dropped.
 */
const MAX_BUSY_MS = 100;
/** H.264 frames queued at most, whatever the time (memory bound: 10 s at 30 fps). */
const MAX_PENDING_AUS = 300;

export interface WindowSinkOptions {
  /** Default ffplay. */
  backend?: WindowBackend;
  /** The ffplay or gst-launch-1.0 binary. */
  playerPath: string;
  title: string;
  logger: Logger;
  position?: { x: number; y: number };
  borderless?: boolean;
  env?: NodeJS.ProcessEnv;
  events?: SinkEvents;
  /** ffplay: extra video filter after the timestamp rewrite (the status overlay's drawtext). */
  overlayFilter?: string;
  /** GStreamer: the status text, drawn into each MJPEG frame while it is not blank. */
  overlay?: { readonly text: string };
  /** GStreamer: which video sink to pick; ffplay: whether ffplayEnv applies (tests build the other platforms'). */
  platform?: NodeJS.Platform;
  /** A player already started with these options (launchPlayer): adopted by start() if the codec matches, else discarded. */
  launched?: PlayerLaunch;
}

/**
 * The window's title. ASCII only: ffplay (SDL2) sets a non-ASCII title as mojibake in WM_NAME and
 * leaves _NET_WM_NAME, which window managers show, at "ffplay" (seen with an em dash under Xvfb,
 * ffplay 5.1).
 */
export function windowTitle(host: string): string {
  return `lanstream - ${host}`;
}

/** Each window program's name, as found on PATH and as logs and errors name it. */
export const PLAYER_NAMES: Readonly<Record<WindowBackend, string>> = { ffplay: 'ffplay', gstreamer: 'gst-launch-1.0' };

/** ffplay arguments, exported for tests and for `--verbose` logs. */
export function ffplayArgs(opts: Pick<WindowSinkOptions, 'title' | 'position' | 'borderless' | 'overlayFilter'>, codec: VideoCodec = 'mjpeg'): string[] {
  const args = ['-hide_banner', '-loglevel', 'error', '-nostats'];
  // No `-fflags nobuffer`: it throws away the packets avformat_find_stream_info read, i.e. the first
  // frame. For H.264 that is the IDR, and the decoder waited for the next one (first write → picture
  // 580 ms with it, 206 ms without; docs/codecs.md); for MJPEG the first picture waited for the second
  // frame (one frame interval: 94–102 → 66–72 ms to pixels, median of 4 under Xvfb). Past the first
  // frame the flag changes nothing (ffplay never buffers for stream info again).
  args.push('-flags', 'low_delay', '-framedrop', '-probesize', '32', '-analyzeduration', '0');
  // BGRA from the filter graph (swscale, SIMD) instead of a YUV texture for SDL: on the rig
  // 37–42 ms glass to glass against 44–45 ms, and ffplay's CPU 48 → 37 % (2 runs each, same batch,
  // default OpenGL renderer under Xvfb). The JPEG's full range is converted correctly on the way
  // (grey bars 0–250 arrive within 6 levels, test/integration/window-sink.test.ts).
  const filters = ['setpts=N/120/TB', 'format=bgra', ...(opts.overlayFilter ? [opts.overlayFilter] : [])];
  args.push('-sync', 'ext', '-vf', filters.join(','), '-an', '-sn', '-autoexit');
  args.push('-window_title', opts.title);
  if (opts.position) args.push('-left', String(Math.round(opts.position.x)), '-top', String(Math.round(opts.position.y)));
  if (opts.borderless) args.push('-noborder');
  // H.264: raw Annex-B, each access unit followed by an AUD so the parser closes it at once.
  args.push('-f', codec === 'h264' ? 'h264' : 'mpjpeg', '-i', 'pipe:0');
  return args;
}

/** Linux and the BSDs: windows through X11 (or XWayland), where both players' choices here were measured. */
function isXPlatform(platform: NodeJS.Platform): boolean {
  return platform === 'linux' || platform === 'freebsd' || platform === 'openbsd';
}

/**
 * ffplay's environment. On Linux (X11, XWayland, Wayland) SDL is told to draw with its software
 * renderer straight into a shared-memory framebuffer (SDL_RENDER_DRIVER=software,
 * SDL_FRAMEBUFFER_ACCELERATION=0), as GStreamer's ximagesink does. By default SDL opens OpenGL for
 * that — even its software renderer presents through a GL texture — and where GL itself is software
 * (Mesa llvmpipe: VMs, Xvfb, remote X, machines without a GPU driver) loading LLVM and compiling
 * shaders is most of ffplay's start-up. Rig, 4 interleaved runs each (2026-11-26): first picture
 * 0.45 → 0.35 s, glass to glass p50 42.7 → 39.0 ms, the viewer's CPU 46–50 → 22 %; ffplay alone,
 * spawn → picture 226–421 → 132–155 ms. The frame is already BGRA at the window's size (our
 * filter graph), so there is nothing to scale or convert at 1:1; a window enlarged by hand is
 * scaled on the CPU.
 *
 * XCOMPOSEFILE=/dev/null: SDL opens an X input method, and Xlib then parses the locale's whole
 * Compose table (~6000 lines for en_US.UTF-8) before ffplay reads its input; ffplay takes single
 * keys only. ffplay alone under strace --seccomp-bpf, X connect → first read of stdin 35–39 → 16–19 ms
 * (3 × 6 interleaved runs).
 *
 * Anything the user set wins: `SDL_RENDER_DRIVER=opengl` brings back the GPU path. Other platforms
 * are left to SDL's defaults (not measured).
 *
 * On Linux, LD_PRELOAD=native/ffplay-wake.so when it was built (ffplayWakeLibrary): ffplay then draws
 * each frame as its decoder queues it, not at its next 10 ms poll.
 */
export function ffplayEnv(
  base: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  wakeLibrary: string | null = (platform === 'linux' && ffplayWakeLibrary(base)) || null,
): NodeJS.ProcessEnv {
  if (!isXPlatform(platform)) return base;
  const env: NodeJS.ProcessEnv = { SDL_RENDER_DRIVER: 'software', SDL_FRAMEBUFFER_ACCELERATION: '0', XCOMPOSEFILE: '/dev/null', ...base };
  // The user's own preloads stay, after ours.
  if (wakeLibrary) env.LD_PRELOAD = base.LD_PRELOAD ? `${wakeLibrary}:${base.LD_PRELOAD}` : wakeLibrary;
  return env;
}

/** The environment variable that turns ffplay-wake off (`0`), for a comparison or a suspect ffplay. */
export const FFPLAY_WAKE_ENV = 'LANSTREAM_FFPLAY_WAKE';

let wakeLookup: string | null | undefined;

/**
 * native/ffplay-wake.so, built at install (native/build.mjs), which lets ffplay draw a frame when it is
 * decoded instead of at its next 10 ms poll (native/ffplay-wake.c). Rig, interleaved runs with and
 * without it (bench/results/diag-20261127-0715-ffplay-wake.md): glass to glass p50 43 → 31 ms on a
 * busy machine, 38 → 35 ms on a quieter one (GStreamer's own pipeline 35), p99 57 → 45 ms.
 * Undefined when it was not built (no C compiler:
 * ffplay runs as it is), when LANSTREAM_FFPLAY_WAKE=0, or when its path cannot go into LD_PRELOAD
 * (which splits on spaces and colons).
 */
export function ffplayWakeLibrary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env[FFPLAY_WAKE_ENV] === '0') return undefined;
  if (wakeLookup === undefined) {
    // From dist/bundle/, dist/client/sinks/ or src/client/sinks/ up to the package root.
    wakeLookup = null;
    let dir = dirname(fileURLToPath(import.meta.url));
    for (let up = 0; up < 4; up++, dir = dirname(dir)) {
      const candidate = join(dir, 'native', 'ffplay-wake.so');
      if (existsSync(candidate)) {
        wakeLookup = /[\s:]/.test(candidate) ? null : candidate;
        break;
      }
    }
  }
  return wakeLookup ?? undefined;
}

/**
 * gst-launch-1.0 arguments. X11 gets ximagesink, the one measured (it also needs no GL); elsewhere
 * autovideosink picks the platform's own (d3d/osx). `sync=false`: show each frame when decoded, like
 * ffplay with our timestamps. H.264 is parsed by h264parse (gstreamer1.0-plugins-bad) and decoded by
 * avdec_h264 (gstreamer1.0-libav) with slice threads
 * only: left to choose (decodebin, thread-type auto) it used frame threads on our non-live fdsrc,
 * which hold frames — 89–91 ms glass to glass on the rig against 35–39 ms in ffplay.
 * The window title: ximagesink names its window after the stream's title tag, which `taginject`
 * (gstreamer1.0-plugins-good, like the rest) adds; gst-launch has no option for it. The sink appends
 * the program name: "lanstream - host : gst-launch-1.0".
 */
export function gstLaunchArgs(codec: VideoCodec = 'mjpeg', platform: NodeJS.Platform = process.platform, title?: string): string[] {
  const sink = isXPlatform(platform) ? ['ximagesink', 'sync=false'] : ['autovideosink', 'sync=false'];
  const decode = codec === 'h264' ? ['h264parse', '!', 'avdec_h264', 'thread-type=slice'] : ['multipartdemux', 'single-stream=true', '!', 'jpegdec'];
  const titled = title ? ['taginject', `tags="title=\\"${gstSafeTitle(title)}\\""`, '!'] : [];
  return ['-q', 'fdsrc', 'fd=0', '!', ...decode, '!', 'videoconvert', '!', ...titled, ...sink];
}

/**
 * gst-launch joins its arguments into one pipeline description and parses that again, and the tag
 * value is parsed a second time as a GstStructure: quotes, backslashes and commas would end it
 * early, so anything outside a plain host-name alphabet becomes `_`.
 */
function gstSafeTitle(title: string): string {
  return title.replace(/[^A-Za-z0-9 ._:[\]@-]/g, '_');
}

/** One multipart part as pieces (boundary + headers with the exact length, the JPEG, CRLF): written corked, the JPEG is never copied. */
export function mpjpegPieces(jpeg: Buffer): Buffer[] {
  const head = Buffer.from(`--${MPJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`, 'latin1');
  return [head, jpeg, CRLF];
}

/** One multipart part as a single buffer (tests, logs). */
export function mpjpegPart(jpeg: Buffer): Buffer {
  return Buffer.concat(mpjpegPieces(jpeg));
}
const CRLF = Buffer.from('\r\n', 'latin1');

/** A started window program that has no frame yet: its window is not shown until one arrives. */
export interface PlayerLaunch {
  readonly backend: WindowBackend;
  readonly codec: VideoCodec;
  readonly args: readonly string[];
  readonly child: ChildProcess;
  /** Settles at the child's 'spawn' or 'error' (mapped to LS_ERR_FFPLAY_NOT_FOUND and the like). */
  readonly spawned: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderrTail(): string;
  /** Hands the process over once (to WindowSink.start); null if it was taken or killed. */
  adopt(): PlayerLaunch | null;
  /** Not adopted: SIGTERM (it never showed anything); true if it was. */
  discard(): boolean;
}

/**
 * Starts ffplay or gst-launch-1.0 for a codec. Neither shows its window before the first frame
 * (ffplay 5.1 creates it hidden and shows it at the first picture; ximagesink opens it at caps
 * negotiation), so a player can be started before the connection is made and dropped unseen if it
 * is not needed. Everything it reports from the start is kept: its exit, its stderr, a failed spawn.
 */
export function launchPlayer(
  o: Pick<WindowSinkOptions, 'playerPath' | 'title' | 'position' | 'borderless' | 'overlayFilter' | 'env' | 'platform'> & {
    backend: WindowBackend;
    codec: VideoCodec;
  },
): PlayerLaunch {
  const args = o.backend === 'gstreamer' ? gstLaunchArgs(o.codec, o.platform, o.title) : ffplayArgs(o, o.codec);
  const env = o.env ?? process.env;
  const child = spawn(o.playerPath, args, {
    env: o.backend === 'ffplay' ? ffplayEnv(env, o.platform) : env,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let tail = '';
  child.stderr?.on('data', (b: Buffer) => {
    tail = (tail + b.toString()).slice(-2000);
  });
  // EPIPE when the player has gone: its exit is reported through `exited`, not here.
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err: NodeJS.ErrnoException) => reject(spawnError(o.backend, o.playerPath, err, o.platform ?? process.platform)));
  });
  spawned.catch(() => undefined); // whoever adopts it reports it
  let taken = false;
  const launch: PlayerLaunch = {
    backend: o.backend,
    codec: o.codec,
    args,
    child,
    spawned,
    exited,
    stderrTail: () => tail,
    adopt: () => {
      if (taken) return null;
      taken = true;
      return launch;
    },
    discard: () => {
      if (taken) return false;
      taken = true;
      child.kill('SIGTERM');
      return true;
    },
  };
  return launch;
}

/** Exported for tests (the platform's install hint). */
export function spawnError(backend: WindowBackend, playerPath: string, err: NodeJS.ErrnoException, platform: NodeJS.Platform): LanstreamError {
  if ((err.code === 'ENOENT' || err.code === 'EACCES') && backend === 'gstreamer') {
    return new LanstreamError(
      'LS_ERR_GSTREAMER_NOT_FOUND',
      `Cannot run gst-launch-1.0 (${playerPath}) for --window gstreamer: ${gstreamerInstallHint(platform)}`,
      {
        cause: err,
        details: { playerPath },
      },
    );
  }
  if (err.code === 'ENOENT' || err.code === 'EACCES') {
    return new LanstreamError(
      'LS_ERR_FFPLAY_NOT_FOUND',
      `Cannot run ffplay (${playerPath}): install FFmpeg, which includes ffplay (e.g. ${installHint(platform)})`,
      {
        cause: err,
        details: { ffplayPath: playerPath },
      },
    );
  }
  return new LanstreamError('LS_ERR_SINK_FAILED', `Cannot start the video window (${playerPath}): ${err.message}`, { cause: err });
}

export class WindowSink implements VideoSink {
  readonly name = 'window';
  private readonly opts: WindowSinkOptions;
  private readonly backend: WindowBackend;
  private readonly log: Logger;
  private child: ChildProcess | null = null;
  private pending: Buffer | null = null;
  private busy = false;
  /** When ffplay's stdin last became busy (H.264 queue bound). */
  private busySinceMs = 0;
  /** ffplay has drained its input once: it is up and reading. */
  private drained = false;
  private codec: VideoCodec = 'mjpeg';
  /** H.264: frames waiting for 'drain' (all needed: each references the one before). */
  private pendingAus: Buffer[] = [];
  /** H.264: frames were dropped, so only an IDR can be shown next. */
  private waitIdr = false;
  private framesShown = 0;
  private framesDropped = 0;
  private launch: PlayerLaunch | null = null;
  private closing: Promise<void> | null = null;
  private ended = false;
  private reported = false;
  private exited: Promise<void> = Promise.resolve();
  /** GStreamer: a frame is being drawn on (the overlay), so the next one waits like for 'drain'. */
  private composing = false;
  /**
   * H.264: an AUD after each access unit closes it for ffmpeg's parser. GStreamer's h264parse also
   * waits for the end of that AUD (the next start code), i.e. for the next frame: a second AUD ends
   * the first (an empty access unit, which decoders skip). Rig, --window gstreamer: 54–64 → 27–30 ms.
   */
  private readonly auTrailer: readonly Buffer[];

  /** The program that draws the window, as logs and errors name it. */
  private get program(): string {
    return PLAYER_NAMES[this.backend];
  }

  constructor(opts: WindowSinkOptions) {
    this.opts = opts;
    this.backend = opts.backend ?? 'ffplay';
    this.auTrailer = this.backend === 'gstreamer' ? [AUD_TRAILER, AUD_TRAILER] : [AUD_TRAILER];
    this.log = opts.logger.child({ component: 'window-sink' });
  }

  /**
   * Resolves once the player runs; a missing binary rejects with LS_ERR_FFPLAY_NOT_FOUND /
   * LS_ERR_GSTREAMER_NOT_FOUND. A player launched ahead (opts.launched, same codec) is adopted
   * instead of starting another.
   */
  start(params: VideoParams): Promise<void> {
    if (this.child || this.ended) return Promise.reject(new Error('WindowSink.start() called twice'));
    this.codec = params.codec;
    const launched = this.opts.launched;
    // A player started for another codec cannot show this stream: end it (unseen) and start the right one.
    if (launched && launched.codec !== params.codec) launched.discard();
    const ahead = launched?.codec === params.codec ? launched.adopt() : null;
    const launch = ahead ?? launchPlayer({ ...this.opts, backend: this.backend, codec: params.codec });
    this.log.debug({ args: launch.args, params, backend: this.backend, launchedAhead: Boolean(ahead) }, 'starting the window');
    this.launch = launch;
    const child = launch.child;
    this.child = child;
    child.stdin?.on('drain', () => this.onDrain());
    this.exited = launch.exited.then(({ code, signal }) => this.onExit(code, signal));
    return launch.spawned.catch((err: unknown) => {
      // Spawn failed: start() rejects, so its 'close' must not also be reported as a crash.
      this.ended = true;
      this.reported = true;
      throw err;
    });
  }

  pushFrame(jpeg: Buffer, _ptsUs: number): void {
    if (!this.child || this.ended || this.closing) return;
    if (this.codec === 'h264') {
      this.pushAccessUnit(jpeg);
      return;
    }
    if (this.busy || this.composing) {
      if (this.pending) this.framesDropped++;
      this.pending = jpeg;
      return;
    }
    this.send(jpeg);
  }

  stats(): { framesShown: number; framesDropped: number } {
    return { framesShown: this.framesShown, framesDropped: this.framesDropped };
  }

  /** ffplay's PID while it runs (logs, tests). */
  get pid(): number | undefined {
    return this.ended ? undefined : this.child?.pid;
  }

  /** Ends ffplay's input, then SIGTERM, then SIGKILL; same promise when called again. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  destroy(err?: Error): void {
    if (err) this.log.debug({ err }, 'window sink destroyed');
    this.closing ??= this.exited;
    this.pending = null;
    if (this.child && !this.ended) this.child.kill('SIGKILL');
  }

  /** MJPEG: straight to the player, or first through the overlay when GStreamer shows status text. */
  private send(jpeg: Buffer): void {
    const text = this.backend === 'gstreamer' ? this.opts.overlay?.text.trim() : '';
    if (!text) {
      this.write(jpeg);
      return;
    }
    this.composing = true;
    burnOverlay(jpeg, text)
      .catch((err: unknown) => {
        this.log.debug({ err }, 'overlay not drawn; frame shown without it');
        return jpeg;
      })
      .then((framed) => {
        this.composing = false;
        if (this.closing || this.ended) return;
        this.write(framed);
        if (!this.busy) this.sendPending();
      });
  }

  private sendPending(): void {
    const next = this.pending;
    this.pending = null;
    if (next && !this.closing) this.send(next);
  }

  private write(jpeg: Buffer): void {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) return;
    if (this.framesShown === 0) this.log.debug({ bytes: jpeg.length }, `first frame written to ${this.program}`);
    this.framesShown++;
    const pieces = this.codec === 'h264' ? [jpeg, ...this.auTrailer] : mpjpegPieces(jpeg);
    // Corked: one writev for the pieces, no per-frame copy of the picture.
    stdin.cork();
    let ok = true;
    for (const piece of pieces) ok = stdin.write(piece);
    stdin.uncork();
    if (!ok && !this.busy) this.busySinceMs = Date.now();
    this.busy = !ok;
  }

  /**
   * H.264 frames depend on the ones before, so "newest only" would break the picture: a busy ffplay
   * gets a queue of MAX_BUSY_MS, and beyond it everything is dropped up to the next IDR.
   */
  private pushAccessUnit(au: Buffer): void {
    const idr = isIdrAccessUnit(au);
    if (this.waitIdr && !idr) {
      this.framesDropped++;
      return;
    }
    this.waitIdr = false;
    if (!this.busy) {
      this.write(au);
      return;
    }
    if (idr) {
      this.framesDropped += this.pendingAus.length;
      this.pendingAus = [];
    }
    this.pendingAus.push(au);
    // Before its first 'drain' ffplay is still setting up SDL and reads nothing yet (~180 ms through
    // OpenGL; 132–155 ms to a picture with ffplayEnv): what arrives meanwhile is the start of the
    // picture, kept (count-bounded), not a sign of a slow window.
    const stuck = this.drained && Date.now() - this.busySinceMs > MAX_BUSY_MS;
    if (this.pendingAus.length > MAX_PENDING_AUS || stuck) {
      this.framesDropped += this.pendingAus.length - (idr ? 1 : 0);
      this.pendingAus = idr ? [au] : [];
      this.waitIdr = !idr;
    }
  }

  private onDrain(): void {
    this.busy = false;
    this.drained = true;
    if (this.codec === 'h264') {
      const queued = this.pendingAus;
      this.pendingAus = [];
      for (const au of queued) if (!this.closing) this.write(au);
      return;
    }
    if (!this.composing) this.sendPending();
  }

  private async stop(): Promise<void> {
    const child = this.child;
    this.pending = null;
    if (!child || this.ended) return;
    // A window that never got a frame has nothing to finish showing: an ffplay still in its SDL set-up
    // reads the end of its input only when that is done (measured 170 ms), and watch waits for this
    // close before it opens the H.264 window in place of the speculative MJPEG one. SIGTERM: 4 ms.
    if (this.framesShown > 0) {
      child.stdin?.end();
      if (await exitsWithin(this.exited, EXIT_GRACE_MS)) return;
    }
    child.kill('SIGTERM');
    if (await exitsWithin(this.exited, KILL_GRACE_MS)) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.ended = true;
    this.pending = null;
    if (this.closing || this.reported) return;
    this.reported = true;
    // ffplay exits 0 when its window is closed; gst-launch reports ximagesink's error and exits 1.
    const stderrTail = this.launch?.stderrTail() ?? '';
    const gaveUp = this.backend === 'ffplay' && FFPLAY_GAVE_UP.test(stderrTail);
    if ((code === 0 && !gaveUp) || (this.backend === 'gstreamer' && /Output window was closed/i.test(stderrTail))) {
      this.log.info({ code, stderr: stderrTail.trim().slice(-500) || undefined }, 'video window closed by the user');
      this.opts.events?.onUserClose?.();
      return;
    }
    const tail = stderrTail.trim().split(/\r?\n/).slice(-3).join(' | ');
    const err = new LanstreamError(
      'LS_ERR_SINK_FAILED',
      `The video window (${this.program}) stopped (${signal ?? `exit code ${code}`})${tail ? `: ${tail}` : ''}${gstHint(this.backend, tail)}${ffplayHint(this.backend, tail)}`,
      { details: { code, signal } },
    );
    this.opts.events?.onError?.(err);
  }
}

/**
 * What ffplay prints when it gives up before showing anything, and then exits 0 all the same (its
 * do_exit), as it does when the user closes the window: it cannot create its window or renderer (an
 * 8-bit X display: "Couldn't find matching render driver"), or cannot open its input ("pipe:0: …").
 * Such an exit is a failure, not a user's q. Exported for tests.
 */
const FFPLAY_NO_WINDOW = /Failed to create window or renderer/;
export const FFPLAY_GAVE_UP = new RegExp(`${FFPLAY_NO_WINDOW.source}|Failed to initialize VideoState|^pipe:0?: `, 'm');

/** ffplay could not draw on this display: GStreamer's ximagesink may (it does on an 8-bit Xvfb). Exported for tests. */
export function ffplayHint(backend: WindowBackend, stderrTail: string): string {
  if (backend !== 'ffplay' || !FFPLAY_NO_WINDOW.test(stderrTail)) return '';
  return ' — ffplay (SDL) cannot draw on this display; try --window gstreamer';
}

/** The Debian package of each element gstLaunchArgs uses (h264parse is in -bad, not -good). */
export const GST_ELEMENT_PACKAGES: Readonly<Record<string, string>> = {
  fdsrc: 'libgstreamer1.0-0',
  videoconvert: 'gstreamer1.0-plugins-base',
  multipartdemux: 'gstreamer1.0-plugins-good',
  jpegdec: 'gstreamer1.0-plugins-good',
  taginject: 'gstreamer1.0-plugins-good',
  h264parse: 'gstreamer1.0-plugins-bad',
  avdec_h264: 'gstreamer1.0-libav',
  ximagesink: 'gstreamer1.0-x',
};

/** A pipeline element that is not installed: name the Debian package that has it. Exported for tests. */
export function gstHint(backend: WindowBackend, stderrTail: string): string {
  if (backend !== 'gstreamer' || !/no element|not find|missing/i.test(stderrTail)) return '';
  const element = /no element "([^"]+)"/.exec(stderrTail)?.[1];
  const pkg = element ? GST_ELEMENT_PACKAGES[element] : undefined;
  if (pkg) return ` — install ${pkg} (e.g. sudo apt-get install ${pkg}), or use --window ffplay`;
  return ' — install gstreamer1.0-plugins-base, gstreamer1.0-plugins-good and gstreamer1.0-x (H.264 also gstreamer1.0-plugins-bad and gstreamer1.0-libav), or use --window ffplay';
}

function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
