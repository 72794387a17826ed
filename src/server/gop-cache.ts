/**
 * GOP cache: the hub keeps the video access units since the last keyframe, so a viewer that joins or
 * reconnects while capture runs gets a decodable start at once instead of waiting for the next IDR
 * (up to one GOP, 500 ms at the default fps/2; measured in docs/codecs.md "Joining a running stream").
 * The session sends the cached units ahead of live ones, in order; the viewer's decoder catches up.
 *
 * Why a cache and not a shorter GOP or intra refresh: a shorter GOP still leaves a wait and costs
 * bits on every viewer all the time; intra refresh has no clean start point at all until a whole
 * refresh cycle has passed. The cache costs memory on the server only: bounded here in units and
 * bytes; a GOP that outgrows the bound is dropped whole (never a start without its keyframe), and
 * joiners then wait for the next keyframe as before.
 */
import type { CapturedChunk } from './capture/capture-types.js';

export interface GopCacheOptions {
  /** Units kept at most (from the keyframe on); default 300 = 10 s at 30 fps. */
  maxFrames?: number;
  /** Bytes kept at most; default 8 MiB. */
  maxBytes?: number;
}

export const DEFAULT_GOP_CACHE_MAX_FRAMES = 300;
export const DEFAULT_GOP_CACHE_MAX_BYTES = 8 * 1024 * 1024;

export class GopCache {
  readonly #maxFrames: number;
  readonly #maxBytes: number;
  #frames: CapturedChunk[] = [];
  #bytes = 0;

  constructor(opts: GopCacheOptions = {}) {
    this.#maxFrames = opts.maxFrames ?? DEFAULT_GOP_CACHE_MAX_FRAMES;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_GOP_CACHE_MAX_BYTES;
    if (!Number.isInteger(this.#maxFrames) || this.#maxFrames < 1) throw new RangeError(`maxFrames must be a positive integer, got ${this.#maxFrames}`);
    if (!Number.isInteger(this.#maxBytes) || this.#maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${this.#maxBytes}`);
  }

  /** A keyframe starts the cache over; other units are kept only behind a keyframe and within the bounds. */
  push(chunk: CapturedChunk, keyframe: boolean): void {
    if (keyframe) {
      this.#frames = [];
      this.#bytes = 0;
    } else if (this.#frames.length === 0) {
      return;
    }
    if (this.#frames.length + 1 > this.#maxFrames || this.#bytes + chunk.data.length > this.#maxBytes) {
      this.clear();
      return;
    }
    this.#frames.push(chunk);
    this.#bytes += chunk.data.length;
  }

  /** The units from the last keyframe on (empty when there is no usable start). */
  frames(): CapturedChunk[] {
    return this.#frames.slice();
  }

  get bytes(): number {
    return this.#bytes;
  }

  clear(): void {
    this.#frames = [];
    this.#bytes = 0;
  }
}
