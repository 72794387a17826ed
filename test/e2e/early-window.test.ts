/**
 * e2e: `watch` starts ffplay the moment its flags are parsed (src/cli/early-window.ts), before it has
 * loaded the rest of itself or dialled. That player must stay invisible until a frame arrives,
 * become the window once the stream is up (not be started twice), and be gone — never having
 * shown anything — when watch fails instead. A wrapper named ffplay, first on PATH, logs the PID of
 * every ffplay watch starts and then execs the real one (same PID).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { WINDOW_AT_ORIGIN, descendants, localWatchArgs, spawnCli, startServe } from '../helpers/cli.js';
import { freePort, hasCommand, killAll, pidAlive, run, sleep, waitFor } from '../helpers/process.js';
import { startXvfb, type XvfbDisplay } from '../helpers/xvfb.js';

t.teardown(() => killAll());

const missing = ['Xvfb', 'xdotool', 'ffplay', 'ffmpeg'].filter((c) => !hasCommand(c));
if (missing.length) t.plan(0, `missing tools: ${missing.join(', ')}`);
const TITLE = 'lanstream - 127.0.0.1';

/**
 * A script named ffplay, first on PATH, that logs its PID and runs the real ffplay: `exec` keeps the
 * PID (the process is ffplay); `trap` keeps the script as the parent and logs "TERM <pid>" when it is
 * sent SIGTERM, which is how watch discards an unused player (its input closing would end it too);
 * `sigterm-parent` sends watch a SIGTERM as soon as watch has started it.
 */
async function ffplayWrapper(
  mode: 'exec' | 'trap' | 'sigterm-parent' = 'exec',
): Promise<{ dir: string; env: NodeJS.ProcessEnv; log: () => Promise<string[]> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ls-early-'));
  const log = path.join(dir, 'log');
  const real = (await run('sh', ['-c', 'command -v ffplay'], { timeoutMs: 5000 })).stdout.toString().trim();
  const body =
    mode === 'exec'
      ? `echo $$ >> '${log}'\nexec '${real}' "$@"\n`
      : mode === 'sigterm-parent'
        ? // watch is signalled the moment it has started its player: before it has loaded the rest of itself.
          `echo $$ >> '${log}'\nkill -TERM $PPID\nexec '${real}' "$@"\n`
        : // sh gives a background job /dev/null as stdin unless it is redirected: hand it the pipe on fd 3.
          `echo $$ >> '${log}'\nexec 3<&0\n'${real}' "$@" <&3 3<&- &\nchild=$!\nexec 3<&-\ntrap 'echo "TERM $$" >> "${log}"; kill $child; exit 143' TERM\nwait $child\n`;
  await writeFile(path.join(dir, 'ffplay'), `#!/bin/sh\n${body}`);
  await chmod(path.join(dir, 'ffplay'), 0o755);
  return {
    dir,
    env: { PATH: `${dir}:${process.env.PATH}` },
    log: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean),
  };
}

async function visibleWindows(x: XvfbDisplay): Promise<string[]> {
  const res = await run('xdotool', ['search', '--onlyvisible', '--name', TITLE], { env: x.env, timeoutMs: 5000 });
  return res.stdout
    .toString()
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()));
}

t.test('ffplay starts before the connection, hidden, and becomes the window when the stream comes', async (t) => {
  const [x, wrapper, port] = await Promise.all([startXvfb(), ffplayWrapper(), freePort()]);
  t.teardown(() => Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true })]));
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'ls-early-cfg-'));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));

  const key = randomBytes(16).toString('base64url');
  // Nothing listens yet: --wait keeps trying, so the only thing watch can have started is the early window.
  const watch = spawnCli(localWatchArgs({ port, configDir }, '--key', key, '--wait', '--no-audio', ...WINDOW_AT_ORIGIN, '--json'), {
    env: { ...x.env, ...wrapper.env },
  });
  t.teardown(() => watch.destroy());
  const [early] = (await waitFor(async () => ((await wrapper.log()).length ? wrapper.log() : null), 10_000, 20, 'ffplay started')).map(Number);
  t.ok(
    descendants(watch.pid).some((p) => p.pid === early && p.comm === 'ffplay'),
    `ffplay (${early}) runs under watch with no server up`,
  );
  await sleep(800); // ffplay is through its set-up by now
  t.ok(pidAlive(early!), 'and keeps running while watch waits for the server');
  t.same(await visibleWindows(x), [], 'without showing a window');

  // The server comes up on that port with the key watch has.
  const serve = await startServe({ port, configDir, args: ['--no-audio', '--key', key] });
  t.teardown(() => serve.proc.destroy());
  await watch.waitForEvent((e) => e.event === 'first-media' && e.kind === 'video', 15_000, 'first video frame');
  await waitFor(async () => ((await visibleWindows(x)).length ? true : null), 5000, 50, 'the window shown');
  t.pass('the window shows once frames arrive');
  t.same((await wrapper.log()).map(Number), [early], 'it is the ffplay started first: no second one');
  t.ok(pidAlive(early!), 'still running');
});

