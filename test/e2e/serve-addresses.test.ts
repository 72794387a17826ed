/**
 * e2e: the addresses `lanstream serve` prints and reports. Every connect line it prints must reach
 * it (with --host 0.0.0.0 it listens on IPv4 only, so an IPv6 line would be refused); a viewer on
 * IPv4 shows as its IPv4 address in --json, not as IPv4-mapped IPv6; a busy IPv6 address is written
 * in brackets. Real serve processes, a few seconds each.
 *
 * The bug shows only when serve binds every interface, so those runs are in a network namespace of
 * their own (unshare, as root): its interfaces are loopback and a veth pair, one end with documentation
 * addresses (192.0.2.10, fd00::10), nothing outside can reach it, and the connections to the printed
 * addresses are made from inside it (nsenter).
 */
import t from 'tap';
import net from 'node:net';
import { errorLines, localWatchArgs, makeConfigDir, runCli, spawnCli, type CliProcess } from '../helpers/cli.js';
import { freePort, hasCommand, killAll, run } from '../helpers/process.js';

t.teardown(() => killAll());

const configDir = await makeConfigDir();
const NETNS_ADDRESSES = ['192.0.2.10', 'fd00::10'];
const NETNS_SETUP = [
  'ip link set lo up',
  // A veth pair with both ends inside (this kernel has no dummy interfaces).
  'ip link add v0 type veth peer name v1',
  `ip addr add ${NETNS_ADDRESSES[0]}/24 dev v0`,
  `ip -6 addr add ${NETNS_ADDRESSES[1]}/64 dev v0 nodad`,
  'ip link set v0 up',
  'ip link set v1 up',
].join(' && ');
/** Runs the command (node + lanstream) in a new network namespace set up as above. */
const IN_NEW_NETNS = ['unshare', '--net', 'bash', '-c', `${NETNS_SETUP} && exec "$@"`, 'netns'];
const netnsSkip =
  process.getuid?.() !== 0 || !['unshare', 'nsenter', 'ip'].every(hasCommand) ? 'needs root, unshare, nsenter and ip for a private network namespace' : false;

/** The host of each `lanstream watch "lanstream://HOST:PORT/…"` line serve printed. */
function printedHosts(stdout: string): string[] {
  return [...stdout.matchAll(/lanstream:\/\/(\[[^\]]+\]|[^:/]+):\d+\//g)].map((m) => m[1]!.replace(/^\[|\]$/g, ''));
}

/** A TCP connection to host:port from inside the namespace of `pid` (bash's /dev/tcp, IPv4 or IPv6). */
async function canConnectFrom(pid: number, host: string, port: number): Promise<boolean> {
  const res = await run('nsenter', [`--net=/proc/${pid}/ns/net`, 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`]).catch(() => null);
  return res?.code === 0;
}

async function serveInNetns(...args: string[]): Promise<CliProcess> {
  const proc = spawnCli(['serve', '--source', 'test', '--size', '320x240', '--no-preflight', '--config-dir', configDir, ...args], { wrapper: IN_NEW_NETNS });
  t.teardown(() => proc.destroy());
  return proc;
}

async function serveLines(host: string): Promise<{ hosts: string[]; reachable: Record<string, boolean> }> {
  const port = 8443; // its own namespace: no other listener there
  const proc = await serveInNetns('--host', host, '--port', String(port));
  await proc.waitForOutput('stdout', /On the viewer, run:\n(?:.*\n)*? {2}lanstream watch .*\n/, 15_000);
  // The lines are written together; give the last one a moment to arrive.
  await new Promise((r) => setTimeout(r, 200));
  const hosts = printedHosts(proc.stdout);
  const reachable: Record<string, boolean> = {};
  for (const h of hosts) reachable[h] = await canConnectFrom(proc.pid, h, port);
  await proc.stop('SIGTERM');
  return { hosts, reachable };
}

t.test('--host 0.0.0.0: IPv4 lines only, and every printed line reaches serve', { skip: netnsSkip }, async (t) => {
  const { hosts, reachable } = await serveLines('0.0.0.0');
  t.same(hosts, [NETNS_ADDRESSES[0]], `lines for ${hosts.join(', ')}: the IPv4 address only`);
  t.same(
    Object.entries(reachable)
      .filter(([, ok]) => !ok)
      .map(([h]) => h),
    [],
    'nothing printed is refused',
  );
});

t.test('--host :: (dual-stack): IPv4 and IPv6 lines, every one reaches serve', { skip: netnsSkip }, async (t) => {
  const { hosts, reachable } = await serveLines('::');
  t.same(hosts, NETNS_ADDRESSES, 'every address, IPv4 first');
  t.ok(Object.values(reachable).every(Boolean), 'every line connects', { reachable });
});

t.test('a viewer over IPv4 on a dual-stack serve is 127.0.0.1 in viewer-live and stats, not ::ffff:127.0.0.1', { skip: netnsSkip }, async (t) => {
  const port = 8443;
  // No --host: serve listens on :: (dual-stack), where IPv4 peers arrive IPv4-mapped.
  const serve = await serveInNetns('--port', String(port), '--json');
  await serve.waitForEvent((e) => e.event === 'ready', 15_000, 'ready');
  const watch = spawnCli(localWatchArgs({ port, configDir }, '--no-playback', '--duration', '3s'), { wrapper: ['nsenter', `--net=/proc/${serve.pid}/ns/net`] });
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
