/**
 * What the user can change while watching — volume, mute, disconnect/connect, reconnect, the
 * status overlay, quit — from keys on a terminal (src/cli/keys.ts) and reflected in three places:
 * the audio path (volume is applied in lanstream's own PCM path, with a ramp), the status line,
 * and the overlay in the video window. The overlay always shows trouble (connecting,
 * reconnecting, disconnected, muted); the full stats line only when toggled on (`o`, --overlay),
 * so the picture stays clean by default.
 */
import type { Viewer } from '../client/watch.js';
import type { StatsSnapshot } from '../client/viewer-stats.js';
import { OVERLAY_LINE_CHARS, type OverlayText } from '../client/overlay.js';
import type { ConnectionState } from '../client/connection.js';
import { KEY_HELP, startKeys, type KeyAction, type KeyReader } from './keys.js';
import type { Output } from './output.js';
import type { StatusLine } from './status-line.js';

export interface WatchControlsOptions {
  viewer: Viewer;
  overlay: OverlayText | null;
  status: StatusLine;
  output: Output;
  volume: number;
  showStats: boolean;
  /** Read keys from this terminal (null = no key reader: not a TTY, --json, or a script). */
  stdin: NodeJS.ReadStream | null;
  onQuit: () => void;
}

const VOLUME_STEP = 10;
/** How long a volume change stays on the overlay. */
const FLASH_MS = 1500;
/** While no frames arrive, re-show the last one this often so the overlay text updates. */
const REPAINT_MS = 250;

export class WatchControls {
  readonly #o: WatchControlsOptions;
  #volume: number;
  #muted = false;
  #showStats: boolean;
  #state: ConnectionState = 'connecting';
  #detail: string | undefined;
  #last: StatsSnapshot | null = null;
  #flash: { text: string; untilMs: number } | null = null;
  #keys: KeyReader | null = null;
  #repaint: NodeJS.Timeout | null = null;

  constructor(o: WatchControlsOptions) {
    this.#o = o;
    this.#volume = o.volume;
    this.#showStats = o.showStats;
    o.viewer.on('state', (state, detail) => {
      this.#state = state;
      this.#detail = detail;
      this.#render();
      this.#repaintWhileDown();
    });
    o.viewer.on('stats', (snap) => {
      this.#last = snap;
      this.#render();
    });
    if (o.stdin) {
      this.#keys = startKeys(o.stdin, (action) => this.act(action));
      if (this.#keys) process.stderr.write(`${KEY_HELP}\n`);
    }
    this.#render();
  }

  /** 0–100, or 0 while muted. */
  get effectiveVolume(): number {
    return this.#muted ? 0 : this.#volume;
  }

  get muted(): boolean {
    return this.#muted;
  }

  act(action: KeyAction): void {
    const v = this.#o.viewer;
    switch (action) {
      case 'volume-up':
      case 'volume-down':
        this.#volume = Math.max(0, Math.min(100, this.#volume + (action === 'volume-up' ? VOLUME_STEP : -VOLUME_STEP)));
        this.#muted = false;
        v.setVolume(this.#volume);
        this.#flash = { text: `volume ${this.#volume}`, untilMs: Date.now() + FLASH_MS };
        break;
      case 'mute':
        this.#muted = !this.#muted;
        v.setVolume(this.effectiveVolume);
        this.#flash = { text: this.#muted ? 'muted' : `volume ${this.#volume}`, untilMs: Date.now() + FLASH_MS };
        break;
      case 'toggle-connection':
        if (this.#state === 'disconnected') v.connect();
        else v.disconnect();
        break;
      case 'reconnect':
        v.reconnect();
        break;
      case 'overlay':
        this.#showStats = !this.#showStats;
        break;
      case 'help':
        process.stderr.write(`\n${KEY_HELP}\n`);
        break;
      case 'quit':
        this.#o.onQuit();
        return;
    }
    this.#o.output.event('control', { action, volume: this.#volume, muted: this.#muted });
    this.#render();
    if (this.#state !== 'live') v.repaint();
  }

  /** The overlay text for the current state (exported through the class for tests). */
  overlayText(nowMs = Date.now()): string {
    const parts: string[] = [];
    if (this.#state !== 'live') parts.push(`${this.#state.toUpperCase()}${this.#detail && this.#state !== 'connecting' ? ` - ${this.#detail}` : ''}`);
    if (this.#muted) parts.push('MUTED');
    if (this.#flash && nowMs < this.#flash.untilMs && !(this.#muted && this.#flash.text === 'muted')) parts.push(this.#flash.text);
    if (this.#showStats && this.#last && this.#state === 'live') {
      const s = this.#last;
      const ms = (x: number | null) => (x === null ? '-' : `${Math.round(x)} ms`);
      parts.push(`LIVE video ${ms(s.videoLatencyMs)} ${s.fps} fps | audio ${ms(s.audioLatencyMs)} | ${(s.bitrateKbps / 1000).toFixed(1)} Mbit/s`);
      parts.push(`drops ${s.drops.video}/${s.drops.audio} | vol ${this.#muted ? 'muted' : this.#volume}`);
    }
    // One item per line, each short enough for the window: on one line the volume and the reason
    // for reconnecting ran off the right edge of a 640x360 window.
    return parts.map((line) => (line.length > OVERLAY_LINE_CHARS ? `${line.slice(0, OVERLAY_LINE_CHARS - 3)}...` : line)).join('\n');
  }

  close(): void {
    this.#keys?.close();
    this.#keys = null;
    if (this.#repaint) clearInterval(this.#repaint);
    this.#repaint = null;
  }

  #render(): void {
    this.#o.overlay?.set(this.overlayText());
    // The last numbers with the current state: a redraw after "reconnecting" must not say "live".
    if (this.#last) this.#o.status.stats({ ...this.#last, state: this.#state }, this.effectiveVolume);
  }

  #repaintWhileDown(): void {
    if (this.#state === 'live' || this.#state === 'closed') {
      if (this.#repaint) clearInterval(this.#repaint);
      this.#repaint = null;
      return;
    }
    if (this.#repaint || !this.#o.overlay) return;
    this.#repaint = setInterval(() => {
      this.#render();
      this.#o.viewer.repaint();
    }, REPAINT_MS);
    this.#repaint.unref();
  }
}
