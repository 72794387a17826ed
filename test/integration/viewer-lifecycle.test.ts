/**
 * Integration: how a Viewer ends when something goes wrong before or while it connects — start()
 * always settles with the reason, and nothing it opened outlives close(). Real TLS on 127.0.0.1.
 */
import net from 'node:net';
import t from 'tap';
import { PROTOCOL_VERSION } from '../../src/protocol/constants.js';
import { MessageDecoder } from '../../src/protocol/decoder.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import { newNonce } from '../../src/protocol/auth.js';
import { Viewer } from '../../src/client/watch.js';
import { NullVideoSink, openNullAudioSink } from '../../src/client/sinks/null-sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { freePort, hasCommand, sleep, waitFor } from '../helpers/process.js';
import { startPulse } from '../helpers/pulse.js';
import { PulseSink } from '../../src/client/sinks/pulse-sink.js';
import { captureLogger } from '../helpers/log-capture.js';

/** A viewer with null sinks that keeps retrying (--wait) a server on 127.0.0.1:port. */
function waitingViewer(port: number, o: { insecure: boolean; video: boolean; audio: boolean }): Viewer {
  return new Viewer({
    host: '127.0.0.1',
    port,
    key: 'abcdefabcdefabcdefabcd',
    knownHosts: null,
    reconnectTimeoutMs: null,
    retryFirst: true,
    agent: 'lanstream-test-viewer',
    logger: silentLogger(),
    openVideoSink: async () => new NullVideoSink(),
    openAudioSink: openNullAudioSink,
    ...o,
  });
}

