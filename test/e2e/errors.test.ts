/**
 * e2e: every way `lanstream serve` / `lanstream watch` can fail ends with one line on stderr that
 * says what to do, and the exit code documented in `--help` (src/cli/exit-codes.ts) — scripts
 * rely on both. Real CLI processes, real ffmpeg, 127.0.0.1 only.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorLines, makeConfigDir, runCli, serveArgs, spawnCli, startServe, type CliResult, type ServeHandle } from '../helpers/cli.js';
import { freePort, hasCommand, killAll } from '../helpers/process.js';

t.teardown(() => killAll());

const configDir = await makeConfigDir();
t.teardown(() => rm(configDir, { recursive: true, force: true }));

/** Exactly one `lanstream:` error line that contains every phrase, and the exit code. */
function expectError(t: Test, res: CliResult, code: number, phrases: (string | RegExp)[]): void {
  const lines = errorLines(res.stderr).filter((l) => !l.startsWith('lanstream: WARNING'));
  t.equal(res.code, code, `exit code ${code}`, { signal: res.signal, elapsedMs: res.elapsedMs, stderr: res.stderr.slice(-1500) });
  t.equal(lines.length, 1, 'one error line', { lines });
  const line = lines[0] ?? '';
  for (const p of phrases) {
    if (typeof p === 'string') t.ok(line.includes(p), `message says "${p}"`, { line });
    else t.match(line, p, `message matches ${p}`);
  }
  t.match(line, / \[LS_ERR_[A-Z_]+\]$/, 'line ends with the error code');
  // Said once: not also as a log line (JSON when stderr is not a terminal) before it.
  const message = line.replace(/^lanstream: /, '').replace(/ \[LS_ERR_[A-Z_]+\]$/, '');
  const said = res.stderr.split('\n').filter((l) => l.includes(message.slice(0, 60)));
  t.equal(said.length, 1, 'the message appears once on stderr', { said });
}

t.test('bad flag values and arguments are usage errors (exit 2) that name the flag and what was expected', async (t) => {
  const cases: [string[], string[]][] = [
    [
      ['serve', '--port', '70000'],
      ['Invalid --port: 70000', '1–65535'],
    ],
    [
      ['serve', '--size', '12x'],
      ['Invalid --size: 12x', 'WIDTHxHEIGHT'],
    ],
    [
      ['serve', '--fps', '0'],
      ['Invalid --fps: 0', '1–240'],
    ],
    [
      ['serve', '--audio-codec', 'opus', '--audio-bitrate', '1000'],
      ['Invalid --audio-bitrate: 1000', '6–510'],
    ],
    [
      ['serve', '--audio-packet-ms', '7'],
      ["'--audio-packet-ms <ms>' argument '7' is invalid", '5, 10, 20'],
    ],
    [
      ['watch', '127.0.0.1', '--volume', '101'],
      ['Invalid --volume: 101', '0–100'],
    ],
    [
      ['serve', '--frobnicate'],
      ["Unknown option '--frobnicate'", 'lanstream serve --help'],
    ],
    [['watch'], ["Missing required argument 'target'"]],
    [
      ['watch', '127.0.0.1', '--no-video', '--no-audio'],
      ['Nothing to watch', 'drop one of them'],
    ],
    [['watch', '127.0.0.1', '--duration', 'soon'], ['Invalid --duration: soon']],
  ];
  // One after the other: nine Node starts at once on a busy 2-core machine took over 10 s.
  for (const [args, phrases] of cases) {
    const res = await runCli([...args, '--config-dir', configDir], { timeoutMs: 20_000 });
    t.test(args.join(' '), async (t) => expectError(t, res, 2, phrases));
  }
});

