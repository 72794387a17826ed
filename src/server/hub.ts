/**
 * The hub sits between capture and the viewer sessions: every captured chunk is offered to every
 * session, and publishing never blocks (each session owns its bounded queue and drop policy, as
 * MediaMTX readers do). It also decides when capture runs: only while at least one viewer is
 * subscribed, plus a short linger, so no audio captured before a viewer joined can reach it
 * (measured: a mic opened before accept() turns the wait into permanent latency).
 *
 * A viewer that joins while capture runs is handed the video since the last keyframe (GopCache): an
 * H.264 viewer does not wait for the next IDR, and an MJPEG viewer gets the newest JPEG (every JPEG is
 * a keyframe) instead of waiting for the next capture. The cache is emptied when capture stops, so
 * nothing from an earlier capture reaches a later viewer.
 */
import { MediaFlag } from '../protocol/constants.js';
import type { CapturedChunk } from './capture/capture-types.js';
import { GopCache } from './gop-cache.js';

export type MediaKind = 'video' | 'audio';

export interface HubSubscriber {
  readonly id: string;
  offer(kind: MediaKind, chunk: CapturedChunk): void;
  /** Video since the last keyframe, offered once on subscribe before any live chunk (joiners catch up). */
  offerBacklog?(frames: readonly CapturedChunk[]): void;
}

export interface HubOptions {
  /** Called when the first viewer arrives (start capture). */
  onActive: () => void;
  /** Called when the last viewer left and the linger passed (stop capture). */
  onIdle: () => void;
  lingerMs: number;
  /** Keep capture running without viewers (onIdle is never called). */
  keepWarm?: boolean;
}

export class Hub {
  readonly #subscribers = new Map<string, HubSubscriber>();
  readonly #options: HubOptions;
  #lingerTimer: NodeJS.Timeout | null = null;
  #active = false;
  #closed = false;
  readonly #gop = new GopCache();

  constructor(options: HubOptions) {
    this.#options = options;
    if (options.keepWarm) this.#activate();
  }

  get viewerCount(): number {
    return this.#subscribers.size;
  }

  get active(): boolean {
    return this.#active;
  }

  subscribe(subscriber: HubSubscriber): void {
    // Closed for good (the server is shutting down): no one joins, capture does not start again.
    if (this.#closed) return;
    this.#subscribers.set(subscriber.id, subscriber);
    const backlog = this.#active ? this.#gop.frames() : [];
    if (backlog.length > 0) subscriber.offerBacklog?.(backlog);
    if (this.#lingerTimer) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = null;
    }
    this.#activate();
  }

  unsubscribe(id: string): void {
    if (!this.#subscribers.delete(id) || this.#subscribers.size > 0 || this.#options.keepWarm) return;
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = setTimeout(() => {
      this.#lingerTimer = null;
      if (this.#subscribers.size === 0 && this.#active) {
        this.#active = false;
        this.#gop.clear();
        this.#options.onIdle();
      }
    }, this.#options.lingerMs);
    this.#lingerTimer.unref();
  }

  publish(kind: MediaKind, chunk: CapturedChunk): void {
    if (kind === 'video') this.#gop.push(chunk, (chunk.flags & MediaFlag.KEYFRAME) !== 0);
    for (const subscriber of this.#subscribers.values()) subscriber.offer(kind, chunk);
  }

  close(): void {
    this.#closed = true;
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = null;
    this.#subscribers.clear();
    this.#gop.clear();
    this.#active = false;
  }

  #activate(): void {
    if (this.#active) return;
    this.#active = true;
    this.#options.onActive();
  }
}
