/**
 * The test PulseAudio daemon must not outlive a test process that dies without its teardown
 * (a crash, or tap's timeout killing it): earlier, such daemons ran on until stopped by hand.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { hasCommand, killAll, pidAlive, spawnTracked, waitFor, waitForExit, waitForLine } from '../helpers/process.js';

const missing = ['pulseaudio', 'pactl', 'parec', 'setpriv'].filter((c) => !hasCommand(c));
if (missing.length) t.plan(0, `missing tools: ${missing.join(', ')}`);
t.teardown(() => killAll());

t.test('a SIGKILLed test process takes its PulseAudio daemon with it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ls-pulse-helper-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'dies.mjs');
  const helper = new URL('../helpers/pulse.ts', import.meta.url).href;
  await writeFile(
    script,
    [
      `const { startPulse } = await import(${JSON.stringify(helper)});`,
      'const pulse = await startPulse();',
      'console.log(`daemon ${pulse.pid}`);',
      "process.kill(process.pid, 'SIGKILL');",
    ].join('\n'),
  );
  const child = spawnTracked(process.execPath, [...process.execArgv, script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [, pid] = await waitForLine(child.stdout!, /daemon (\d+)/, 20_000);
  t.same(await waitForExit(child, 10_000), { code: null, signal: 'SIGKILL' }, 'the test process died without teardown');
  const daemonPid = Number(pid);
  const gone = await waitFor(async () => !pidAlive(daemonPid), 5_000, 50, 'the daemon to end').then(
    () => true,
    () => false,
  );
  if (!gone) process.kill(daemonPid, 'SIGKILL');
  t.ok(gone, `daemon ${daemonPid} ended with its parent`);
});
