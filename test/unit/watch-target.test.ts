import t from 'tap';
import { resolveTarget } from '../../src/cli/watch-command.js';

const KEY = 'sx0Nly2bEe7qWuIKDyQcEw';
const OTHER = 'AAAAAAAAAAAAAAAAAAAAAA';
const FP = `sha256:${'ab'.repeat(32)}`;
const FP2 = `sha256:${'cd'.repeat(32)}`;
const URL = `lanstream://192.168.1.20:8443/?key=${KEY}&fp=${FP}`;

t.test("the target's own key, fingerprint and port win over LANSTREAM_* and defaults", async (t) => {
  // Not typed: what commander took from the environment (or the default port).
  const r = resolveTarget(URL, { port: '1', key: OTHER, fingerprint: FP2, fromCommandLine: [] });
  t.same(r, { host: '192.168.1.20', port: 8443, key: KEY, fingerprint: FP });
});

t.test('a target without them takes the flags', async (t) => {
  t.same(resolveTarget('cam.local', { port: '443', key: KEY, fingerprint: FP, fromCommandLine: ['key', 'fingerprint'] }), {
    host: 'cam.local',
    port: 443,
    key: KEY,
    fingerprint: FP,
  });
  t.equal(resolveTarget('cam.local:9000', { port: '443', fromCommandLine: [] }).port, 9000, 'host:port');
  t.equal(resolveTarget('cam.local', { port: '8443', fromCommandLine: ['port'] }).port, 8443, '--port');
});

t.test('typed on the command line and different from the target: a usage error, saying which', async (t) => {
  const cases: Array<[Parameters<typeof resolveTarget>[1], RegExp]> = [
    [{ port: '9000', fromCommandLine: ['port'] }, /^--port 9000 differs from the port in the target \(8443\)/],
    [{ port: '443', key: OTHER, fromCommandLine: ['key'] }, /^--key differs from the key in the lanstream:\/\/ line/],
    [{ port: '443', fingerprint: FP2, fromCommandLine: ['fingerprint'] }, /^--fingerprint sha256:cdcd.* differs from the fp/],
  ];
  for (const [flags, message] of cases) t.throws(() => resolveTarget(URL, flags), { code: 'LS_ERR_USAGE', message });
  t.notMatch(
    (() => {
      try {
        resolveTarget(URL, { port: '443', key: OTHER, fromCommandLine: ['key'] });
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    })(),
    OTHER,
    'the key itself is never echoed',
  );
  t.same(
    resolveTarget(URL, { port: '8443', key: KEY, fingerprint: FP, fromCommandLine: ['port', 'key', 'fingerprint'] }).port,
    8443,
    'the same values typed again are fine',
  );
});

t.test('a --key that could never be a key is a usage error here, not a refusal by the server', async (t) => {
  t.throws(() => resolveTarget('cam.local', { port: '443', key: 'bad key!!', fromCommandLine: ['key'] }), { code: 'LS_ERR_USAGE', message: /--key/ });
});
