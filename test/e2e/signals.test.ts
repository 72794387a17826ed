/**
 * e2e: how serve and watch end when asked to — Ctrl-C (SIGINT) exits 130, SIGTERM 143, SIGHUP 129, each
 * after an orderly close that leaves none of their children (ffmpeg, ffplay) behind; a second Ctrl-C during
 * a slow close forces the exit at once. And `watch --wait` started before the server finds it
 * once it is up. Real processes; children are found with ps and checked by PID.
 */
import t from 'tap';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  LANSTREAM_BIN,
  descendants,
  makeConfigDir,
  runCommand,
  spawnCli,
  startServe,
  type CliProcess,
  type ProcInfo,
  type ServeHandle,
} from '../helpers/cli.js';
import { freePort, hasCommand, killAll, pidAlive, sleep, waitFor } from '../helpers/process.js';
import { spawnCliInPty } from '../helpers/pty.js';
import { startXvfb, type XvfbDisplay } from '../helpers/xvfb.js';

t.teardown(() => killAll());

const viewerDir = await makeConfigDir();
t.teardown(() => rm(viewerDir, { recursive: true, force: true }));

async function serveWithViewer(t: { teardown(fn: () => unknown): void }): Promise<{ serve: ServeHandle; viewer: CliProcess; ffmpeg: ProcInfo[] }> {
  const serve = await startServe();
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  const viewer = spawnCli(['watch', serve.url, '--no-playback', '--json', '--config-dir', viewerDir]);
  t.teardown(() => viewer.destroy());
  await viewer.waitForEvent((e) => e.event === 'stats' && e.state === 'live', 15_000, 'live viewer');
  // Capture runs only while someone watches: now there is one ffmpeg per medium.
  const ffmpeg = await waitFor(
    () => {
      const found = descendants(serve.proc.pid).filter((p) => p.comm === 'ffmpeg');
      return found.length === 2 ? found : null;
    },
    5000,
    50,
    'two ffmpeg children of serve',
  );
  return { serve, viewer, ffmpeg };
}

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  t.test(`${sig} on serve: exit ${code}, ffmpeg stopped, the viewer told why`, async (t) => {
    const { serve, viewer, ffmpeg } = await serveWithViewer(t);
    const sentAtMs = Date.now();
    const { code: exitCode } = await serve.stop(sig, 5000);
    t.equal(exitCode, code, `exit ${code} after ${Date.now() - sentAtMs} ms`, { stderr: serve.proc.stderr.slice(-1000) });
    for (const p of ffmpeg) t.notOk(pidAlive(p.pid), `ffmpeg pid ${p.pid} is gone`);
    await viewer.waitForEvent((e) => e.event === 'state' && e.state === 'reconnecting', 3000, 'viewer reconnecting');
    const state = viewer.events().find((e) => e.event === 'state' && e.state === 'reconnecting');
    t.match(String(state?.detail), /shut(ting)? ?down/i, `the viewer heard that the server is shutting down: ${state?.detail}`);
  });
}

const noDisplay = ['Xvfb', 'ffplay'].filter((c) => !hasCommand(c));

/** A private display and a serve for one watch, both ended by the test's teardown. */
async function displayAndServe(t: { teardown(fn: () => unknown): void }): Promise<{ xvfb: XvfbDisplay; serve: ServeHandle }> {
  const xvfb = await startXvfb();
  t.teardown(() => xvfb.close());
  const serve = await startServe();
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  return { xvfb, serve };
}
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  t.test(`${sig} on watch: exit ${code} and its ffplay window is gone`, { skip: noDisplay.length ? `missing ${noDisplay.join(', ')}` : false }, async (t) => {
    const { xvfb, serve } = await displayAndServe(t);
    const watch = spawnCli(['watch', serve.url, '--no-audio', '--json', '--config-dir', viewerDir], { env: xvfb.env });
    t.teardown(() => watch.destroy());
    await watch.waitForEvent((e) => e.event === 'live', 15_000, 'live');
    const ffplay = await waitFor(() => descendants(watch.pid).find((p) => p.comm === 'ffplay'), 5000, 50, 'ffplay child of watch');
    const { code: exitCode } = await watch.stop(sig, 5000);
    t.equal(exitCode, code, `exit ${code}`, { stderr: watch.stderr.slice(-1000) });
    t.notOk(pidAlive(ffplay.pid), `ffplay pid ${ffplay.pid} is gone`);
    t.match(watch.events().at(-1), { event: 'stopped', exitCode: code }, `--json "stopped" says ${code}`);
  });
}

