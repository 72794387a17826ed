/**
 * The command line: argv (commander), environment, signals and exit codes — the only module that
 * knows them (main.ts, the entry, only pre-reads `watch`'s line for its early window). It turns
 * flags into options for the composition roots (serve.ts, watch.ts) and errors into one line on
 * stderr plus a documented exit code.
 */
import { Command, CommanderError, Option } from 'commander';
import { LanstreamError, isLanstreamError, setEnvSources, usageError } from '../shared/errors.js';
import { EXIT_CODES_HELP, ExitCode, exitCodeFor } from './exit-codes.js';
import { Output } from './output.js';
import { endEarlyWindow, reconcileEarlyWindow, type EarlyWindow } from './early-window.js';
import { DEFAULT_PORT } from '../protocol/constants.js';
import { guardStartup, readerGone } from './lifecycle.js';

import { VERSION_AGENT } from './common.js';
import { AUDIO_OUTPUTS } from '../client/sinks/sink.js';
import { AUDIO_PACKET_CHOICES_MS, AUDIO_PACKET_MS } from '../server/capture/capture-types.js';

const VERSION = VERSION_AGENT.split('/')[1]!;

function commonOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--config-dir <dir>', 'where the certificate, access key and known hosts live').env('LANSTREAM_CONFIG_DIR'))
    .addOption(new Option('--ffmpeg <path>', 'ffmpeg binary (default: ffmpeg on PATH, then ffmpeg-static)').env('LANSTREAM_FFMPEG'))
    .addOption(new Option('--insecure', 'plain TCP without TLS or certificate checks (both sides must use it)').env('LANSTREAM_INSECURE'))
    .addOption(new Option('--duration <time>', 'stop after this long and exit 0, e.g. 90s, 5m, 1h').env('LANSTREAM_DURATION'))
    .addOption(new Option('--json', 'one JSON object per line on stdout (events, stats once a second, errors)'))
    .addOption(new Option('-q, --quiet', 'only errors on stderr'))
    .addOption(new Option('--log-level <level>', 'silent|fatal|error|warn|info|debug|trace').env('LANSTREAM_LOG_LEVEL'))
    .addOption(new Option('--log-file <file>', 'write logs (pino JSON) to this file instead of stderr').env('LANSTREAM_LOG_FILE'));
}