t.test('a watch that fails ends its early ffplay, which never showed a window', async (t) => {
  const [x, wrapper, serve] = await Promise.all([startXvfb(), ffplayWrapper('trap'), startServe({ args: ['--no-audio'] })]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true }), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const cases: Array<{ name: string; args: string[]; code: number }> = [
    { name: 'wrong access key: exit 4', args: ['--key', randomBytes(16).toString('base64url')], code: 4 },
    { name: 'a flag that is checked after the window started: exit 2', args: ['--volume', '500'], code: 2 },
    // The window is started from a pre-scan of the command line, before commander reads it (main.ts).
    { name: 'a flag commander does not know: exit 2', args: ['--no-such-flag'], code: 2 },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const before = (await wrapper.log()).length;
      const watch = spawnCli(['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--no-audio', ...c.args], {
        env: { ...x.env, ...wrapper.env },
      });
      t.teardown(() => watch.destroy());
      // An early ffplay nobody ends would also keep watch from exiting (its pipe holds the event loop).
      const exit = await Promise.race([watch.exited, new Promise<null>((r) => setTimeout(r, 10_000, null).unref())]);
      t.equal(exit?.code, c.code, watch.stderr.trim() || 'watch did not exit within 10 s');
      const pid = (await wrapper.log())[before];
      t.ok(pid && /^\d+$/.test(pid), `watch had started ffplay (${pid})`);
      await waitFor(async () => !pidAlive(Number(pid)), 3000, 20, 'ffplay gone');
      t.ok((await wrapper.log()).includes(`TERM ${pid}`), 'watch ended it with SIGTERM (not just by closing its input)');
      t.same(await visibleWindows(x), [], 'no window is left (none was shown)');
    });
  }
});

t.test('a server that sends no video to a --no-audio viewer: exit 2 (nothing to watch) and the early ffplay is ended', async (t) => {
  const [x, wrapper, serve] = await Promise.all([startXvfb(), ffplayWrapper('trap'), startServe({ args: ['--no-video'] })]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true }), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const watch = spawnCli(['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--no-audio', '--duration', '1s', '--json'], {
    env: { ...x.env, ...wrapper.env },
  });
  t.teardown(() => watch.destroy());
  // The early player was never taken (no video in WELCOME): left running, its pipe kept watch alive
  // after its `stopped` line, and a cron job hung for good. Such a viewer now ends at once with
  // LS_ERR_NOTHING_TO_WATCH; the early player must go with it all the same.
  const exit = await Promise.race([watch.exited, new Promise<null>((r) => setTimeout(r, 10_000, null).unref())]);
  t.equal(exit?.code, 2, exit ? 'exit 2' : 'watch did not exit within 10 s', { stderr: watch.stderr.slice(-800) });
  t.match(watch.stderr, /\[LS_ERR_NOTHING_TO_WATCH\]/, 'nothing to watch, said');
  const pid = (await wrapper.log())[0];
  t.ok(pid && /^\d+$/.test(pid), `watch had started ffplay (${pid})`);
  await waitFor(async () => !pidAlive(Number(pid)), 3000, 20, 'ffplay gone');
  t.same(await visibleWindows(x), [], 'no window is left');
});

t.test('a server that sent H.264 gets an H.264 window from the start the next time', async (t) => {
  const [x, wrapper, serve] = await Promise.all([
    startXvfb(),
    ffplayWrapper(),
    startServe({ args: ['--no-audio', '--video-codec', 'h264', '--encoder', 'libx264', '--bitrate', '500'] }),
  ]);
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true }), rm(serve.configDir, { recursive: true, force: true })]);
  });
  const args = ['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--no-audio', '--json', '--duration', '2s'];
  /**
   * One watch of --duration 2s. `expect` is how many players this run should start: the replacing one
   * may be spawned (and the wrapper's line written) a little after the first-frame event, so wait for
   * that many lines before reading command lines; the final count is taken after watch has exited,
   * when no more can be started, so a run that starts too many is still caught.
   */
  const runOnce = async (expect: number) => {
    const before = (await wrapper.log()).length;
    const watch = spawnCli(args, { env: { ...x.env, ...wrapper.env } });
    t.teardown(() => watch.destroy());
    await watch.waitForEvent((e) => e.event === 'first-media' && e.kind === 'video', 15_000, 'first video frame');
    const seen = await waitFor(
      async () => {
        const l = (await wrapper.log()).slice(before);
        return l.length >= expect ? l : null;
      },
      5000,
      20,
      `${expect} ffplay(s) started`,
    ).catch(async () => (await wrapper.log()).slice(before));
    const cmdlines = seen.map(Number).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0');
      } catch {
        return null; // gone: the replaced one
      }
    });
    const exit = await Promise.race([watch.exited, new Promise<null>((r) => setTimeout(r, 10_000, null).unref())]);
    t.equal(exit?.code, 0, 'watch ran its --duration and exited 0');
    return { pids: (await wrapper.log()).slice(before).map(Number), cmdlines };
  };

  const first = await runOnce(2);
  t.equal(first.pids.length, 2, `first time: the MJPEG window started early, then the H.264 one (${first.pids.join(', ')})`);
  t.equal(first.cmdlines[0], null, 'the MJPEG one is gone');
  const remembered = JSON.parse(await readFile(path.join(serve.configDir, 'window-codecs.json'), 'utf8')) as Record<string, string>;
  t.same(remembered, { [`127.0.0.1:${serve.port}`]: 'h264' }, 'the codec is remembered for this server');

  const second = await runOnce(1);
  t.equal(second.pids.length, 1, `second time: one window (${second.pids.join(', ')})`);
  const argv = second.cmdlines[0];
  t.ok(argv && argv[argv.indexOf('-f') + 1] === 'h264', `started early for H.264: ${argv?.slice(-4).join(' ')}`);
});

