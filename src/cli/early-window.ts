/**
 * `watch` starts its window program before it loads the rest of itself (the CLI parser, the watch
 * module, the logger, the TLS connection): main.ts plans it from a pre-scan of the command line
 * (watch-prescan.ts), and commander's reading of the same line keeps it or replaces it
 * (reconcileEarlyWindow); see watch-prescan.ts for what that gained. Before, it was started the
 * moment commander had parsed the flags, and before that only once the watch module had loaded.
 * ffplay needs 130–150 ms from its spawn to a picture (linking 215 shared libraries, SDL, X11), and
 * it was spawned only after the connection code had loaded: watch start → spawn 135 → 112 ms
 * (medians of 15 interleaved runs), and its set-up now overlaps the loading and the TLS handshake.
 * Rig, 6 interleaved rounds with XCOMPOSEFILE (window-sink.ts ffplayEnv): first picture 0.285 → 0.246 s.
 *
 * Nothing is shown by it: the players keep their window hidden until a first frame arrives (see
 * launchPlayer). It is the speculative window for the codec this server sent last (below); runWatch
 * adopts it, or closes it unseen when the server sends another codec, the connection fails or a
 * flag turns out to be wrong.
 *
 * Only the plain case is started here: the player by name from PATH (the OS looks it up when it
 * starts it). With --ffplay, --ffmpeg or --gst-launch, or when the name is not found, runWatch finds
 * and checks the player as before.
 *
 * The codec is the one this server sent last time (WINDOW_CODECS_FILE in the config dir), MJPEG for
 * a server not seen before: a server that sends H.264 gets an H.264 window from the start the second
 * time, instead of the MJPEG one replaced at WELCOME.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultConfigDir, readIfExists, writePrivateFile } from '../shared/config-dir.js';
import { parseWatchTarget } from '../shared/connect-url.js';
import { isDeepStrictEqual } from 'node:util';
import { DEFAULT_PORT } from '../protocol/constants.js';
import type { VideoCodec } from '../protocol/messages.js';
import { OverlayText } from '../client/overlay.js';
import { launchPlayer, PLAYER_NAMES, windowTitle, type PlayerLaunch, type WindowBackend } from '../client/sinks/window-sink.js';
import { parsePort, parsePosition } from './parse.js';
import type { WatchFlags } from './watch-command.js';

/** The flags an early window depends on (commander's, or the pre-scan's). */
export type EarlyWindowFlags = Partial<
  Pick<WatchFlags, 'port' | 'playback' | 'video' | 'snapshot' | 'ffplay' | 'ffmpeg' | 'gstLaunch' | 'window' | 'windowPosition' | 'borderless' | 'configDir'>
>;

/** `{ "host:port": "h264" | "mjpeg" }`: the video codec each server sent last. */
export const WINDOW_CODECS_FILE = 'window-codecs.json';

/** The file's map, or an empty one when it is missing or not a JSON object. */
function parseCodecs(text: string | undefined): Record<string, unknown> {
  try {
    const seen: unknown = JSON.parse(text ?? '{}');
    return seen && typeof seen === 'object' ? (seen as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The codec this server sent last time; MJPEG if unknown or unreadable. Synchronous: a few hundred bytes, read at start. */
export function lastCodec(configDir: string, server: string): VideoCodec {
  let text: string | undefined;
  try {
    text = readFileSync(path.join(configDir, WINDOW_CODECS_FILE), 'utf8');
  } catch {
    return 'mjpeg';
  }
  return parseCodecs(text)[server] === 'h264' ? 'h264' : 'mjpeg';
}

/** Records the codec a server sent (atomic write, 0600); a failure only costs the next start its head start. */
export async function rememberCodec(configDir: string, server: string, codec: VideoCodec): Promise<void> {
  const file = path.join(configDir, WINDOW_CODECS_FILE);
  const seen = parseCodecs((await readIfExists(file).catch(() => null))?.toString('utf8'));
  if (seen[server] === codec) return;
  seen[server] = codec;
  await writePrivateFile(file, `${JSON.stringify(seen)}\n`);
}

/** What an early window is started with: the same plan from the same flags means the same window. */
export interface EarlyWindowPlan {
  readonly backend: WindowBackend;
  readonly codec: VideoCodec;
  readonly playerPath: string;
  readonly title: string;
  readonly position: { x: number; y: number } | undefined;
  readonly borderless: boolean;
}

export interface EarlyWindow {
  readonly plan: EarlyWindowPlan;
  readonly launch: PlayerLaunch;
  readonly overlay: OverlayText;
}

/**
 * The window program these flags would start early, or null when there is none to start here (no
 * window wanted, a player given by path, a flag that does not parse: runWatch reports it).
 * `flags` may come from commander or from the pre-scan of the command line (watch-prescan.ts).
 */
export function planEarlyWindow(targetArg: string, flags: EarlyWindowFlags): EarlyWindowPlan | null {
  if (flags.playback === false || flags.video === false || flags.snapshot || flags.ffplay || flags.ffmpeg || flags.gstLaunch) return null;
  const backend = (flags.window ?? 'ffplay') as WindowBackend;
  if (!(backend in PLAYER_NAMES)) return null;
  try {
    const target = parseWatchTarget(targetArg, { port: parsePort(flags.port ?? String(DEFAULT_PORT)) });
    return {
      backend,
      codec: lastCodec(flags.configDir ?? defaultConfigDir(), `${target.host}:${target.port}`),
      playerPath: PLAYER_NAMES[backend],
      title: windowTitle(target.host),
      position: flags.windowPosition ? parsePosition(flags.windowPosition) : undefined,
      borderless: Boolean(flags.borderless),
    };
  } catch {
    return null; // runWatch reports it
  }
}

export function samePlan(a: EarlyWindowPlan, b: EarlyWindowPlan): boolean {
  return isDeepStrictEqual(a, b);
}

/** Starts the window program of a plan; null if it cannot be started here (runWatch meets the cause again and says so). */
export function startEarlyWindow(plan: EarlyWindowPlan): EarlyWindow | null {
  let overlay: OverlayText | null = null;
  try {
    overlay = new OverlayText();
    const launch = launchPlayer({ ...plan, overlayFilter: overlay.filter() });
    return { plan, launch, overlay };
  } catch {
    overlay?.close(); // e.g. no writable temp dir
    return null;
  }
}

/** Ends an early window nobody took (discard is a no-op once WindowSink adopted it). */
export function endEarlyWindow(early: EarlyWindow | null): void {
  early?.launch.discard();
  early?.overlay.close();
}

/**
 * The window started before commander parsed the command line (main.ts, from the pre-scan), checked
 * against the one commander's flags ask for: the same plan → kept; otherwise it is ended unseen and
 * the right one started (only a pre-scan that read the command line differently, e.g. an option it
 * does not know, costs this).
 */
export function reconcileEarlyWindow(prestarted: EarlyWindow | null, targetArg: string, flags: EarlyWindowFlags): EarlyWindow | null {
  const plan = planEarlyWindow(targetArg, flags);
  if (prestarted && plan && samePlan(prestarted.plan, plan)) return prestarted;
  endEarlyWindow(prestarted);
  return plan ? startEarlyWindow(plan) : null;
}

/**
 * The early window once it is known to be running ('spawn' comes on the next tick), or null if it
 * could not start (runWatch then looks for the player itself and reports what is wrong).
 */
export async function runningEarlyWindow(early: EarlyWindow | null): Promise<EarlyWindow | null> {
  if (!early) return null;
  try {
    await early.launch.spawned;
    return early;
  } catch {
    early.overlay.close();
    return null;
  }
}