t.test('flag combinations that cannot work are usage errors before serve listens', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ls-combo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cases: [string[], string[]][] = [
    [
      ['--record', path.join(dir, 'x.mkv'), '--video-codec', 'h264'],
      ['Invalid --record', 'MJPEG video', '--no-video'],
    ],
    [
      ['--encoder', 'foo'],
      ['Invalid --encoder: foo', 'only with --video-codec h264'],
    ],
    [
      ['--encoder', 'libx264', '--video-codec', 'mjpeg'],
      ['Invalid --encoder: libx264', 'drop --encoder'],
    ],
    [
      ['--gop', '10'],
      ['Invalid --gop: 10', 'only with --video-codec h264'],
    ],
    [['--key', 'abcdefgh'], ['Invalid --key: 8 characters (expected 16–256']],
  ];
  for (const [extra, phrases] of cases) {
    const args = [
      'serve',
      '--source',
      'test',
      '--host',
      '127.0.0.1',
      '--port',
      String(await freePort()),
      '--no-preflight',
      '--config-dir',
      configDir,
      ...extra,
    ];
    const res = await runCli(args, { timeoutMs: 20_000 });
    t.test(extra.join(' '), async (t) => {
      expectError(t, res, 2, phrases);
      t.equal(res.stdout, '', 'nothing printed on stdout: no "listening", no connect line');
    });
  }
  // From the environment, --encoder is a setting for when H.264 is chosen: an MJPEG run ignores it.
  const fromEnv = await runCli(
    ['serve', '--source', 'test', '--host', '127.0.0.1', '--port', String(await freePort()), '--no-preflight', '--config-dir', configDir, '--duration', '1s'],
    {
      env: { ...process.env, LANSTREAM_ENCODER: 'libx264' },
    },
  );
  t.equal(fromEnv.code, 0, 'LANSTREAM_ENCODER with MJPEG: serves, exit 0', { stderr: fromEnv.stderr.slice(-800) });
});

t.test('a bad value from LANSTREAM_* names the variable, not only the flag the user never typed', async (t) => {
  const res = await runCli(['watch', '127.0.0.1', '--no-playback', '--config-dir', configDir], {
    env: { ...process.env, LANSTREAM_PORT: 'abc' },
    timeoutMs: 20_000,
  });
  expectError(t, res, 2, ['Invalid LANSTREAM_PORT (--port): abc', '1–65535']);
  const typed = await runCli(['watch', '127.0.0.1', '--port', 'abc', '--no-playback', '--config-dir', configDir], { timeoutMs: 20_000 });
  expectError(t, typed, 2, ['Invalid --port: abc']);
  t.notMatch(typed.stderr, /LANSTREAM_PORT/, 'typed on the command line: the flag alone');
});

t.test('usage errors from the parser itself: JSON on stdout with --json; bare lanstream is exit 2', async (t) => {
  const unknown = await runCli(['serve', '--json', '--bogus', '--config-dir', configDir], { timeoutMs: 20_000 });
  t.equal(unknown.code, 2, 'unknown flag: exit 2');
  const events = unknown.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { event: string; code?: string; exitCode?: number });
  t.same(
    events.map((e) => e.event),
    ['error', 'stopped'],
    'an error and a stopped event on stdout, as for any other usage error',
  );
  t.equal(events[0]?.code, 'LS_ERR_USAGE');
  t.equal(events[1]?.exitCode, 2);
  const missing = await runCli(['watch', '--json'], { timeoutMs: 20_000 });
  t.match(missing.stdout, /"event":"error".*Missing required argument 'target'/, 'watch --json without a target: the error as JSON');
  const bare = await runCli([], { timeoutMs: 20_000 });
  t.equal(bare.code, 2, 'lanstream without a command: exit 2 (the help is on stderr)');
  t.match(bare.stderr, /Usage: lanstream/, 'with the help');
  const [help, helpWatch] = await Promise.all([runCli(['help'], { timeoutMs: 20_000 }), runCli(['help', 'watch'], { timeoutMs: 20_000 })]);
  t.equal(help.code, 0, '`lanstream help` asked for the help: exit 0');
  t.equal(helpWatch.code, 0, '`lanstream help watch`: exit 0');
  t.match(helpWatch.stdout + helpWatch.stderr, /Usage: lanstream watch/, "with watch's help");
});

