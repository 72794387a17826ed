/**
 * Incremental decoder of the lanstream wire protocol: the first thing every received byte meets
 * (the server session feeds it client bytes, the viewer connection feeds it server bytes). Pure: no
 * I/O, timers or logging — the caller decides what a ProtocolError means (BYE protocol-error, close).
 *
 * Modelled on the `ws` Receiver: an explicit state machine that consumes exactly the bytes it needs,
 * checks every limit from the 8-byte header before buffering a single payload byte (so a hostile
 * peer cannot make us hold more than header + one maximal payload), and once it fails it stays
 * failed. The handshake order is part of the state machine, so the rest of the code can trust that
 * no media or control message arrives before the handshake is done.
 *
 *  0       1       2       3       4       5       6       7
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * | type  | flags | reserved = 0  |   payloadBytes (u32, big end) |
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * VIDEO/AUDIO payload: seq u32 BE | ptsUs u64 BE | data ...
 * JSON bodies (HELLO WELCOME STATS STATUS REQUEST BYE): one UTF-8 JSON object.
 */
import { LanstreamError } from '../shared/errors.js';
import {
  DEFAULT_LIMITS,
  CLIENT_TO_SERVER,
  FIXED_PAYLOAD_BYTES,
  HEADER_BYTES,
  MEDIA_HEADER_BYTES,
  MediaFlag,
  MessageType,
  PROTOCOL_VERSION,
  SERVER_TO_CLIENT,
  type Limits,
} from './constants.js';
import { AudioCodec, VideoCodec, type AudioParams, type Message, type MessageOf, type VideoParams } from './messages.js';

export const ProtocolErrorReason = {
  UNKNOWN_TYPE: 'unknown-type',
  WRONG_DIRECTION: 'wrong-direction',
  RESERVED_BITS: 'reserved-bits',
  BAD_FLAGS: 'bad-flags',
  TOO_LARGE: 'too-large',
  BAD_LENGTH: 'bad-length',
  BAD_JSON: 'bad-json',
  BAD_FIELD: 'bad-field',
  OUT_OF_ORDER: 'out-of-order',
  AFTER_BYE: 'after-bye',
  OVERFLOW: 'overflow',
  VERSION: 'version',
} as const;
export type ProtocolErrorReason = (typeof ProtocolErrorReason)[keyof typeof ProtocolErrorReason];

export class ProtocolError extends LanstreamError {
  /** Stable, machine-matchable cause (tests and logs match it, never the message text). */
  readonly reason: ProtocolErrorReason;
  /**
   * Messages completed earlier in the push() that failed: a peer may send a valid BYE and then
   * garbage in one TCP segment, and the BYE's reason is still worth showing.
   */
  decoded: Message[] = [];

