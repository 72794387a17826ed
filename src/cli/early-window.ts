/**
 * `watch` starts its window program the moment its flags are parsed, before it loads the rest of
 * itself (the watch module, the logger, the TLS connection). ffplay needs 130–150 ms from its spawn
 * to a picture (linking 215 shared libraries, SDL, X11), and it was spawned only after the connection
 * code had loaded: watch start → spawn 135 → 112 ms (medians of 15 interleaved runs), and its set-up
 * now overlaps the loading and the TLS handshake. Rig, 6 interleaved rounds with XCOMPOSEFILE
 * (window-sink.ts ffplayEnv): first picture 0.285 → 0.246 s.
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
import type { VideoCodec } from '../protocol/messages.js';
import { OverlayText } from '../client/overlay.js';
import { launchPlayer, PLAYER_NAMES, windowTitle, type PlayerLaunch, type WindowBackend } from '../client/sinks/window-sink.js';
import { parsePort, parsePosition } from './parse.js';
import type { WatchFlags } from './watch-command.js';

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

export interface EarlyWindow {
  readonly launch: PlayerLaunch;
  readonly playerPath: string;
  readonly overlay: OverlayText;
}

/**
 * Starts the window program for these flags, or returns null when there is none to start here
 * (no window wanted, a player given by path, a flag that does not parse: runWatch reports it).
 */
export function launchEarlyWindow(targetArg: string, flags: WatchFlags): EarlyWindow | null {
  if (!flags.playback || !flags.video || flags.snapshot || flags.ffplay || flags.ffmpeg || flags.gstLaunch) return null;
  const backend = (flags.window ?? 'ffplay') as WindowBackend;
  if (!(backend in PLAYER_NAMES)) return null;
  let title: string;
  let position: { x: number; y: number } | undefined;
  let codec: VideoCodec;
  try {
    const target = parseWatchTarget(targetArg, { port: parsePort(flags.port) });
    title = windowTitle(target.host);
    position = flags.windowPosition ? parsePosition(flags.windowPosition) : undefined;
    codec = lastCodec(flags.configDir ?? defaultConfigDir(), `${target.host}:${target.port}`);
  } catch {
    return null; // runWatch reports it
  }
  let overlay: OverlayText | null = null;
  try {
    overlay = new OverlayText();
    const playerPath = PLAYER_NAMES[backend];
    const launch = launchPlayer({ backend, codec, playerPath, title, position, borderless: flags.borderless, overlayFilter: overlay.filter() });
    return { launch, playerPath, overlay };
  } catch {
    overlay?.close(); // e.g. no writable temp dir: runWatch meets it again and says so
    return null;
  }
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