t.test('missing programs exit 5 and say how to install them', async (t) => {
  const emptyPath = await mkdtemp(path.join(os.tmpdir(), 'ls-empty-path-'));
  t.teardown(() => rm(emptyPath, { recursive: true, force: true }));
  // node is started by absolute path (runCli uses process.execPath), so an empty PATH only hides ffmpeg/ffplay.
  const noPathEnv = { ...process.env, PATH: emptyPath };
  const port = await freePort();

  const [explicit, noFfmpeg, noFfplay] = await Promise.all([
    runCli(['serve', '--source', 'test', '--port', String(port), '--config-dir', configDir, '--ffmpeg', '/nonexistent/ffmpeg']),
    runCli(['serve', '--source', 'test', '--port', String(port), '--config-dir', configDir], { env: noPathEnv }),
    runCli(['watch', '127.0.0.1', '--port', String(port), '--key', 'k'.repeat(22), '--config-dir', configDir], { env: noPathEnv }),
  ]);
  t.test('--ffmpeg /nonexistent/ffmpeg', async (t) => expectError(t, explicit, 5, ['--ffmpeg /nonexistent/ffmpeg', 'not a runnable ffmpeg', 'no such file']));
  t.test('no ffmpeg on PATH', async (t) => expectError(t, noFfmpeg, 5, ['ffmpeg not found', 'apt-get install ffmpeg', '--ffmpeg']));
  t.test('no ffplay on PATH (watch fails before dialling)', async (t) => {
    expectError(t, noFfplay, 5, ['ffplay not found', 'apt-get install ffmpeg']);
    t.notMatch(errorLines(noFfplay.stderr)[0] ?? '', /next to +or/, 'no empty "next to" path in the message');
  });
});

