/**
 * e2e: `lanstream watch --record` as a script runs it (compiled CLI, real serve with the ffmpeg test
 * source, no window): --duration ends it with exit 0 on time, and the file has both streams with the
 * recorded duration — also when the watch process is killed with SIGKILL, because the recorder's
 * ffmpeg then sees EOF and finishes the file itself.
 */
import t, { type Test } from 'tap';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { descendants, localWatchArgs, makeConfigDir, runCli, serveArgs, spawnCli, startServe } from '../helpers/cli.js';
import { lastPacketS, probeMedia } from '../helpers/media-probe.js';
import { freePort, hasCommand, pidAlive, sleep, waitFor } from '../helpers/process.js';

const skip = !hasCommand('ffprobe') && 'ffprobe missing';

async function setup(t: Test) {
  const srv = await startServe({ args: ['--keep-warm'] });
  t.teardown(() => srv.proc.destroy());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return { srv, file: path.join(dir, 'rec.mkv') };
}

t.test('watch --record --duration 4s --no-playback: exit 0 on time, mjpeg + audio, duration 4 s ± 1 s', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  const proc = spawnCli(['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, '--duration', '4s', '--json']);
  t.teardown(() => proc.destroy());
  await proc.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
  const liveAtMs = Date.now();
  const timer = setTimeout(() => proc.signal('SIGKILL'), 12_000);
  const { code } = await proc.exited;
  clearTimeout(timer);
  const afterLiveMs = Date.now() - liveAtMs;
  t.equal(code, 0, 'exit 0 when --duration elapsed');
  t.ok(afterLiveMs >= 3900 && afterLiveMs <= 6000, `exited ${afterLiveMs} ms after going live (4 s, +2 s allowed)`);
  const recording = proc.events().find((e) => e.event === 'recording');
  t.ok(recording && Number(recording.framesWritten) > 60, `--json reports the recording (${recording?.framesWritten} frames)`);

  const probe = await probeMedia(file);
  t.same(
    probe.streams.map((s) => `${s.codecType}:${s.codecName}`),
    ['video:mjpeg', 'audio:pcm_s16le'],
    'an MJPEG video stream and an audio stream',
  );
  t.ok(probe.durationS !== null && Math.abs(probe.durationS - 4) <= 1, `file lasts ${probe.durationS} s for 4 s of recording`);
});

t.test('kill -9 of the watch process: the file is finished by ffmpeg and lasts as long as the recording ran', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  const proc = spawnCli(['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, '--json']);
  t.teardown(() => proc.destroy());
  await proc.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
  const liveAtMs = Date.now();
  const recorderPid = (await waitFor(() => descendants(proc.pid).find((p) => p.comm === 'ffmpeg'), 5000, 50, 'recorder ffmpeg')).pid;
  // The recorder is in its own process group, so it outlives the SIGKILL: stop it if the test fails.
  t.teardown(() => {
    if (pidAlive(recorderPid)) process.kill(recorderPid, 'SIGKILL');
  });
  await sleep(3000);
  proc.signal('SIGKILL');
  const recordedS = (Date.now() - liveAtMs) / 1000;
  const { signal } = await proc.exited;
  t.equal(signal, 'SIGKILL', 'watch died by SIGKILL');
  await waitFor(() => !pidAlive(recorderPid), 5000, 50, 'recorder ffmpeg finishing after EOF');

  const probe = await probeMedia(file);
  t.same(
    probe.streams.map((s) => s.codecType),
    ['video', 'audio'],
    'both streams',
  );
  t.ok(probe.durationS !== null && Math.abs(probe.durationS - recordedS) <= 1, `file lasts ${probe.durationS} s for ${recordedS.toFixed(2)} s of recording`);
});

t.test('serve --record --duration 4s: the server records its own stream (mjpeg + audio, ~4 s), exit 0', { skip }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-serve-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'served.mkv');
  // Bound to one address that is not 127.0.0.1: the recorder dials where serve listens (it used to
  // dial 127.0.0.1 and fail the start with exit 3).
  const port = await freePort();
  const args = [...serveArgs({ port, configDir: dir, size: '320x240' }), '--host', '127.0.0.2'];
  const proc = spawnCli([...args, '--record', file, '--duration', '4s', '--json', '--max-viewers', '1']);
  t.teardown(() => proc.destroy());
  await proc.waitForEvent((e) => e.event === 'recording', 10_000, 'recording event');
  // --max-viewers 1 is one person: the recorder does not take that place (it used to: server-full).
  const key = (await readFile(path.join(dir, 'access-key'), 'utf8')).trim();
  const viewer = await runCli(['watch', '127.0.0.2', '--port', String(port), '--key', key, '--config-dir', dir, '--no-playback', '--duration', '1s']);
  t.equal(viewer.code, 0, `a viewer gets in next to the recorder with --max-viewers 1 (${viewer.stderr.trim().split('\n').at(-1) ?? ''})`);
  const { code } = await proc.exited;
  t.equal(code, 0, 'exit 0 when --duration elapsed');
  const probe = await probeMedia(file);
  t.same(
    probe.streams.map((s) => `${s.codecType}:${s.codecName}`),
    ['video:mjpeg', 'audio:pcm_s16le'],
    'both streams',
  );
  t.ok(probe.durationS !== null && probe.durationS >= 2.5 && probe.durationS <= 4.5, `file lasts ${probe.durationS} s (4 s minus start-up)`);
});

