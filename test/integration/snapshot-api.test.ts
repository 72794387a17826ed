/**
 * The public API as a program would use it: serve() + watch() in process over real TLS on
 * 127.0.0.1 (ffmpeg test picture), frames with server PTS, and takeSnapshot() — the code behind
 * `watch --snapshot` — checked with sharp the way a cron job's consumer would see the picture.
 */
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { LanstreamError, serve, takeSnapshot, watch } from '../../src/index.js';
import { sleep, waitFor } from '../helpers/process.js';
import { testViewer } from '../helpers/lanstream.js';
import { startServerIn } from '../helpers/security-server.js';

t.test('serve() + watch(): frames arrive; snapshots are the test picture as JPEG (passthrough) and resized PNG', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = await serve({ port: 0, host: '127.0.0.1', configDir: dir, source: 'test', width: 640, height: 360, preflight: false });
  t.teardown(() => server.close());
  const live: string[] = [];
  server.on('viewer-live', (info) => live.push(info.id));
  t.match(server.ready.connectUrls[0], /^lanstream:\/\/127\.0\.0\.1:\d+\/\?key=/, 'ready carries the connect URL');

  const viewer = await watch({ target: server.ready.connectUrls[0]!, configDir: dir, audio: false });
  t.teardown(() => viewer.close());
  const frames: { jpeg: Buffer; ptsUs: number }[] = [];
  viewer.on('frame', (jpeg, ptsUs) => frames.push({ jpeg: Buffer.from(jpeg), ptsUs }));
  await waitFor(() => frames.length >= 10, 8000, 20, '10 frames through the API');
  t.equal(live.length, 1, 'the server emitted viewer-live');
  t.ok(
    frames.every((f, i) => i === 0 || f.ptsUs > frames[i - 1]!.ptsUs),
    'frames come with increasing server PTS',
  );

  const jpgFile = path.join(dir, 'pic.jpg');
  const jpg = await takeSnapshot(viewer, { file: jpgFile });
  const jpgBytes = await readFile(jpgFile);
  t.ok(
    frames.some((f) => f.jpeg.equals(jpgBytes)),
    'JPEG without resize is a received frame, byte for byte',
  );
  const meta = await sharp(jpgBytes).metadata();
  t.same([meta.format, meta.width, meta.height], ['jpeg', 640, 360], 'JPEG at the stream size');
  t.same([jpg.width, jpg.height, jpg.format], [640, 360, 'jpeg'], 'result says what was written');
  const stats = await sharp(jpgBytes).stats();
  t.ok(
    stats.channels.some((c) => c.stdev > 20),
    `the test picture, not a uniform colour (stdev ${stats.channels.map((c) => c.stdev.toFixed(0)).join('/')})`,
  );

  const pngFile = path.join(dir, 'pic.png');
  await takeSnapshot(viewer, { file: pngFile, size: { width: 320, height: 180 } });
  const png = await sharp(pngFile).metadata();
  t.same([png.format, png.width, png.height], ['png', 320, 180], 'PNG resized to 320x180');

  await t.rejects(takeSnapshot(viewer, { file: path.join(dir, 'pic.gif') }), { code: 'LS_ERR_USAGE' }, 'unknown extension is a usage error');

  await viewer.close();
  await waitFor(() => server.sessions().length === 0, 3000, 20, 'server saw the viewer leave');
});

t.test('watch() rejects with a coded LanstreamError when nothing listens', async (t) => {
  const err = await watch({ target: '127.0.0.1:1', key: 'x', insecure: true }).catch((e: unknown) => e);
  t.ok(err instanceof LanstreamError, 'a LanstreamError');
  t.equal((err as LanstreamError).code, 'LS_ERR_CONNECT_REFUSED', 'with its code');
});

t.test('an H.264 stream: the snapshot is the decoded picture (units from the IDR on, through ffmpeg), not the raw unit', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-api-h264-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = await serve({
    port: 0,
    host: '127.0.0.1',
    configDir: dir,
    source: 'test',
    width: 640,
    height: 360,
    preflight: false,
    videoCodec: 'h264',
    encoder: 'libx264',
    videoBitrateKbps: 500,
  });
  t.teardown(() => server.close());
  const viewer = await watch({ target: server.ready.connectUrls[0]!, configDir: dir, audio: false });
  t.teardown(() => viewer.close());
  t.equal(viewer.welcome?.video?.codec, 'h264', 'the server sends H.264');
  const file = path.join(dir, 'pic.jpg');
  const result = await takeSnapshot(viewer, { file });
  const bytes = await readFile(file);
  const meta = await sharp(bytes).metadata();
  t.same([meta.format, meta.width, meta.height], ['jpeg', 640, 360], 'a JPEG at the stream size');
  t.same([result.width, result.height], [640, 360], 'result says so');
  const stats = await sharp(bytes).stats();
  t.ok(
    stats.channels.some((c) => c.stdev > 20),
    `the test picture (stdev ${stats.channels.map((c) => c.stdev.toFixed(0)).join('/')})`,
  );
});

t.test('takeSnapshot() on a viewer still waiting for its server: the timeout counts from live, not from the call', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Once to make the key and certificate and learn a port; the same dir and port come back later.
  const first = await startServerIn(dir, { audio: false });
  const { port, accessKey, fingerprint } = first.ready;
  await first.close();
  const v = testViewer({ ...first, configDir: dir }, { audio: false, retryFirst: true, port, key: accessKey, fingerprint: fingerprint ?? undefined });
  t.teardown(() => v.viewer.close());
  const started = v.viewer.start();
  started.catch(() => undefined);
  const timeoutMs = 1000;
  const snap = takeSnapshot(v.viewer, { file: path.join(dir, 'late.jpg'), timeoutMs });
  snap.catch(() => undefined);
  await sleep(timeoutMs + 500); // the server comes up after the snapshot's timeout has passed
  const again = await startServerIn(dir, { audio: false, port });
  t.teardown(() => again.close());
  await started;
  const result = await snap;
  t.equal(result.format, 'jpeg', `a picture ${result.bytes} bytes, taken after the server came up`);
});

t.test('takeSnapshot() against a server without video fails at once, saying so, not after its timeout', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = await startServerIn(dir, { video: false });
  t.teardown(() => server.close());
  const v = testViewer({ ...server, configDir: dir }, { video: false });
  t.teardown(() => v.viewer.close());
  await v.viewer.start();
  const started = Date.now();
  await t.rejects(takeSnapshot(v.viewer, { file: path.join(dir, 'none.jpg'), timeoutMs: 10_000 }), {
    code: 'LS_ERR_SNAPSHOT_FAILED',
    message: /sends no video/,
  });
  t.ok(Date.now() - started < 1000, `within ${Date.now() - started} ms, not the 10 s timeout`);
});

t.test('watch({ record }) onto an earlier recording rejects with LS_ERR_USAGE before connecting, and leaves the file as it was', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-api-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'earlier.mkv');
  await writeFile(file, 'an hour of video');
  // Nothing listens on port 9: a check that came after dialling would fail differently.
  const target = `lanstream://127.0.0.1:9/?key=${'k'.repeat(22)}`;
  await t.rejects(watch({ target, configDir: dir, record: file }), { code: 'LS_ERR_USAGE', message: /record: .*earlier\.mkv .*`overwrite: true`/ });
  t.equal(await readFile(file, 'utf8'), 'an hour of video', 'untouched');
});