t.test('with a server up', async (t) => {
  const tlsServe: ServeHandle = await startServe({ configDir: await makeConfigDir() });
  const plainServe: ServeHandle = await startServe({ configDir: await makeConfigDir(), insecure: true });
  t.teardown(async () => {
    await Promise.all([tlsServe.proc.destroy(), plainServe.proc.destroy()]);
    await Promise.all([rm(tlsServe.configDir, { recursive: true, force: true }), rm(plainServe.configDir, { recursive: true, force: true })]);
  });
  const watchArgs = (s: ServeHandle, ...extra: string[]) => ['watch', '127.0.0.1', '--port', String(s.port), '--config-dir', configDir, ...extra];

  t.test('--ffplay /nonexistent/ffplay exits 5 before connecting', async (t) => {
    const res = await runCli(watchArgs(tlsServe, '--key', tlsServe.key, '--no-audio', '--ffplay', '/nonexistent/ffplay'), { timeoutMs: 10_000 });
    expectError(t, res, 5, ['/nonexistent/ffplay', 'ffplay']);
  });

  t.test('a server that sends none of what the viewer asked for: exit 2 at once, not a silent run', async (t) => {
    const noVideo = await startServe({ configDir: await makeConfigDir(), args: ['--no-video'] });
    t.teardown(async () => {
      await noVideo.proc.destroy();
      await rm(noVideo.configDir, { recursive: true, force: true });
    });
    const snapshotFile = path.join(noVideo.configDir, 'door.jpg');
    const [audioless, snapshot] = await Promise.all([
      // --duration: the old code ran it out and exited 0 with nothing received.
      runCli(watchArgs(noVideo, '--key', noVideo.key, '--no-audio', '--no-playback', '--duration', '20s'), { timeoutMs: 30_000 }),
      runCli(watchArgs(noVideo, '--key', noVideo.key, '--snapshot', snapshotFile), { timeoutMs: 30_000 }),
    ]);
    expectError(t, audioless, 2, ['sends no video', 'drop --no-audio']);
    expectError(t, snapshot, 2, ['sends no video', '--snapshot needs video']);
  });

  t.test('wrong access key: exit 4', async (t) => {
    const res = await runCli(watchArgs(tlsServe, '--key', 'WRONG-key-WRONG-key-00', '--no-playback'), { timeoutMs: 10_000 });
    expectError(t, res, 4, ['refused the access key', 'lanstream serve']);
  });

  t.test('TLS viewer against an --insecure server: exit 3 with the --insecure hint, on one line', async (t) => {
    const res = await runCli(watchArgs(plainServe, '--key', plainServe.key, '--no-playback'), { timeoutMs: 10_000 });
    expectError(t, res, 3, ['TLS handshake with 127.0.0.1', 'pass --insecure here too']);
    t.ok(res.elapsedMs < 5000, `fails at once (${res.elapsedMs} ms)`);
  });

  t.test('--insecure viewer against a TLS server: a clear error, not a hang', async (t) => {
    const res = await runCli(watchArgs(tlsServe, '--key', tlsServe.key, '--no-playback', '--insecure'), { timeoutMs: 15_000 });
    expectError(t, res, 3, ['--insecure']);
    t.ok(res.elapsedMs < 7000, `ends within 7 s (${res.elapsedMs} ms)`);
  });

  t.test('no sound device and no sound server: exit 1 with the reason, not an abort inside alsa-lib', async (t) => {
    // PulseAudio out of reach and no sound card here: ALSA's default device does not open. The speaker
    // package then aborted the process (assertion in snd_pcm_hw_refine, exit 134, no message).
    const res = await runCli(watchArgs(tlsServe, '--key', tlsServe.key, '--no-video', '--duration', '3s'), {
      env: { ...process.env, PULSE_SERVER: 'unix:/nonexistent/pulse-native' },
      timeoutMs: 20_000,
    });
    t.equal(res.signal, null, 'not killed by a signal');
    expectError(t, res, 1, ['PulseAudio']);
    t.match(errorLines(res.stderr)[0] ?? '', /LS_ERR_SINK_FAILED/, 'the sound output error code');
    // auto skipped the ALSA outputs: alsa-lib printed 16 lines of its own to stderr when tried here.
    t.notMatch(res.stderr, /ALSA lib/, 'no alsa-lib lines on stderr', { stderr: res.stderr.slice(0, 600) });
  });

  t.test('port busy: exit 1 "already in use"', async (t) => {
    const res = await runCli(serveArgs(tlsServe, '--no-preflight'));
    expectError(t, res, 1, [`Port ${tlsServe.port} is already in use`, '--port']);
  });
});

t.test('port busy with a foreign listener (not lanstream) on the port', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const res = await runCli(['serve', '--source', 'test', '--host', '127.0.0.1', '--port', String(port), '--config-dir', configDir, '--no-preflight']);
  expectError(t, res, 1, ['already in use', 'use --port']);
});

const unprivilegedPortStart = Number((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024')).trim());
const privilegeSkip =
  process.getuid?.() !== 0 || !hasCommand('setpriv')
    ? 'needs root and setpriv to run serve as nobody'
    : unprivilegedPortStart <= 443
      ? `ip_unprivileged_port_start is ${unprivilegedPortStart}: 443 needs no privilege here`
      : false;

t.test('a port below 1024 without privilege: exit 1 with the setcap hint and --port 8443', { skip: privilegeSkip }, async (t) => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'ls-nobody-'));
  t.teardown(() => rm(home, { recursive: true, force: true }));
  await mkdir(path.join(home, 'cfg'));
  await chown(home, 65534, 65534);
  await chown(path.join(home, 'cfg'), 65534, 65534);
  const res = await runCli(['serve', '--source', 'test', '--host', '127.0.0.1', '--port', '443', '--config-dir', path.join(home, 'cfg'), '--no-preflight'], {
    wrapper: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all'],
    env: { ...process.env, HOME: home },
  });
  expectError(t, res, 1, ['Port 443 needs privilege', "setcap 'cap_net_bind_service=+ep'", '--port 8443']);
});