t.test('watch --record whose ffmpeg does not finish the file: exit 1 saying so, not 0', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  // Stands in for a full disk at the end or a slow one past the grace period: the recording's ffmpeg
  // runs as usual and then exits 1.
  const wrapper = path.join(path.dirname(file), 'ffmpeg');
  await writeFile(wrapper, '#!/bin/sh\ncase "$*" in *.mkv*) ffmpeg "$@"; exit 1 ;; esac\nexec ffmpeg "$@"\n');
  await chmod(wrapper, 0o755);
  const proc = spawnCli([
    'watch',
    srv.url,
    '--config-dir',
    srv.configDir,
    '--no-playback',
    '--record',
    file,
    '--ffmpeg',
    wrapper,
    '--duration',
    '2s',
    '--json',
  ]);
  t.teardown(() => proc.destroy());
  const { code } = await proc.exited;
  t.equal(code, 1, 'exit 1');
  const error = proc.events().find((e) => e.event === 'error');
  t.match(
    error,
    { code: 'LS_ERR_RECORD_FAILED', message: /did not finish .*rec\.mkv \(exit 1.*its end may be missing/ },
    'the error says the file may be incomplete',
  );
  t.equal(proc.events().at(-1)?.event, 'stopped', 'stopped is still the last line');
});

t.test('watch --record onto a full disk: exit 1, and the one line (also with --quiet) says the disk is full', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  // /dev/full fails every write with ENOSPC, as a full disk does (no tmpfs mount needed). The
  // recorder's `-n` (never replace a file) would refuse /dev/full, which exists: `-y` for it here.
  const wrapper = path.join(path.dirname(file), 'ffmpeg');
  await writeFile(
    wrapper,
    '#!/bin/bash\ncase "$*" in *.mkv*) a=(); for x in "${@:1:$#-1}"; do [ "$x" = -n ] && x=-y; a+=("$x"); done; exec ffmpeg "${a[@]}" /dev/full ;; esac\nexec ffmpeg "$@"\n',
  );
  await chmod(wrapper, 0o755);
  const args = ['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, '--ffmpeg', wrapper, '--duration', '10s', '--quiet'];
  const r = await runCli(args, { timeoutMs: 15_000 });
  t.equal(r.code, 1, 'exit 1');
  t.ok(r.elapsedMs < 8000, `ends at the failure, not at --duration (${r.elapsedMs} ms)`);
  t.match(
    r.stderr.trim().split('\n').at(-1),
    /stopped writing .*rec\.mkv \(exit 1: .*No space left on device\) \[LS_ERR_RECORD_FAILED\]$/,
    'the cause is in the line',
  );
});

