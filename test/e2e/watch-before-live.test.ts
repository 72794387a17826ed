/**
 * e2e: `watch` that ends before the stream is ever live still ends the documented way — one error
 * line, the exit code from `--help`, and a last `stopped` JSON line — instead of exiting 0 or
 * waiting for ever. Real CLI processes on 127.0.0.1; nothing listens on the port (--wait retries).
 */
import t from 'tap';
import { errorLines, localWatchArgs, makeConfigDir, runCli, spawnCli } from '../helpers/cli.js';
import { freePort, killAll } from '../helpers/process.js';

t.teardown(() => killAll());

const configDir = await makeConfigDir();
/** A key-shaped key and --wait: nothing listens on the port, so watch keeps trying. */
const WAITING = ['--key', 'abcdefabcdefabcdefabcd', '--wait'];

t.test('--wait: the window program dies before the server is up → exit 1 with the sink error, not exit 0', async (t) => {
  // The real ffplay on a machine without a display: SDL's X11 driver (what it picks on a Linux
  // desktop) with no DISPLAY fails to open the window and ffplay exits 1. Left to choose, SDL here
  // falls back to a driver that needs no display and keeps running.
  const env: NodeJS.ProcessEnv = { ...process.env, SDL_VIDEODRIVER: 'x11' };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  const port = await freePort();
  const res = await runCli(localWatchArgs({ port, configDir }, ...WAITING, '--no-audio', '--json'), { env, timeoutMs: 15_000 });
  const lines = errorLines(res.stderr).filter((l) => !l.startsWith('lanstream: WARNING'));
  t.equal(res.code, 1, 'exit 1 (runtime failure: output device)', { signal: res.signal, stdout: res.stdout.slice(-1500), stderr: res.stderr.slice(-1500) });
  t.equal(lines.length, 1, 'one error line', { lines });
  t.match(lines[0] ?? '', /video output stopped.* \[LS_ERR_SINK_FAILED\]$/, 'the line says the window stopped, with the code');
  const events = res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; exitCode?: number });
  t.same(events.at(-1)?.event, 'stopped', 'the last JSON line is `stopped`');
  t.equal(events.at(-1)?.exitCode, 1, '`stopped` carries the exit code');
});

for (const [sig, code] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
] as const) {
  t.test(`--wait, nothing listens yet: ${sig} ends watch the graceful way (exit ${code}, a last stopped line)`, async (t) => {
    const port = await freePort();
    const watch = spawnCli(localWatchArgs({ port, configDir }, ...WAITING, '--no-playback', '--json'));
    t.teardown(() => watch.destroy());
    await watch.waitForEvent((e) => e.event === 'state' && e.state === 'reconnecting', 10_000, 'a refused attempt');
    const { code: exitCode, signal } = await watch.stop(sig, 5000);
    t.equal(exitCode, code, `exit ${code}`, { signal, stderr: watch.stderr.slice(-1500) });
    t.match(watch.events().at(-1), { event: 'stopped', exitCode: code }, `the last --json line: stopped, exitCode ${code}`);
  });
}
