/**
 * e2e: `watch` starts ffplay the moment its flags are parsed (src/cli/early-window.ts), before it has
 * loaded the rest of itself or dialled. That player must stay invisible until a frame arrives,
 * become the window once the stream is up (not be started twice), and be gone — never having
 * shown anything — when watch fails instead. A wrapper named ffplay, first on PATH, logs the PID of
 * every ffplay watch starts and then execs the real one (same PID).
 */
import t from 'tap';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { descendants, spawnCli, startServe } from '../helpers/cli.js';
import { freePort, hasCommand, killAll, pidAlive, run, sleep, waitFor } from '../helpers/process.js';
import { startXvfb, type XvfbDisplay } from '../helpers/xvfb.js';

t.teardown(() => killAll());

const missing = ['Xvfb', 'xdotool', 'ffplay', 'ffmpeg'].filter((c) => !hasCommand(c));
if (missing.length) t.plan(0, `missing tools: ${missing.join(', ')}`);
const TITLE = 'lanstream - 127.0.0.1';

async function ffplayWrapper(): Promise<{ dir: string; env: NodeJS.ProcessEnv; pids: () => Promise<number[]> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ls-early-'));
  const log = path.join(dir, 'pids');
  const real = (await run('sh', ['-c', 'command -v ffplay'], { timeoutMs: 5000 })).stdout.toString().trim();
  await writeFile(path.join(dir, 'ffplay'), `#!/bin/sh\necho $$ >> '${log}'\nexec '${real}' "$@"\n`);
  await chmod(path.join(dir, 'ffplay'), 0o755);
  return {
    dir,
    env: { PATH: `${dir}:${process.env.PATH}` },
    pids: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number),
  };
}

async function visibleWindows(x: XvfbDisplay): Promise<string[]> {
  const res = await run('xdotool', ['search', '--onlyvisible', '--name', TITLE], { env: x.env, timeoutMs: 5000 });
  return res.stdout.toString().split('\n').filter((l) => /^\d+$/.test(l.trim()));
}

t.test('ffplay starts before the connection, hidden, and becomes the window when the stream comes', async (t) => {
  const [x, wrapper, port] = await Promise.all([startXvfb(), ffplayWrapper(), freePort()]);
  t.teardown(() => Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true })]));
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'ls-early-cfg-'));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));

  const key = randomBytes(16).toString('base64url');
  // Nothing listens yet: --wait keeps trying, so the only thing watch can have started is the early window.
  const watch = spawnCli(
    ['watch', '127.0.0.1', '--port', String(port), '--config-dir', configDir, '--key', key, '--wait', '--no-audio', '--window-position', '0,0', '--borderless', '--json'],
    { env: { ...x.env, ...wrapper.env } },
  );
  t.teardown(() => watch.destroy());
  const [early] = await waitFor(async () => ((await wrapper.pids()).length ? wrapper.pids() : null), 10_000, 20, 'ffplay started');
  t.ok(descendants(watch.pid).some((p) => p.pid === early && p.comm === 'ffplay'), `ffplay (${early}) runs under watch with no server up`);
  await sleep(800); // ffplay is through its set-up by now
  t.ok(pidAlive(early!), 'and keeps running while watch waits for the server');
  t.same(await visibleWindows(x), [], 'without showing a window');

  // The server comes up on that port with the key watch has.
  const serve = await startServe({ port, configDir, args: ['--no-audio', '--key', key] });
  t.teardown(() => serve.proc.destroy());
  await watch.waitForEvent((e) => e.event === 'first-media' && e.kind === 'video', 15_000, 'first video frame');
  await waitFor(async () => ((await visibleWindows(x)).length ? true : null), 5000, 50, 'the window shown');
  t.pass('the window shows once frames arrive');
  t.same(await wrapper.pids(), [early], 'it is the ffplay started first: no second one');
  t.ok(pidAlive(early!), 'still running');
});

t.test('a watch that fails ends its early ffplay, which never showed a window', async (t) => {
  const [x, wrapper, serve] = await Promise.all([startXvfb(), ffplayWrapper(), startServe({ args: ['--no-audio'] })]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true }), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const cases: Array<{ name: string; args: string[]; code: number }> = [
    { name: 'wrong access key: exit 4', args: ['--key', randomBytes(16).toString('base64url')], code: 4 },
    { name: 'a flag that is checked after the window started: exit 2', args: ['--volume', '500'], code: 2 },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const before = (await wrapper.pids()).length;
      const watch = spawnCli(['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--no-audio', ...c.args], { env: { ...x.env, ...wrapper.env } });
      t.teardown(() => watch.destroy());
      const exit = await watch.exited;
      t.equal(exit.code, c.code, watch.stderr.trim());
      const started = (await wrapper.pids()).slice(before);
      t.equal(started.length, 1, `watch had started ffplay (${started.join(', ')})`);
      await waitFor(async () => !pidAlive(started[0]!), 3000, 20, 'ffplay gone');
      t.pass('and it is gone');
      t.same(await visibleWindows(x), [], 'no window is left (none was shown)');
    });
  }
});
