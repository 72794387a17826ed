/**
 * `serve` keeps one ffmpeg per medium loaded and held at a start gate while nobody watches
 * (src/server/capture/ffmpeg-standby.ts). Every way serve ends kills them — except SIGKILL, which
 * leaves them blocked at the gate. The next serve on the machine must stop those orphans (matched by
 * the gate dir of a dead owner) and remove their dir, and never touch a live serve's children.
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { serveArgs, spawnCli } from '../helpers/cli.js';
import { freePort, pidAlive, waitFor } from '../helpers/process.js';

const linux = process.platform === 'linux';

/** ffmpeg children of `ppid` that are held at a gate: their gate dir from FFREPORT. */
function gatedChildren(ppid: number): { pid: number; dir: string }[] {
  const out: { pid: number; dir: string }[] = [];
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== ppid || !stat.includes('(ffmpeg)')) continue;
      const m = /FFREPORT=file=([^\0]*)\/gate-\d+:level/.exec(readFileSync(`/proc/${e}/environ`, 'latin1'));
      if (m) out.push({ pid: Number(e), dir: m[1]! });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function serveWithStandby(t: Test, configDir: string) {
  const proc = spawnCli(serveArgs({ port: await freePort(), configDir, size: '320x240' }));
  t.teardown(() => proc.destroy());
  await proc.waitForOutput('stdout', /lanstream watch/, 20_000);
  await waitFor(async () => gatedChildren(proc.pid).length === 2, 10_000, 100, 'two gated ffmpeg (video + audio)');
  return { proc, gated: gatedChildren(proc.pid) };
}

t.test(
  'a SIGKILLed serve leaves gated ffmpeg behind; the next serve stops them and removes their dir',
  { skip: linux ? false : 'Linux only (/proc)', timeout: 60_000 },
  async (t) => {
    const configDir = await mkdtemp(path.join(os.tmpdir(), 'ls-orphans-'));
    t.teardown(() => rm(configDir, { recursive: true, force: true }));

    const first = await serveWithStandby(t, configDir);
    const orphans = first.gated;
    t.teardown(() => orphans.forEach((o) => pidAlive(o.pid) && process.kill(o.pid, 'SIGKILL')));
    await first.proc.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    t.ok(
      orphans.every((o) => pidAlive(o.pid)),
      `SIGKILL left the gated ffmpeg ${orphans.map((o) => o.pid).join(', ')} blocked at their gate`,
    );
    t.ok(existsSync(orphans[0]!.dir), 'and their gate dir');

    const second = await serveWithStandby(t, configDir);
    await waitFor(async () => orphans.every((o) => !pidAlive(o.pid)), 5000, 100, 'orphans stopped');
    t.pass('the next serve stopped them');
    t.notOk(existsSync(orphans[0]!.dir), 'and removed their gate dir');
    t.equal(second.gated.length, 2, 'while keeping its own two');
    t.ok(
      second.gated.every((g) => pidAlive(g.pid)),
      'its own are alive',
    );

    await second.proc.stop('SIGTERM');
    await waitFor(async () => second.gated.every((g) => !pidAlive(g.pid)), 5000, 100, 'own standbys gone');
    t.notOk(existsSync(second.gated[0]!.dir), 'a normal stop removes its own gate dir');
  },
);
