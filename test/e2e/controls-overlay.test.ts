/**
 * e2e: the status overlay as someone who only looks at the window sees it. Two real viewers of one
 * `serve --source test`, side by side on a private Xvfb: A (on a pseudo-terminal, no --overlay) and
 * B (--overlay). The overlay is a translucent black box at the top-left of the picture, so "a box is
 * there" is measured as a strip just inside the box's top border getting much darker than the same
 * strip of the other window (the same stream) or of the same window while it was live. Also
 * measured: the picture stops moving while the server is gone and moves again when it is back.
 */
import t from 'tap';
import { rm } from 'node:fs/promises';
import { descendants, spawnCli, startServe, type ServeHandle } from '../helpers/cli.js';
import { hasCommand, killAll, pidAlive, sleep, waitFor } from '../helpers/process.js';
import { spawnCliInPty } from '../helpers/pty.js';
import { crop, findWindowByName, grabScreen, imageStats, meanAbsDiff, type RgbImage } from '../helpers/screen.js';
import { startXvfb } from '../helpers/xvfb.js';

t.teardown(() => killAll());

const missing = ['script', 'Xvfb', 'xdotool', 'ffplay'].filter((c) => !hasCommand(c));

const WINDOW_B_X = 640;
/** Inside the box's top border (the box starts at y=4), right of testsrc2's own dark time stamp. */
const STRIP = { x: 120, y: 5, width: 180, height: 4 };
/** testsrc2's noisy checkerboard: changes with every frame. */
const MOVING = { x: 380, y: 200, width: 200, height: 120 };

function at(img: RgbImage, region: typeof STRIP, offsetX: number): RgbImage {
  return crop(img, { ...region, x: region.x + offsetX });
}
const brightness = (img: RgbImage, offsetX: number) => imageStats(at(img, STRIP, offsetX)).mean;

async function killServe(serve: ServeHandle): Promise<void> {
  // SIGKILL: no goodbye, the viewers only notice the silence (the dead-link timer). Its ffmpeg
  // children would outlive it, so they go too, by PID.
  const children = descendants(serve.proc.pid);
  serve.proc.signal('SIGKILL');
  await serve.proc.exited;
  for (const c of children) if (pidAlive(c.pid)) process.kill(c.pid, 'SIGKILL');
}

