/**
 * A first read of `lanstream watch …`'s command line, before commander is loaded, so that the window
 * program can start that much sooner (main.ts). ffplay's own start (~215 shared libraries, SDL, X11)
 * is one of the two chains that meet at the first picture, and the later one by ~10 ms on the rig
 * (bench/results/diag-20261127-1000-first-picture-timeline.md); it waited for the CLI parser and the
 * rest of the entry bundle to load. Measured (bench/results/diag-20261127-1250-prescan.md), ms after
 * watch's first line, medians of 14–20 interleaved runs under Xvfb: ffplay spawned 41 → 22; the
 * dial, with main() also asking for the watch module at once, 92 → 94 with ffplay loading beside it
 * (85 → 77 without). Rig, 36 interleaved runs each: first picture median 0.406 → 0.379 s, within
 * the rig's run-to-run spread (0.27–0.72 s).
 *
 * Only what decides the early window is read, with node:util's parseArgs: the target and the flags of
 * EarlyWindowFlags, with their LANSTREAM_* variables and defaults. It never decides anything alone:
 * commander parses the whole command line afterwards, and the window started from this read is kept
 * only if commander's flags plan the very same one (reconcileEarlyWindow); otherwise it is ended
 * unseen. So a mistake here costs the head start, never a wrong window. To read the target right, it
 * must know every watch flag that takes a value (WATCH_VALUE_FLAGS); a unit test holds that list to
 * commander's definition of the command.
 */
import { parseArgs } from 'node:util';
import type { EarlyWindowFlags } from './early-window.js';

/** Every `watch` flag that takes a value, long name without `--`, and its one-letter form if any. */
export const WATCH_VALUE_FLAGS: Readonly<Record<string, string | undefined>> = Object.freeze({
  'config-dir': undefined,
  ffmpeg: undefined,
  duration: undefined,
  'log-level': undefined,
  'log-file': undefined,
  port: 'p',
  key: undefined,
  fingerprint: undefined,
  volume: undefined,
  'audio-buffer-ms': undefined,
  'audio-output': undefined,
  window: undefined,
  ffplay: undefined,
  'gst-launch': undefined,
  'window-position': undefined,
  'reconnect-timeout': undefined,
  record: undefined,
  snapshot: undefined,
  'snapshot-size': undefined,
});

/** The value flags the early window depends on: attribute, flag, environment variable (as commander reads them). */
export const EARLY_WINDOW_VALUE_FLAGS: ReadonlyArray<readonly [keyof EarlyWindowFlags, string, string | undefined]> = [
  ['port', 'port', 'LANSTREAM_PORT'],
  ['configDir', 'config-dir', 'LANSTREAM_CONFIG_DIR'],
  ['ffmpeg', 'ffmpeg', 'LANSTREAM_FFMPEG'],
  ['ffplay', 'ffplay', 'LANSTREAM_FFPLAY'],
  ['gstLaunch', 'gst-launch', 'LANSTREAM_GST_LAUNCH'],
  ['window', 'window', 'LANSTREAM_WINDOW'],
  ['windowPosition', 'window-position', 'LANSTREAM_WINDOW_POSITION'],
  ['snapshot', 'snapshot', undefined],
];

/**
 * `args`: what follows `watch` on the command line. The target and the early window's flags, or null
 * when the line is not plain enough to read without commander (no single target, --help).
 */
export function prescanWatch(args: readonly string[], env: NodeJS.ProcessEnv): { target: string; flags: EarlyWindowFlags } | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, short] of Object.entries(WATCH_VALUE_FLAGS)) options[name] = short ? { type: 'string', short } : { type: 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    // strict: false: any other flag is read as a switch, as it is for watch (its value flags are all listed above).
    parsed = parseArgs({ args: [...args], options, strict: false, allowPositionals: true });
  } catch {
    return null;
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || values.help || values.h) return null;
  const flags: EarlyWindowFlags = {
    playback: values['no-playback'] !== true,
    video: values['no-video'] !== true,
    borderless: values.borderless === true,
  };
  for (const [attr, flag, envName] of EARLY_WINDOW_VALUE_FLAGS) {
    const value = values[flag] ?? (envName ? env[envName] : undefined);
    if (typeof value === 'string') (flags as Record<string, unknown>)[attr] = value;
  }
  return { target: positionals[0]!, flags };
}
