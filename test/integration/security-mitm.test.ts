/**
 * A machine in the middle with its own certificate is refused by the viewer (pinned fingerprint,
 * or known hosts after a first honest connection), and even a viewer tricked into trusting it
 * gives the relay nothing it can use: the proof is bound to the TLS session, so the real server
 * refuses it and no media byte reaches the proxy. A server whose certificate changed is refused
 * with the known-hosts warning too.
 */
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { KnownHosts } from '../../src/client/known-hosts.js';
import { CERT_FILE, KEY_FILE } from '../../src/server/identity.js';
import { startTestServer, testViewer, type TestServer } from '../helpers/lanstream.js';
import { captureLogger } from '../helpers/log-capture.js';
import { startMitmProxy } from '../helpers/mitm-proxy.js';
import { waitFor } from '../helpers/process.js';
import { startServerIn } from '../helpers/security-server.js';

const tmpDir = (t: { teardown(fn: () => unknown): void }) =>
  mkdtemp(path.join(os.tmpdir(), 'lanstream-sec-')).then((dir) => {
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    return dir;
  });

function viewerVia(ts: TestServer, port: number, extra: Parameters<typeof testViewer>[1] = {}) {
  return testViewer(ts, { port, ...extra });
}

t.test('pinned fingerprint: a viewer refuses a proxy with its own certificate', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const proxy = await startMitmProxy({ upstreamPort: ts.ready.port });
  t.teardown(() => proxy.close());
  const v = viewerVia(ts, proxy.port);
  const err = await v.viewer.start().then(
    () => null,
    (e: unknown) => e as Error,
  );
  await v.viewer.close();
  t.match(err, { code: 'LS_ERR_FINGERPRINT_MISMATCH', message: /someone may be in the middle/ });
  t.ok(err!.message.includes(proxy.fingerprint) && err!.message.includes(ts.ready.fingerprint!), 'the message names both fingerprints');
  t.equal(v.video.length + v.audio.length, 0, 'no media');
  // Checked once the proxy has seen the viewer's side close: every byte the viewer sent has reached it
  // by then. (The CHALLENGE alone cannot show it: the proxy drops the server side when the viewer
  // goes, so an answer to a HELLO sent just before could still be on its way, or never be read.)
  await waitFor(
    () => proxy.connections === 1 && proxy.connectionsClosed === 1 && proxy.interceptedClosed === proxy.intercepted,
    3000,
    10,
    "the viewer's connection to the proxy closed",
  );
  t.equal(proxy.viewerBytes, 0, 'the viewer sent nothing through the proxy, no HELLO (refused right after TLS)');
  t.notOk(proxy.serverMessages.includes('challenge'), 'so the server sent no CHALLENGE');
});

t.test('trust on first use: honest first connection remembered, then the interception is refused', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const dir = await tmpDir(t);
  const knownHosts = new KnownHosts(path.join(dir, 'known-hosts'));
  const proxy = await startMitmProxy({ upstreamPort: ts.ready.port, mode: 'transparent' });
  t.teardown(() => proxy.close());

  const first = viewerVia(ts, proxy.port, { fingerprint: undefined, knownHosts });
  await first.viewer.start();
  await waitFor(() => first.video.length > 3, 5000, 50, 'video on the honest path');
  await first.viewer.close();
  const hostPort = `127.0.0.1:${proxy.port}`;
  t.equal(await knownHosts.lookup(hostPort), ts.ready.fingerprint, 'the real certificate was remembered');

  proxy.mode = 'intercept';
  const second = viewerVia(ts, proxy.port, { fingerprint: undefined, knownHosts });
  const err = await second.viewer.start().then(
    () => null,
    (e: unknown) => e as Error,
  );
  await second.viewer.close();
  t.match(err, { code: 'LS_ERR_FINGERPRINT_MISMATCH' });
  t.match(err!.message, `changed from ${ts.ready.fingerprint} to ${proxy.fingerprint}`, 'warning names old and new fingerprint');
  t.match(err!.message, /man in the middle/, 'and says what it may mean');
  t.match(err!.message, `--fingerprint ${proxy.fingerprint}`, 'and how to accept a change that was expected');
  t.equal(second.video.length + second.audio.length, 0, 'no media through the proxy');
  t.equal(await knownHosts.lookup(hostPort), ts.ready.fingerprint, 'known-hosts still holds the real fingerprint');
});

