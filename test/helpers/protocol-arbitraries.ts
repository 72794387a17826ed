/**
 * Shared builders for protocol tests: raw frames (to write bytes the encoder would refuse), valid
 * sample messages and streams, and fast-check arbitraries of valid messages per direction.
 */
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { MEDIA_HEADER_BYTES } from '../../src/protocol/constants.js';
import { FORBIDDEN_JSON_KEYS, type Direction } from '../../src/protocol/decoder.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import type { HelloBody, Message, WelcomeBody } from '../../src/protocol/messages.js';

export interface FrameOptions {
  flags?: number;
  reserved?: number;
  /** Header length field; defaults to the real payload length (set it to lie). */
  payloadBytes?: number;
}

/** One raw message: 8-byte header + payload, with every header field under the test's control. */
export function frame(type: number, payload: Buffer | string = Buffer.alloc(0), options: FrameOptions = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const h = Buffer.alloc(8);
  h[0] = type;
  h[1] = options.flags ?? 0;
  h.writeUInt16BE(options.reserved ?? 0, 2);
  h.writeUInt32BE(options.payloadBytes ?? body.length, 4);
  return Buffer.concat([h, body]);
}

/** A raw JSON message (body is stringified unless it is already a string). */
export function jsonFrame(type: number, body: unknown, options: FrameOptions = {}): Buffer {
  return frame(type, typeof body === 'string' ? body : JSON.stringify(body), options);
}

/** u32 seq + u64 (hi, lo) pts + data, for media and for u64 overflow cases. */
export function mediaPayload(seq: number, ptsHigh: number, ptsLow: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const p = Buffer.alloc(MEDIA_HEADER_BYTES);
  p.writeUInt32BE(seq, 0);
  p.writeUInt32BE(ptsHigh, 4);
  p.writeUInt32BE(ptsLow, 8);
  return Buffer.concat([p, data]);
}

export const NONCE_HEX = '0123456789abcdef'.repeat(4);

export function helloBody(overrides: Partial<Record<keyof HelloBody, unknown>> = {}): Record<string, unknown> {
  return { version: 1, agent: 'lanstream/0.1.0', clientNonce: NONCE_HEX, wantVideo: true, wantAudio: true, ...overrides };
}

export function welcomeBody(overrides: Partial<Record<keyof WelcomeBody, unknown>> = {}): Record<string, unknown> {
  return {
    version: 1,
    agent: 'lanstream/0.1.0',
    serverTimeUs: 123_456_789,
    sessionId: 's-1',
    video: { codec: 'mjpeg', width: 1280, height: 720, fps: 30 },
    audio: { codec: 'pcm_s16le', sampleRateHz: 48000, channels: 1, packetMs: 10 },
    ...overrides,
  };
}

export const HELLO: Message = { type: 'hello', body: helloBody() as unknown as HelloBody };
export const AUTH: Message = { type: 'auth', proof: Buffer.alloc(32, 0xa5) };
export const CHALLENGE: Message = { type: 'challenge', nonce: Buffer.alloc(32, 0x5a) };
export const WELCOME: Message = { type: 'welcome', body: welcomeBody() as unknown as WelcomeBody };

/** Bytes that take a decoder of each direction through its handshake. */
export const CLIENT_HANDSHAKE = Buffer.concat([encodeMessage(HELLO), encodeMessage(AUTH)]);
export const SERVER_HANDSHAKE = Buffer.concat([encodeMessage(CHALLENGE), encodeMessage(WELCOME)]);

