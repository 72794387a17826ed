/**
 * e2e: `lanstream devices` lists cameras and microphones with the exact flag value to pass. There is
 * no camera on the test machine ("(none found)" plus the --source test hint); with a private
 * PulseAudio up, its sources are listed as microphones and `--json` says the same thing.
 */
import t from 'tap';
import { runCli } from '../helpers/cli.js';
import { hasCommand, killAll } from '../helpers/process.js';
import { startPulse } from '../helpers/pulse.js';

t.teardown(() => killAll());

t.test('prints both sections and exits 0', async (t) => {
  // No PulseAudio reachable: a socket path that does not exist.
  const res = await runCli(['devices'], { env: { ...process.env, PULSE_SERVER: 'unix:/nonexistent/pulse' }, timeoutMs: 20_000 });
  t.equal(res.code, 0, 'exit 0', { stderr: res.stderr });
  t.match(res.stdout, /^Cameras:\n/m, 'a Cameras section');
  t.match(res.stdout, /^Microphones:\n/m, 'a Microphones section');
  t.match(res.stdout, /^Cameras:\n {2}(\(none found\)|--video-device ')/m, 'cameras: "(none found)" or --video-device lines');
  if (/^Cameras:\n {2}\(none found\)/m.test(res.stdout)) t.match(res.stdout, /lanstream serve --source test/, 'no camera: points to the test source');
});

t.test('with PulseAudio up, its sources are the microphones', { skip: hasCommand('pulseaudio') ? false : 'pulseaudio missing' }, async (t) => {
  const pulse = await startPulse();
  t.teardown(() => pulse.close());
  const env = { ...process.env, ...pulse.env };
  const [text, json] = await Promise.all([runCli(['devices'], { env, timeoutMs: 20_000 }), runCli(['devices', '--json'], { env, timeoutMs: 20_000 })]);
  t.equal(text.code, 0, 'exit 0', { stderr: text.stderr });
  const mics = text.stdout.split('Microphones:\n')[1] ?? '';
  t.match(mics, /--audio-device 'mic\.monitor'/, 'the virtual microphone (mic.monitor) is listed with the value to pass');
  t.match(mics, /--audio-device 'spk\.monitor'/, 'the speaker monitor is listed too');

  t.equal(json.code, 0, '--json exits 0');
  const parsed = JSON.parse(json.stdout) as { cameras: unknown[]; microphones: { value: string }[] };
  t.ok(Array.isArray(parsed.cameras), '--json has a cameras array');
  t.ok(
    parsed.microphones.some((m) => m.value === 'mic.monitor'),
    '--json lists mic.monitor',
  );
});
