/**
 * Integration: a server restarted with another audio format (PCM → Opus) on the same port. The
 * viewer reconnects by itself; its audio output must get PCM of the announced format only, never
 * the new codec's bytes. Real TLS on 127.0.0.1, real ffmpeg test tone, the same config dir (so the
 * same key and certificate) both times.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NullAudioSink } from '../../src/client/sinks/null-sink.js';
import type { AudioParams } from '../../src/protocol/messages.js';
import { testViewer } from '../helpers/lanstream.js';
import { startServerIn } from '../helpers/security-server.js';
import { sleep, waitFor } from '../helpers/process.js';

t.test('PCM, then the server comes back with Opus: the audio output gets only whole PCM packets', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-codec-change-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = await startServerIn(dir, { video: false });
  let firstOpen = true;
  t.teardown(() => (firstOpen ? first.close() : undefined));
  const { port } = first.ready;

  const pushes: { sink: number; bytes: number }[] = [];
  const opened: AudioParams[] = [];
  const closed: number[] = [];
  const openAudioSink = async (params: AudioParams): Promise<NullAudioSink> => {
    const index = opened.length;
    opened.push(params);
    const sink = new NullAudioSink();
    const push = sink.pushPcm.bind(sink);
    sink.pushPcm = (pcm, ptsUs, discontinuity) => {
      pushes.push({ sink: index, bytes: pcm.length });
      push(pcm, ptsUs, discontinuity);
    };
    const close = sink.close.bind(sink);
    sink.close = () => {
      closed.push(index);
      return close();
    };
    await sink.start(params);
    return sink;
  };
  const v = testViewer({ ...first, configDir: dir }, { video: false, openAudioSink });
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  await waitFor(() => pushes.length >= 40, 5000, 20, 'PCM from the first server');
  t.ok(
    pushes.every((p) => p.bytes === 480),
    'first server: 5 ms packets of 48 kHz mono s16 (480 bytes)',
  );

  let fromPush = -1;
  v.viewer.connection.on('welcome', () => (fromPush = pushes.length));
  await first.close();
  firstOpen = false;
  const second = await startServerIn(dir, { video: false, port, audioCodec: 'opus' });
  t.teardown(() => second.close());
  await waitFor(() => fromPush >= 0, 5000, 20, 'the viewer reconnected');
  const welcome = v.viewer.welcome!.audio!;
  t.equal(welcome.codec, 'opus', 'the second server sends Opus');
  await waitFor(() => pushes.length - fromPush >= 50, 8000, 20, 'audio after the reconnect').catch(() => undefined);
  await sleep(200);
  const after = pushes.slice(fromPush);
  const packetBytes = (welcome.packetMs / 1000) * welcome.sampleRateHz * welcome.channels * 2;
  t.ok(after.length >= 50, `${after.length} packets reached the audio output after the reconnect`);
  const bad = after.filter((p) => p.bytes !== packetBytes);
  t.same(
    bad.slice(0, 5),
    [],
    `every packet is ${packetBytes} bytes of PCM (${welcome.packetMs} ms, ${welcome.sampleRateHz} Hz, ${welcome.channels} ch); ${bad.length} were not`,
  );
  t.ok(
    after.every((p) => p.bytes % 2 === 0),
    'every packet is whole s16 samples (even length)',
  );
  t.same(
    opened.map((p) => p.codec),
    ['pcm_s16le', 'opus'],
    'the output was opened again for the new format',
  );
  t.ok(closed.includes(0), 'and the old one closed');
});
