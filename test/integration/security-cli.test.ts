/**
 * The secrets as a user meets them through the real CLI (dist/, built by `npm test`): files and
 * directory private after the first `serve`, the key on the terminal only (never in the log file,
 * --json or stderr), `--new-key` rotation, and `--insecure` on both sides with its warnings.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { testViewer, type TestServer } from '../helpers/lanstream.js';
import { assertBuilt, runCli, serveArgs, spawnCli } from '../helpers/cli.js';
import { freePort, killAll, waitFor } from '../helpers/process.js';
import { startServerIn } from '../helpers/security-server.js';

assertBuilt();
t.teardown(() => killAll());

async function tmp(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lanstream-seccli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);
const shortServeArgs = async (configDir: string) => serveArgs({ port: await freePort(), configDir, size: '320x240' }, '--no-preflight', '--duration', '1s');

t.test('first serve creates a 0700 config dir with 0600 files; the key is on stdout only', async (t) => {
  const base = await tmp(t);
  const configDir = path.join(base, 'fresh', 'lanstream');
  const logFile = path.join(base, 'serve.log');
  const r = await runCli([...(await shortServeArgs(configDir)), '--log-file', logFile, '--log-level', 'debug'], { timeoutMs: 15_000 });
  t.equal(r.code, 0, `serve --duration 1s exits 0 (stderr: ${r.stderr.slice(0, 300)})`);
  t.equal(await mode(configDir), '700', 'config dir is 0700');
  for (const f of ['access-key', 'key.pem', 'cert.pem']) t.equal(await mode(path.join(configDir, f)), '600', `${f} is 0600`);
  const key = (await readFile(path.join(configDir, 'access-key'), 'utf8')).trim();
  t.match(key, /^[A-Za-z0-9_-]{22}$/, 'a 128-bit base64url key');
  t.match(
    r.stdout,
    new RegExp(`lanstream watch "lanstream://127\\.0\\.0\\.1:\\d+/\\?key=${key}&fp=sha256:[0-9a-f]{64}"`),
    'the connect line with key and fingerprint is on stdout',
  );
  const log = await readFile(logFile, 'utf8');
  t.ok(log.includes('"serving"') || log.includes('serving'), 'the log file was written');
  t.notOk(log.includes(key), 'the log file does not contain the key');
  t.notOk(r.stderr.includes(key), 'stderr does not contain the key');

  const json = await runCli([...(await shortServeArgs(configDir)), '--json'], { timeoutMs: 15_000 });
  t.equal(json.code, 0, 'serve --json exits 0');
  t.match(json.stdout, /"event":"ready"/, '--json prints the ready event');
  t.notOk(json.stdout.includes(key), '--json output does not contain the key');
  t.notOk(json.stderr.includes(key), 'nor does its stderr');
});

t.test('--new-key: the old key is refused, the new one accepted', async (t) => {
  const configDir = await tmp(t);
  const first = await startServerIn(configDir);
  const oldKey = first.ready.accessKey;
  await first.close();

  const r = await runCli([...(await shortServeArgs(configDir)), '--new-key'], { timeoutMs: 15_000 });
  t.equal(r.code, 0, 'serve --new-key exits 0');
  const newKey = (await readFile(path.join(configDir, 'access-key'), 'utf8')).trim();
  t.not(newKey, oldKey, 'the key file holds a new key');
  t.match(r.stdout, `key=${newKey}`, 'the new connect line carries the new key');
  t.equal(await mode(path.join(configDir, 'access-key')), '600', 'still 0600 after rotation');

  const s = await startServerIn(configDir);
  t.teardown(() => s.close());
  t.equal(s.ready.accessKey, newKey, 'the next serve uses the rotated key');
  t.equal(s.ready.fingerprint, first.ready.fingerprint, 'the certificate (and fingerprint) stayed');
  const ts: TestServer = { server: s.server, ready: s.ready, configDir, close: s.close };
  const old = testViewer(ts, { key: oldKey });
  await t.rejects(old.viewer.start(), { code: 'LS_ERR_AUTH_REFUSED' }, 'the old key is refused');
  await old.viewer.close();
  const fresh = testViewer(ts, { key: newKey });
  t.teardown(() => fresh.viewer.close());
  await fresh.viewer.start();
  await waitFor(() => fresh.video.length > 0, 5000, 50, 'video with the new key');
  t.pass('the new key gets video');
});

t.test('LANSTREAM_INSECURE=false or 0 keeps TLS on; a value that is neither is refused', async (t) => {
  for (const value of ['false', '0', 'no', '']) {
    const configDir = await tmp(t);
    const r = await runCli([...(await shortServeArgs(configDir)), '--json'], { env: { ...process.env, LANSTREAM_INSECURE: value }, timeoutMs: 15_000 });
    const ready = r.stdout.split('\n').find((l) => l.includes('"event":"ready"'));
    t.match(ready, /"tls":true/, `LANSTREAM_INSECURE=${JSON.stringify(value)}: serve listens with TLS`);
    t.notMatch(r.stderr, /WARNING: --insecure/, `LANSTREAM_INSECURE=${JSON.stringify(value)}: no insecure warning`);
  }
  const on = await runCli([...(await shortServeArgs(await tmp(t))), '--json'], { env: { ...process.env, LANSTREAM_INSECURE: '1' }, timeoutMs: 15_000 });
  t.match(on.stdout, /"tls":false/, 'LANSTREAM_INSECURE=1 still turns TLS off (explicitly)');
  const bad = await runCli(['watch', 'localhost', '--no-playback'], { env: { ...process.env, LANSTREAM_INSECURE: 'maybe' }, timeoutMs: 15_000 });
  t.equal(bad.code, 2, 'LANSTREAM_INSECURE=maybe: usage error, exit 2');
  t.match(bad.stderr, /LANSTREAM_INSECURE="maybe".*use 1 or 0/, 'naming the variable and the values it takes');
});

t.test('--insecure on both sides works with warnings; a TLS viewer against it fails clearly', async (t) => {
  const configDir = await tmp(t);
  const viewerDir = await tmp(t);
  const port = await freePort();
  const serve = spawnCli([...serveArgs({ port, configDir, size: '320x240' }), '--no-preflight', '--insecure', '--duration', '8s']);
  t.teardown(() => serve.destroy());
  const [line] = await serve.waitForOutput('stdout', /lanstream:\/\/[^"' ]+/, 10_000);
  t.match(serve.stderr, /WARNING: --insecure/, 'serve warns on stderr');
  t.notMatch(line, /fp=/, 'the insecure connect line has no fingerprint');

  const watch = await runCli(['watch', line, '--insecure', '--no-playback', '--duration', '1s', '--json', '--config-dir', viewerDir], { timeoutMs: 15_000 });
  t.equal(watch.code, 0, `watch --insecure streams and exits 0 (stderr: ${watch.stderr.slice(0, 300)})`);
  t.match(watch.stderr, /WARNING: --insecure/, 'watch warns on stderr');
  t.match(watch.stdout, /"event":"live"/, 'the insecure viewer went live');

  const tlsViewer = await runCli(['watch', line, '--no-playback', '--duration', '1s', '--config-dir', viewerDir], { timeoutMs: 15_000 });
  t.not(tlsViewer.code, 0, 'a TLS viewer against an --insecure server fails');
  t.match(tlsViewer.stderr, /LS_ERR_TLS_FAILED/, 'with LS_ERR_TLS_FAILED');
  t.match(tlsViewer.stderr, /--insecure/, 'and the hint that the server runs with --insecure');
  t.equal(tlsViewer.stderr.trim().split('\n').length, 1, 'in one line');
});