/** A realistic server→client session: handshake, interleaved media, control, goodbye. */
export function sampleServerMessages(): Message[] {
  const jpeg = Buffer.alloc(300);
  for (let i = 0; i < jpeg.length; i++) jpeg[i] = (i * 7) & 0xff;
  return [
    CHALLENGE,
    WELCOME,
    { type: 'status', body: { state: 'live' } },
    { type: 'video', flags: 1, seq: 0, ptsUs: 1_000_000, data: jpeg },
    { type: 'audio', flags: 0, seq: 0, ptsUs: 1_000_500, data: Buffer.alloc(96, 3) },
    { type: 'ping', id: 7, sendTimeUs: 1_001_000 },
    { type: 'audio', flags: 2, seq: 2, ptsUs: 1_020_500, data: Buffer.alloc(0) },
    { type: 'pong', id: 3, echoTimeUs: 999_000, senderTimeUs: 1_002_000 },
    { type: 'video', flags: 3, seq: 0xffff_ffff, ptsUs: Number.MAX_SAFE_INTEGER, data: jpeg.subarray(0, 13) },
    { type: 'status', body: { state: 'capture-restarting', message: 'camera went away — retrying' } },
    { type: 'bye', body: { reason: 'shutdown', message: 'server stopping' } },
  ];
}

export function sampleClientMessages(): Message[] {
  return [
    HELLO,
    AUTH,
    { type: 'ping', id: 1, sendTimeUs: 5 },
    { type: 'ack', receivedBytes: 123_456 },
    { type: 'stats', body: { framesShown: 10, latencyMs: { p50: 41.5, p95: 60 }, note: 'ünïcödé ✓' } },
    { type: 'pong', id: 7, echoTimeUs: 1_001_000, senderTimeUs: 6 },
    { type: 'request', body: { quality: 'low' } },
    { type: 'bye', body: { reason: 'client-quit', message: 'bye' } },
  ];
}

export function encodeAll(messages: readonly Message[]): Buffer {
  return Buffer.concat(messages.map((m) => encodeMessage(m)));
}

/** What a decoder yields for `m`: JSON bodies go through JSON (undefined fields vanish, -0 → 0). */
export function expectedDecode(m: Message): Message {
  return 'body' in m ? ({ ...m, body: JSON.parse(JSON.stringify(m.body)) } as Message) : m;
}

export function sameMessages(actual: readonly Message[], expected: readonly Message[]): boolean {
  return isDeepStrictEqual(actual.map(comparable), expected.map(expectedDecode).map(comparable));
}

/** Buffers compared by content, whatever they are views of. */
export function comparable(m: Message): unknown {
  return JSON.parse(JSON.stringify(m, (_key, v: unknown) => (isBufferJson(v) ? `hex:${Buffer.from(v.data).toString('hex')}` : v)));
}

function isBufferJson(v: unknown): v is { type: 'Buffer'; data: number[] } {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data);
}

/** FUZZ_RUNS / FUZZ_SEED from the environment (npm run fuzz raises the runs). */
export function fuzzParameters(): { numRuns: number; seed: number } {
  const numRuns = Number.parseInt(process.env.FUZZ_RUNS ?? '2000', 10);
  const seed = Number.parseInt(process.env.FUZZ_SEED ?? '42', 10);
  return { numRuns: Number.isFinite(numRuns) && numRuns > 0 ? numRuns : 2000, seed: Number.isFinite(seed) ? seed : 42 };
}

// ---------------------------------------------------------------------------------------------
// fast-check arbitraries of valid messages

const u32 = fc.nat(0xffff_ffff);
const u64 = fc.maxSafeNat();
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
// At most 100 code points keeps .length ≤ 200 even for astral characters.
const text = (maxCodePoints: number) => fc.string({ unit: 'binary', maxLength: maxCodePoints });

function hasForbiddenKey(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  return Object.keys(v).some((k) => FORBIDDEN_JSON_KEYS.has(k)) || Object.values(v).some(hasForbiddenKey);
}

const jsonObject = fc
  .dictionary(text(12), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 })
  .filter((o) => !hasForbiddenKey(o) && Buffer.byteLength(JSON.stringify(o)) <= 4096);

export const arbHello: fc.Arbitrary<Message> = fc
  .record({
    version: fc.constant(1),
    agent: text(100),
    clientNonce: bytes32.map((b) => b.toString('hex')),
    wantVideo: fc.boolean(),
    wantAudio: fc.boolean(),
  })
  .map((body) => ({ type: 'hello', body }));

