/**
 * CaptureSource on a real PulseAudio source (a private daemon from test/helpers/pulse.ts): the
 * argv the Linux builder makes (-f pulse, 10 ms fragment) delivers 10 ms packets at real time, and
 * the tone played into the virtual microphone comes out.
 */
import t from 'tap';
import { CaptureSource } from '../../src/server/capture/capture-source.js';
import { buildAudioArgs } from '../../src/server/capture/ffmpeg-args.js';
import { Platform, type CapturedChunk } from '../../src/server/capture/capture-types.js';
import { nowUs } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { hasCommand, killAll, sleep, spawnTracked } from '../helpers/process.js';
import { startPulse } from '../helpers/pulse.js';
import { burstWaitShare } from '../helpers/arrival-pace.js';

if (!hasCommand('pulseaudio')) {
  t.plan(0, 'pulseaudio not installed');
} else {
  t.test('pulse source: 10 ms packets at real time with the tone played into the mic', async (t) => {
    const pulse = await startPulse();
    t.teardown(async () => {
      await killAll();
      await pulse.close();
    });
    // The "person speaking": a 660 Hz tone played into the virtual microphone's sink.
    spawnTracked(
      'ffmpeg',
      [
        '-hide_banner',
        '-nostdin',
        '-loglevel',
        'error',
        '-re',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=660:sample_rate=48000',
        '-t',
        '20',
        '-f',
        'pulse',
        '-device',
        'mic',
        'tone',
      ],
      {
        env: { ...process.env, ...pulse.env },
        stdio: 'ignore',
      },
    );
    const received: { chunk: CapturedChunk; arrivalUs: number }[] = [];
    const source = new CaptureSource({
      kind: 'audio',
      ffmpegPath: 'ffmpeg',
      args: buildAudioArgs({ platform: Platform.LINUX, source: 'device', device: pulse.micSource, sampleRateHz: 48_000, channels: 1 }),
      env: pulse.env,
      logger: silentLogger(),
      audio: { sampleRateHz: 48_000, channels: 1, packetMs: 10 },
      onChunk: (chunk) => received.push({ chunk, arrivalUs: nowUs() }),
    });
    t.teardown(() => source.close());
    const t0 = nowUs();
    await source.start();
    const startMs = (nowUs() - t0) / 1000;
    await sleep(1_500);
    // The player connects to PulseAudio on its own schedule: wait (bounded) until the tone is heard.
    const loud = (c: CapturedChunk) => new Int16Array(c.data.buffer, c.data.byteOffset, c.data.length / 2).some((x) => Math.abs(x) > 1000);
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && !(received.length > 60 && received.slice(-50).every((r) => loud(r.chunk)))) await sleep(50);
    t.comment(`tone heard ${((received.find((r) => loud(r.chunk))?.arrivalUs ?? NaN) - t0) / 1000} ms after start()`);
    await source.close();

    const packets = received.map((r) => r.chunk);
    t.ok(packets.length >= 120, `${packets.length} packets`);
    t.ok(packets.every((p) => p.data.length === 960));
    const gaps = received
      .slice(1)
      .map((r, i) => (r.arrivalUs - received[i]!.arrivalUs) / 1000)
      .sort((a, b) => a - b);
    const p95 = gaps[Math.floor(gaps.length * 0.95)]!;
    const spanUs = received.at(-1)!.arrivalUs - received[0]!.arrivalUs;
    const pace = ((packets.length - 1) * 10_000) / spanUs;
    t.comment(
      `pulse: first packet after ${startMs.toFixed(0)} ms; pace ${pace.toFixed(3)}× real time; arrival gap p50 ${gaps[gaps.length >> 1]!.toFixed(1)} ms p95 ${p95.toFixed(1)} ms; re-anchors ${packets.filter((p) => p.flags).length}`,
    );
    t.ok(pace > 0.9 && pace < 1.1, 'real-time pace');
    // 10 ms packets from 5 ms fragments: 1-4 % of the time in waits over 3 packets (30 ms). Without
    // -fragment_size PulseAudio hands over 50 ms at a time: 100 %. Not a p95 gap, which bursts of
    // over 20 packets would leave near zero (test/helpers/arrival-pace.ts).
    const burstShare = burstWaitShare(
      received.map((r) => r.arrivalUs),
      10,
    );
    t.ok(burstShare < 0.3, `small pieces, not bursts (${(burstShare * 100).toFixed(0)} % of the time in waits over 3 packets)`);

    // Zero crossings over the last half second (the tone may start a little after capture).
    const pcm = Buffer.concat(packets.slice(-50).map((p) => p.data));
    const s = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
    let crossings = 0;
    for (let i = 1; i < s.length; i++) if (s[i - 1]! < 0 !== s[i]! < 0) crossings++;
    const hz = crossings / 2 / (s.length / 48_000);
    t.ok(Math.abs(hz - 660) < 15, `tone at ${hz.toFixed(1)} Hz`);
  });
}