t.test('watch --record whose directory is deleted while it records: exit 1, not 0 with no file', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  const proc = spawnCli(['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, '--duration', '3s', '--json']);
  t.teardown(() => proc.destroy());
  await proc.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
  // ffmpeg opens the file once it has probed its inputs (~1 s in); deleted before that, ffmpeg itself fails.
  await waitFor(() => existsSync(file), 5000, 50, 'the recording file');
  await sleep(500);
  await rm(path.dirname(file), { recursive: true, force: true });
  const { code } = await proc.exited;
  t.equal(code, 1, 'exit 1');
  t.match(
    proc.events().find((e) => e.event === 'error'),
    { code: 'LS_ERR_RECORD_FAILED', message: /rec\.mkv is no longer there/ },
    'the error says so',
  );
});

t.test('the server restarts without its sound during watch --record: the file keeps growing and holds the picture', { skip }, async (t) => {
  const port = await freePort();
  const configDir = await makeConfigDir();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'rec.mkv');
  const first = await startServe({ port, configDir, args: ['--size', '320x240', '--keep-warm'] });
  t.teardown(() => first.proc.destroy());
  const proc = spawnCli(localWatchArgs(first, '--no-playback', '--record', file, '--duration', '10s', '--json'));
  t.teardown(() => proc.destroy());
  await proc.waitForEvent((e) => e.event === 'live', 10_000, 'live event');
  await sleep(2000);
  await first.stop();
  // The same server without sound: as a microphone that stopped, the recorder's audio input gets nothing.
  const second = await startServe({ port, configDir, args: ['--size', '320x240', '--keep-warm', '--no-audio'] });
  t.teardown(() => second.proc.destroy());
  const lives = () => proc.events().filter((e) => e.event === 'state' && e.state === 'live').length;
  await waitFor(() => lives() === 2, 10_000, 50, 'live again');
  await sleep(1500);
  const sizeBefore = statSync(file).size;
  await sleep(3000);
  const sizeAfter = statSync(file).size;
  // ffmpeg waited for sound that never came: the file stood still (and 70 s later at 720p, the recording failed).
  t.ok(sizeAfter > sizeBefore + 300_000, `the file grew while the server sent no sound (${sizeBefore} → ${sizeAfter} bytes)`);
  const { code } = await proc.exited;
  t.equal(code, 0, 'exit 0 at --duration');
  const probe = await probeMedia(file);
  const lastVideo = lastPacketS(probe, 'video');
  const lastAudio = lastPacketS(probe, 'audio');
  // 10 s minus the restart (cut out when over 3 s): ~6 s.
  t.ok(lastVideo > 5, `the picture runs to ${lastVideo.toFixed(2)} s`);
  t.ok(lastAudio > lastVideo - 1, `the sound track (silence after the restart) runs to ${lastAudio.toFixed(2)} s too`);
});

t.test('serve --record "" (an unset shell variable) is a usage error, not a serve that records nothing', async (t) => {
  const args = serveArgs({ port: await freePort(), configDir: await makeConfigDir() }, '--record', '', '--duration', '3s');
  const r = await runCli(args, { timeoutMs: 10_000 });
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, /Invalid --record: ''/, 'the error names the flag');
});

t.test('watch --record onto an existing file: --overwrite replaces it, an empty file is reused without it', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  for (const [what, before, extra] of [
    ['--overwrite over an earlier recording', 'an earlier recording', ['--overwrite']],
    ['an empty file, no flag', '', []],
  ] as const) {
    await writeFile(file, before);
    const r = await runCli(['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, ...extra, '--duration', '3s'], {
      timeoutMs: 20_000,
    });
    t.equal(r.code, 0, `${what}: exit 0`);
    const probe = await probeMedia(file);
    t.same(
      probe.streams.map((s) => s.codecType),
      ['video', 'audio'],
      `${what}: the file is now the new recording`,
    );
  }
});

