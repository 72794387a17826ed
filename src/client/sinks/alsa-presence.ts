/**
 * Linux: could an ALSA output open here at all? `--audio-output auto` skips the two ALSA outputs
 * (audio-io, speaker) where none can: alsa-lib prints each failure straight to the process's stderr
 * ("ALSA lib confmisc.c:855:(parse_card) cannot find card '0'" …), 16 lines on a machine with neither
 * a sound card nor a sound server, past --quiet and in the middle of lanstream's own lines. The
 * PulseAudio outputs after them then fail with one line each.
 *
 * Possible when there is a sound card (a playback PCM in /dev/snd), an ALSA configuration of the
 * user's (which may route the default device anywhere), or a sound server the default device's
 * plugins reach: PulseAudio (PULSE_SERVER, or its socket in the runtime directory) or PipeWire. A
 * yes is no promise; a no is certain enough to skip them.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface AlsaProbe {
  exists(file: string): boolean;
  list(dir: string): string[];
  env: NodeJS.ProcessEnv;
  uid: number;
}

export function systemAlsaProbe(): AlsaProbe {
  return {
    exists: existsSync,
    list: (dir) => {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    },
    env: process.env,
    uid: process.getuid?.() ?? 0,
  };
}

export function alsaOutputPossible(probe: AlsaProbe = systemAlsaProbe()): boolean {
  const { env } = probe;
  if (probe.list('/dev/snd').some((name) => /^pcmC\d+D\d+p$/.test(name))) return true;
  if (env.ALSA_CONFIG_PATH || probe.exists('/etc/asound.conf') || (env.HOME && probe.exists(path.join(env.HOME, '.asoundrc')))) return true;
  const runtimeDir = env.XDG_RUNTIME_DIR || `/run/user/${probe.uid}`;
  if (probe.exists(path.join(runtimeDir, 'pipewire-0'))) return true;
  const pulseServer = env.PULSE_SERVER?.trim();
  // libpulse uses PULSE_SERVER alone when it is set: a local socket that is not there is no server.
  if (pulseServer) return pulseServer.split(/\s+/).some((s) => !isLocalSocket(s) || probe.exists(localSocketPath(s)));
  return [path.join(runtimeDir, 'pulse', 'native'), '/run/pulse/native', '/var/run/pulse/native'].some((p) => probe.exists(p));
}

/** PulseAudio server strings: `unix:/path`, a bare `/path`, or tcp/host forms (anything else). */
function isLocalSocket(server: string): boolean {
  return server.startsWith('unix:') || server.startsWith('/');
}

function localSocketPath(server: string): string {
  return server.replace(/^unix:/, '');
}