/** Rejects after `ms` if `p` has not settled: a start() that never settles is the bug being tested. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

t.test('a viewer that ends while it is still connecting (--wait, its window died) rejects start() with that error', async (t) => {
  const port = await freePort(); // nothing listens: the viewer keeps retrying
  const viewer = waitingViewer(port, { insecure: false, video: true, audio: false });
  t.teardown(() => viewer.close());
  viewer.on('sink-error', () => undefined);
  const started = viewer.start();
  started.catch(() => undefined);
  await waitFor(() => viewer.connection.state === 'reconnecting', 3000, 20, 'first refused attempt');
  viewer.onSinkEvent('video', 'error', new Error('The video window (ffplay) stopped (exit code 1)'));
  await t.rejects(within(started, 3000, 'start()'), { code: 'LS_ERR_SINK_FAILED', message: /ffplay\) stopped/ });
});

t.test('a sink that finishes opening after close() is closed, not left running', async (t) => {
  const ts = await startTestServer({ audio: false });
  t.teardown(() => ts.close());
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const late = new NullVideoSink();
  let closed = false;
  late.close = () => {
    closed = true;
    return Promise.resolve();
  };
  const v = testViewer(ts, {
    audio: false,
    openVideoSink: async (params) => {
      await gate; // a window that takes its time to start
      await late.start(params);
      return late;
    },
  });
  const welcomed = new Promise<void>((resolve) => v.viewer.connection.once('welcome', () => resolve()));
  const started = v.viewer.start();
  started.catch(() => undefined);
  await welcomed;
  await v.viewer.close();
  release();
  await t.rejects(within(started, 3000, 'start()'), { code: 'LS_ERR_CONNECTION_LOST' }, 'start() says the viewer was closed before it was live');
  // The check itself: waitFor throws (fails the test) unless the late sink is closed within 2 s.
  await waitFor(() => closed, 2000, 10, 'closing the sink that opened after close()');
  t.pass('the sink that opened after close() was closed');
});

t.test('disconnect() then connect() at once: one live session, a normal packet rate, and close() ends it all', async (t) => {
  const ts = await startTestServer({ video: false });
  t.teardown(() => ts.close());
  const v = testViewer(ts, { video: false });
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  await waitFor(() => v.audio.length >= 40, 5000, 20, 'audio before the disconnect');
  v.viewer.disconnect();
  v.viewer.connect(); // before the old socket has closed (it is given up to 500 ms to say goodbye)
  await waitFor(() => v.viewer.connection.state === 'live', 3000, 20, 'live again');
  await sleep(800); // the old socket's close would have dialled a second connection by now
  const live = () => ts.server.sessions().filter((s) => s.state === 'live').length;
  t.equal(live(), 1, 'exactly one live session on the server');
  const from = v.audio.length;
  await sleep(1000);
  const perSecond = v.audio.length - from;
  // 5 ms packets: 200 a second; a second connection doubles it.
  t.ok(perSecond >= 150 && perSecond <= 250, `audio packets in 1 s: ${perSecond} (expected ~200)`);
  await v.viewer.close();
  await waitFor(() => ts.server.sessions().length === 0, 3000, 20, 'no session left after close()').catch(() => undefined);
  t.equal(ts.server.sessions().length, 0, 'close() left no session on the server');
});

t.test('reconnect() (the r key) dials again at once, without calling it a lost connection', async (t) => {
  const ts = await startTestServer({ video: false });
  t.teardown(() => ts.close());
  const log = captureLogger('info');
  const v = testViewer(ts, { video: false, logger: log.logger });
  t.teardown(() => v.viewer.close());
  const states: string[] = [];
  v.viewer.connection.on('state', (state, detail) => states.push(`${state}: ${detail ?? ''}`));
  await v.viewer.start();
  await waitFor(() => v.audio.length >= 20, 5000, 20, 'audio before the reconnect');
  const asked = Date.now();
  const before = states.length;
  v.viewer.reconnect();
  await waitFor(() => states.slice(before).some((s) => s.startsWith('live')), 3000, 10, 'live again');
  t.ok(Date.now() - asked < 1000, `live again after ${Date.now() - asked} ms`);
  t.same(
    states.slice(before).filter((s) => s.startsWith('reconnecting')),
    ['reconnecting: reconnecting, as asked'],
    `the state says it was asked for (${states.join(' / ')})`,
  );
  t.same(
    log.lines.filter((l) => (l.level as number) >= 40).map((l) => l.msg),
    [],
    'no warning: nothing was lost',
  );
});

t.test('a server that breaks the protocol right after WELCOME is redialled with backoff, not in a tight loop', async (t) => {
  // A hand-written server (plain TCP, the viewer in --insecure mode): the handshake, a WELCOME, then
  // a message type no version has. Each connection ends in a protocol error just after going live.
  let connections = 0;
  const server = net.createServer((sock) => {
    connections++;
    const decoder = new MessageDecoder({ direction: 'client-to-server' });
    sock.on('error', () => undefined);
    sock.on('data', (chunk: Buffer) => {
      for (const m of decoder.push(chunk)) {
        if (m.type === 'hello') sock.write(encodeMessage({ type: 'challenge', nonce: newNonce() }));
        if (m.type === 'auth') {
          const audio = { codec: 'pcm_s16le' as const, sampleRateHz: 48000, channels: 1, packetMs: 5 };
          sock.write(
            encodeMessage({ type: 'welcome', body: { version: PROTOCOL_VERSION, agent: 'flapper', serverTimeUs: 1, video: null, audio, sessionId: 'x' } }),
          );
          sock.write(Buffer.from([0xee, 0, 0, 0, 0, 0, 0, 0]));
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const viewer = waitingViewer((server.address() as net.AddressInfo).port, { insecure: true, video: false, audio: true });
  t.teardown(() => viewer.close());
  await viewer.start();
  const first = connections;
  await sleep(1500);
  const redials = connections - first;
  t.ok(redials >= 2, `it keeps trying (${redials} redials in 1.5 s)`);
  t.ok(redials <= 12, `with backoff: ${redials} redials in 1.5 s (50–250 ms apart), not hundreds`);
});

const noPulse = !hasCommand('pulseaudio') && 'pulseaudio not installed';

t.test('a sink that fails is released before its replacement opens (it may still hold the device)', { skip: noPulse }, async (t) => {
  const ts = await startTestServer({ video: false });
  t.teardown(() => ts.close());
  // Real outputs (PulseSink), the viewer's calls on them recorded. The first plays on a PulseAudio
  // daemon that then goes away (as a sound server restarts), the replacement on a second one.
  const [gone, other] = await Promise.all([startPulse(), startPulse()]);
  t.teardown(() => Promise.all([gone.close(), other.close()]));
  const events: string[] = [];
  let opened = 0;
  let started = 0;
  const v = testViewer(ts, {
    video: false,
    openAudioSink: async (params) => {
      const n = ++opened;
      events.push(`open ${n}`);
      const sink = new PulseSink({
        targetMs: 20,
        logger: silentLogger(),
        env: n === 1 ? gone.env : other.env,
        events: { onError: (e) => v.viewer.onSinkEvent('audio', 'error', e) },
      });
      await sink.start(params);
      started = n;
      const [close, destroy] = [sink.close.bind(sink), sink.destroy.bind(sink)];
      sink.close = () => (events.push(`close ${n}`), close());
      sink.destroy = (err) => (events.push(`destroy ${n}`), destroy(err));
      return sink;
    },
  });
  t.teardown(() => v.viewer.close());
  v.viewer.on('sink-error', () => undefined);
  await v.viewer.start();
  await waitFor(() => started === 1, 3000, 20, 'the first audio sink');
  await gone.close();
  await waitFor(() => opened === 2, 3000, 20, 'the replacement');
  await waitFor(() => events.includes('destroy 1'), 1000, 10, 'the failed sink released');
  t.ok(events.indexOf('destroy 1') < events.indexOf('open 2'), `released before the replacement opened (${events.join(', ')})`);
});