t.test('a second Ctrl-C during a slow close forces the exit at once', async (t) => {
  const serve = await startServe({ insecure: true });
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  // A peer that never answers the server's goodbye (half-open, silent) holds the graceful close for ~1 s.
  const stuck = net.connect({ host: '127.0.0.1', port: serve.port, allowHalfOpen: true });
  t.teardown(() => stuck.destroy());
  stuck.on('error', () => undefined);
  await new Promise<void>((resolve) => stuck.once('connect', () => resolve()));
  await sleep(200);
  serve.proc.signal('SIGINT');
  await sleep(150);
  t.ok(serve.proc.running, 'still closing 150 ms after the first Ctrl-C');
  const secondAtMs = Date.now();
  serve.proc.signal('SIGINT');
  const { code } = await serve.proc.exited;
  const afterMs = Date.now() - secondAtMs;
  t.equal(code, 130, 'exit 130');
  t.ok(afterMs < 500, `exited ${afterMs} ms after the second Ctrl-C`);
  t.match(serve.proc.stderr, /lanstream: forced exit/, 'says it forced the exit');
});

t.test('watch --wait started before serve connects once serve is up', async (t) => {
  const port = await freePort();
  const key = randomBytes(16).toString('base64url');
  const watch = spawnCli(['watch', '127.0.0.1', '--port', String(port), '--key', key, '--wait', '--no-playback', '--json', '--config-dir', viewerDir]);
  t.teardown(() => watch.destroy());
  await sleep(1500);
  t.ok(watch.running, 'watch --wait is still waiting 1.5 s later (nothing listens yet)');
  const serve = await startServe({ port, args: ['--key', key] });
  const upAtMs = Date.now();
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  await watch.waitForEvent((e) => e.event === 'live', 10_000, 'live');
  t.pass(`live ${Date.now() - upAtMs} ms after serve was listening`);
  await watch.waitForEvent((e) => e.event === 'stats' && e.state === 'live' && Number(e.fps) > 20, 5000, 'full-rate stats');
  t.pass('receives the stream at full rate');
  const { code } = await watch.stop('SIGINT');
  t.equal(code, 130, 'Ctrl-C ends it with 130');
});

