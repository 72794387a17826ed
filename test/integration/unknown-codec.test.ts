/**
 * A viewer facing a server that announces a codec it does not know (a newer lanstream) gets one
 * line naming the codec and the two ways out, exit code 3, and no endless reconnect loop — not a
 * protocol error and not a black window. The server is a plain-TCP stand-in (the client runs
 * --insecure) that answers any connection with CHALLENGE and a WELCOME announcing "av1" video.
 */
import t from 'tap';
import net from 'node:net';
import { MessageType as T } from '../../src/protocol/constants.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import { ViewerConnection } from '../../src/client/connection.js';
import { silentLogger } from '../../src/shared/logger.js';
import { isLanstreamError } from '../../src/shared/errors.js';
import { jsonFrame, welcomeBody } from '../helpers/protocol-arbitraries.js';
import { runCli } from '../helpers/cli.js';

async function newerServer(video: Record<string, unknown>): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.write(
      Buffer.concat([
        encodeMessage({ type: 'challenge', nonce: Buffer.alloc(32) }),
        jsonFrame(T.WELCOME, welcomeBody({ video: { codec: 'mjpeg', width: 1280, height: 720, fps: 30, ...video } })),
      ]),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

t.test('an unknown video codec is a clear, final error for the connection', async (t) => {
  const srv = await newerServer({ codec: 'av1' });
  t.teardown(() => srv.close());
  const c = new ViewerConnection({
    host: '127.0.0.1',
    port: srv.port,
    key: 'k'.repeat(22),
    insecure: true,
    knownHosts: null,
    wantVideo: true,
    wantAudio: true,
    agent: 'test',
    logger: silentLogger(),
    retryFirst: true,
  });
  t.teardown(() => c.close());
  const err = await c.start().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isLanstreamError(err), 'rejects with a LanstreamError');
  if (!isLanstreamError(err)) return;
  t.equal(err.code, 'LS_ERR_CODEC_UNSUPPORTED');
  t.match(err.message, /sends video as "av1", which this lanstream cannot decode: update lanstream here, or run serve with --video-codec mjpeg/);
  await new Promise((r) => setTimeout(r, 600));
  t.equal(srv.connections(), 1, 'not retried, even with retryFirst (it cannot get better by itself)');
});

t.test('watch exits 3 with that one line', async (t) => {
  const srv = await newerServer({ codec: 'av1' });
  t.teardown(() => srv.close());
  const res = await runCli(['watch', '127.0.0.1', '--port', String(srv.port), '--insecure', '--key', 'k'.repeat(22), '--no-playback'], { timeoutMs: 20_000 });
  t.equal(res.code, 3, 'exit code 3 (connection)');
  t.match(res.stderr, /sends video as "av1".*--video-codec mjpeg \[LS_ERR_CODEC_UNSUPPORTED\]/);
});
