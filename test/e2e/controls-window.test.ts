/**
 * e2e: what a watch does when its only output — the ffplay window, with --no-audio — goes away.
 * Closed by the user (q in the window): exit 0. Crashed (SIGKILL by PID): the window comes back
 * once, with the picture; crashed again: exit 1 with LS_ERR_SINK_FAILED, instead of running on
 * forever with nothing to show.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { WINDOW_AT_ORIGIN, descendants, localWatchArgs, spawnCli, startServe } from '../helpers/cli.js';
import { hasCommand, killAll, pidAlive, sleep, waitFor } from '../helpers/process.js';
import { crop, findWindowByName, grabScreen, meanAbsDiff, pressKey } from '../helpers/screen.js';
import { startXvfb } from '../helpers/xvfb.js';

t.teardown(() => killAll());

const missing = ['Xvfb', 'xdotool', 'ffplay'].filter((c) => !hasCommand(c));
const TITLE = 'lanstream - 127.0.0.1';
const MOVING = { x: 380, y: 200, width: 200, height: 120 };

t.test('the only window goes away', { skip: missing.length ? `missing ${missing.join(', ')}` : false }, async (t) => {
  const [xvfb, serve] = await Promise.all([startXvfb(), startServe({ args: ['--no-audio'] })]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([xvfb.close(), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const args = localWatchArgs(serve, ...WINDOW_AT_ORIGIN, '--no-audio', '--json');
  const ffplayOf = (pid: number) => descendants(pid).filter((p) => p.comm === 'ffplay');

  await t.test('closed by the user: exit 0', async (t) => {
    const watch = spawnCli(args, { env: xvfb.env });
    t.teardown(() => watch.destroy());
    await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live');
    const windowId = await waitFor(() => findWindowByName(xvfb.display, TITLE), 5000, 100, 'the window');
    const closedAtMs = Date.now();
    await pressKey(xvfb.display, windowId, 'q');
    const exit = await Promise.race([watch.exited, sleep(5000).then(() => null)]);
    t.equal(exit?.code, 0, `watch exits 0 ${Date.now() - closedAtMs} ms after the window was closed`, { stderr: watch.stderr.slice(-800) });
    t.match(watch.events().at(-1), { event: 'stopped', exitCode: 0 }, 'the last --json line: stopped, exitCode 0');
  });

  await t.test('ffplay crashes: reopened once, then exit 1 with LS_ERR_SINK_FAILED', async (t) => {
    const watch = spawnCli(args, { env: xvfb.env });
    t.teardown(() => watch.destroy());
    await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live');
    const first = await waitFor(() => ffplayOf(watch.pid)[0], 5000, 50, 'ffplay');
    await waitFor(() => findWindowByName(xvfb.display, TITLE), 5000, 100, 'the window');
    process.kill(first.pid, 'SIGKILL');

    await watch.waitForEvent((e) => e.event === 'sink-reopened' && e.kind === 'video', 5000, 'sink-reopened');
    t.match(
      watch.events().find((e) => e.event === 'sink-error'),
      { kind: 'video', message: /SIGKILL/ },
      'the crash is reported as a sink-error event',
    );
    const second = await waitFor(() => ffplayOf(watch.pid).find((p) => p.pid !== first.pid), 5000, 50, 'a new ffplay');
    t.not(second.pid, first.pid, `a new window program runs (pid ${second.pid})`);
    await waitFor(() => findWindowByName(xvfb.display, TITLE), 5000, 100, 'the window again');
    const moving = await waitFor(
      async () => {
        const a = crop(await grabScreen(xvfb.display), MOVING);
        await sleep(300);
        const diff = meanAbsDiff(a, crop(await grabScreen(xvfb.display), MOVING));
        return diff > 1 ? diff : null;
      },
      5000,
      100,
      'a moving picture in the reopened window',
    );
    t.ok(moving > 1, `the reopened window shows the moving picture (diff ${moving.toFixed(2)} over 0.3 s)`);
    t.ok(watch.running, 'watch is still running');

    const killedAtMs = Date.now();
    process.kill(second.pid, 'SIGKILL');
    const exit = await Promise.race([watch.exited, sleep(5000).then(() => null)]);
    t.equal(exit?.code, 1, `second crash: watch exits 1 (${Date.now() - killedAtMs} ms later) instead of running on with nothing to show`, {
      stderr: watch.stderr.slice(-800),
    });
    t.match(watch.stderr, /\[LS_ERR_SINK_FAILED\]/, 'one error line with LS_ERR_SINK_FAILED on stderr');
    const events = watch.events();
    t.match(events.at(-2), { event: 'error', code: 'LS_ERR_SINK_FAILED' }, '--json: the error with its code');
    t.match(events.at(-1), { event: 'stopped', exitCode: 1 }, '--json: then stopped, exitCode 1');
    t.equal(events.filter((e) => e.event === 'sink-reopened').length, 1, 'reopened only once');
    t.notOk(pidAlive(second.pid), 'no ffplay left');
  });
});

t.test(
  'a display ffplay cannot draw on: exit 1 with the reason, not a quiet exit 0',
  { skip: missing.length ? `missing ${missing.join(', ')}` : false },
  async (t) => {
    // An 8-bit display: ffplay prints "Failed to create window or renderer" and exits 0, as it does
    // when the user closes the window; a script must not read that as a watch that went fine.
    const [xvfb, serve] = await Promise.all([startXvfb({ depth: 8 }), startServe({ args: ['--no-audio'] })]);
    t.teardown(async () => {
      await serve.proc.destroy();
      await Promise.all([xvfb.close(), rm(serve.configDir, { recursive: true, force: true })]);
    });
    const watch = spawnCli(localWatchArgs(serve, ...WINDOW_AT_ORIGIN, '--no-audio', '--json'), { env: xvfb.env });
    t.teardown(() => watch.destroy());
    const exit = await Promise.race([watch.exited, sleep(15_000).then(() => null)]);
    t.equal(exit?.code, 1, 'watch exits 1', { stderr: watch.stderr.slice(-800) });
    const errorLines = watch.stderr.split('\n').filter((l) => l.includes('[LS_ERR_SINK_FAILED]'));
    t.equal(errorLines.length, 1, 'one error line on stderr');
    t.match(errorLines[0], /Failed to create window or renderer.*try --window gstreamer/, "it gives ffplay's reason and what to try");
    const events = watch.events();
    t.match(
      events.find((e) => e.event === 'sink-error'),
      { kind: 'video', message: /exit code 0\): Failed to create window or renderer/ },
      'a sink-error event',
    );
    t.notOk(
      events.some((e) => e.event === 'sink-reopened'),
      'no sink-reopened: the second window failed as well',
    );
    t.match(events.at(-1), { event: 'stopped', exitCode: 1 }, '--json: stopped, exitCode 1');
  },
);