t.test('the reader of --json output goes away (`| head -1`): the command ends with 141 instead of running on unread', async (t) => {
  const serve = await startServe();
  t.teardown(async () => {
    await serve.proc.destroy();
    await rm(serve.configDir, { recursive: true, force: true });
  });
  const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(LANSTREAM_BIN)}`;
  // A real shell pipeline, as a script writes it; PIPESTATUS[0] is lanstream's own exit status.
  // `timeout` bounds a lanstream that never notices (the old code: status=137, killed after 15 s).
  const pipeline = (args: string) => `timeout -s KILL 15 ${cli} ${args} --json | head -1 >/dev/null; echo "status=\${PIPESTATUS[0]}"`;
  const [watch, ownServe] = await Promise.all([
    runCommand('bash', ['-c', pipeline(`watch '${serve.url}' --no-playback --config-dir ${JSON.stringify(viewerDir)}`)], { cwd: viewerDir, timeoutMs: 20_000 }),
    runCommand('bash', ['-c', pipeline(`serve --source test --port ${await freePort()} --config-dir ${JSON.stringify(viewerDir)}`)], {
      cwd: viewerDir,
      timeoutMs: 20_000,
    }),
  ]);
  t.match(watch.stdout, /status=141/, 'watch --json | head -1: watch exits 141', { stderr: watch.stderr.slice(-600) });
  t.match(ownServe.stdout, /status=141/, 'serve --json | head -1: serve exits 141', { stderr: ownServe.stderr.slice(-600) });
});

/** serve --json whose start-up is slow enough to be interrupted: a fresh config dir, H.264 (the encoder probe). */
async function startingServe(t: { teardown(fn: () => unknown): void }, ...extra: string[]): Promise<{ proc: CliProcess; configDir: string }> {
  const configDir = await makeConfigDir();
  const proc = spawnCli([
    'serve',
    '--source',
    'test',
    '--size',
    '320x240',
    '--host',
    '127.0.0.1',
    '--port',
    String(await freePort()),
    '--config-dir',
    configDir,
    '--json',
    ...extra,
  ]);
  t.teardown(() => proc.destroy());
  return { proc, configDir };
}

function lastEvent(proc: CliProcess): unknown {
  return proc.events().at(-1);
}

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  t.test(`${sig} while serve starts (before anything is printed): exit ${code}, and --json still ends with stopped`, async (t) => {
    const { proc, configDir } = await startingServe(t, '--video-codec', 'h264');
    // The certificate is written early in start-up, before the H.264 encoder probe: serve is starting, not yet listening.
    await waitFor(() => existsSync(path.join(configDir, 'cert.pem')), 15_000, 20, 'cert.pem written');
    t.notOk(
      proc.events().some((e) => e.event === 'ready'),
      'not ready yet',
    );
    const { code: exitCode, signal } = await proc.stop(sig, 15_000);
    t.equal(exitCode, code, `exit ${code}`, { signal, stdout: proc.stdout, stderr: proc.stderr.slice(-1500) });
    t.match(lastEvent(proc), { event: 'stopped', exitCode: code }, 'the last line is stopped');
  });
}

t.test('SIGINT during the start-up device check: exit 130, stopped last, the check ffmpeg children gone', async (t) => {
  const { proc } = await startingServe(t);
  await proc.waitForEvent((e) => e.event === 'capture' && e.state === 'starting', 15_000, 'preflight capture starting');
  const children = descendants(proc.pid).filter((p) => p.comm === 'ffmpeg');
  const { code } = await proc.stop('SIGINT', 15_000);
  t.equal(code, 130, 'exit 130', { stdout: proc.stdout, stderr: proc.stderr.slice(-1500) });
  t.match(lastEvent(proc), { event: 'stopped', exitCode: 130 }, 'the last line is stopped');
  for (const p of children) t.notOk(pidAlive(p.pid), `ffmpeg pid ${p.pid} is gone`);
});

t.test('SIGINT during the device check of serve --no-video: exit 130, stopped last (the missing probe is not closed)', async (t) => {
  const { proc } = await startingServe(t, '--no-video');
  await proc.waitForEvent((e) => e.event === 'capture' && e.state === 'starting', 15_000, 'preflight capture starting');
  const { code } = await proc.stop('SIGINT', 15_000);
  t.equal(code, 130, 'exit 130', { stdout: proc.stdout, stderr: proc.stderr.slice(-1500) });
  t.match(lastEvent(proc), { event: 'stopped', exitCode: 130 }, 'the last line is stopped');
  t.notMatch(proc.stderr, /TypeError/, 'no TypeError from closing the video probe that was never made');
});

t.test('SIGTERM on a running serve --video-codec h264 (execa loaded): stopped is still the last line', async (t) => {
  const { proc } = await startingServe(t, '--video-codec', 'h264');
  await proc.waitForEvent((e) => e.event === 'ready', 20_000, 'ready');
  const { code } = await proc.stop('SIGTERM', 15_000);
  t.equal(code, 143, 'exit 143', { stdout: proc.stdout.slice(-1000), stderr: proc.stderr.slice(-1500) });
  t.match(lastEvent(proc), { event: 'stopped', exitCode: 143 }, 'the last line is stopped');
});

t.test('SIGHUP (terminal closed) during serve --json: an orderly close, exit 129, stopped last; --help lists 129', async (t) => {
  const { proc } = await startingServe(t);
  await proc.waitForEvent((e) => e.event === 'ready', 20_000, 'ready');
  const { code, signal } = await proc.stop('SIGHUP', 10_000);
  t.equal(code, 129, `exit 129 (code ${code}, signal ${signal})`);
  t.match(lastEvent(proc), { event: 'stopped', exitCode: 129 }, 'the last line is stopped');
  for (const args of [['--help'], ['serve', '--help'], ['watch', '--help']]) {
    const help = spawnCli(args);
    await help.exited;
    t.match(help.stdout + help.stderr, /^ {2}129 +hung up \(SIGHUP/m, `lanstream ${args.join(' ')} lists 129`);
  }
});

t.test(
  'Ctrl-C typed at a terminal (raw mode, so a key, not a signal): exit 130, ffplay gone, "stopped" 130',
  { skip: [...noDisplay, ...['script'].filter((c) => !hasCommand(c))].length ? 'missing Xvfb, ffplay or script' : false },
  async (t) => {
    const { xvfb, serve } = await displayAndServe(t);
    // On a pseudo-terminal the keys are read in raw mode, where Ctrl-C arrives as the byte 0x03.
    const watch = spawnCliInPty(['watch', serve.url, '--no-audio', '--json', '--config-dir', viewerDir], { env: xvfb.env });
    t.teardown(() => watch.destroy());
    await watch.waitForOutput(/"event":"live"/, 15_000);
    const inner = watch.innerPid();
    const ffplay = await waitFor(() => (inner ? descendants(inner).find((p) => p.comm === 'ffplay') : undefined), 5000, 50, 'ffplay child of watch');
    watch.write('\x03');
    const exit = await Promise.race([watch.exited, new Promise<null>((r) => setTimeout(r, 5000, null).unref())]);
    t.equal(exit?.code, 130, exit ? 'exit 130' : 'watch did not end within 5 s');
    t.match(watch.output, /"event":"stopped"[^\n]*"exitCode":130/, '--json "stopped" says 130 (the shutdown ran)');
    t.notOk(pidAlive(ffplay.pid), `ffplay pid ${ffplay.pid} is gone`);
  },
);
