import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { ALPN_PROTOCOL } from '../../src/protocol/constants.js';
import { loadOrCreateIdentity } from '../../src/server/identity.js';
import { nowUs } from '../../src/shared/clock.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { sleep, waitFor } from '../helpers/process.js';

const isJpeg = (b: Buffer) => b[0] === 0xff && b[1] === 0xd8 && b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;

t.test('three viewers over real TLS each get fresh video and audio; one leaving does not disturb the others', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const joinedUs = nowUs();
  const viewers = [testViewer(ts), testViewer(ts), testViewer(ts)];
  t.teardown(() => Promise.all(viewers.map((v) => v.viewer.close())));
  await Promise.all(viewers.map((v) => v.viewer.start()));
  await waitFor(() => viewers.every((v) => v.video.length >= 20 && v.audio.length >= 50), 8000, 50);

  for (const [i, v] of viewers.entries()) {
    t.ok(
      v.video.every((f) => isJpeg(f.data)),
      `viewer ${i}: every video chunk is one whole JPEG`,
    );
    // Same process = same monotonic clock: nothing captured before the viewer joined may arrive.
    t.ok(v.video[0]!.ptsUs >= joinedUs, `viewer ${i}: first frame captured after joining`);
    t.ok(v.audio[0]!.ptsUs >= joinedUs - 20_000, `viewer ${i}: first audio captured after joining (±1 packet)`);
    t.ok(
      v.audio.every((a) => a.bytes === 480),
      `viewer ${i}: 5 ms packets of 48 kHz mono s16 (serve's default)`,
    );
    const ptsIncreasing = v.video.every((f, k) => k === 0 || f.ptsUs > v.video[k - 1]!.ptsUs);
    t.ok(ptsIncreasing, `viewer ${i}: video PTS increase`);
    const seqContiguous = v.audio.every((a, k) => k === 0 || a.seq === v.audio[k - 1]!.seq + 1);
    t.ok(seqContiguous, `viewer ${i}: audio sequence has no gaps on a fast link`);
  }
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 3, 'server sees three live viewers');

  await viewers[0]!.viewer.close();
  const before = viewers.slice(1).map((v) => v.video.length);
  await sleep(1000);
  const after = viewers.slice(1).map((v) => v.video.length);
  for (const [i, n] of after.entries()) {
    t.ok(n - before[i]! >= 20, `viewer ${i + 1} kept receiving after viewer 0 left (${n - before[i]!} frames in 1 s)`);
  }
  await waitFor(() => ts.server.sessions().length === 2, 3000, 50);
  t.pass('server dropped the session of the viewer that left');
});

t.test('a viewer with a wrong key gets no media and a clear refusal', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const v = testViewer(ts, { key: 'WRONG-key-WRONG-key-00' });
  await t.rejects(v.viewer.start(), { code: 'LS_ERR_AUTH_REFUSED' });
  t.equal(v.video.length + v.audio.length, 0, 'not a single media chunk');
  await v.viewer.close();
});

t.test('a pinned fingerprint that does not match is refused before any byte of the protocol', async (t) => {
  // Someone else answers on the server's address with a certificate of its own. The viewer pins the
  // real server's fingerprint: it must hang up without sending one protocol byte (no HELLO). Counted on
  // the wire: in TLS 1.3 everything a client encrypts goes out as records of type 23, the first one its
  // Finished message; a HELLO would be a second one.
  const ts = await startTestServer();
  t.teardown(() => ts.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-impostor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const impostorId = await loadOrCreateIdentity({ configDir: dir });
  const impostorTls = tls.createServer({ cert: impostorId.certPem, key: impostorId.keyPem, ALPNProtocols: [ALPN_PROTOCOL] }, (s) =>
    s.on('error', () => undefined),
  );
  impostorTls.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => impostorTls.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => impostorTls.close(() => resolve())));
  // In front of it, a TCP relay that reads the viewer's TLS records as they pass.
  let connections = 0;
  let encryptedRecords = 0;
  const impostor = net.createServer((raw) => {
    connections++;
    const upstream = net.connect((impostorTls.address() as net.AddressInfo).port, '127.0.0.1');
    let pending = Buffer.alloc(0);
    raw.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        if (pending[0] === 23) encryptedRecords++;
        pending = pending.subarray(5 + pending.readUInt16BE(3));
      }
    });
    upstream.on('data', (chunk: Buffer) => raw.write(chunk));
    const end = () => {
      raw.destroy();
      upstream.destroy();
    };
    raw.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => impostor.close(() => resolve())));
  const v = testViewer(ts, { port: (impostor.address() as net.AddressInfo).port });
  await t.rejects(v.viewer.start(), { code: 'LS_ERR_FINGERPRINT_MISMATCH' });
  await sleep(200); // anything the viewer wrote before hanging up has arrived by now
  t.equal(connections, 1, 'the viewer reached the impostor');
  t.ok(encryptedRecords <= 1, `and sent it no protocol byte: ${encryptedRecords} encrypted record(s), at most its TLS Finished`);
  await v.viewer.close();

  const wrongPin = testViewer(ts, { fingerprint: `sha256:${'ab'.repeat(32)}` });
  await t.rejects(wrongPin.viewer.start(), { code: 'LS_ERR_FINGERPRINT_MISMATCH' });
  t.equal(ts.server.sessions().filter((s) => s.state === 'live').length, 0, 'a wrong pin against the real server: no live session');
  await wrongPin.viewer.close();
});

t.test('capture runs only while someone watches', async (t) => {
  const ts = await startTestServer({ lingerMs: 200 });
  t.teardown(() => ts.close());
  const captureEvents: string[] = [];
  ts.server.on('capture-status', (s) => captureEvents.push(`${s.kind}:${s.state}`));
  await sleep(300);
  t.same(captureEvents, [], 'no capture before the first viewer');
  const v = testViewer(ts);
  await v.viewer.start();
  await waitFor(() => v.video.length > 5 && v.audio.length > 5, 5000, 50);
  const pids = ts.server.capturePids();
  t.ok(pids.video !== undefined && pids.audio !== undefined, `capture running for the viewer (${JSON.stringify(pids)})`);
  t.ok(captureEvents.includes('video:live'), 'capture went live for the viewer');
  await v.viewer.close();
  // The linger is 200 ms: then both ffmpeg children are stopped, not only forgotten.
  await waitFor(
    () => {
      const now = ts.server.capturePids();
      return now.video === undefined && now.audio === undefined;
    },
    3000,
    20,
    'capture stopped after the viewer left',
  );
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor(() => !alive(pids.video!) && !alive(pids.audio!), 3000, 20, 'the capture ffmpeg processes exited');
  t.pass(`ffmpeg ${pids.video} and ${pids.audio} are gone`);
  await waitFor(() => captureEvents.includes('video:stopped') && captureEvents.includes('audio:stopped'), 2000, 20, 'capture events say stopped');
  t.same(captureEvents.slice(-2).sort(), ['audio:stopped', 'video:stopped'], `and stopped is the last word (${captureEvents.join(', ')})`);
});
