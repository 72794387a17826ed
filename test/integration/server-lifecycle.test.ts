/**
 * The server's own bookkeeping around viewers that come and go, over real TLS on 127.0.0.1: which
 * connections count as viewers in its events, and what happens to a connection whose TLS handshake
 * ends after shutdown began.
 */
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { Server } from '../../src/server/serve.js';
import { isLanstreamError } from '../../src/shared/errors.js';
import { ALPN_PROTOCOL, PROTOCOL_VERSION } from '../../src/protocol/constants.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import { MessageDecoder } from '../../src/protocol/decoder.js';
import type { Message } from '../../src/protocol/messages.js';
import { startTestServer, testServeOptions, testViewer } from '../helpers/lanstream.js';
import { RawClient } from '../helpers/raw-client.js';
import { sleep, waitFor } from '../helpers/process.js';

t.test('viewer-left is emitted only for viewers that went live, not for scans, garbage or wrong keys', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const events: string[] = [];
  ts.server.on('viewer-live', () => events.push('live'));
  ts.server.on('viewer-left', () => events.push('left'));

  const http = await RawClient.connect({ port: ts.ready.port, plain: true });
  http.send('GET / HTTP/1.1\r\n\r\n');
  const silent = await RawClient.connect({ port: ts.ready.port });
  silent.destroy();
  const wrongKey = await RawClient.connect({ port: ts.ready.port });
  wrongKey.hello();
  await wrongKey.waitFor('challenge', 2000);
  wrongKey.auth('A'.repeat(22));
  t.ok(await wrongKey.waitFor('bye', 2000), 'the wrong key is refused');
  await Promise.all([http.waitClosed(3000), wrongKey.waitClosed(3000)]);

  const v = testViewer(ts);
  await v.viewer.start();
  await waitFor(() => v.video.length > 2, 5000, 20, 'video for the real viewer');
  await v.viewer.close();
  await waitFor(() => events.includes('left'), 3000, 20, 'the real viewer left');
  await sleep(200);
  t.same(events, ['live', 'left'], 'one viewer came and went; nothing else is reported as leaving');
});

t.test('shutdown: a handshake that ends after close() is not served, and close() does not wait for it', async (t) => {
  const ts = await startTestServer();
  let closed = false;
  t.teardown(() => (closed ? undefined : ts.close()));
  // More unfinished handshakes than an EventEmitter's default listener limit (10).
  const pending = await Promise.all(Array.from({ length: 12 }, () => RawClient.connect({ port: ts.ready.port })));
  t.teardown(() => pending.forEach((c) => c.destroy()));
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));

  // TCP accepted before close(); TLS and HELLO after it.
  const raw = net.connect({ host: '127.0.0.1', port: ts.ready.port });
  await new Promise((resolve) => raw.once('connect', resolve));
  await sleep(50);
  const started = Date.now();
  const closing = ts.server.close().then(() => (closed = true));
  const late = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: [ALPN_PROTOCOL] });
  const messages: Message[] = [];
  const decoder = new MessageDecoder({ direction: 'server-to-client' });
  late.on('data', (chunk: Buffer) => messages.push(...decoder.push(chunk)));
  late.on('error', () => undefined);
  late.once('secureConnect', () =>
    late.write(
      encodeMessage({
        type: 'hello',
        body: { version: PROTOCOL_VERSION, agent: 'late', clientNonce: 'ab'.repeat(32), wantVideo: true, wantAudio: true },
      }),
    ),
  );
  await new Promise((resolve) => late.once('close', resolve));
  t.notOk(
    messages.some((m) => m.type === 'challenge' || m.type === 'welcome'),
    `the late connection got no CHALLENGE or WELCOME (${messages.map((m) => m.type).join(', ') || 'nothing'})`,
  );
  await closing;
  t.ok(Date.now() - started < 3000, `close() finished in ${Date.now() - started} ms`);
  t.same(ts.server.capturePids(), {}, 'no capture started again');
  t.notOk(warnings.includes('MaxListenersExceededWarning'), `no listener-leak warning (${warnings.join(', ') || 'none'})`);
});

t.test('a busy port fails at once: no certificate written, no device opened to check it', async (t) => {
  // Another program holds the port. The ffmpeg wrapper writes down every run (the preflight would open
  // the camera and the microphone: their lights come on for nothing).
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-busy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const runs = path.join(dir, 'runs');
  await writeFile(runs, '');
  const wrapper = path.join(dir, 'ffmpeg');
  await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${runs}'\nexec ffmpeg "$@"\n`);
  await chmod(wrapper, 0o755);
  const other = net.createServer();
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())));
  const port = (other.address() as net.AddressInfo).port;
  const configDir = path.join(dir, 'config');

  const server = new Server(testServeOptions(configDir, { port, preflight: true, ffmpeg: wrapper }));
  const err = await server.start().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isLanstreamError(err) && err.code === 'LS_ERR_PORT_BUSY', `LS_ERR_PORT_BUSY (${String(err)})`);
  const captures = (await readFile(runs, 'utf8')).split('\n').filter((line) => line && !/^-version\b/.test(line));
  t.same(captures, [], 'ffmpeg never ran to open a device');
  const written: string[] = await readdir(configDir).catch(() => []);
  t.notOk(written.includes('cert.pem'), `no certificate written (${written.join(', ') || 'nothing'})`);
});
