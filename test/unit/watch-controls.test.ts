import t from 'tap';
import { EventEmitter } from 'node:events';
import { keyAction } from '../../src/cli/keys.js';
import { WatchControls } from '../../src/cli/watch-controls.js';
import { StatusLine } from '../../src/cli/status-line.js';
import { Output } from '../../src/cli/output.js';
import type { Viewer } from '../../src/client/watch.js';

class FakeViewer extends EventEmitter {
  volumes: number[] = [];
  calls: string[] = [];
  setVolume(v: number) {
    this.volumes.push(v);
  }
  disconnect() {
    this.calls.push('disconnect');
  }
  connect() {
    this.calls.push('connect');
  }
  reconnect() {
    this.calls.push('reconnect');
  }
  repaint() {
    this.calls.push('repaint');
  }
}

const overlay = () => {
  const texts: string[] = [];
  return { texts, set: (s: string) => texts.push(s), filter: () => '', close: () => undefined, file: '', text: '' };
};

function make(volume = 50) {
  const viewer = new FakeViewer();
  const o = overlay();
  let quit = 0;
  const c = new WatchControls({
    viewer: viewer as unknown as Viewer,
    overlay: o as never,
    status: new StatusLine(false),
    output: new Output(),
    volume,
    showStats: false,
    stdin: null,
    onQuit: () => quit++,
  });
  return { viewer, o, c, quits: () => quit };
}

t.test('keys map to actions; Ctrl combinations do not', async (t) => {
  t.equal(keyAction('+', { name: '+' }), 'volume-up');
  t.equal(keyAction(undefined, { name: 'up' }), 'volume-up');
  t.equal(keyAction('-', {}), 'volume-down');
  t.equal(keyAction('m', { name: 'm' }), 'mute');
  t.equal(keyAction('q', { name: 'q' }), 'quit');
  t.equal(keyAction('?', {}), 'help');
  t.equal(keyAction('x', { name: 'x' }), null);
  t.equal(keyAction('q', { name: 'q', ctrl: true }), null);
});

t.test('volume steps are applied to the audio path and clamped; mute toggles', async (t) => {
  const { viewer, c } = make(95);
  c.act('volume-up');
  c.act('volume-up');
  t.same(viewer.volumes, [100, 100], 'clamped at 100');
  c.act('mute');
  t.equal(viewer.volumes.at(-1), 0, 'mute sets the gain to 0');
  t.equal(c.effectiveVolume, 0);
  c.act('mute');
  t.equal(viewer.volumes.at(-1), 100, 'unmute restores the volume');
  for (let i = 0; i < 12; i++) c.act('volume-down');
  t.equal(viewer.volumes.at(-1), 0, 'clamped at 0');
});

t.test('a volume key while muted unmutes at the new volume, as a system volume key does (README: Keys)', async (t) => {
  const { viewer, c } = make(100);
  c.act('mute');
  c.act('volume-down');
  t.equal(c.muted, false, 'unmuted');
  t.equal(viewer.volumes.at(-1), 90, 'at one step below the volume before the mute');
  c.act('mute');
  c.act('volume-up');
  t.equal(viewer.volumes.at(-1), 100, 'and one step above it with +');
});

t.test('the overlay shows trouble always, stats only when toggled', async (t) => {
  const { viewer, o, c } = make();
  viewer.emit('state', 'reconnecting', 'no data for 2000 ms');
  t.match(o.texts.at(-1), /RECONNECTING - no data/);
  viewer.emit('state', 'live');
  t.equal(c.overlayText(Date.now() + 5000), '', 'nothing over the picture when live');
  c.act('mute');
  t.match(c.overlayText(Date.now() + 5000), /MUTED/);
  c.act('mute');
  c.act('overlay');
  viewer.emit('stats', { state: 'live', fps: 30, videoLatencyMs: 12, audioLatencyMs: 40, bitrateKbps: 12000, drops: { video: 1, audio: 0 } });
  t.match(o.texts.at(-1), /LIVE video 12 ms 30 fps \| audio 40 ms \| 12\.0 Mbit\/s/);
  c.close();
});

t.test('d disconnects and connects again; q quits', async (t) => {
  const { viewer, c, quits } = make();
  viewer.emit('state', 'live');
  c.act('toggle-connection');
  viewer.emit('state', 'disconnected', 'disconnected by the viewer');
  c.act('toggle-connection');
  t.same(
    viewer.calls.filter((x) => x !== 'repaint'),
    ['disconnect', 'connect'],
  );
  c.act('quit');
  t.equal(quits(), 1);
  c.close();
});