  constructor(reason: ProtocolErrorReason, message: string, details: Record<string, unknown> = {}) {
    super(reason === 'version' ? 'LS_ERR_VERSION_MISMATCH' : 'LS_ERR_PROTOCOL', message, {
      details: { reason, ...details },
    });
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}

export type Direction = 'client-to-server' | 'server-to-client';
export type JsonMessageType = 'hello' | 'welcome' | 'stats' | 'status' | 'request' | 'bye';

export interface MessageDecoderOptions {
  /** Who sends the bytes this decoder reads. */
  direction: Direction;
  limits?: Partial<Limits>;
}

export const TYPE_NAMES: Readonly<Record<number, Message['type']>> = Object.freeze(
  Object.fromEntries(Object.entries(MessageType).map(([name, code]) => [code, name.toLowerCase()])),
) as Readonly<Record<number, Message['type']>>;

export const MEDIA_FLAGS_MASK = MediaFlag.KEYFRAME | MediaFlag.DISCONTINUITY;
export const AGENT_MAX_CHARS = 200;
export const SESSION_ID_MAX_CHARS = 200;
export const BYE_REASON_MAX_CHARS = 64;
export const TEXT_MAX_CHARS = 500;
export const STATE_MAX_CHARS = 64;
/** Keys refused anywhere in a JSON body: they are how prototype pollution gets into naive merges. */
export const FORBIDDEN_JSON_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const U32_MAX = 0xffff_ffff;
const TWO_POW_32 = 2 ** 32;
/** Above this high word a u64 no longer fits a double exactly (MAX_SAFE_INTEGER = 2^53 - 1). */
const SAFE_HIGH_WORD_MAX = 0x1f_ffff;
const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const HANDSHAKE: Readonly<Record<Direction, readonly [number, number]>> = {
  'client-to-server': [MessageType.HELLO, MessageType.AUTH],
  'server-to-client': [MessageType.CHALLENGE, MessageType.WELCOME],
};

const STAGE_FIRST = 0; // then 1: the second handshake message
const STAGE_OPEN = 2;
const STAGE_CLOSED = 3; // after BYE

export function typeLabel(type: number): string {
  const name = TYPE_NAMES[type];
  return name === undefined ? `type 0x${hex2(type)}` : name.toUpperCase();
}

/** Resolves and checks limits once, so the hot path compares plain numbers. */
export function resolveLimits(limits: Partial<Limits> = {}): Readonly<Limits> {
  const out: Limits = { ...DEFAULT_LIMITS, ...limits };
  for (const key of ['maxVideoBytes', 'maxAudioBytes', 'maxJsonBytes'] as const) {
    const value = out[key];
    // The payloadBytes field is a u32 and media adds its 12-byte header on top.
    if (!Number.isSafeInteger(value) || value < 1 || value > U32_MAX - MEDIA_HEADER_BYTES) {
      throw new RangeError(`Invalid limit ${key}: ${String(value)} (expected an integer 1–${U32_MAX - MEDIA_HEADER_BYTES})`);
    }
  }
  return Object.freeze(out);
}

export class MessageDecoder {
  readonly direction: Direction;
  readonly limits: Readonly<Limits>;
  readonly #allowed: ReadonlySet<number>;
  readonly #handshake: readonly [number, number];

  // Received but not yet consumed bytes, as views of the pushed chunks (no copy until needed).
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  #bytesReceived = 0;
  /** Stream offset of the first byte not yet consumed (error messages name it). */
  #offset = 0;

  #inPayload = false;
  #type = 0;
  #flags = 0;
  #payloadBytes = 0;
  #messageOffset = 0;

  #stage = STAGE_FIRST;
  #error: ProtocolError | undefined;

  constructor(options: MessageDecoderOptions) {
    if (options.direction !== 'client-to-server' && options.direction !== 'server-to-client') {
      throw new TypeError(`Invalid direction: ${String(options.direction)} (expected client-to-server or server-to-client)`);
    }
    this.direction = options.direction;
    this.limits = resolveLimits(options.limits);
    this.#allowed = options.direction === 'client-to-server' ? CLIENT_TO_SERVER : SERVER_TO_CLIENT;
    this.#handshake = HANDSHAKE[options.direction];
  }

  /** Total bytes ever pushed (what an ACK reports). */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Bytes held for an incomplete message; never above HEADER_BYTES + the largest allowed payload. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** The error this decoder failed with, if it did. */
  get error(): ProtocolError | undefined {
    return this.#error;
  }