// Each command's module is loaded only when that command runs: `watch` does not pay for the
// server's capture stack at start-up, and the other way round (first picture is a target).
export function buildProgram(output: Output, prestarted: EarlyWindow | null = null): Command {
  const program = new Command('lanstream')
    .description('Live camera + microphone between machines on a LAN, over one TLS connection.')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n\nRun \`lanstream <command> --help\` for the flags of each command.`)
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: () => undefined, // printed once by main() as one line
    })
    .exitOverride();

  commonOptions(
    program
      .command('serve')
      .description("capture this machine's camera and microphone and serve them to viewers")
      .addOption(new Option('-p, --port <port>', 'TCP port to listen on').default(String(DEFAULT_PORT)).env('LANSTREAM_PORT'))
      .addOption(new Option('--host <address>', 'bind address (default: all interfaces)').env('LANSTREAM_HOST'))
      .addOption(
        new Option('--source <source>', 'device = camera + microphone, test = built-in test picture + tone')
          .choices(['device', 'test'])
          .default('device')
          .env('LANSTREAM_SOURCE'),
      )
      .addOption(new Option('--video-device <dev>', 'camera: /dev/video0 (Linux), index or name (macOS), name (Windows)').env('LANSTREAM_VIDEO_DEVICE'))
      .addOption(
        new Option('--audio-device <dev>', 'microphone: PulseAudio source or ALSA hw:N (Linux), index or name (macOS), name (Windows)').env(
          'LANSTREAM_AUDIO_DEVICE',
        ),
      )
      .addOption(new Option('--audio-backend <backend>', 'Linux microphone input').choices(['pulse', 'alsa']).env('LANSTREAM_AUDIO_BACKEND'))
      .addOption(
        new Option('--video-input <args>', 'replace the camera input with these ffmpeg input arguments, e.g. "-f x11grab -i :0"').env('LANSTREAM_VIDEO_INPUT'),
      )
      .addOption(new Option('--audio-input <args>', 'replace the microphone input with these ffmpeg input arguments').env('LANSTREAM_AUDIO_INPUT'))
      .addOption(new Option('--copy-mjpeg', 'the camera delivers MJPEG at --size: pass it through without re-encoding'))
      .addOption(
        new Option('--video-codec <codec>', 'mjpeg (no encode delay, ~12 Mbit/s at 720p) or h264 (~1/6 of the bitrate; see docs/codecs.md)')
          .choices(['mjpeg', 'h264'])
          .default('mjpeg')
          .env('LANSTREAM_VIDEO_CODEC'),
      )
      .addOption(
        new Option('--audio-codec <codec>', 'pcm (768 kbit/s) or opus (64 kbit/s)').choices(['pcm', 'opus']).default('pcm').env('LANSTREAM_AUDIO_CODEC'),
      )
      .addOption(
        new Option('--audio-packet-ms <ms>', 'audio packet duration: each packet adds about half its length of delay; larger ones mean fewer packets')
          .choices(AUDIO_PACKET_CHOICES_MS.map(String))
          .default(String(AUDIO_PACKET_MS))
          .env('LANSTREAM_AUDIO_PACKET_MS'),
      )
      .addOption(new Option('--bitrate <kbit/s>', 'H.264 bitrate cap').default('2000').env('LANSTREAM_BITRATE'))
      .addOption(new Option('--audio-bitrate <kbit/s>', 'Opus bitrate, 6–510').default('64').env('LANSTREAM_AUDIO_BITRATE'))
      .addOption(
        new Option('--gop <frames>', 'H.264 frames from one keyframe to the next; a joining viewer waits at most this long (default: fps/2)').env(
          'LANSTREAM_GOP',
        ),
      )
      .addOption(
        new Option(
          '--encoder <name>',
          "H.264 encoder: auto (hardware if one works, else libx264), copy (the camera's H.264), libx264, h264_vaapi, h264_nvenc, h264_qsv, h264_v4l2m2m, h264_videotoolbox, h264_amf, h264_mf",
        )
          .default('auto')
          .env('LANSTREAM_ENCODER'),
      )
      .addOption(new Option('--size <WxH>', 'video size').default('1280x720').env('LANSTREAM_SIZE'))
      .addOption(
        new Option('--fps <n>', 'frames per second (decimals allowed: 29.97 for cameras that offer only NTSC rates)').default('30').env('LANSTREAM_FPS'),
      )
      .addOption(new Option('--quality <q>', 'MJPEG quality, 2 (best, biggest) … 31 (worst)').default('5').env('LANSTREAM_QUALITY'))
      .addOption(new Option('--audio-rate <hz>', 'audio sample rate').default('48000'))
      .addOption(new Option('--channels <n>', 'audio channels').default('1'))
      .addOption(new Option('--no-video', 'serve sound only'))
      .addOption(new Option('--no-audio', 'serve picture only'))
      .addOption(new Option('--max-viewers <n>', 'viewers at once').default('8').env('LANSTREAM_MAX_VIEWERS'))
      .addOption(new Option('--keep-warm', 'keep the camera and microphone open without viewers (faster first picture)'))
      .addOption(new Option('--no-preflight', 'do not open the devices once at start to check them'))
      .addOption(new Option('--key <key>', 'access key viewers must prove (default: generated and kept in the config dir)').env('LANSTREAM_KEY'))
      .addOption(new Option('--record <file.mkv>', 'also record what is served (video + audio, server timestamps) to this Matroska file'))
      .addOption(new Option('--overwrite', 'with --record: replace the file if it exists (default: refuse, exit 2)'))
      .addOption(new Option('--new-key', 'generate a new access key (old connect lines stop working)'))
      .action(async (opts) => (await import('./serve-command.js')).runServe(opts, output)),
  );

  commonOptions(
    program
      .command('watch')
      .description('show and play the stream of a lanstream server')
      .argument('<target>', 'host, host:port, or the lanstream://… URL that `lanstream serve` printed')
      .addOption(new Option('-p, --port <port>', 'server port (if not in <target>)').default(String(DEFAULT_PORT)).env('LANSTREAM_PORT'))
      .addOption(new Option('--key <key>', 'access key (if not in <target>)').env('LANSTREAM_KEY'))
      .addOption(new Option('--fingerprint <fp>', 'pin the server certificate: sha256:… as printed by serve').env('LANSTREAM_FINGERPRINT'))
      .addOption(new Option('--no-video', 'sound only'))
      .addOption(new Option('--no-audio', 'picture only'))
      .addOption(new Option('--no-playback', 'no window and no speaker (for --snapshot, --json stats, tests)'))
      .addOption(new Option('--volume <0-100>', 'start volume').default('100').env('LANSTREAM_VOLUME'))
      .addOption(
        new Option('--audio-buffer-ms <ms>', 'audio output delay target: jitter buffer + device buffer').default('30').env('LANSTREAM_AUDIO_BUFFER_MS'),
      )
      .addOption(
        new Option(
          '--audio-output <out>',
          'audio-io = pull-callback output (ALSA/Core Audio/MME), pulse = PulseAudio native protocol (Linux), speaker = npm speaker (ALSA), pacat = PulseAudio pacat, auto = in that order (pulse and pacat on Linux only)',
        )
          .choices([...AUDIO_OUTPUTS])
          .default('auto')
          .env('LANSTREAM_AUDIO_OUTPUT'),
      )
      .addOption(new Option('--overlay', 'show live stats in the video window from the start (toggle with the o key)'))
      .addOption(
        new Option(
          '--av-sync',
          'hold video frames that would appear before their sound (off by default: on the rig the skew was −1 ms without it, and the hold overshot to −21 ms)',
        ),
      )
      .addOption(
        new Option(
          '--window <player>',
          'what draws the video window: ffplay, or gstreamer (gst-launch-1.0; on the test rig the picture arrived 13–18 ms sooner)',
        )
          .choices(['ffplay', 'gstreamer'])
          .default('ffplay')
          .env('LANSTREAM_WINDOW'),
      )
      .addOption(new Option('--ffplay <path>', 'ffplay binary (default: PATH; with --ffmpeg, the one next to it first)').env('LANSTREAM_FFPLAY'))
      .addOption(new Option('--gst-launch <path>', 'gst-launch-1.0 binary for --window gstreamer (default: PATH)').env('LANSTREAM_GST_LAUNCH'))
      .addOption(new Option('--window-position <x,y>', 'put the window here').env('LANSTREAM_WINDOW_POSITION'))
      .addOption(new Option('--borderless', 'window without decorations'))
      .addOption(new Option('--reconnect-timeout <time>', 'give up after the server is gone this long (default: never)').env('LANSTREAM_RECONNECT_TIMEOUT'))
      .addOption(new Option('--wait', 'keep trying if the server is not up yet (default: fail at once)'))
      .addOption(new Option('--record <file.mkv>', 'also write video + audio to this Matroska file (server timestamps; playable even if killed)'))
      .addOption(new Option('--overwrite', 'with --record: replace the file if it exists (default: refuse, exit 2)'))
      .addOption(new Option('--snapshot <file>', 'write one picture (.jpg or .png) and exit 0; implies --no-playback'))
      .addOption(new Option('--snapshot-size <WxH>', 'resize the --snapshot picture (exact size, centre crop)'))
      .action(async (target, opts, cmd: Command) => {
        // Typed on the command line, or only from the environment / a default: the target's own
        // key, fingerprint and port win over the latter and must agree with the former.
        opts.fromCommandLine = ['port', 'key', 'fingerprint'].filter((name) => cmd.getOptionValueSource(name) === 'cli');
        // The window program starts first, while the rest of watch loads (early-window.ts): main()
        // started it from its pre-scan of the command line; kept if these flags ask for the same one.
        const early = reconcileEarlyWindow(prestarted, target, opts);
        // Unseen if runWatch never made it the window (a wrong flag, another codec): end it.
        const endEarly = () => endEarlyWindow(early);
        const release = early ? guardStartup(endEarly) : null;
        try {
          await (await import('./watch-command.js')).runWatch(target, opts, output, early);
        } finally {
          release?.();
          endEarly();
        }
      }),
  );

  program
    .command('devices')
    .description('list the cameras and microphones ffmpeg can open here, with the value to pass')
    .addOption(new Option('--ffmpeg <path>', 'ffmpeg binary').env('LANSTREAM_FFMPEG'))
    .addOption(new Option('--json', 'print JSON'))
    .action(async (opts) => (await import('./devices-command.js')).runDevices(opts, output));

  // Before a command runs: which of its flags took their value from LANSTREAM_* (errors then name the variable).
  program.hook('preAction', (_program, command) => {
    setEnvSources(
      command.options
        .filter((o) => o.long !== undefined && o.envVar !== undefined && command.getOptionValueSource(o.attributeName()) === 'env')
        .map((o) => [o.long!, o.envVar!] as const),
    );
    rejectEmptyValues(command);
  });
  for (const cmd of program.commands) {
    cmd
      .exitOverride()
      .addHelpText('after', `\n${EXIT_CODES_HELP}`)
      .configureOutput({ outputError: () => undefined });
  }
  return program;
}

