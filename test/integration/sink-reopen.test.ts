/**
 * Integration: an output that crashed is opened once more, and reported back ('sink-reopened', the
 * `--json` event scripts wait for) only once the new one has run REOPEN_SETTLE_MS without failing.
 * Real server and TLS on 127.0.0.1, null sinks. The crash itself is told to the viewer the way the
 * CLI's sink events do (onSinkEvent); the output that opens and then fails is a stand-in, as a real
 * sound output cannot be made to fail a few ms after it opened on demand here.
 */
import t, { type Test } from 'tap';
import { REOPEN_SETTLE_MS } from '../../src/client/watch.js';
import { openNullAudioSink } from '../../src/client/sinks/null-sink.js';
import type { AudioSink } from '../../src/client/sinks/sink.js';
import type { AudioParams } from '../../src/protocol/messages.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { sleep, waitFor } from '../helpers/process.js';

const nowMs = () => performance.now();

async function liveViewer(t: Test, reopen: (params: AudioParams, failSoon: (err: Error) => void) => Promise<AudioSink>) {
  const ts = await startTestServer({});
  t.teardown(() => ts.close());
  let opened = 0;
  const v = testViewer(ts, {
    openAudioSink: async (params) => {
      opened++;
      if (opened === 1) return openNullAudioSink(params);
      return reopen(params, (err) => setTimeout(() => v.viewer.onSinkEvent('audio', 'error', err), 50));
    },
  });
  t.teardown(() => v.viewer.close());
  const errors: string[] = [];
  const reopened: number[] = [];
  v.viewer.on('sink-error', (_kind, err) => errors.push(err.message));
  v.viewer.on('sink-reopened', () => reopened.push(nowMs()));
  await v.viewer.start();
  await waitFor(() => v.audio.length > 10, 3000, 20, 'audio arriving');
  return { v, errors, reopened, opens: () => opened };
}

t.test('a reopened output that keeps running is reported back once it has settled', async (t) => {
  const { v, errors, reopened, opens } = await liveViewer(t, openNullAudioSink);
  const crashedAt = nowMs();
  v.viewer.onSinkEvent('audio', 'error', new Error('The sound device failed: write error'));
  await waitFor(() => opens() === 2, 3000, 10, 'the replacement opened');
  const openedAt = nowMs();
  await waitFor(() => reopened.length === 1, REOPEN_SETTLE_MS + 2000, 20, 'sink-reopened');
  t.ok(reopened[0]! - openedAt >= REOPEN_SETTLE_MS - 50, `reported ${(reopened[0]! - crashedAt).toFixed(0)} ms after the crash, not at open`);
  t.equal(errors.length, 1, 'one sink-error');
  t.match(errors[0], /write error/, 'the crash');
});

t.test('a reopened output that fails soon after it opened is not reported back', async (t) => {
  const { v, errors, reopened, opens } = await liveViewer(t, async (params, failSoon) => {
    const sink = await openNullAudioSink(params);
    failSoon(new Error('The sound server dropped the stream'));
    return sink;
  });
  v.viewer.onSinkEvent('audio', 'error', new Error('The sound device failed: write error'));
  await waitFor(() => opens() === 2, 3000, 10, 'the replacement opened');
  await waitFor(() => errors.length === 2, 2000, 10, 'the second failure');
  await sleep(REOPEN_SETTLE_MS + 300);
  t.same(reopened, [], 'no sink-reopened: the output is not back');
  t.equal(errors.length, 2, 'two sink-errors');
  t.match(errors[1], /dropped the stream/, 'the second is the replacement failing');
  t.notOk(v.viewer.connection.state === 'closed', 'the viewer goes on with its picture');
});
