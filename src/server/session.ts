/**
 * One viewer on the server: handshake (HELLO → CHALLENGE → AUTH → WELCOME), then media out and
 * control in. It owns this viewer's bounded queue and its flow control, so one slow viewer never
 * slows the hub or the others.
 *
 * Flow control: TCP hides seconds of old video in its buffers on a slow link (measured with plain
 * ffmpeg at 10 Mbit/s: 16 s behind and growing). So the session bounds bytes in flight itself: the
 * viewer ACKs what it received, a video frame is sent only while the unacknowledged bytes fit a
 * window sized from the measured delivery rate and RTT, and otherwise the waiting frame is replaced
 * by the newest. Audio is small and goes first; it has its own bound (whole 10 ms packets dropped,
 * the next flagged DISCONTINUITY).
 *
 * Joining H.264: the hub hands a new viewer the access units since the last IDR (GopCache). They go
 * out in order, ahead of live frames, which queue behind them (keyframe-safe: no unit is skipped)
 * until the queue is empty; the viewer's decoder catches up in a burst instead of waiting up to a
 * GOP for the next IDR. Measured in docs/codecs.md ("Joining a running stream").
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ByeReason, DEFAULT_LIMITS, MediaFlag, PROTOCOL_VERSION } from '../protocol/constants.js';
import { encodeMediaHeader, encodeMessage } from '../protocol/encoder.js';
import { MessageDecoder, TEXT_MAX_CHARS } from '../protocol/decoder.js';
import type { AudioParams, Message, StatusBody, VideoParams } from '../protocol/messages.js';
import { decodeNonceHex, exportAuthEkm, newNonce, verifyAuthProof } from '../protocol/auth.js';
import { plainAddress } from '../shared/connect-url.js';
import { isLanstreamError } from '../shared/errors.js';
import { nowUs } from '../shared/clock.js';
import { DropReporter } from '../shared/drop-reporter.js';
import type { CapturedChunk } from './capture/capture-types.js';
import type { HubSubscriber, MediaKind } from './hub.js';
import type { AuthLimiter } from './auth-limiter.js';
import { FlowWindow } from './flow-window.js';
import { DEFAULT_GOP_CACHE_MAX_FRAMES } from './gop-cache.js';
import { levelSize, QUALITY_LEVELS, QualityAdapter, reduceJpeg } from './quality-adapter.js';
import type { ReencodeAdmission } from './reencode-admission.js';
import { LogThrottle } from '../shared/log-throttle.js';

export interface SessionLimits {
  /** The handshake must complete within this time (slowloris). */
  helloTimeoutMs: number;
  /** No byte from the viewer for this long = dead link (do not wait for TCP backoff). */
  deadMs: number;
  heartbeatMs: number;
  /** Audio waiting for the window beyond this is dropped (whole packets). */
  maxAudioQueueMs: number;
  /** No video frame could be sent for this long = the viewer is too far behind: close it. */
  maxStallMs: number;
  /**
   * Bytes the socket may hold unsent. A frame is written only into an empty socket buffer and
   * audio only inside the ACK window, so only control replies can grow it: a viewer that sends
   * PINGs and never reads would otherwise make the server queue PONGs without bound.
   */
  maxQueuedBytes: number;
}

export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = Object.freeze({
  helloTimeoutMs: 5000,
  deadMs: 2500,
  heartbeatMs: 500,
  maxAudioQueueMs: 120,
  maxStallMs: 15000,
  maxQueuedBytes: DEFAULT_LIMITS.maxVideoBytes + 1024 * 1024,
});

export interface SessionInfo {
  id: string;
  address: string;
  state: 'handshake' | 'live' | 'closed';
  connectedAtMs: number;
  rttMs: number | null;
  sentBytes: number;
  ackedBytes: number;
  videoSent: number;
  audioSent: number;
  drops: Readonly<Record<string, number>>;
  viewerStats: Record<string, unknown> | null;
}