/**
 * Flags whose empty value would quietly turn them off: a script's `--snapshot "$OUT"` with OUT unset
 * became a plain watch that never ended (cron piled them up), `--record ""` recorded nothing and
 * exited 0, `--duration ""` ran forever. Typed empty on the command line, they are a usage error;
 * an empty LANSTREAM_* variable still means unset.
 */
const NO_EMPTY_VALUE = new Set(['--record', '--snapshot', '--snapshot-size', '--duration', '--reconnect-timeout']);

function rejectEmptyValues(command: Command): void {
  for (const o of command.options) {
    if (!o.long || !NO_EMPTY_VALUE.has(o.long)) continue;
    const name = o.attributeName();
    if (command.getOptionValue(name) === '' && command.getOptionValueSource(name) === 'cli') {
      throw usageError(o.long, "''", 'a value: an empty one would switch the flag off (is a shell variable unset?)');
    }
  }
}

/**
 * Flags without a value that can also be set from the environment. Commander sets such a flag when
 * its variable is defined at all, so LANSTREAM_INSECURE=false or =0 would have turned TLS off: read
 * here instead, as 1/true/yes/on or 0/false/no/off (empty: unset), anything else a usage error.
 */
export const BOOLEAN_ENV_FLAGS: Readonly<Record<string, string>> = Object.freeze({ LANSTREAM_INSECURE: '--insecure' });

