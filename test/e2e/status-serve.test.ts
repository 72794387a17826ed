/**
 * e2e: `serve` shows who is watching. On a terminal (a real PTY) one status line refreshed in place
 * with the number of viewers and, per viewer, address, end-to-end latency and fps (as the viewer
 * reports them), bitrate, rtt and drops; with --json a `stats` event once a second with the same
 * numbers as fields a script can read directly.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { localWatchArgs, makeConfigDir, serveArgs, spawnCli, startServe } from '../helpers/cli.js';
import { freePort, hasCommand, killAll, sleep } from '../helpers/process.js';
import { spawnCliInPty } from '../helpers/pty.js';

t.teardown(() => killAll());

const VIEWER = /127\.0\.0\.1 video (\d+) ms (\d+) fps ([\d.]+) Mbit\/s rtt (\d+) ms drops (\d+)/;

t.test('serve on a terminal: a status line with each viewer, refreshed in place', { skip: hasCommand('script') ? false : 'missing script' }, async (t) => {
  const [port, configDir] = await Promise.all([freePort(), makeConfigDir()]);
  t.teardown(() => rm(configDir, { recursive: true, force: true }));
  const serve = spawnCliInPty(serveArgs({ port, configDir }, '--no-audio'));
  t.teardown(() => serve.destroy());
  await serve.waitForOutput(/lanstream watch "lanstream:\/\//, 10_000);
  await serve.waitForOutput(/\[serving\] no viewers/, 5000);
  t.pass('with nobody watching: "[serving] no viewers"');

  const viewerArgs = localWatchArgs({ port, configDir }, '--no-playback', '--quiet');
  const one = spawnCli([...viewerArgs, '--duration', '15s']);
  const two = spawnCli([...viewerArgs, '--duration', '15s']);
  t.teardown(() => Promise.all([one.destroy(), two.destroy()]));
  const from = serve.output.length;
  // The viewers report their latency after their first second live; wait for a line with both.
  const m = await serve.waitForOutput(new RegExp(`\\[serving\\] 2 viewers \\| ${VIEWER.source} \\| ${VIEWER.source}`), 10_000, from);
  // The match itself shows that latency, fps, bitrate, rtt and drops are there (as whole numbers);
  // drops is not asserted to be 0: a loaded machine can drop frames even on loopback.
  const [latencyMs, fps, mbps, rttMs, drops] = m.slice(1, 6).map(Number) as [number, number, number, number, number];
  t.comment(`viewer: ${latencyMs} ms, ${fps} fps, ${mbps} Mbit/s, rtt ${rttMs} ms, drops ${drops}`);
  t.ok(latencyMs < 1000, `the viewer's end-to-end latency is under a second (${latencyMs} ms)`);
  t.ok(fps > 15, `the viewer's fps is shown (${fps})`);
  t.ok(mbps > 0.5, `the bitrate sent to it is shown (${mbps} Mbit/s)`);

  await one.stop('SIGTERM');
  const afterOne = serve.output.length;
  await serve.waitForOutput(new RegExp(`\\[serving\\] 1 viewer \\| ${VIEWER.source}`), 5000, afterOne);
  t.pass('one viewer left: "[serving] 1 viewer"');

  const draws = serve.output.split('\r\x1b[2K[serving]').slice(1);
  t.ok(draws.length >= 3, `the line was drawn ${draws.length} times`);
  // Redrawn in place: one draw follows the previous one on the same row (no newline between),
  // except where a log line came in between (see the report: logs and the line share stderr).
  const inPlace = draws.slice(0, -1).filter((d) => !d.includes('\n')).length;
  t.ok(inPlace >= 1, `${inPlace} redraw(s) replaced the previous line on the same row`);

  serve.signalInner('SIGTERM');
  const exit = await Promise.race([serve.exited, sleep(8000).then(() => null)]);
  t.equal(exit?.code, 143, 'SIGTERM: serve exits 143', { terminal: serve.describe() });
});

t.test('serve --json: stats once a second list the viewers with the numbers they report', async (t) => {
  const serve = await startServe({ json: true, args: ['--no-audio'] });
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  const viewer = spawnCli(localWatchArgs(serve, '--no-playback', '--quiet', '--duration', '15s'));
  t.teardown(() => viewer.destroy());
  const stats = await serve.proc.waitForEvent(
    (e) => e.event === 'stats' && Array.isArray(e.viewers) && e.viewers.length === 1 && (e.viewers[0] as { latencyMs: unknown }).latencyMs !== null,
    10_000,
    "a stats event with the viewer's own report",
  );
  const v = (stats.viewers as Record<string, unknown>[])[0]!;
  t.match(v, { address: '127.0.0.1', state: 'live', id: String, droppedTotal: Number, rttMs: Number }, 'address, state, id, drops and rtt');
  t.ok(typeof v.latencyMs === 'number' && v.latencyMs >= 0 && v.latencyMs < 1000, `latencyMs reported by the viewer (${v.latencyMs})`);
  t.ok(typeof v.fps === 'number' && v.fps > 15, `fps reported by the viewer (${v.fps})`);
  t.ok(typeof v.bitrateKbps === 'number' && v.bitrateKbps > 500, `bitrateKbps measured by the server (${v.bitrateKbps})`);

  const all = serve.proc.events().filter((e) => e.event === 'stats');
  const times = all.slice(-4).map((e) => Date.parse(String(e.time)));
  const gaps = times.slice(1).map((x, i) => x - times[i]!);
  t.ok(
    gaps.every((g) => g > 700 && g < 1400),
    `once a second (${gaps.join(', ')} ms apart)`,
  );

  await viewer.stop('SIGTERM');
  await serve.proc.waitForEvent(
    (e) => e.event === 'stats' && Array.isArray(e.viewers) && e.viewers.length === 0 && Date.parse(String(e.time)) > Date.now() - 1500,
    5000,
    'stats with no viewers',
  );
  t.pass('after the viewer left, stats list nobody');
});
