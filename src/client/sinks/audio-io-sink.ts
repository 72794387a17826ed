/**
 * Audio sink with a pull callback: `@echogarden/audio-io` (MIT; ALSA on Linux, Core Audio on macOS,
 * MME on Windows; precompiled addons inside the npm package, so nothing is built or downloaded at
 * install). The device asks for exactly the samples it needs, so the jitter buffer knows its true
 * fill level and can hold it at the target — what the `speaker` package cannot do (it keeps up to
 * 0.5 s in its own ALSA buffer and reports nothing; measured on the rig: 116–158 ms mouth to ear
 * with wall-clock pacing, clicks lost).
 *
 * Where the time goes (rig, PCM, audio only, mouth to ear; 2 shared cores, so ±5 ms run to run):
 *  - capture: pulse hands ffmpeg a fragment at a time; ffmpeg | pacat was 16.4 ms with 10 ms
 *    fragments, 10.2 ms with 5 ms (pacat -r | pacat -p alone: 6.5 ms);
 *  - PcmPacketiser: packets out of phase with ffmpeg's chunks waited up to a chunk (4 of 4 captures);
 *    now aligned once at start;
 *  - network and TLS on loopback: packets land every 10 ± 2 ms;
 *  - JitterBuffer: the device used to find 32 ms at a 20 ms target, now the target (pacat capture,
 *    no network: 43.2 → 33.7 ms mouth to ear);
 *  - device: this addon sets a 10 ms ALSA period but no buffer size (the pulse plugin then gives
 *    10.24 s), and refills DEVICE_BUFFER_MS whenever ALSA holds no more than that, so PulseAudio holds
 *    20 ms of this stream at each refill (pactl Buffer Latency) plus the sink's 2–5 ms. A 5 ms
 *    bufferDuration underran inside PulseAudio (click SNR 19 dB) and 2.5 ms played nothing.
 * End to end with --audio-buffer-ms 30 (target 20), p50 of 24 s runs: 50–52 ms before (1–4 underruns
 * each), 38–48 ms after (0–1); with 25: 35–42 ms (0–1).
 *
 * Why the device is served from the main thread: the addon calls the pull callback on the JS thread
 * that opened the output, and the device's pulls came 16–30 ms apart dozens of times in a 30 s rig
 * run (10 ms is the norm). A version that ran the jitter buffer and the device in a worker thread
 * had as many of those gaps, so they come from below the JS thread (the addon's ALSA thread, the
 * pulse plugin or PulseAudio on a loaded 2-core machine); and that worker's teardown at process exit
 * crashed the process (SIGSEGV / SIGABRT instead of the exit code).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { LanstreamError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AudioParams } from '../../protocol/messages.js';
import { PullPlayout, logGap } from './pull-playout.js';
import type { AudioSink, SinkEvents } from './sink.js';

/** The device's own buffer: small, since the jitter buffer in front of it is the one we can see (10 ms
 * is also the addon's fixed ALSA period; see the header for why not less). */
export const DEVICE_BUFFER_MS = 10;

/**
 * In the error's details when the addon loaded but the system's default output would not open: the
 * `speaker` package opens the same default device through the same system library, and on Linux
 * without a sound card or sound server that does not fail, it aborts the process inside alsa-lib
 * (assertion in snd_pcm_hw_refine: exit 134, no message). `auto` then goes on to pacat instead.
 */
export const DEVICE_OPEN_FAILED = 'defaultDeviceFailed';

interface AudioIoModule {
  createAudioOutput(
    config: { sampleRate: number; channelCount: number; bufferDuration?: number },
    handler: (out: Int16Array) => void,
  ): Promise<{ dispose(): Promise<void> }>;
  isPlatformSupported(): boolean;
}

/**
 * A resolved file path as something import() takes. `file://` + path was wrong twice: a Windows path
 * (`C:\\…`, not starting with '/') went to import() as is and was refused (ERR_UNSUPPORTED_ESM_URL_SCHEME:
 * no sound through the default output on Windows), and a '#' or '%' in a path was read as URL syntax.
 */
export function moduleUrl(file: string): string {
  return pathToFileURL(file).href;
}

export async function loadAudioIo(): Promise<AudioIoModule> {
  try {
    // Resolved at run time: the package is optional.
    const resolved = createRequire(import.meta.url).resolve('@echogarden/audio-io');
    const mod = (await import(moduleUrl(resolved))) as AudioIoModule;
    if (!mod.isPlatformSupported()) throw new Error(`no addon for ${process.platform}-${process.arch}`);
    return mod;
  } catch (err) {
    throw new LanstreamError(
      'LS_ERR_SINK_FAILED',
      `The audio-io output is not available (${(err as Error).message}); reinstall with npm install, or use --audio-output speaker|pacat`,
      { cause: err },
    );
  }
}

export interface AudioIoSinkOptions {
  /** Jitter-buffer target (ms), on top of the device buffer. */
  targetMs: number;
  logger: Logger;
  volume?: number;
  events?: SinkEvents;
}

export class AudioIoSink implements AudioSink {
  readonly name = 'audio-io';
  readonly #o: AudioIoSinkOptions;
  readonly #log: Logger;
  readonly #playout: PullPlayout;
  #output: { dispose(): Promise<void> } | null = null;
  #closing: Promise<void> | null = null;

  constructor(o: AudioIoSinkOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'audio-io-sink' });
    this.#playout = new PullPlayout(o.volume, (gap) => logGap(this.#log, gap));
  }

  async start(params: AudioParams): Promise<void> {
    const audioIo = await loadAudioIo();
    const playout = this.#playout;
    playout.open(params, this.#o.targetMs);
    try {
      this.#output = await audioIo.createAudioOutput(
        { sampleRate: params.sampleRateHz, channelCount: params.channels, bufferDuration: DEVICE_BUFFER_MS },
        (out) => playout.pull(out),
      );
    } catch (err) {
      throw new LanstreamError('LS_ERR_SINK_FAILED', `Cannot open the sound device: ${(err as Error).message}`, {
        cause: err,
        details: { [DEVICE_OPEN_FAILED]: true },
      });
    }
    this.#log.debug({ params, targetMs: this.#o.targetMs, deviceBufferMs: DEVICE_BUFFER_MS }, 'audio-io output open');
  }

  pushPcm(pcm: Buffer, _ptsUs: number, discontinuity: boolean): void {
    if (!this.#closing) this.#playout.push(pcm, discontinuity);
  }

  setVolume(volume: number): void {
    this.#playout.setVolume(volume);
  }

  stats(): { bufferedMs: number; underruns: number; droppedMs: number } {
    return this.#playout.stats(DEVICE_BUFFER_MS);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const output = this.#output;
      this.#output = null;
      await output?.dispose().catch(() => undefined);
    })();
    return this.#closing;
  }

  destroy(err?: Error): void {
    if (err) this.#log.debug({ err: err.message }, 'audio-io sink destroyed');
    void this.close();
  }
}
