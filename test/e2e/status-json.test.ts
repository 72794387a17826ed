/**
 * e2e: `watch --json` as a script reads it. Every stdout line parses; the state sequence,
 * a `control` event for a key pressed on the terminal, `stats` once a second, and — for every
 * documented way a watch ends — a last line `stopped` whose exitCode is the process's exit code,
 * also when it fails before anything was live (wrong key, bad flag).
 */
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jsonLines, runCli, spawnCli, startServe, type JsonEvent } from '../helpers/cli.js';
import { hasCommand, killAll, sleep, waitFor } from '../helpers/process.js';
import { spawnCliInPty } from '../helpers/pty.js';
import { startXvfb } from '../helpers/xvfb.js';

t.teardown(() => killAll());

const missing = ['script', 'Xvfb', 'ffplay'].filter((c) => !hasCommand(c));

async function fileEvents(file: string): Promise<JsonEvent[]> {
  try {
    return jsonLines(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

t.test(
  'watch --json on a terminal: states, a control event per key, stats every second, stopped 0 after --duration',
  { skip: missing.length ? `missing ${missing.join(', ')}` : false },
  async (t) => {
    const [xvfb, serve, dir] = await Promise.all([startXvfb(), startServe({ args: ['--no-audio'] }), mkdtemp(path.join(os.tmpdir(), 'ls-json-'))]);
    t.teardown(async () => {
      await serve.proc.destroy();
      await Promise.all([xvfb.close(), rm(serve.configDir, { recursive: true, force: true }), rm(dir, { recursive: true, force: true })]);
    });
    const file = path.join(dir, 'events.jsonl');
    // stdin and stderr on the terminal (keys work), stdout into a file as a pipe to jq would be.
    const watch = spawnCliInPty(
      ['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--window-position', '0,0', '--json', '--duration', '5s'],
      { env: xvfb.env, stdoutFile: file },
    );
    t.teardown(() => watch.destroy());
    await waitFor(async () => (await fileEvents(file)).some((e) => e.event === 'stats' && e.state === 'live'), 10_000, 100, 'a live stats event');
    await watch.press('--');
    const exit = await Promise.race([watch.exited, sleep(12_000).then(() => null)]);
    t.ok(exit, 'watch ended by itself');
    t.equal(exit?.code, 0, '--duration: exit code 0', { terminal: watch.describe() });

    const events = await fileEvents(file);
    t.ok(events.length > 5, `all ${events.length} stdout lines are JSON`);
    t.ok(
      events.every((e) => typeof e.event === 'string' && !Number.isNaN(Date.parse(String(e.time)))),
      'each has an event name and a time',
    );
    const states = events.filter((e) => e.event === 'state').map((e) => e.state);
    t.same(states.slice(0, 2), ['connecting', 'live'], `state events start connecting → live (${states.join(' → ')})`);
    const controls = events.filter((e) => e.event === 'control');
    t.match(
      controls,
      [
        { action: 'volume-down', volume: 90, muted: false },
        { action: 'volume-down', volume: 80, muted: false },
      ],
      'a control event for each - key',
    );
    const stats = events.filter((e) => e.event === 'stats' && e.state === 'live');
    t.ok(stats.length >= 3 && stats.length <= 6, `stats about once a second over 5 s (${stats.length})`);
    const times = stats.map((e) => Date.parse(String(e.time)));
    const gaps = times.slice(1).map((x, i) => x - times[i]!);
    t.ok(
      gaps.every((g) => g > 700 && g < 1400),
      `stats 1 s apart (${gaps.join(', ')} ms)`,
    );
    const last = stats.at(-1)!;
    t.ok(Number(last.fps) > 15, `stats carry fps (${last.fps})`);
    t.ok(
      typeof last.videoLatencyMs === 'number' && last.videoLatencyMs >= 0 && last.videoLatencyMs < 1000,
      `stats carry the end-to-end video latency (${last.videoLatencyMs} ms)`,
    );
    t.equal(last.volume, 80, 'stats carry the volume after the keys');
    t.match(events.at(-1), { event: 'stopped', exitCode: 0 }, 'the last line: stopped, exitCode 0');
  },
);

t.test("every documented exit code is the last --json line's exitCode", async (t) => {
  const serve = await startServe({ args: ['--no-audio'] });
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  const base = ['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--no-playback', '--json'];

  const checkLast = (stdout: string, code: number | null, what: string) => {
    const events = jsonLines(stdout);
    t.match(events.at(-1), { event: 'stopped', exitCode: code }, `${what}: the last line is stopped with exitCode ${code}`);
    return events;
  };

  const [usage, wrongKey] = await Promise.all([
    runCli([...base, '--volume', '200'], { timeoutMs: 15_000 }),
    runCli([...base, '--key', 'not-the-key-0000000000000000'], { timeoutMs: 15_000 }),
  ]);
  t.equal(usage.code, 2, 'bad --volume: exit 2');
  checkLast(usage.stdout, usage.code, 'usage error');
  t.equal(wrongKey.code, 4, 'wrong key: exit 4', { stderr: wrongKey.stderr.slice(-800) });
  const keyEvents = checkLast(wrongKey.stdout, wrongKey.code, 'wrong key');
  t.match(keyEvents.at(-2), { event: 'error', code: /^LS_ERR_AUTH/ }, 'the error with its code comes just before it');

  const interrupted = spawnCli(base);
  t.teardown(() => interrupted.destroy());
  const lost = spawnCli([...base, '--reconnect-timeout', '1s']);
  t.teardown(() => lost.destroy());
  await Promise.all([interrupted, lost].map((p) => p.waitForEvent((e) => e.event === 'stats' && e.state === 'live', 10_000, 'live stats')));

  interrupted.signal('SIGINT');
  const sigint = await interrupted.exited;
  t.equal(sigint.code, 130, 'SIGINT: exit 130');
  checkLast(interrupted.stdout, sigint.code, 'SIGINT');

  await serve.stop('SIGTERM');
  const gone = await Promise.race([lost.exited, sleep(8000).then(() => null)]);
  t.equal(gone?.code, 3, 'server gone for longer than --reconnect-timeout 1s: exit 3', { stderr: lost.stderr.slice(-800) });
  const lostEvents = checkLast(lost.stdout, gone?.code ?? null, 'connection lost');
  t.match(lostEvents.at(-2), { event: 'error', code: /^LS_ERR_/ }, 'with the error (and its code) just before');
  t.equal(lostEvents.filter((e) => e.event === 'stopped').length, 1, 'exactly one stopped line');
  t.equal(lostEvents.filter((e) => e.event === 'error').length, 1, 'exactly one error line');
});
