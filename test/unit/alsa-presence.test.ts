import t from 'tap';
import { alsaOutputPossible, type AlsaProbe } from '../../src/client/sinks/alsa-presence.js';

/** A machine described by its files: nothing but what is listed exists. */
function machine(files: string[], env: NodeJS.ProcessEnv = {}): AlsaProbe {
  const set = new Set(files);
  return {
    exists: (f) => set.has(f),
    list: (dir) => files.filter((f) => f.startsWith(`${dir}/`)).map((f) => f.slice(dir.length + 1)),
    env: { HOME: '/home/u', ...env },
    uid: 1000,
  };
}

t.test('no sound card, no ALSA configuration, no sound server: not possible', async (t) => {
  t.notOk(alsaOutputPossible(machine([])));
  t.notOk(alsaOutputPossible(machine(['/dev/snd/controlC0', '/dev/snd/pcmC0D0c', '/dev/snd/timer'])), 'a capture-only card');
  t.notOk(alsaOutputPossible(machine([], { PULSE_SERVER: 'unix:/nonexistent/native' })), 'PULSE_SERVER names a socket that is not there');
  t.notOk(alsaOutputPossible(machine(['/run/user/1000/pulse/native'], { PULSE_SERVER: 'unix:/gone' })), 'PULSE_SERVER wins over the default socket');
});

t.test('any way to a sound output: possible', async (t) => {
  t.ok(alsaOutputPossible(machine(['/dev/snd/pcmC0D0p'])), 'a playback PCM');
  t.ok(alsaOutputPossible(machine(['/etc/asound.conf'])), 'a system ALSA configuration');
  t.ok(alsaOutputPossible(machine(['/home/u/.asoundrc'])), "the user's .asoundrc");
  t.ok(alsaOutputPossible(machine([], { ALSA_CONFIG_PATH: '/x/asound.conf' })), 'ALSA_CONFIG_PATH');
  t.ok(alsaOutputPossible(machine(['/run/user/1000/pulse/native'])), 'PulseAudio in the default runtime directory');
  t.ok(alsaOutputPossible(machine(['/tmp/rt/pulse/native'], { XDG_RUNTIME_DIR: '/tmp/rt' })), 'PulseAudio in XDG_RUNTIME_DIR');
  t.ok(alsaOutputPossible(machine(['/run/user/1000/pipewire-0'])), 'PipeWire');
  t.ok(alsaOutputPossible(machine(['/var/run/pulse/native'])), 'PulseAudio in system mode');
  t.ok(alsaOutputPossible(machine(['/tmp/p.sock'], { PULSE_SERVER: 'unix:/tmp/p.sock' })), 'PULSE_SERVER, a socket that is there');
  t.ok(alsaOutputPossible(machine([], { PULSE_SERVER: 'tcp:192.168.1.5' })), 'PULSE_SERVER over the network (not checked)');
});
