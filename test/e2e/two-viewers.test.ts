/**
 * e2e: one viewer dying hard (SIGKILL: no BYE, the socket just goes) must not disturb another
 * viewer of the same `lanstream serve` — no drop in frame rate and no reconnect on its side.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { makeConfigDir, spawnCli, startServe, type CliProcess } from '../helpers/cli.js';
import { killAll, sleep } from '../helpers/process.js';

t.teardown(() => killAll());

t.test('killing one of two viewers leaves the other at full frame rate, without a reconnect', async (t) => {
  const serve = await startServe();
  const viewerDir = await makeConfigDir();
  t.teardown(async () => {
    await serve.proc.destroy();
    await Promise.all([rm(serve.configDir, { recursive: true, force: true }), rm(viewerDir, { recursive: true, force: true })]);
  });
  const startViewer = (): CliProcess => spawnCli(['watch', serve.url, '--no-playback', '--json', '--config-dir', viewerDir]);
  const [a, b] = [startViewer(), startViewer()];
  t.teardown(() => Promise.all([a.destroy(), b.destroy()]));
  const fullRate = (e: { event: string; [k: string]: unknown }) => e.event === 'stats' && e.state === 'live' && Number(e.fps) > 20;
  await Promise.all([a.waitForEvent(fullRate, 15_000, 'viewer A at > 20 fps'), b.waitForEvent(fullRate, 15_000, 'viewer B at > 20 fps')]);

  const eventsBefore = b.events().length;
  await a.stop('SIGKILL');
  await sleep(2300);
  const after = b.events().slice(eventsBefore);
  const stats = after.filter((e) => e.event === 'stats');
  t.ok(stats.length >= 2, `viewer B reported stats twice in the 2 s after A died (${stats.length})`);
  const fps = stats.map((e) => Number(e.fps));
  t.ok(stats.every((e) => e.state === 'live') && fps.every((f) => f > 20), `viewer B stayed live above 20 fps (${fps.join(', ')})`);
  t.same(
    after.filter((e) => e.event === 'state'),
    [],
    'viewer B had no state change (no reconnect)',
  );
  t.ok(b.running, 'viewer B is still running');
  const totals = stats.map((e) => (e.totals as { videoFrames: number }).videoFrames);
  t.ok(totals.at(-1)! > totals[0]!, `viewer B kept receiving frames (${totals.join(' → ')})`);
});