  /**
   * Feeds received bytes; returns every message they complete, in order. Media `data` is a view of
   * `chunk` when the payload sits in it, so the caller must not reuse `chunk` afterwards (Node
   * sockets never do). Throws ProtocolError on the first violation, and the same error forever after.
   */
  push(chunk: Buffer): Message[] {
    if (this.#error !== undefined) throw this.#error;
    this.#bytesReceived += chunk.length;
    const out: Message[] = [];
    if (chunk.length === 0) return out;
    try {
      if (this.#stage === STAGE_CLOSED) this.#afterBye(chunk.length);
      this.#chunks.push(chunk);
      this.#bufferedBytes += chunk.length;
      for (;;) {
        if (!this.#inPayload) {
          if (this.#bufferedBytes < HEADER_BYTES) break;
          this.#messageOffset = this.#offset;
          this.#readHeader(this.#consume(HEADER_BYTES));
          this.#inPayload = true;
        }
        if (this.#bufferedBytes < this.#payloadBytes) break;
        const message = this.#decodePayload(this.#consume(this.#payloadBytes));
        this.#inPayload = false;
        out.push(message);
        if (message.type === 'bye') {
          this.#stage = STAGE_CLOSED;
          if (this.#bufferedBytes > 0) this.#afterBye(this.#bufferedBytes);
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        err.decoded = out;
        this.#fail(err);
      }
      throw err;
    }
    return out;
  }

  #fail(err: ProtocolError): void {
    this.#error = err;
    this.#chunks = [];
    this.#bufferedBytes = 0;
  }

  #afterBye(extraBytes: number): never {
    throw new ProtocolError('after-bye', `${extraBytes} bytes after BYE at offset ${this.#offset} (expected none)`, {
      offset: this.#offset,
    });
  }

  /** Takes exactly `n` buffered bytes: a view when one chunk holds them, one copy otherwise. */
  #consume(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.#bufferedBytes -= n;
    this.#offset += n;
    const first = this.#chunks[0]!;
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const dst = Buffer.allocUnsafe(n);
    let copied = 0;
    let used = 0;
    while (copied < n) {
      const c = this.#chunks[used]!;
      const take = Math.min(c.length, n - copied);
      c.copy(dst, copied, 0, take);
      copied += take;
      if (take === c.length) used++;
      else this.#chunks[used] = c.subarray(take);
    }
    // One splice, not a shift per chunk: a payload fed one byte at a time must stay linear.
    this.#chunks.splice(0, used);
    return dst;
  }

  #readHeader(h: Buffer): void {
    const type = h[0]!;
    const flags = h[1]!;
    const reserved = h.readUInt16BE(2);
    const payloadBytes = h.readUInt32BE(4);
    const at = { offset: this.#messageOffset, type };
    const name = TYPE_NAMES[type];
    if (name === undefined) {
      throw new ProtocolError(
        'unknown-type',
        `Unknown message type 0x${hex2(type)} at offset ${at.offset} (protocol v${PROTOCOL_VERSION} knows ${knownTypes()})`,
        at,
      );
    }
    const label = name.toUpperCase();
    if (!this.#allowed.has(type)) {
      throw new ProtocolError('wrong-direction', `${label} may not be sent ${this.direction} (offset ${at.offset})`, at);
    }
    if (reserved !== 0) {
      throw new ProtocolError('reserved-bits', `${label} header reserved bytes are 0x${reserved.toString(16).padStart(4, '0')} (expected 0x0000)`, at);
    }
    const isMedia = type === MessageType.VIDEO || type === MessageType.AUDIO;
    if (isMedia ? (flags & ~MEDIA_FLAGS_MASK) !== 0 : flags !== 0) {
      const allowed = isMedia ? `only bits 0x${hex2(MEDIA_FLAGS_MASK)}` : '0x00';
      throw new ProtocolError('bad-flags', `${label} flags are 0x${hex2(flags)} (expected ${allowed})`, at);
    }
    this.#checkOrder(type, label, at);
    this.#checkLength(type, label, payloadBytes, at);
    this.#type = type;
    this.#flags = flags;
    this.#payloadBytes = payloadBytes;
  }

  #checkOrder(type: number, label: string, at: Record<string, unknown>): void {
    const [first, second] = this.#handshake;
    if (type === MessageType.BYE) return; // either side may give up at any point, with a reason
    if (this.#stage === STAGE_OPEN) {
      if (type === first || type === second) {
        throw new ProtocolError('out-of-order', `${label} again after the handshake at offset ${at.offset} (expected once)`, at);
      }
      return;
    }
    const expected = this.#stage === STAGE_FIRST ? first : second;
    if (type !== expected) {
      const position = this.#stage === STAGE_FIRST ? 'first message' : `message after ${typeLabel(first)}`;
      throw new ProtocolError('out-of-order', `${label} as the ${position} (expected ${typeLabel(expected)} or BYE)`, at);
    }
    this.#stage++;
  }

  #checkLength(type: number, label: string, payloadBytes: number, at: Record<string, unknown>): void {
    const fixed = FIXED_PAYLOAD_BYTES[type];
    if (fixed !== undefined) {
      if (payloadBytes !== fixed) {
        throw new ProtocolError('bad-length', `${label} payload is ${payloadBytes} bytes (expected exactly ${fixed})`, at);
      }
      return;
    }
    if (type === MessageType.VIDEO || type === MessageType.AUDIO) {
      if (payloadBytes < MEDIA_HEADER_BYTES) {
        throw new ProtocolError('bad-length', `${label} payload is ${payloadBytes} bytes (expected at least ${MEDIA_HEADER_BYTES})`, at);
      }
      const [limitName, limit] =
        type === MessageType.VIDEO ? (['maxVideoBytes', this.limits.maxVideoBytes] as const) : (['maxAudioBytes', this.limits.maxAudioBytes] as const);
      if (payloadBytes - MEDIA_HEADER_BYTES > limit) {
        throw new ProtocolError('too-large', `${label} data of ${payloadBytes - MEDIA_HEADER_BYTES} bytes exceeds ${limitName} ${limit}`, at);
      }
      return;
    }
    if (payloadBytes > this.limits.maxJsonBytes) {
      throw new ProtocolError('too-large', `${label} JSON of ${payloadBytes} bytes exceeds maxJsonBytes ${this.limits.maxJsonBytes}`, at);
    }
  }

  #decodePayload(p: Buffer): Message {
    const type = this.#type;
    switch (type) {
      case MessageType.VIDEO:
      case MessageType.AUDIO:
        return {
          type: type === MessageType.VIDEO ? 'video' : 'audio',
          flags: this.#flags,
          seq: p.readUInt32BE(0),
          ptsUs: this.#readU64(p, 4, 'ptsUs'),
          data: p.subarray(MEDIA_HEADER_BYTES),
        };
      // Small fixed buffers are copied so they do not pin a whole 64 kB socket chunk in memory.
      case MessageType.CHALLENGE:
        return { type: 'challenge', nonce: Buffer.from(p) };
      case MessageType.AUTH:
        return { type: 'auth', proof: Buffer.from(p) };
      case MessageType.PING:
        return { type: 'ping', id: p.readUInt32BE(0), sendTimeUs: this.#readU64(p, 4, 'sendTimeUs') };
      case MessageType.PONG:
        return {
          type: 'pong',
          id: p.readUInt32BE(0),
          echoTimeUs: this.#readU64(p, 4, 'echoTimeUs'),
          senderTimeUs: this.#readU64(p, 12, 'senderTimeUs'),
        };
      case MessageType.ACK:
        return { type: 'ack', receivedBytes: this.#readU64(p, 0, 'receivedBytes') };
      default: {
        const name = TYPE_NAMES[type] as JsonMessageType;
        return { type: name, body: checkJsonBody(name, parseJsonObject(p, name)) } as Message;
      }
    }
  }

  #readU64(p: Buffer, at: number, field: string): number {
    const high = p.readUInt32BE(at);
    const low = p.readUInt32BE(at + 4);
    if (high > SAFE_HIGH_WORD_MAX) {
      const value = (BigInt(high) << 32n) | BigInt(low);
      throw new ProtocolError('overflow', `${typeLabel(this.#type)}.${field} is ${value} (expected at most ${Number.MAX_SAFE_INTEGER})`, {
        offset: this.#messageOffset,
        type: this.#type,
      });
    }
    return high * TWO_POW_32 + low;
  }
}

/** UTF-8 → JSON → plain object, refusing bad UTF-8, non-objects and prototype-pollution keys. */
export function parseJsonObject(p: Buffer, name: string): Record<string, unknown> {
  const label = name.toUpperCase();
  let text: string;
  try {
    text = utf8.decode(p);
  } catch (cause) {
    throw new ProtocolError('bad-json', `${label} body is not valid UTF-8 (${p.length} bytes)`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text, (key: string, v: unknown) => {
      if (FORBIDDEN_JSON_KEYS.has(key)) {
        throw new ProtocolError('bad-json', `${label} body has the forbidden key "${key}" (expected none of ${[...FORBIDDEN_JSON_KEYS].join(', ')})`);
      }
      return v;
    });
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    // V8 quotes the peer's text in its message: keep it on one line and free of control bytes.
    // eslint-disable-next-line no-control-regex -- the control bytes are what it removes
    const detail = (err as Error).message.replace(/[\s\u0000-\u001f\u007f]+/g, ' ');
    throw new ProtocolError('bad-json', `${label} body is not JSON: ${detail}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new ProtocolError('bad-json', `${label} body is ${kind} (expected a JSON object)`);
  }
  return value as Record<string, unknown>;
}

/**
 * Checks the shape of a JSON body and returns it with only the fields this version knows (newer
 * peers may add optional fields; they are ignored). The encoder uses it too, so we never send what
 * we would refuse.
 */
export function checkJsonBody<T extends JsonMessageType>(type: T, value: unknown): MessageOf<T>['body'];
export function checkJsonBody(type: JsonMessageType, value: unknown): unknown {
  const label = type.toUpperCase();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('bad-json', `${label} body is ${value === null ? 'null' : typeof value} (expected a JSON object)`);
  }
  const o = value as Record<string, unknown>;
  const f = new FieldChecker(label, o);
  switch (type) {
    case 'hello':
      f.version();
      return {
        version: PROTOCOL_VERSION,
        agent: f.string('agent', AGENT_MAX_CHARS),
        clientNonce: f.hex64('clientNonce'),
        wantVideo: f.boolean('wantVideo'),
        wantAudio: f.boolean('wantAudio'),
      };
    case 'welcome':
      f.version();
      return {
        version: PROTOCOL_VERSION,
        agent: f.string('agent', AGENT_MAX_CHARS),
        serverTimeUs: f.number('serverTimeUs', 0, Number.MAX_SAFE_INTEGER, true),
        sessionId: f.string('sessionId', SESSION_ID_MAX_CHARS),
        video: f.nullable('video', checkVideoParams),
        audio: f.nullable('audio', checkAudioParams),
      };
    case 'bye':
      return { reason: f.string('reason', BYE_REASON_MAX_CHARS), message: f.string('message', TEXT_MAX_CHARS) };
    case 'status': {
      const state = f.string('state', STATE_MAX_CHARS);
      return o.message === undefined ? { state } : { state, message: f.string('message', TEXT_MAX_CHARS) };
    }
    case 'stats':
    case 'request':
      return o;
  }
}

function checkVideoParams(f: FieldChecker): VideoParams {
  return {
    codec: f.oneOf('codec', Object.values(VideoCodec)),
    width: f.number('width', 1, 16384, true),
    height: f.number('height', 1, 16384, true),
    fps: f.number('fps', 1, 240, false),
  };
}

function checkAudioParams(f: FieldChecker): AudioParams {
  return {
    codec: f.oneOf('codec', Object.values(AudioCodec)),
    sampleRateHz: f.number('sampleRateHz', 8000, 192000, true),
    channels: f.number('channels', 1, 8, true),
    packetMs: f.number('packetMs', 1, 100, false),
  };
}

class FieldChecker {
  constructor(
    readonly label: string,
    readonly o: Record<string, unknown>,
  ) {}

  #bad(key: string, expected: string): never {
    throw new ProtocolError('bad-field', `${this.label}.${key} is ${describe(this.o[key])} (expected ${expected})`, {
      field: key,
      path: `${this.label}.${key}`,
      value: this.o[key],
    });
  }

  version(): void {
    const v = this.o.version;
    if (!Number.isInteger(v)) this.#bad('version', 'an integer');
    if (v !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        'version',
        `Peer speaks protocol version ${String(v)}, this lanstream speaks ${PROTOCOL_VERSION}: install the same lanstream version on both machines`,
        { peerVersion: v },
      );
    }
  }

  string(key: string, maxChars: number): string {
    const v = this.o[key];
    if (typeof v !== 'string' || v.length > maxChars) this.#bad(key, `a string of at most ${maxChars} characters`);
    return v;
  }

  hex64(key: string): string {
    const v = this.o[key];
    if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) this.#bad(key, '64 lowercase hex characters');
    return v;
  }

  boolean(key: string): boolean {
    const v = this.o[key];
    if (typeof v !== 'boolean') this.#bad(key, 'true or false');
    return v;
  }

  number(key: string, min: number, max: number, integer: boolean): number {
    const v = this.o[key];
    const ok = typeof v === 'number' && (integer ? Number.isSafeInteger(v) : Number.isFinite(v)) && v >= min && v <= max;
    if (!ok) this.#bad(key, `${integer ? 'an integer' : 'a number'} ${min}–${max}`);
    return v as number;
  }

  oneOf<const V extends string>(key: string, values: readonly V[]): V {
    const v = this.o[key];
    if (!values.includes(v as V)) this.#bad(key, values.map((x) => `"${x}"`).join(' or '));
    return v as V;
  }

  nullable<R>(key: string, check: (f: FieldChecker) => R): R | null {
    const v = this.o[key];
    if (v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.#bad(key, 'null or an object');
    return check(new FieldChecker(`${this.label}.${key}`, v as Record<string, unknown>));
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : `an ${typeof v}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function knownTypes(): string {
  return Object.values(MessageType)
    .map((c) => `0x${hex2(c)}`)
    .join(' ');
}