export interface SessionOptions {
  socket: TLSSocket | Socket;
  /** False only with --insecure (plain TCP): no TLS exporter to bind the proof to. */
  secure: boolean;
  accessKey: string;
  limiter: AuthLimiter;
  video: VideoParams | null;
  audio: AudioParams | null;
  agent: string;
  logger: Logger;
  limits?: Partial<SessionLimits>;
  /**
   * Asked after a valid proof and before WELCOME: null admits the viewer, a string refuses it with
   * BYE server-full. Checked before WELCOME so a refused viewer never looks live, not even briefly.
   */
  admit?: (session: Session) => string | null;
  /** The handshake passed: start sending media (the composition root subscribes us to the hub). */
  onLive: (session: Session) => void;
  /** `wasLive`: it had passed the handshake (a port scan, garbage or a wrong key had not). */
  onClose: (session: Session, reason: string, wasLive: boolean) => void;
  /** This viewer waits for a keyframe (joined, or lost an inter-coded frame): ask capture for one. */
  onKeyframeNeeded?: () => void;
  /** Shared by the server's sessions: whether this one may start re-encoding its video (none: always). */
  reencodeAdmission?: ReencodeAdmission;
}

type State = 'hello' | 'auth' | 'live' | 'closed';

/**
 * An MJPEG joiner gets the newest captured frame at once only if it is at most this many frame
 * intervals old: capture is running on schedule, so it is what the next frame would show, a frame
 * interval sooner. Older means capture stalled, and that picture would be news to no one.
 */
export const MJPEG_JOIN_MAX_AGE_FRAMES = 2;
/** Backlog + live frames queued behind it at most: the hub's cache bound (10 s at 30 fps). */
const MAX_CATCH_UP_FRAMES = DEFAULT_GOP_CACHE_MAX_FRAMES;
/**
 * PONGs written while the socket still held unsent bytes, at most. A viewer pings twice a second and
 * reads, so it never comes near this; one that pings and stops reading would otherwise make the
 * server queue a 28-byte write per PING, whose per-write overhead maxQueuedBytes does not see (600k
 * PINGs: +96 MB RSS before the byte limit closed it). Past this it is closed as a viewer that
 * stopped reading.
 */
export const MAX_PONGS_QUEUED = 64;
/** After BYE (ours or the viewer's) the socket is destroyed this long later if the peer keeps it open. */
const BYE_LINGER_MS = 1000;