t.test('watch --record: a file that appears between the check and the first frame is left as it is (two recorders, one name)', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'rec.mkv');
  const [port, configDir] = await Promise.all([freePort(), makeConfigDir()]);
  const key = randomBytes(16).toString('base64url');
  // No server yet: watch checks --record now (no file: fine) and records only once the stream comes.
  const watch = spawnCli(localWatchArgs({ port, configDir }, '--key', key, '--wait', '--no-playback', '--record', file, '--duration', '15s', '--json'));
  t.teardown(() => watch.destroy());
  await watch.waitForEvent((e) => e.event === 'state', 10_000, 'watch past its checks, connecting');
  // Meanwhile another program (another recorder given the same name) writes that file.
  await writeFile(file, 'a recording made meanwhile');
  const serve = await startServe({ port, configDir, args: ['--key', key] });
  t.teardown(() => serve.proc.destroy());
  const exit = await Promise.race([watch.exited, new Promise<null>((r) => setTimeout(r, 20_000, null).unref())]);
  t.equal(exit?.code, 1, exit ? 'exit 1: the recording failed' : 'watch did not exit within 20 s');
  t.match(watch.stderr, /rec\.mkv appeared after lanstream had checked it .*\[LS_ERR_RECORD_FAILED\]/, 'the one line says what happened');
  t.equal(await readFile(file, 'utf8'), 'a recording made meanwhile', 'the other file is untouched (ffmpeg -y had truncated it)');
});

t.test('watch --record: a second recorder given the same empty file is refused at once (exit 2); the first records it', { skip }, async (t) => {
  const { srv, file } = await setup(t);
  await writeFile(file, ''); // an empty file is reused without --overwrite, so both used to pass the check
  const first = spawnCli(['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, '--duration', '4s', '--json']);
  t.teardown(() => first.destroy());
  await first.waitForEvent((e) => e.event === 'live', 10_000, 'first recorder live');
  const second = await runCli(['watch', srv.url, '--config-dir', srv.configDir, '--no-playback', '--record', file, '--duration', '3s'], { timeoutMs: 10_000 });
  t.equal(second.code, 2, 'the second: exit 2, before it connects');
  t.match(second.stderr, /Invalid --record: .*rec\.mkv .*another lanstream records to it/, 'the one line says why');
  const { code } = await first.exited;
  t.equal(code, 0, 'the first: exit 0 at --duration');
  const probe = await probeMedia(file);
  t.same(
    probe.streams.map((s) => s.codecType),
    ['video', 'audio'],
    "the file is the first recorder's, whole",
  );
  t.ok(probe.durationS !== null && Math.abs(probe.durationS - 4) <= 1, `file lasts ${probe.durationS} s for 4 s of recording`);
  t.notOk(existsSync(`${file}.lock`), 'the claim is gone once the first exited');
});

t.test('serve --record onto an earlier recording is a usage error (exit 2) that leaves it as it was', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-e2e-record-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'earlier.mkv');
  await writeFile(file, 'an hour of video');
  const args = serveArgs({ port: await freePort(), configDir: await makeConfigDir() }, '--record', file, '--duration', '3s');
  const r = await runCli(args, { timeoutMs: 10_000 });
  t.equal(r.code, 2, 'exit 2');
  t.match(r.stderr, /Invalid --record: .*earlier\.mkv .*pass --overwrite to replace it/, 'the message says how to replace it');
  t.equal(await readFile(file, 'utf8'), 'an hour of video', 'the earlier recording is untouched');
});

t.test('serve --record to a wrong extension is a usage error before anything starts', async (t) => {
  const proc = spawnCli(['serve', '--source', 'test', '--port', String(await freePort()), '--record', '/tmp/x.mp4']);
  const { code } = await proc.exited;
  t.equal(code, 2);
});
