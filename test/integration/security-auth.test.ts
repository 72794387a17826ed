/**
 * Nobody without the key sees a byte: real TLS on 127.0.0.1, real ffmpeg test source. Wrong or
 * missing keys get a clear refusal and not one media byte; repeated wrong keys are rate limited
 * per address; each refusal is logged once, with the address.
 */
import t from 'tap';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { captureLogger } from '../helpers/log-capture.js';
import { RawClient } from '../helpers/raw-client.js';
import { sleep, waitFor } from '../helpers/process.js';

t.test('a client that never proves a key gets a CHALLENGE, then a timeout BYE, and no media', async (t) => {
  const ts = await startTestServer({ sessionLimits: { helloTimeoutMs: 800 } });
  t.teardown(() => ts.close());
  // A real viewer is watching, so media is flowing on the server while the intruder waits.
  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 5, 5000, 50, 'video for the good viewer');

  const intruder = await RawClient.connect({ port: ts.ready.port });
  t.teardown(() => intruder.destroy());
  intruder.hello();
  t.ok(await intruder.waitFor('challenge', 2000), 'the server answers HELLO with a CHALLENGE');
  const closed = await intruder.waitClosed(3000);
  t.ok(closed, 'the server closed the connection');
  t.equal(intruder.bye()?.reason, 'timeout', 'BYE says why: timeout');
  t.ok(closed!.afterMs >= 700 && closed!.afterMs < 2500, `closed after the hello timeout (${closed!.afterMs} ms)`);
  t.equal(intruder.mediaCount(), 0, 'not a single media message');
  t.same(
    intruder.messages.map((m) => m.type),
    ['challenge', 'bye'],
    'nothing but CHALLENGE and BYE',
  );
});

t.test('no key or a wrong key: clear refusal, no media byte', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());

  const noKey = testViewer(ts, { key: '' });
  await t.rejects(noKey.viewer.start(), { code: 'LS_ERR_AUTH_REFUSED' }, 'empty key: LS_ERR_AUTH_REFUSED');
  t.equal(noKey.video.length + noKey.audio.length, 0, 'empty key: no media');
  await noKey.viewer.close();

  const wrong = testViewer(ts, { key: 'WRONG-key-WRONG-key-00' });
  const err = await wrong.viewer.start().then(
    () => null,
    (e: unknown) => e as Error,
  );
  t.match(err, { code: 'LS_ERR_AUTH_REFUSED', message: /refused the access key/ }, 'wrong key: LS_ERR_AUTH_REFUSED with a reason');
  t.equal(wrong.video.length + wrong.audio.length, 0, 'wrong key: no media');
  await wrong.viewer.close();

  // The raw view: the bytes on the wire after a wrong proof are CHALLENGE and BYE auth-failed only.
  const raw = await RawClient.connect({ port: ts.ready.port, localAddress: '127.0.0.2' });
  t.teardown(() => raw.destroy());
  raw.hello();
  await raw.waitFor('challenge', 2000);
  raw.auth('not-the-key-not-the-key');
  t.ok(await raw.waitClosed(3000), 'connection closed after the wrong proof');
  t.same(
    raw.messages.map((m) => m.type),
    ['challenge', 'bye'],
    'only CHALLENGE and BYE on the wire',
  );
  t.equal(raw.bye()?.reason, 'auth-failed');
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 0, 'no live session on the server');
});

t.test('repeated wrong keys: rate limited per address, each refusal logged once with the address', async (t) => {
  const log = captureLogger('info');
  const ts = await startTestServer({ logger: log.logger });
  t.teardown(() => ts.close());

  const attempt = async (key: string) => {
    const v = testViewer(ts, { key });
    const err = await v.viewer.start().then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    await v.viewer.close();
    t.equal(v.video.length + v.audio.length, 0, 'no media for a refused viewer');
    return err;
  };
  const codes: string[] = [];
  for (let i = 0; i < 5; i++) codes.push((await attempt(`WRONG-key-WRONG-key-0${i}`))?.code ?? 'accepted');
  t.same(
    codes,
    ['LS_ERR_AUTH_REFUSED', 'LS_ERR_AUTH_REFUSED', 'LS_ERR_AUTH_REFUSED', 'LS_ERR_AUTH_RATE_LIMITED', 'LS_ERR_AUTH_RATE_LIMITED'],
    'three wrong keys are refused, then the address is rate limited',
  );

  const blocked = await attempt(ts.ready.accessKey);
  t.match(blocked, { code: 'LS_ERR_AUTH_RATE_LIMITED', message: /retry in \d+ s/ }, 'while blocked even the right key waits, and is told how long');

  // Per address: another machine (127.0.0.2) with the right key gets in at once.
  const other = await RawClient.connect({ port: ts.ready.port, localAddress: '127.0.0.2' });
  t.teardown(() => other.destroy());
  other.hello();
  await other.waitFor('challenge', 2000);
  other.auth(ts.ready.accessKey);
  t.ok(await other.waitFor('welcome', 2000), 'another address with the right key is welcomed');
  t.ok(await other.waitFor('video', 5000), 'and gets video');
  other.destroy();

  await sleep(1100); // the first block is 1 s
  const after = testViewer(ts);
  t.teardown(() => after.viewer.close());
  await after.viewer.start();
  await waitFor(() => after.video.length > 0, 5000, 50, 'video after the block');
  t.pass('after the block ends the right key works again');

  await sleep(100);
  const wrongLines = log.matching('refused viewer: wrong access key');
  t.equal(wrongLines.length, 3, 'each wrong key logged exactly once');
  t.ok(
    wrongLines.every((l) => l.address === '127.0.0.1'),
    'each with the address',
  );
  const limitedLines = log.matching('refused viewer: rate limited');
  t.equal(limitedLines.length, 1, 'the rate-limited refusals of one block are logged once, not per attempt');
  t.equal(limitedLines[0]?.address, '127.0.0.1', 'with the address');
  t.notOk(log.text().includes(ts.ready.accessKey), 'the key appears in no log line');
});