t.test('camera not found: exit 1 with the last lines of ffmpeg', async (t) => {
  const res = await runCli(['serve', '--video-input', '-f v4l2 -i /dev/video99', '--no-audio', '--port', String(await freePort()), '--config-dir', configDir], {
    timeoutMs: 15_000,
  });
  expectError(t, res, 1, ['camera', 'lanstream devices']);
  const lines = res.stderr.trimEnd().split('\n');
  t.match(lines.at(-1), /^lanstream: .* \[LS_ERR_DEVICE_NOT_FOUND\]$/, 'the coded line is the last line (a script doing tail -1 gets the code)');
  t.match(
    res.stderr,
    /last ffmpeg output:\n(?: {4}.*\n)*? {4}.*\/dev\/video99.*\n(?: {4}.*\n)*lanstream: /,
    "ffmpeg's own words about /dev/video99 come just before it",
  );
});

t.test(
  'the default camera missing: the error says --source test runs without one',
  { skip: existsSync('/dev/video0') && '/dev/video0 exists here' },
  async (t) => {
    const res = await runCli(['serve', '--no-audio', '--host', '127.0.0.1', '--port', String(await freePort()), '--config-dir', configDir], {
      timeoutMs: 15_000,
    });
    expectError(t, res, 1, ['camera does not exist', '--video-device', 'lanstream devices', '--source test']);
    t.match(res.stderr.trimEnd().split('\n').at(-1), /\[LS_ERR_DEVICE_NOT_FOUND\]$/, 'the coded line is last');
  },
);

t.test('connection refused: exit 3', async (t) => {
  const res = await runCli(['watch', '127.0.0.1', '--port', String(await freePort()), '--key', 'k'.repeat(22), '--no-playback', '--config-dir', configDir]);
  expectError(t, res, 3, ['Nothing listens on 127.0.0.1:', '--port']);
});

t.test('--wait --reconnect-timeout for a server that never comes: exit 3, still saying nothing listens', async (t) => {
  const args = ['watch', '127.0.0.1', '--port', String(await freePort()), '--key', 'k'.repeat(22), '--no-playback', '--config-dir', configDir];
  const res = await runCli([...args, '--wait', '--reconnect-timeout', '1s']);
  expectError(t, res, 3, ['Nothing listens on 127.0.0.1:', 'gave up after 1000 ms']);
  t.match(errorLines(res.stderr)[0] ?? '', /\[LS_ERR_CONNECT_REFUSED\]$/, 'refused, not "connection lost": it was never up');
});

t.test('unknown host: exit 3', async (t) => {
  const res = await runCli(['watch', 'does-not-exist.invalid', '--key', 'k'.repeat(22), '--no-playback', '--config-dir', configDir]);
  expectError(t, res, 3, ['Unknown host does-not-exist.invalid']);
});

t.test('the server goes away for good: watch --reconnect-timeout 1s exits 3 within a few seconds', async (t) => {
  const serve = await startServe({ configDir: await makeConfigDir() });
  t.teardown(() => rm(serve.configDir, { recursive: true, force: true }));
  const watch = spawnCli(['watch', serve.url, '--no-playback', '--json', '--reconnect-timeout', '1s', '--config-dir', configDir]);
  t.teardown(() => watch.destroy());
  await watch.waitForEvent((e) => e.event === 'stats' && e.state === 'live', 10_000, 'live stats');
  await serve.stop('SIGKILL');
  const killedAtMs = Date.now();
  const { code } = await watch.exited;
  const afterMs = Date.now() - killedAtMs;
  t.equal(code, 3, 'exit 3 (connection lost for good)', { stderr: watch.stderr.slice(-1000) });
  t.ok(afterMs < 5000, `gave up ${afterMs} ms after the server died`);
  t.match(errorLines(watch.stderr).at(-1) ?? '', /gave up after 1000 ms \(--reconnect-timeout\)/, 'says it gave up and why');
  const stopped = watch.events().find((e) => e.event === 'stopped');
  t.equal(stopped?.exitCode, 3, '--json "stopped" event reports the real exit code');
});
