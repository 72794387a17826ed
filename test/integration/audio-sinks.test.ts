/**
 * SpeakerSink, PacatSink and PulseSink against a private PulseAudio: a tone pushed in 10 ms packets in real
 * time must come out of the virtual speaker (spk.monitor) at the right pitch and level, volume 0
 * must be silence, and close() must stop cleanly.
 */
import t from 'tap';
import { startPulse, RECORD_RATE_HZ, type PulseServer } from '../helpers/pulse.js';
import { hasCommand, killAll, pidAlive, sleep } from '../helpers/process.js';
import { dominantFrequencyHz, rmsDbfs, sineS16 } from '../helpers/signal.js';
import { SpeakerSink, loadSpeaker } from '../../src/client/sinks/speaker-sink.js';
import { PacatSink } from '../../src/client/sinks/pacat-sink.js';
import { PulseSink } from '../../src/client/sinks/pulse-sink.js';
import type { AudioSink } from '../../src/client/sinks/sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { nowMs } from '../../src/shared/clock.js';

const PARAMS = { codec: 'pcm_s16le', sampleRateHz: 48_000, channels: 2, packetMs: 10 } as const;
const PACKET_SAMPLES = 480;

const missing = ['pulseaudio', 'pacat', 'parec', 'pactl'].filter((c) => !hasCommand(c));
if (missing.length) t.plan(0, `missing tools: ${missing.join(', ')}`);

// One daemon for the whole file, started before any sink: ALSA (speaker) reads its config and the
// pulse server from this process's environment once, at its first open.
const pulse: PulseServer = await startPulse();
Object.assign(process.env, pulse.env);
t.teardown(async () => {
  await pulse.close();
  await killAll();
});

/** Pushes `ms` of a tone in 10 ms packets on the wall clock, like the network would. */
async function playTone(sink: AudioSink, freqHz: number, ms: number): Promise<void> {
  const start = nowMs();
  for (let i = 0; i * 10 < ms; i++) {
    const due = start + i * 10;
    while (nowMs() < due) await sleep(1);
    const pcm = sineS16({ freqHz, sampleRateHz: PARAMS.sampleRateHz, channels: 2, samples: PACKET_SAMPLES, startSample: i * PACKET_SAMPLES });
    sink.pushPcm(pcm, Math.round(due * 1000), false);
  }
}

/** Records spk.monitor while the tone plays; returns the recording without its first/last 150 ms. */
async function recordTone(sink: AudioSink, freqHz: number, ms: number): Promise<Buffer> {
  const rec = pulse.startRecording();
  await sleep(100);
  await playTone(sink, freqHz, ms);
  await sleep(150);
  const pcm = await rec.stop();
  const trim = Math.round(0.25 * RECORD_RATE_HZ) * 2;
  return pcm.subarray(trim, Math.max(trim, pcm.length - trim));
}

function makeSinks(): Array<{ kind: string; make: (volume?: number) => AudioSink; skip: string | false }> {
  let speakerSkip: string | false = false;
  try {
    loadSpeaker();
  } catch (err) {
    speakerSkip = (err as Error).message;
  }
  return [
    { kind: 'SpeakerSink', make: (volume) => new SpeakerSink({ logger: silentLogger(), volume }), skip: speakerSkip },
    { kind: 'PacatSink', make: (volume) => new PacatSink({ logger: silentLogger(), volume, env: process.env }), skip: false },
    { kind: 'PulseSink', make: (volume) => new PulseSink({ targetMs: 20, logger: silentLogger(), volume, env: process.env }), skip: false },
  ];
}

for (const { kind, make, skip } of makeSinks()) {
  t.test(`${kind}: 440 Hz then 1000 Hz reach the speaker at the right pitch and level`, { skip }, async (t) => {
    const sink = make();
    await sink.start(PARAMS);
    t.teardown(() => sink.close());
    for (const freq of [440, 1000]) {
      const pcm = await recordTone(sink, freq, 1000);
      const got = dominantFrequencyHz(pcm, RECORD_RATE_HZ);
      const level = rmsDbfs(pcm);
      t.ok(Math.abs(got - freq) < 5, `dominant frequency ${got.toFixed(1)} Hz ≈ ${freq} Hz`);
      // A 0.5 amplitude sine is −9 dBFS; allow for gaps at the edges, not for missing audio.
      t.ok(level > -14 && level < -6, `level ${level.toFixed(1)} dBFS ≈ −9 dBFS`);
    }
    const s = sink.stats();
    t.ok(s.bufferedMs < 100, `device holds little (${s.bufferedMs.toFixed(1)} ms)`);
    t.equal(s.droppedMs, 0, 'nothing dropped when audio arrives in real time');
    const started = Date.now();
    await sink.close();
    t.ok(Date.now() - started < 2000, 'close() is quick');
    sink.pushPcm(Buffer.alloc(1920), 0, false);
  });

  t.test(`${kind}: volume 0 plays silence, raising it brings the tone back`, { skip }, async (t) => {
    const sink = make(0);
    await sink.start(PARAMS);
    t.teardown(() => sink.close());
    const quiet = await recordTone(sink, 440, 600);
    t.ok(rmsDbfs(quiet) < -60, `silent at volume 0 (${rmsDbfs(quiet).toFixed(1)} dBFS)`);
    sink.setVolume(100);
    const loud = await recordTone(sink, 440, 600);
    t.ok(rmsDbfs(loud) > -14, `audible at volume 100 (${rmsDbfs(loud).toFixed(1)} dBFS)`);
    await sink.close();
  });
}

t.test('PacatSink: close() leaves no pacat; a burst is dropped instead of becoming delay', async (t) => {
  const sink = new PacatSink({ logger: silentLogger(), env: process.env, targetMs: 30 });
  await sink.start(PARAMS);
  const pid = sink.pid!;
  // One second arriving at once (a network stall ending): only ~target + margin may be queued.
  for (let i = 0; i < 100; i++) sink.pushPcm(Buffer.alloc(PACKET_SAMPLES * 4), 0, false);
  const s = sink.stats();
  t.ok(s.bufferedMs <= 60, `queued ${s.bufferedMs.toFixed(1)} ms ≤ target + margin`);
  t.ok(s.droppedMs >= 900, `the rest was dropped (${s.droppedMs} ms)`);
  await sink.close();
  t.notOk(pidAlive(pid), 'pacat is gone');
});

t.test('SpeakerSink: a burst is dropped instead of becoming delay', { skip: makeSinks()[0]!.skip }, async (t) => {
  const sink = new SpeakerSink({ logger: silentLogger(), targetMs: 40 });
  await sink.start(PARAMS);
  t.teardown(() => sink.close());
  for (let i = 0; i < 100; i++) sink.pushPcm(Buffer.alloc(PACKET_SAMPLES * 4), 0, false);
  const s = sink.stats();
  // Dropping starts past target + margin (60 ms) and cuts back to the target: never more than 60 ms.
  t.ok(s.bufferedMs <= 60.5, `holds ${s.bufferedMs.toFixed(1)} ms (target 40 + margin 20)`);
  t.ok(s.droppedMs >= 900, `dropped ${s.droppedMs.toFixed(0)} ms of the 1000 ms burst`);
});

t.test('PacatSink: a missing pacat rejects start() with the install hint', async (t) => {
  const sink = new PacatSink({ logger: silentLogger(), pacatPath: '/nonexistent/pacat' });
  await t.rejects(sink.start(PARAMS), { code: 'LS_ERR_SINK_FAILED', message: /apt-get install pulseaudio-utils/ });
  await sink.close();
});