export const arbWelcome: fc.Arbitrary<Message> = fc
  .record({
    version: fc.constant(1),
    agent: text(100),
    serverTimeUs: u64,
    sessionId: text(100),
    video: fc.option(
      fc.record({
        codec: fc.constant('mjpeg' as const),
        width: fc.integer({ min: 1, max: 16384 }),
        height: fc.integer({ min: 1, max: 16384 }),
        fps: fc.double({ min: 1, max: 240, noNaN: true }),
      }),
      { nil: null },
    ),
    audio: fc.option(
      fc.record({
        codec: fc.constant('pcm_s16le' as const),
        sampleRateHz: fc.integer({ min: 8000, max: 192000 }),
        channels: fc.integer({ min: 1, max: 8 }),
        packetMs: fc.double({ min: 1, max: 100, noNaN: true }),
      }),
      { nil: null },
    ),
  })
  .map((body) => ({ type: 'welcome', body }));

const media = (type: 'video' | 'audio', maxBytes: number): fc.Arbitrary<Message> =>
  fc
    .record({ flags: fc.integer({ min: 0, max: 3 }), seq: u32, ptsUs: u64, data: fc.uint8Array({ maxLength: maxBytes }) })
    .map(({ data, ...rest }) => ({ type, ...rest, data: Buffer.from(data) }));

const arbPing: fc.Arbitrary<Message> = fc.record({ id: u32, sendTimeUs: u64 }).map((m) => ({ type: 'ping', ...m }));
const arbPong: fc.Arbitrary<Message> = fc.record({ id: u32, echoTimeUs: u64, senderTimeUs: u64 }).map((m) => ({ type: 'pong', ...m }));
export const arbBye: fc.Arbitrary<Message> = fc.record({ reason: text(32), message: text(250) }).map((body) => ({ type: 'bye', body }) as Message);
const arbStatus: fc.Arbitrary<Message> = fc
  .record({ state: text(32), message: text(250) }, { requiredKeys: ['state'] })
  .map((body) => ({ type: 'status', body }));

/** Messages a client may send once the handshake is done (BYE excluded: it ends the stream). */
export const arbClientOpenMessage: fc.Arbitrary<Message> = fc.oneof(
  arbPing,
  arbPong,
  u64.map((receivedBytes): Message => ({ type: 'ack', receivedBytes })),
  jsonObject.map((body): Message => ({ type: 'stats', body })),
  jsonObject.map((body): Message => ({ type: 'request', body })),
);

export const arbServerOpenMessage: fc.Arbitrary<Message> = fc.oneof(media('video', 3000), media('audio', 400), arbPing, arbPong, arbStatus);

/** A whole valid stream: the two handshake messages, anything allowed after them, maybe a BYE. */
function streamOf(first: fc.Arbitrary<Message>, second: fc.Arbitrary<Message>, open: fc.Arbitrary<Message>): fc.Arbitrary<Message[]> {
  return fc
    .tuple(first, second, fc.array(open, { maxLength: 8 }), fc.option(arbBye, { nil: undefined }))
    .map(([a, b, rest, bye]) => [a, b, ...rest, ...(bye ? [bye] : [])]);
}

export const arbClientStream = streamOf(
  arbHello,
  bytes32.map((proof): Message => ({ type: 'auth', proof })),
  arbClientOpenMessage,
);
export const arbServerStream = streamOf(
  bytes32.map((nonce): Message => ({ type: 'challenge', nonce })),
  arbWelcome,
  arbServerOpenMessage,
);

/** Either direction, with the direction a decoder needs to read it. */
export const arbAnyStream: fc.Arbitrary<{ dir: Direction; messages: Message[] }> = fc.oneof(
  arbClientStream.map((messages) => ({ dir: 'client-to-server' as const, messages })),
  arbServerStream.map((messages) => ({ dir: 'server-to-client' as const, messages })),
);

/** Cuts `bytes` at the given (unsorted, possibly repeated) positions. */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(0, c), bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  return out;
}
