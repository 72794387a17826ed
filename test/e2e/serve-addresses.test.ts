/**
 * e2e: the addresses `lanstream serve` prints and reports. Every connect line it prints must reach
 * it (with --host 0.0.0.0 it listens on IPv4 only, so an IPv6 line would be refused); a viewer on
 * IPv4 shows as its IPv4 address in --json, not as IPv4-mapped IPv6; a busy IPv6 address is written
 * in brackets. Real serve processes, the machine's own addresses only, a few seconds each.
 */
import t from 'tap';
import net from 'node:net';
import { lanAddresses } from '../../src/shared/connect-url.js';
import { errorLines, localWatchArgs, makeConfigDir, runCli, spawnCli } from '../helpers/cli.js';
import { freePort, killAll } from '../helpers/process.js';

t.teardown(() => killAll());

const configDir = await makeConfigDir();
const lan = lanAddresses();
const lanV6 = lan.filter((a) => net.isIPv6(a));

/** The host of each `lanstream watch 'lanstream://HOST:PORT/…'` line serve printed. */
function printedHosts(stdout: string): string[] {
  return [...stdout.matchAll(/lanstream:\/\/(\[[^\]]+\]|[^:/]+):\d+\//g)].map((m) => m[1]!.replace(/^\[|\]$/g, ''));
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

async function serveLines(host: string): Promise<{ hosts: string[]; reachable: Record<string, boolean> }> {
  const port = await freePort();
  const proc = spawnCli([
    'serve',
    '--source',
    'test',
    '--size',
    '320x240',
    '--no-preflight',
    '--host',
    host,
    '--port',
    String(port),
    '--config-dir',
    configDir,
  ]);
  t.teardown(() => proc.destroy());
  await proc.waitForOutput('stdout', /On the viewer, run:\n(?:.*\n)*? {2}lanstream watch .*\n/, 15_000);
  // The lines are written together; give the last one a moment to arrive.
  await new Promise((r) => setTimeout(r, 200));
  const hosts = printedHosts(proc.stdout);
  const reachable: Record<string, boolean> = {};
  for (const h of hosts) reachable[h] = await canConnect(h, port);
  await proc.stop('SIGTERM');
  return { hosts, reachable };
}

t.test('--host 0.0.0.0: IPv4 lines only, and every printed line reaches serve', async (t) => {
  const { hosts, reachable } = await serveLines('0.0.0.0');
  t.ok(hosts.length > 0, `lines for ${hosts.join(', ')}`);
  t.same(
    hosts.filter((h) => !net.isIPv4(h)),
    [],
    'no IPv6 line for an IPv4-only listener',
  );
  t.same(
    Object.entries(reachable)
      .filter(([, ok]) => !ok)
      .map(([h]) => h),
    [],
    'nothing printed is refused',
  );
});

t.test('--host :: (dual-stack): IPv4 and IPv6 lines, every one reaches serve', { skip: lanV6.length === 0 && 'no IPv6 LAN address here' }, async (t) => {
  const { hosts, reachable } = await serveLines('::');
  t.same(hosts, lan, 'every LAN address, IPv4 first');
  t.ok(Object.values(reachable).every(Boolean), 'every line connects', { reachable });
});

t.test('a viewer over IPv4 on a dual-stack serve is 127.0.0.1 in viewer-live and stats, not ::ffff:127.0.0.1', async (t) => {
  const port = await freePort();
  // No --host: serve listens on :: (dual-stack), where IPv4 peers arrive IPv4-mapped.
  const serve = spawnCli(['serve', '--source', 'test', '--size', '320x240', '--no-preflight', '--port', String(port), '--config-dir', configDir, '--json']);
  t.teardown(() => serve.destroy());
  await serve.waitForEvent((e) => e.event === 'ready', 15_000, 'ready');
  const watch = spawnCli(localWatchArgs({ port, configDir }, '--no-playback', '--duration', '3s'));
  t.teardown(() => watch.destroy());
  const live = await serve.waitForEvent((e) => e.event === 'viewer-live', 15_000, 'viewer-live');
  const stats = await serve.waitForEvent((e) => e.event === 'stats' && Array.isArray(e.viewers) && e.viewers.length > 0, 5000, 'stats with a viewer');
  await watch.exited;
  const left = await serve.waitForEvent((e) => e.event === 'viewer-left', 5000, 'viewer-left');
  await serve.stop('SIGTERM');
  t.equal(live.address, '127.0.0.1', 'viewer-live');
  t.equal((stats.viewers as Array<{ address: string }>)[0]!.address, '127.0.0.1', 'stats');
  t.equal(left.address, '127.0.0.1', 'viewer-left');
  t.notMatch(serve.stderr, /::ffff:/, 'no IPv4-mapped address in the log either');
});

t.test('port busy on an IPv6 --host: the address is in brackets before the port', async (t) => {
  const port = await freePort();
  const blocker = net.createServer();
  const listening = await new Promise<boolean>((resolve) => {
    blocker.once('error', () => resolve(false));
    blocker.listen({ host: '::1', port }, () => resolve(true));
  });
  if (!listening) {
    t.pass('skipped: no ::1 on this machine');
    return;
  }
  t.teardown(() => blocker.close());
  const res = await runCli(['serve', '--source', 'test', '--no-preflight', '--host', '::1', '--port', String(port), '--config-dir', configDir]);
  t.equal(res.code, 1, 'exit 1');
  t.match(errorLines(res.stderr).at(-1) ?? '', new RegExp(`in use on \\[::1\\]:${port}: .*\\[LS_ERR_PORT_BUSY\\]$`), 'the address reads [::1]:port');
});