t.test(
  'overlay box with --overlay, RECONNECTING while the server is gone, DISCONNECTED after d',
  { skip: missing.length ? `missing ${missing.join(', ')}` : false },
  async (t) => {
    const [xvfb, first] = await Promise.all([startXvfb({ width: 1280, height: 480 }), startServe({ args: ['--no-audio'] })]);
    let serve = first;
    t.teardown(async () => {
      await serve.proc.destroy();
      await Promise.all([xvfb.close(), rm(first.configDir, { recursive: true, force: true })]);
    });
    const common = ['watch', '127.0.0.1', '--port', String(serve.port), '--config-dir', serve.configDir, '--borderless', '--no-audio'];
    const a = spawnCliInPty([...common, '--window-position', '0,0'], { env: xvfb.env });
    t.teardown(() => a.destroy());
    const b = spawnCli([...common, '--window-position', `${WINDOW_B_X},0`, '--overlay', '--json'], { env: xvfb.env });
    t.teardown(() => b.destroy());
    await a.waitForOutput(/\[live\] video/, 10_000);
    // The stats part of B's overlay appears with the first stats, a second after going live.
    await b.waitForEvent((e) => e.event === 'stats' && e.state === 'live', 10_000, 'a live stats event from B');
    await waitFor(() => findWindowByName(xvfb.display, 'lanstream'), 5000, 100, 'the windows');
    await sleep(500);

    const live = await grabScreen(xvfb.display);
    const liveA = brightness(live, 0);
    const liveB = brightness(live, WINDOW_B_X);
    t.ok(liveA > 60, `without --overlay the live picture is clean at the top-left (strip brightness ${liveA.toFixed(0)})`);
    t.ok(liveB < liveA * 0.6, `--overlay draws the dark status box there (${liveB.toFixed(0)} vs ${liveA.toFixed(0)} in the same stream without it)`);

    const killedAtMs = Date.now();
    await killServe(serve);
    const down = await waitFor(
      async () => {
        const img = await grabScreen(xvfb.display);
        return brightness(img, 0) < liveA * 0.6 ? img : null;
      },
      6000,
      100,
      'a status box in window A after the server died',
    );
    const shownMs = Date.now() - killedAtMs;
    t.ok(shownMs < 3500, `the box appears in the window without --overlay ${shownMs} ms after the server died`);
    t.match(a.screenText(), /\[reconnecting\]/, 'the terminal status line says reconnecting');
    // B is another process: it notices the dead server on its own and repaints on its own 250 ms
    // timer, so its notice can come a little after A's box (CI once grabbed the screen in between).
    const textB = await waitFor(
      async () => {
        const img = await grabScreen(xvfb.display);
        const diff = meanAbsDiff(at(live, { ...STRIP, height: 30 }, WINDOW_B_X), at(img, { ...STRIP, height: 30 }, WINDOW_B_X));
        return diff > 5 ? diff : null;
      },
      2000,
      50,
      "B's overlay showing the reconnect notice",
    ).catch(() => 0);
    t.ok(textB > 5, `B's overlay text changed from the stats to the reconnect notice (mean diff ${textB.toFixed(1)})`);
    await sleep(700);
    const later = await grabScreen(xvfb.display);
    const frozen = meanAbsDiff(at(down, MOVING, 0), at(later, MOVING, 0));
    t.ok(frozen < 0.5, `no new frames arrive: the picture stands still (diff ${frozen.toFixed(2)} over 0.7 s)`);
    t.ok(brightness(later, 0) < liveA * 0.6, 'the box stays while the server is away');

    serve = await startServe({ port: first.port, configDir: first.configDir, args: ['--no-audio'] });
    const backAtMs = Date.now();
    await waitFor(async () => brightness(await grabScreen(xvfb.display), 0) > liveA * 0.8, 8000, 100, 'the box gone from A after the server came back');
    t.pass(`the box is gone ${Date.now() - backAtMs} ms after the server listens again`);
    const m1 = await grabScreen(xvfb.display);
    await sleep(400);
    const m2 = await grabScreen(xvfb.display);
    const moving = meanAbsDiff(at(m1, MOVING, 0), at(m2, MOVING, 0));
    t.ok(moving > 1, `the picture moves again (diff ${moving.toFixed(2)} over 0.4 s)`);

    const beforeD = a.output.length;
    await a.press('d');
    await a.waitForOutput(/\[disconnected\]/, 3000, beforeD);
    const paused = await waitFor(
      async () => {
        const img = await grabScreen(xvfb.display);
        return brightness(img, 0) < liveA * 0.6 ? img : null;
      },
      3000,
      100,
      'the DISCONNECTED box in window A after d',
    );
    await sleep(500);
    const paused2 = await grabScreen(xvfb.display);
    t.ok(meanAbsDiff(at(paused, MOVING, 0), at(paused2, MOVING, 0)) < 0.5, 'd: window A stands still with the box shown');
    const stillB = meanAbsDiff(at(paused, MOVING, WINDOW_B_X), at(paused2, MOVING, WINDOW_B_X));
    t.ok(stillB > 1, `B is not affected by A's d (its picture moves: diff ${stillB.toFixed(2)})`);

    await a.press('d');
    await waitFor(async () => brightness(await grabScreen(xvfb.display), 0) > liveA * 0.8, 5000, 100, 'the box gone after d again');
    const r1 = await grabScreen(xvfb.display);
    await sleep(400);
    const r2 = await grabScreen(xvfb.display);
    t.ok(meanAbsDiff(at(r1, MOVING, 0), at(r2, MOVING, 0)) > 1, 'd again: live, the picture moves');
  },
);