export class Session implements HubSubscriber {
  readonly id = randomUUID().slice(0, 8);
  readonly address: string;
  readonly #o: SessionOptions;
  readonly #limits: SessionLimits;
  readonly #socket: TLSSocket | Socket;
  readonly #decoder = new MessageDecoder({ direction: 'client-to-server' });
  readonly #log: Logger;
  readonly #drops: DropReporter;
  readonly #window = new FlowWindow();
  readonly #connectedAtMs = Date.now();
  #state: State = 'hello';
  #clientNonce: Buffer | null = null;
  #serverNonce: Buffer | null = null;
  #wantVideo = true;
  #wantAudio = true;
  #sentBytes = 0;
  #ackedBytes = 0;
  /** Video frames sent and not yet acknowledged: where each ends in the byte stream, and when it went out. */
  #videoInFlight: { endByte: number; sentAtUs: number }[] = [];
  #lastHeardUs = nowUs();
  #videoSeq = 0;
  #audioSeq = 0;
  #videoSent = 0;
  #audioSent = 0;
  #pendingVideo: CapturedChunk | null = null;
  #videoDiscontinuity = false;
  #lastVideoSentUs = nowUs();
  #audioQueue: CapturedChunk[] = [];
  #audioDiscontinuity = false;
  /** H.264 catch-up: the cached GOP, then the live frames behind it, all sent in order. */
  #catchUp: CapturedChunk[] = [];
  /** A new viewer starts at a keyframe; after a drop of an inter-coded frame, so does the stream. */
  #needKeyframe = true;
  #lastKeyframeAskUs = 0;
  readonly #quality = new QualityAdapter();
  #lastRefusal = '';
  readonly #reencodeRefusals = new LogThrottle(10_000, (n) =>
    this.#log.info({ refused: n }, `this viewer's link looks too slow for the full stream, but its video is not re-encoded yet: ${this.#lastRefusal}`),
  );
  #rawVideo: CapturedChunk | null = null;
  #transcoding = false;
  #pingId = 0;
  #pingSentUs = new Map<number, number>();
  #rttUs: number | null = null;
  #viewerStats: Record<string, unknown> | null = null;
  #helloTimer: NodeJS.Timeout | null;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #closeReason = '';
  /** PONGs written since the socket was last seen with nothing unsent. */
  #pongsQueued = 0;
  #resolveClosed!: () => void;
  /** Resolves once this session has finished (socket closed), whatever the reason. */
  readonly closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.#socket = options.socket;
    this.address = plainAddress(options.socket.remoteAddress);
    this.#log = options.logger.child({ session: this.id, address: this.address });
    this.#drops = new DropReporter((counts) => this.#log.info({ drops: counts }, 'dropped to stay live'));
    this.#socket.setNoDelay(true);
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('drain', () => this.#pump());
    this.#socket.on('error', (err) => this.#log.debug({ err: err.message }, 'socket error'));
    this.#socket.on('close', () => this.#finish(this.#closeReason || 'connection closed by viewer'));
    this.#helloTimer = setTimeout(() => {
      this.bye(ByeReason.TIMEOUT, `handshake not completed within ${this.#limits.helloTimeoutMs} ms`);
    }, this.#limits.helloTimeoutMs);
  }

  get live(): boolean {
    return this.#state === 'live';
  }

  /** Still in the handshake and not already saying goodbye: holds one of the pending slots. */
  get pending(): boolean {
    return (this.#state === 'hello' || this.#state === 'auth') && !this.#closeReason;
  }

  get connectedAtMs(): number {
    return this.#connectedAtMs;
  }

  info(): SessionInfo {
    return {
      id: this.id,
      address: this.address,
      state: this.#state === 'live' ? 'live' : this.#state === 'closed' ? 'closed' : 'handshake',
      connectedAtMs: this.#connectedAtMs,
      rttMs: this.#rttUs === null ? null : this.#rttUs / 1000,
      sentBytes: this.#sentBytes,
      ackedBytes: this.#ackedBytes,
      videoSent: this.#videoSent,
      audioSent: this.#audioSent,
      drops: this.#drops.totals,
      viewerStats: this.#viewerStats,
    };
  }

  /**
   * The hub's GOP cache on join. H.264: the units since the last IDR, taken only while this viewer
   * still waits for its first keyframe and the backlog starts at one. MJPEG: the newest JPEG, sent at
   * once if capture is running (at most MJPEG_JOIN_MAX_AGE_FRAMES old), instead of waiting up to a
   * frame interval for the next one; the next capture replaces it as usual. One picture, never a
   * queue: it cannot add delay to anything after it.
   */
  offerBacklog(frames: readonly CapturedChunk[]): void {
    if (this.#state !== 'live' || !this.#wantVideo) return;
    const video = this.#o.video;
    if (video?.codec === 'mjpeg') {
      const newest = frames[frames.length - 1];
      if (!newest || this.#videoSent > 0 || this.#pendingVideo) return;
      if (nowUs() - newest.ptsUs > (MJPEG_JOIN_MAX_AGE_FRAMES * 1e6) / video.fps) return;
      this.#pendingVideo = newest;
      this.#pump();
      return;
    }
    if (video?.codec !== 'h264' || !this.#needKeyframe) return;
    if (frames.length === 0 || frames.length > MAX_CATCH_UP_FRAMES || (frames[0]!.flags & MediaFlag.KEYFRAME) === 0) return;
    this.#catchUp = [...frames];
    this.#needKeyframe = false;
    this.#pump();
  }

  /** Hub fan-out: never blocks, never throws. */
  offer(kind: MediaKind, chunk: CapturedChunk): void {
    if (this.#state !== 'live') return;
    if (kind === 'video') {
      if (!this.#wantVideo) return;
      const keyframe = (chunk.flags & MediaFlag.KEYFRAME) !== 0;
      if (this.#catchUp.length > 0) {
        this.#queueBehindCatchUp(chunk, keyframe);
        this.#pump();
        return;
      }
      if (this.#quality.level > 0 && this.#o.video?.codec === 'mjpeg') {
        // A reduced level: the re-encoded frame waiting for the window stays; the raw frame
        // behind it is the one replaced (newest wins), and is re-encoded only when it is next.
        // Replaced while the window holds a frame back: link-bound; while sharp is busy: CPU-bound.
        this.#quality.onOffered(chunk.data.length);
        if (this.#rawVideo) {
          this.#drops.add('video');
          this.#videoDiscontinuity = true;
          if (this.#pendingVideo) this.#quality.onBlocked();
        }
        this.#rawVideo = chunk;
        this.#transcodeNext();
        return;
      }
      if (this.#pendingVideo) {
        // Replacing a frame that was never sent drops it. With inter-frame codecs (H.264) the
        // frames after it reference it, so only the next keyframe may follow (MJPEG: all are).
        this.#drops.add('video');
        this.#videoDiscontinuity = true;
        this.#quality.onBlocked();
        if ((this.#pendingVideo.flags & MediaFlag.KEYFRAME) === 0 || !keyframe) this.#needKeyframe = true;
      }
      if (this.#needKeyframe && !keyframe) {
        this.#pendingVideo = null;
        this.#drops.add('video-until-keyframe');
        this.#askKeyframe();
        return;
      }
      this.#needKeyframe = false;
      this.#quality.onOffered(chunk.data.length);
      this.#pendingVideo = chunk;
    } else {
      if (!this.#wantAudio) return;
      this.#audioQueue.push(chunk);
      const packetUs = (this.#o.audio?.packetMs ?? 10) * 1000;
      while (this.#audioQueue.length * packetUs > this.#limits.maxAudioQueueMs * 1000) {
        this.#audioQueue.shift();
        this.#drops.add('audio');
        this.#audioDiscontinuity = true;
      }
    }
    this.#pump();
  }

  /** Say why and close gracefully (the socket ends after the BYE is flushed). */
  bye(reason: ByeReason, message: string): void {
    if (this.#state === 'closed' || this.#closeReason) return;
    this.#closeReason = `${reason}: ${message}`;
    try {
      this.#write(encodeMessage({ type: 'bye', body: { reason, message: message.slice(0, TEXT_MAX_CHARS) } }));
    } catch {
      // socket already gone
    }
    this.#endSoon();
  }

  /** End our side now; destroy the socket if the peer has not closed its side by then. */
  #endSoon(): void {
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), BYE_LINGER_MS).unref();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** Tell a live viewer what the server is going through (capture restarting, failed, live again). */
  status(body: StatusBody): void {
    if (this.#state !== 'live') return;
    // The message may quote ffmpeg's stderr (up to 1000 characters); the protocol carries 500.
    const clipped = body.message === undefined ? body : { ...body, message: body.message.slice(0, TEXT_MAX_CHARS) };
    this.#write(encodeMessage({ type: 'status', body: clipped }));
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    this.#lastHeardUs = nowUs();
    let messages: Message[];
    try {
      messages = this.#decoder.push(chunk);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const reason = isLanstreamError(err) && err.code === 'LS_ERR_VERSION_MISMATCH' ? ByeReason.VERSION : ByeReason.PROTOCOL;
      this.#log.warn({ code: isLanstreamError(err) ? err.code : undefined }, `closing viewer: ${message}`);
      this.bye(reason, message);
      return;
    }
    for (const message of messages) {
      if (this.#closeReason || this.#socket.destroyed) return;
      this.#handle(message);
    }
  }

  #handle(message: Message): void {
    switch (message.type) {
      case 'hello': {
        const blocked = this.#o.limiter.isBlocked(this.address, Date.now());
        if (blocked.blocked) {
          if (this.#o.limiter.shouldLogRefusal(this.address, Date.now())) {
            this.#log.warn({ retryAfterMs: blocked.retryAfterMs }, 'refused viewer: rate limited after wrong access keys (logged once per block)');
          }
          this.bye(ByeReason.RATE_LIMITED, `too many wrong keys from ${this.address}; retry in ${Math.ceil(blocked.retryAfterMs / 1000)} s`);
          return;
        }
        this.#clientNonce = decodeNonceHex(message.body.clientNonce);
        if (!this.#clientNonce) {
          this.bye(ByeReason.PROTOCOL, 'HELLO clientNonce must be 64 hex characters');
          return;
        }
        this.#wantVideo = message.body.wantVideo && this.#o.video !== null;
        this.#wantAudio = message.body.wantAudio && this.#o.audio !== null;
        this.#serverNonce = newNonce();
        this.#state = 'auth';
        this.#write(encodeMessage({ type: 'challenge', nonce: this.#serverNonce }));
        return;
      }
      case 'auth':
        this.#onAuth(message.proof);
        return;
      case 'ping':
        if (this.#socket.writableLength === 0) this.#pongsQueued = 0;
        else if (++this.#pongsQueued > MAX_PONGS_QUEUED) return this.#dropNonReader(`${this.#pongsQueued} PONGs unsent`);
        this.#write(encodeMessage({ type: 'pong', id: message.id, echoTimeUs: message.sendTimeUs, senderTimeUs: nowUs() }));
        return;
      case 'pong': {
        const sentUs = this.#pingSentUs.get(message.id);
        if (sentUs !== undefined) {
          this.#pingSentUs.delete(message.id);
          const rtt = nowUs() - sentUs;
          this.#rttUs = this.#rttUs === null ? rtt : this.#rttUs * 0.875 + rtt * 0.125;
          this.#window.onRtt(rtt, nowUs());
        }
        return;
      }
      case 'ack':
        if (message.receivedBytes > this.#sentBytes || message.receivedBytes < this.#ackedBytes) {
          this.bye(ByeReason.PROTOCOL, `ACK of ${message.receivedBytes} bytes outside ${this.#ackedBytes}–${this.#sentBytes}`);
          return;
        }
        this.#window.onAck(message.receivedBytes - this.#ackedBytes, nowUs());
        this.#ackedBytes = message.receivedBytes;
        this.#onVideoAcked(message.receivedBytes);
        this.#pump();
        return;
      case 'stats':
        this.#viewerStats = message.body;
        return;
      case 'request':
        return; // quality requests: not in v1 servers yet; ignored by design
      case 'bye':
        this.#closeReason = `viewer left: ${message.body.reason}`;
        // Not pending any more, and the hello timer's BYE now does nothing: without this a peer that
        // sends BYE and never closes would hold its socket for good, no key needed.
        this.#endSoon();
        return;
      default:
        return;
    }
  }

  #onAuth(proof: Buffer): void {
    const ekm = this.#o.secure ? exportAuthEkm(this.#socket as TLSSocket) : Buffer.alloc(32);
    const ok = verifyAuthProof(this.#o.accessKey, ekm, this.#clientNonce!, this.#serverNonce!, proof);
    if (!ok) {
      this.#o.limiter.recordFailure(this.address, Date.now());
      this.#log.warn('refused viewer: wrong access key');
      this.bye(ByeReason.AUTH_FAILED, 'wrong access key: use the key from the line `lanstream serve` printed');
      return;
    }
    this.#o.limiter.recordSuccess(this.address);
    const refusal = this.#o.admit?.(this) ?? null;
    if (refusal !== null) {
      this.#log.info(`refused viewer: ${refusal}`);
      this.bye(ByeReason.SERVER_FULL, refusal);
      return;
    }
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    this.#state = 'live';
    this.#write(
      encodeMessage({
        type: 'welcome',
        body: {
          version: PROTOCOL_VERSION,
          agent: this.#o.agent,
          serverTimeUs: nowUs(),
          sessionId: this.id,
          video: this.#wantVideo ? this.#o.video : null,
          audio: this.#wantAudio ? this.#o.audio : null,
        },
      }),
    );
    this.#lastVideoSentUs = nowUs();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#limits.heartbeatMs);
    this.#heartbeatTimer.unref();
    this.#log.info({ video: this.#wantVideo, audio: this.#wantAudio }, 'viewer live');
    this.#o.onLive(this);
  }

  /**
   * A live frame while the backlog is still going out: queued behind it (every unit references the one
   * before). A keyframe replaces the queue (nothing before it is needed any more); a queue that grew
   * past the bound is given up for the next keyframe, as any dropped inter-coded frame is.
   */
  #queueBehindCatchUp(chunk: CapturedChunk, keyframe: boolean): void {
    if (keyframe) {
      this.#drops.add('video', this.#catchUp.length);
      this.#catchUp = [chunk];
      return;
    }
    this.#catchUp.push(chunk);
    if (this.#catchUp.length > MAX_CATCH_UP_FRAMES) {
      this.#drops.add('video-until-keyframe', this.#catchUp.length);
      this.#catchUp = [];
      this.#videoDiscontinuity = true;
      this.#needKeyframe = true;
    }
  }

  #transcodeNext(): void {
    const raw = this.#rawVideo;
    const video = this.#o.video;
    if (!raw || !video || this.#transcoding || this.#pendingVideo || this.#state !== 'live') return;
    this.#rawVideo = null;
    this.#transcoding = true;
    const level = this.#quality.level;
    reduceJpeg(raw.data, level, video.width, video.height).then(
      (data) => {
        this.#transcoding = false;
        if (this.#state !== 'live') return;
        // Back at full quality meanwhile: the frame already waiting is newer than this one.
        if (this.#pendingVideo) {
          this.#drops.add('video');
          return;
        }
        this.#pendingVideo = { ...raw, data };
        this.#pump();
      },
      (err: unknown) => {
        this.#transcoding = false;
        this.#drops.add('video-reencode-failed');
        this.#log.debug({ err: (err as Error).message }, 're-encode failed');
        this.#transcodeNext();
      },
    );
  }

  #adaptQuality(now: number): void {
    const admission = this.#o.reencodeAdmission;
    admission?.sample(now);
    const video = this.#o.video;
    const mjpeg = video?.codec === 'mjpeg';
    const mayReencode = (): boolean => {
      if (!admission || !mjpeg) return true;
      const answer = admission.tryStart(now);
      if (!answer.ok) {
        this.#lastRefusal = answer.why;
        this.#reencodeRefusals.note();
      }
      return answer.ok;
    };
    const level = this.#quality.evaluate(now, this.#window.rateBytesPerS, video?.fps ?? 30, mayReencode);
    if (level === null || !video || !mjpeg) return;
    const size = levelSize(level, video.width, video.height);
    const what = level === 0 ? 'full quality' : `reduced to ${size.width}x${size.height} JPEG quality ${QUALITY_LEVELS[level]!.jpegQuality}`;
    this.#log.info({ qualityLevel: level, rateKbps: Math.round(((this.#window.rateBytesPerS ?? 0) * 8) / 1000) }, `video ${what} for this viewer's link`);
    if (level === 0) this.#rawVideo = null;
    this.status({ state: 'quality', message: `video ${what} for this link` });
  }

  #askKeyframe(): void {
    const now = nowUs();
    if (now - this.#lastKeyframeAskUs < 500_000) return;
    this.#lastKeyframeAskUs = now;
    this.#o.onKeyframeNeeded?.();
  }

  #heartbeat(): void {
    const now = nowUs();
    if (now - this.#lastHeardUs > this.#limits.deadMs * 1000) {
      this.#closeReason = `no sign of life for ${this.#limits.deadMs} ms`;
      this.#socket.destroy();
      return;
    }
    if (this.#wantVideo && (this.#pendingVideo || this.#catchUp.length > 0) && now - this.#lastVideoSentUs > this.#limits.maxStallMs * 1000) {
      this.bye(ByeReason.TOO_SLOW, `the link could not carry a single frame for ${this.#limits.maxStallMs / 1000} s`);
      return;
    }
    if (this.#wantVideo) this.#adaptQuality(now);
    const id = (this.#pingId = (this.#pingId + 1) >>> 0);
    this.#pingSentUs.set(id, now);
    if (this.#pingSentUs.size > 16) this.#pingSentUs.delete(this.#pingSentUs.keys().next().value!);
    this.#write(encodeMessage({ type: 'ping', id, sendTimeUs: now }));
  }

  #pump(): void {
    if (this.#state !== 'live' || this.#socket.destroyed) return;
    const inFlight = () => this.#sentBytes - this.#ackedBytes;
    // Audio first: it is small and the ear notices gaps more than the eye.
    while (this.#audioQueue.length > 0 && inFlight() < this.#window.bytes + this.#window.audioAllowanceBytes) {
      const chunk = this.#audioQueue.shift()!;
      const flags = chunk.flags | (this.#audioDiscontinuity ? MediaFlag.DISCONTINUITY : 0);
      this.#audioDiscontinuity = false;
      this.#sendMedia('audio', flags, this.#audioSeq++, chunk);
      this.#audioSent++;
    }
    // Catch-up frames one at a time into an empty socket buffer, like live ones, but none is replaced.
    while (this.#catchUp.length > 0 && this.#socket.writableLength === 0 && !this.#socket.destroyed) {
      const next = this.#catchUp[0]!;
      if (inFlight() + next.data.length > Math.max(this.#window.bytes, next.data.length)) return;
      this.#catchUp.shift();
      this.#sendVideo(next);
    }
    if (this.#catchUp.length > 0) return;
    const video = this.#pendingVideo;
    if (video && this.#socket.writableLength === 0 && inFlight() + video.data.length <= Math.max(this.#window.bytes, video.data.length)) {
      this.#pendingVideo = null;
      this.#sendVideo(video);
      this.#transcodeNext();
    }
  }

  #sendVideo(video: CapturedChunk): void {
    const flags = video.flags | (this.#videoDiscontinuity ? MediaFlag.DISCONTINUITY : 0);
    this.#videoDiscontinuity = false;
    this.#sendMedia('video', flags, this.#videoSeq++, video);
    if (this.#videoSent === 0)
      this.#log.debug({ keyframe: (flags & MediaFlag.KEYFRAME) !== 0, bytes: video.data.length, backlog: this.#catchUp.length }, 'first video frame sent');
    this.#videoSent++;
    this.#lastVideoSentUs = nowUs();
    this.#window.onVideoFrame(video.data.length);
    this.#videoInFlight.push({ endByte: this.#sentBytes, sentAtUs: this.#lastVideoSentUs });
    if (this.#videoInFlight.length > 256) this.#videoInFlight.shift();
  }

  /** Send → ACK time of each frame the viewer now has, for the quality adapter. */
  #onVideoAcked(receivedBytes: number): void {
    // Most ACKs (one per read, audio included) complete no frame: nothing to compute for them.
    if (this.#videoInFlight.length === 0 || this.#videoInFlight[0]!.endByte > receivedBytes) return;
    const now = nowUs();
    const minRttUs = this.#window.minRttUs ?? 0;
    while (this.#videoInFlight.length > 0 && this.#videoInFlight[0]!.endByte <= receivedBytes) {
      this.#quality.onDelivered(Math.max(0, now - this.#videoInFlight.shift()!.sentAtUs - minRttUs));
    }
  }

  #sendMedia(kind: MediaKind, flags: number, seq: number, chunk: CapturedChunk): void {
    const header = encodeMediaHeader(kind, flags, seq >>> 0, chunk.ptsUs, chunk.data.length);
    this.#socket.cork();
    this.#write(header);
    this.#write(chunk.data);
    this.#socket.uncork();
  }

  #write(buf: Buffer): void {
    if (this.#socket.destroyed || !this.#socket.writable) return;
    if (this.#socket.writableLength + buf.length > this.#limits.maxQueuedBytes) {
      this.#dropNonReader(`${this.#socket.writableLength} bytes queued (limit ${this.#limits.maxQueuedBytes})`);
      return;
    }
    this.#sentBytes += buf.length;
    this.#socket.write(buf, this.#afterWrite);
  }

  /**
   * Video goes only into an empty socket buffer, and a TLS write stays in it until the next turn of
   * the event loop. 'drain' comes only after a write that filled the buffer, so a frame held back by
   * a small write (WELCOME, an audio packet) used to wait for the next ACK or offer: a joining viewer
   * got its first picture one round trip late (the cached frame was held behind WELCOME until the
   * viewer's first ACK). Each write's callback now lets held video go once the buffer is empty.
   */
  readonly #afterWrite = (): void => {
    if ((this.#pendingVideo !== null || this.#catchUp.length > 0) && this.#socket.writableLength === 0) this.#pump();
  };

  /** A viewer that stopped reading: closed at once (a BYE would only queue behind what it does not read). */
  #dropNonReader(what: string): void {
    this.#closeReason ||= `the viewer stopped reading: ${what}`;
    this.#log.warn(`closing viewer: ${this.#closeReason}`);
    this.#socket.destroy();
  }

  #finish(reason: string): void {
    if (this.#state === 'closed') return;
    const wasLive = this.#state === 'live';
    this.#state = 'closed';
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#drops.close();
    this.#pendingVideo = null;
    this.#catchUp = [];
    this.#rawVideo = null;
    this.#audioQueue = [];
    if (wasLive) this.#log.info({ reason, sentBytes: this.#sentBytes }, 'viewer left');
    else this.#log.debug({ reason }, 'connection closed before the handshake completed');
    this.#o.onClose(this, reason, wasLive);
    this.#resolveClosed();
  }
}