t.test('a viewer tricked into trusting the proxy: the relayed proof fails, the proxy sees no media', async (t) => {
  const log = captureLogger('info');
  const ts = await startTestServer({ logger: log.logger });
  t.teardown(() => ts.close());
  const proxy = await startMitmProxy({ upstreamPort: ts.ready.port });
  t.teardown(() => proxy.close());
  // Right key, but the user was talked into pinning the proxy's fingerprint.
  const v = viewerVia(ts, proxy.port, { fingerprint: proxy.fingerprint });
  const err = await v.viewer.start().then(
    () => null,
    (e: unknown) => e as Error,
  );
  await v.viewer.close();
  t.match(err, { code: 'LS_ERR_AUTH_REFUSED' }, 'the real server refuses the relayed proof');
  t.equal(proxy.intercepted, 1, 'the proxy did sit in the middle');
  t.same(proxy.serverMessages, ['challenge', 'bye'], 'all the real server sent through the proxy: CHALLENGE, BYE');
  t.equal(v.video.length + v.audio.length, 0, 'no media for the viewer');
  t.equal(log.matching('refused viewer: wrong access key').length, 1, 'the server logged the refused proof');
});

t.test('changed server certificate on the same port: the viewer refuses with the known-hosts warning', async (t) => {
  const configDir = await tmpDir(t);
  const viewerDir = await tmpDir(t);
  const knownHosts = new KnownHosts(path.join(viewerDir, 'known-hosts'));
  const first = await startServerIn(configDir);
  const port = first.ready.port;
  const ts1: TestServer = { server: first.server, ready: first.ready, configDir, close: first.close };
  const v1 = testViewer(ts1, { fingerprint: undefined, knownHosts });
  await v1.viewer.start();
  await waitFor(() => v1.video.length > 0, 5000, 50, 'video from the first server');
  await v1.viewer.close();
  await first.close();

  await unlink(path.join(configDir, CERT_FILE));
  await unlink(path.join(configDir, KEY_FILE));
  const second = await startServerIn(configDir, { port });
  t.teardown(() => second.close());
  t.not(second.ready.fingerprint, first.ready.fingerprint, 'the restarted server made a new certificate');
  t.equal(second.ready.accessKey, first.ready.accessKey, 'the access key stayed');

  const ts2: TestServer = { server: second.server, ready: second.ready, configDir, close: second.close };
  const v2 = testViewer(ts2, { fingerprint: undefined, knownHosts });
  const err = await v2.viewer.start().then(
    () => null,
    (e: unknown) => e as Error,
  );
  await v2.viewer.close();
  t.match(err, { code: 'LS_ERR_FINGERPRINT_MISMATCH' });
  t.match(err!.message, `The server certificate for 127.0.0.1:${port} changed from ${first.ready.fingerprint} to ${second.ready.fingerprint}`);
  t.match(err!.message, knownHosts.path, 'the warning says which file to edit');
  t.equal(v2.video.length + v2.audio.length, 0, 'no media');
  t.equal(second.server.sessions().filter((s) => s.state === 'live').length, 0, 'no live session on the server');

  // The documented way to accept an expected change works.
  const v3 = testViewer(ts2, { fingerprint: second.ready.fingerprint!, knownHosts });
  t.teardown(() => v3.viewer.close());
  await v3.viewer.start();
  await waitFor(() => v3.video.length > 0, 5000, 50, 'video after accepting the new fingerprint');
  t.pass('--fingerprint <new> gets the viewer in');
  await v3.viewer.close();

  // …and it is remembered: the next run without --fingerprint is not refused again.
  t.equal(await knownHosts.lookup(`127.0.0.1:${port}`), second.ready.fingerprint, 'known-hosts now holds the new fingerprint');
  const v4 = testViewer(ts2, { fingerprint: undefined, knownHosts });
  t.teardown(() => v4.viewer.close());
  await v4.viewer.start();
  await waitFor(() => v4.video.length > 0, 5000, 50, 'video for the next plain run');
  t.pass('a later run without --fingerprint gets in');
});