t.test('a server restarted with another codec while watch runs: the next launch starts that codec', async (t) => {
  const [x, wrapper] = await Promise.all([startXvfb(), ffplayWrapper()]);
  const first = await startServe({ args: ['--no-audio'] });
  t.teardown(async () => {
    await Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true })]);
    await rm(first.configDir, { recursive: true, force: true });
  });
  const watch = spawnCli(localWatchArgs(first, '--no-audio', '--json', ...WINDOW_AT_ORIGIN), { env: { ...x.env, ...wrapper.env } });
  t.teardown(() => watch.destroy());
  await watch.waitForEvent((e) => e.event === 'first-media' && e.kind === 'video', 15_000, 'MJPEG video');
  await first.stop();
  // The same port, config dir and key; H.264 this time. watch reconnects by itself and reopens its window.
  const second = await startServe({
    port: first.port,
    configDir: first.configDir,
    args: ['--no-audio', '--video-codec', 'h264', '--encoder', 'libx264', '--bitrate', '500'],
  });
  t.teardown(() => second.proc.destroy());
  const codecs = path.join(first.configDir, 'window-codecs.json');
  const remembered = await waitFor(
    async () => ((await readFile(codecs, 'utf8').catch(() => '')).includes('h264') ? readFile(codecs, 'utf8') : null),
    20_000,
    100,
    'h264 remembered for this server',
  );
  t.match(JSON.parse(remembered), { [`127.0.0.1:${first.port}`]: 'h264' }, 'remembered for this server');

  await watch.stop('SIGTERM', 5000);
  await second.stop();
  // The next launch, with nothing listening yet (--wait): the one player it can have started is the
  // early window, before any connection, and it must be for the codec remembered.
  const before = (await wrapper.log()).length;
  const next = spawnCli(localWatchArgs(first, '--wait', '--no-audio', '--json', ...WINDOW_AT_ORIGIN), { env: { ...x.env, ...wrapper.env } });
  t.teardown(() => next.destroy());
  const [pid] = await waitFor(
    async () => {
      const l = (await wrapper.log()).slice(before);
      return l.length ? l : null;
    },
    10_000,
    20,
    'the next watch started a player',
  );
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  t.equal(argv[argv.indexOf('-f') + 1], 'h264', `the next launch starts its window for H.264 before it connects: ${argv.slice(-4).join(' ')}`);
});

t.test('SIGTERM while watch is still starting (its player just spawned): exit 143, player and overlay temp dir gone', async (t) => {
  const [x, wrapper, port] = await Promise.all([startXvfb(), ffplayWrapper('sigterm-parent'), freePort()]);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ls-early-tmp-'));
  t.teardown(() => Promise.all([x.close(), rm(wrapper.dir, { recursive: true, force: true }), rm(tmp, { recursive: true, force: true })]));
  // Its own TMPDIR, where the overlay's temp dir is made, so what is left there is watch's alone.
  const watch = spawnCli(localWatchArgs({ port, configDir: tmp }, '--key', randomBytes(16).toString('base64url'), '--wait', '--no-audio'), {
    env: { ...x.env, ...wrapper.env, TMPDIR: tmp },
  });
  t.teardown(() => watch.destroy());
  const exit = await Promise.race([watch.exited, new Promise<null>((r) => setTimeout(r, 10_000, null).unref())]);
  t.same(exit, { code: 143, signal: null }, 'exit 143 (terminated), by watch itself rather than by the signal');
  const [pid] = (await wrapper.log()).map(Number);
  t.ok(pid, 'watch had started its player');
  await waitFor(async () => !pidAlive(pid!), 3000, 20, 'the player gone');
  t.same(
    (await readdir(tmp)).filter((f) => f.startsWith('lanstream-overlay-')),
    [],
    'no overlay temp dir left',
  );
});