/** Removes the boolean variables that say "off" from `env` (commander then never sees them); throws on a value that is neither. */
export function readBooleanEnv(env: NodeJS.ProcessEnv): void {
  for (const [name, flag] of Object.entries(BOOLEAN_ENV_FLAGS)) {
    const raw = env[name];
    if (raw === undefined) continue;
    const value = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(value)) continue;
    if (['', '0', 'false', 'no', 'off'].includes(value)) {
      delete env[name];
      continue;
    }
    throw new LanstreamError('LS_ERR_USAGE', `Invalid ${name}=${JSON.stringify(raw)} (for ${flag}): use 1 or 0 (true/false, yes/no)`);
  }
}

/** Runs the command line (main.ts). Never throws; sets process.exitCode. `prestarted`: watch's window, started by main(). */
export async function runCli(argv: string[], prestarted: EarlyWindow | null = null): Promise<void> {
  // `lanstream --help | head -3` closes the pipe early: the reader's choice, not a crash with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (!readerGone(err)) throw err;
  });
  const output = new Output();
  const program = buildProgram(output, prestarted);
  // Set before parsing: a usage error from commander itself (an unknown flag, a missing argument)
  // comes before any command runs, and with --json its error and stopped lines belong on stdout too.
  output.json = argv.includes('--json');
  try {
    readBooleanEnv(process.env);
    await program.parseAsync(argv);
    if (process.exitCode === undefined) process.exitCode = ExitCode.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') {
        process.exitCode = ExitCode.OK;
        return;
      }
      const helpFor = argv[3];
      if (err.code === 'commander.help' && argv[2] === 'help' && (helpFor === undefined || program.commands.some((c) => c.name() === helpFor))) {
        // `lanstream help [command]` asked for it: success, as with --help.
        process.exitCode = ExitCode.OK;
        return;
      }
      if (err.code === 'commander.help') {
        // `lanstream` alone: the help went to stderr; for a script that is a usage error, not success.
        process.exitCode = ExitCode.USAGE;
        return;
      }
      const message = err.message.replace(/^error: /, '');
      const names = program.commands.map((c) => c.name());
      const command = argv.slice(2).find((a) => names.includes(a));
      const help = command ? `lanstream ${command} --help` : 'lanstream --help';
      output.error(new LanstreamError('LS_ERR_USAGE', `${message[0]?.toUpperCase()}${message.slice(1)} (see ${help})`));
      process.exitCode = ExitCode.USAGE;
      output.stopped(ExitCode.USAGE);
      return;
    }
    const error = isLanstreamError(err) ? err : new LanstreamError('LS_ERR_CAPTURE_FAILED', `Unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    output.error(error);
    process.exitCode = exitCodeFor(error);
    // After the error line: with --json the last line always says how the process exits.
    output.stopped(Number(process.exitCode));
  }
}
