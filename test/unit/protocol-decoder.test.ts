import t from 'tap';
import { DEFAULT_LIMITS, MessageType as T } from '../../src/protocol/constants.js';
import { MessageDecoder, ProtocolError, type Direction, type ProtocolErrorReason } from '../../src/protocol/decoder.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import type { Message } from '../../src/protocol/messages.js';
import {
  CLIENT_HANDSHAKE,
  SERVER_HANDSHAKE,
  comparable,
  encodeAll,
  expectedDecode,
  frame,
  helloBody,
  jsonFrame,
  mediaPayload,
  sampleClientMessages,
  sampleServerMessages,
  welcomeBody,
} from '../helpers/protocol-arbitraries.js';

const C2S: Direction = 'client-to-server';
const S2C: Direction = 'server-to-client';
const bye = encodeMessage({ type: 'bye', body: { reason: 'shutdown', message: 'x' } });
const challengeOnly = encodeMessage({ type: 'challenge', nonce: Buffer.alloc(32) });
const helloOnly = jsonFrame(T.HELLO, helloBody());
const bigVideo = DEFAULT_LIMITS.maxVideoBytes;
const bigAudio = DEFAULT_LIMITS.maxAudioBytes;

function decodeChunks(direction: Direction, chunks: readonly Buffer[]): Message[] {
  const d = new MessageDecoder({ direction });
  return chunks.flatMap((c) => d.push(c));
}

t.test('a valid stream decodes identically whatever the split', async (t) => {
  for (const [direction, messages] of [
    [S2C, sampleServerMessages()],
    [C2S, sampleClientMessages()],
  ] as const) {
    const stream = encodeAll(messages);
    const expected = messages.map(expectedDecode).map(comparable);
    t.same(decodeChunks(direction, [stream]).map(comparable), expected, `${direction}: whole stream at once`);

    let failures = 0;
    for (let cut = 0; cut <= stream.length; cut++) {
      const got = decodeChunks(direction, [stream.subarray(0, cut), stream.subarray(cut)]).map(comparable);
      if (JSON.stringify(got) !== JSON.stringify(expected)) failures++;
    }
    t.equal(failures, 0, `${direction}: all ${stream.length + 1} two-piece splits give the same ${messages.length} messages`);

    const bytewise: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) bytewise.push(stream.subarray(i, i + 1));
    t.same(decodeChunks(direction, bytewise).map(comparable), expected, `${direction}: one byte at a time`);
  }
});

t.test('truncated input yields nothing and no error until the message completes', async (t) => {
  const stream = encodeAll(sampleServerMessages());
  const d = new MessageDecoder({ direction: S2C });
  const firstTwo = SERVER_HANDSHAKE.length;
  t.same(
    d.push(stream.subarray(0, firstTwo - 1)).map((m) => m.type),
    ['challenge'],
    'only the complete message',
  );
  t.equal(d.bufferedBytes, firstTwo - 1 - 40 - 8, 'the partial WELCOME payload is held (its header is consumed)');
  t.same(
    d.push(stream.subarray(firstTwo - 1, firstTwo)).map((m) => m.type),
    ['welcome'],
  );
  t.equal(d.bufferedBytes, 0);
  t.equal(d.bytesReceived, firstTwo, 'bytesReceived counts every pushed byte');
  t.same(d.push(Buffer.alloc(0)), [], 'an empty chunk is fine');
});

t.test('media data is a view of the pushed chunk when it sits in one chunk', async (t) => {
  const d = new MessageDecoder({ direction: S2C });
  d.push(SERVER_HANDSHAKE);
  const data = Buffer.from('JPEG-bytes');
  const chunk = encodeMessage({ type: 'video', flags: 1, seq: 9, ptsUs: 42, data });
  const [m] = d.push(chunk);
  t.ok(m !== undefined && m.type === 'video');
  if (m?.type !== 'video') return;
  t.equal(m.data.buffer, chunk.buffer, 'same ArrayBuffer: no copy');
  t.equal(m.data.byteOffset, chunk.byteOffset + 20);
  t.equal(m.data.toString(), 'JPEG-bytes');
  t.match(m, { seq: 9, ptsUs: 42, flags: 1 });
});

t.test('media spanning chunks is reassembled into one buffer', async (t) => {
  const d = new MessageDecoder({ direction: S2C });
  d.push(SERVER_HANDSHAKE);
  const data = Buffer.alloc(100_000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const wire = encodeMessage({ type: 'video', flags: 1, seq: 1, ptsUs: 1, data });
  const out: Message[] = [];
  for (let i = 0; i < wire.length; i += 65536) out.push(...d.push(wire.subarray(i, i + 65536)));
  t.equal(out.length, 1);
  t.ok(out[0]?.type === 'video' && out[0].data.equals(data), 'data intact');
});

t.test('limits at exactly the maximum are accepted', async (t) => {
  const limits = { maxVideoBytes: 1000, maxAudioBytes: 100, maxJsonBytes: 300 };
  const d = new MessageDecoder({ direction: S2C, limits });
  d.push(SERVER_HANDSHAKE.subarray(0, 40)); // CHALLENGE
  const welcome = jsonFrame(T.WELCOME, { ...welcomeBody(), pad: 'x'.repeat(300 - JSON.stringify(welcomeBody()).length - 9) });
  t.equal(welcome.length - 8, 300, 'WELCOME of exactly maxJsonBytes');
  t.equal(d.push(welcome).length, 1);
  t.equal(d.push(frame(T.VIDEO, mediaPayload(0, 0, 0, Buffer.alloc(1000)))).length, 1, 'video of maxVideoBytes');
  t.equal(d.push(frame(T.AUDIO, mediaPayload(0, 0, 0, Buffer.alloc(100)))).length, 1, 'audio of maxAudioBytes');
  t.equal(d.push(frame(T.VIDEO, mediaPayload(0, 0x1f_ffff, 0xffff_ffff))).length, 1, 'ptsUs = MAX_SAFE_INTEGER');
});

t.test('the handshake may be cut short by BYE, and unknown JSON fields are ignored', async (t) => {
  t.same(
    decodeChunks(S2C, [bye]).map((m) => m.type),
    ['bye'],
    'server refuses before CHALLENGE',
  );
  t.same(
    decodeChunks(S2C, [challengeOnly, bye]).map((m) => m.type),
    ['challenge', 'bye'],
    'auth-failed after CHALLENGE',
  );
  t.same(
    decodeChunks(C2S, [helloOnly, bye]).map((m) => m.type),
    ['hello', 'bye'],
    'client quits after HELLO',
  );
  const [hello] = decodeChunks(C2S, [jsonFrame(T.HELLO, helloBody({ futureField: [1, 2] } as never))]);
  t.same(hello, { type: 'hello', body: helloBody() }, 'futureField dropped');
  const [, welcome] = decodeChunks(S2C, [challengeOnly, jsonFrame(T.WELCOME, welcomeBody({ video: null, audio: null }))]);
  t.match(welcome, { type: 'welcome', body: { video: null, audio: null } }, 'audio-only/video-only servers say null');
});

t.test('WELCOME announces h264 video and opus audio', async (t) => {
  const video = { codec: 'h264', width: 1280, height: 720, fps: 30 };
  const audio = { codec: 'opus', sampleRateHz: 48000, channels: 1, packetMs: 10 };
  const [, welcome] = decodeChunks(S2C, [challengeOnly, jsonFrame(T.WELCOME, welcomeBody({ video, audio }))]);
  t.match(welcome, { type: 'welcome', body: { video, audio } });
});

t.test('constructor rejects bad options', async (t) => {
  t.throws(() => new MessageDecoder({ direction: 'sideways' as Direction }), TypeError);
  t.throws(() => new MessageDecoder({ direction: C2S, limits: { maxVideoBytes: 0 } }), RangeError);
  t.throws(() => new MessageDecoder({ direction: C2S, limits: { maxJsonBytes: 2 ** 32 } }), RangeError);
  t.throws(() => new MessageDecoder({ direction: C2S, limits: { maxAudioBytes: 1.5 } }), RangeError);
});

// ---------------------------------------------------------------------------------------------
// The malformed-input catalogue. Each case: the bytes a decoder gets after `prefix` (the valid
// handshake unless stated), and the reason it must fail with. `headerOnly` cases push just the 8
// header bytes: failing there proves the limit is checked before any payload is buffered.

interface BadCase {
  name: string;
  direction: Direction;
  prefix?: Buffer;
  bytes: Buffer;
  reason: ProtocolErrorReason;
  headerOnly?: boolean;
  code?: string;
}

const open = (direction: Direction) => (direction === C2S ? CLIENT_HANDSHAKE : SERVER_HANDSHAKE);
const hdr = (type: number, payloadBytes: number, flags = 0, reserved = 0) => frame(type, Buffer.alloc(0), { payloadBytes, flags, reserved });
const u64Payload = (fixedBytes: number, at: number, high: number) => {
  const p = Buffer.alloc(fixedBytes);
  p.writeUInt32BE(high, at);
  return p;
};
const welcomeWith = (overrides: Record<string, unknown>) => jsonFrame(T.WELCOME, welcomeBody(overrides));
const welcomeVideo = (video: Record<string, unknown>) => welcomeWith({ video: { codec: 'mjpeg', width: 640, height: 480, fps: 30, ...video } });
const welcomeAudio = (audio: Record<string, unknown>) =>
  welcomeWith({ audio: { codec: 'pcm_s16le', sampleRateHz: 48000, channels: 2, packetMs: 10, ...audio } });
const helloWith = (overrides: Record<string, unknown>) => jsonFrame(T.HELLO, helloBody(overrides as never));
const rawHello = (payload: Buffer | string) => frame(T.HELLO, payload);

const catalogue: BadCase[] = [
  // unknown types
  { name: 'type 0x00', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(0x00, 0), reason: 'unknown-type' },
  { name: 'type 0xff', direction: S2C, prefix: Buffer.alloc(0), bytes: hdr(0xff, 4), reason: 'unknown-type' },
  { name: 'type 0x05 in the handshake range gap', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(0x05, 0), reason: 'unknown-type' },
  { name: 'type 0x26 after the handshake', direction: C2S, bytes: hdr(0x26, 2), reason: 'unknown-type' },
  {
    name: 'plain HTTP request instead of lanstream',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: Buffer.from('GET / HTTP/1.1\r\n'),
    reason: 'unknown-type',
  },
  // wrong direction
  { name: 'VIDEO sent by a client', direction: C2S, bytes: hdr(T.VIDEO, 12), reason: 'wrong-direction' },
  { name: 'CHALLENGE sent by a client', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(T.CHALLENGE, 32), reason: 'wrong-direction' },
  { name: 'STATUS sent by a client', direction: C2S, bytes: hdr(T.STATUS, 2), reason: 'wrong-direction' },
  { name: 'HELLO sent by a server', direction: S2C, prefix: Buffer.alloc(0), bytes: hdr(T.HELLO, 2), reason: 'wrong-direction' },
  { name: 'ACK sent by a server', direction: S2C, bytes: hdr(T.ACK, 8), reason: 'wrong-direction' },
  { name: 'STATS sent by a server', direction: S2C, bytes: hdr(T.STATS, 2), reason: 'wrong-direction' },
  // reserved bytes and flags
  { name: 'reserved 0x0001 on PING', direction: C2S, bytes: hdr(T.PING, 12, 0, 1), reason: 'reserved-bits' },
  { name: 'reserved 0x8000 on HELLO', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(T.HELLO, 2, 0, 0x8000), reason: 'reserved-bits' },
  { name: 'reserved bits on VIDEO', direction: S2C, bytes: hdr(T.VIDEO, 12, 1, 0x0100), reason: 'reserved-bits' },
  { name: 'flags 0x01 on PING', direction: C2S, bytes: hdr(T.PING, 12, 1), reason: 'bad-flags' },
  { name: 'flags 0x80 on HELLO', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(T.HELLO, 2, 0x80), reason: 'bad-flags' },
  { name: 'flags on BYE', direction: S2C, bytes: hdr(T.BYE, 2, 0x02), reason: 'bad-flags' },
  { name: 'unknown media flag 0x04 on VIDEO', direction: S2C, bytes: hdr(T.VIDEO, 12, 0x04), reason: 'bad-flags' },
  { name: 'all flag bits on AUDIO', direction: S2C, bytes: hdr(T.AUDIO, 12, 0xff), reason: 'bad-flags' },
  // sizes, checked from the header alone
  { name: 'VIDEO one byte over maxVideoBytes', direction: S2C, bytes: hdr(T.VIDEO, 12 + bigVideo + 1), reason: 'too-large', headerOnly: true },
  { name: 'VIDEO claiming 4 GiB', direction: S2C, bytes: hdr(T.VIDEO, 0xffff_ffff, 1), reason: 'too-large', headerOnly: true },
  { name: 'AUDIO one byte over maxAudioBytes', direction: S2C, bytes: hdr(T.AUDIO, 12 + bigAudio + 1), reason: 'too-large', headerOnly: true },
  { name: 'HELLO JSON over maxJsonBytes', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(T.HELLO, 4097), reason: 'too-large', headerOnly: true },
  { name: 'STATS JSON over maxJsonBytes', direction: C2S, bytes: hdr(T.STATS, 100_000), reason: 'too-large', headerOnly: true },
  { name: 'WELCOME JSON over maxJsonBytes', direction: S2C, prefix: challengeOnly, bytes: hdr(T.WELCOME, 4097), reason: 'too-large', headerOnly: true },
  { name: 'BYE JSON over maxJsonBytes', direction: S2C, bytes: hdr(T.BYE, 5000), reason: 'too-large', headerOnly: true },
  // fixed sizes
  { name: 'CHALLENGE of 31 bytes', direction: S2C, prefix: Buffer.alloc(0), bytes: hdr(T.CHALLENGE, 31), reason: 'bad-length', headerOnly: true },
  { name: 'CHALLENGE of 33 bytes', direction: S2C, prefix: Buffer.alloc(0), bytes: hdr(T.CHALLENGE, 33), reason: 'bad-length', headerOnly: true },
  { name: 'AUTH of 0 bytes', direction: C2S, prefix: helloOnly, bytes: hdr(T.AUTH, 0), reason: 'bad-length', headerOnly: true },
  { name: 'AUTH of 64 bytes', direction: C2S, prefix: helloOnly, bytes: hdr(T.AUTH, 64), reason: 'bad-length', headerOnly: true },
  { name: 'PING of 11 bytes', direction: C2S, bytes: hdr(T.PING, 11), reason: 'bad-length', headerOnly: true },
  { name: 'PONG of PING size', direction: S2C, bytes: hdr(T.PONG, 12), reason: 'bad-length', headerOnly: true },
  { name: 'ACK of 16 bytes', direction: C2S, bytes: hdr(T.ACK, 16), reason: 'bad-length', headerOnly: true },
  { name: 'VIDEO shorter than its 12-byte media header', direction: S2C, bytes: hdr(T.VIDEO, 11), reason: 'bad-length', headerOnly: true },
  { name: 'AUDIO with an empty payload', direction: S2C, bytes: hdr(T.AUDIO, 0), reason: 'bad-length', headerOnly: true },
  // u64 that does not fit a double exactly
  { name: 'VIDEO ptsUs = 2^53', direction: S2C, bytes: frame(T.VIDEO, mediaPayload(1, 0x20_0000, 0)), reason: 'overflow' },
  { name: 'AUDIO ptsUs = 2^64 - 1', direction: S2C, bytes: frame(T.AUDIO, mediaPayload(1, 0xffff_ffff, 0xffff_ffff)), reason: 'overflow' },
  { name: 'PING sendTimeUs overflow', direction: C2S, bytes: frame(T.PING, u64Payload(12, 4, 0x8000_0000)), reason: 'overflow' },
  { name: 'PONG senderTimeUs overflow', direction: S2C, bytes: frame(T.PONG, u64Payload(20, 12, 0x20_0000)), reason: 'overflow' },
  { name: 'ACK receivedBytes overflow', direction: C2S, bytes: frame(T.ACK, u64Payload(8, 0, 0xffff_ffff)), reason: 'overflow' },
  // JSON that is not a JSON object
  { name: 'HELLO body truncated JSON', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello('{"version":1'), reason: 'bad-json' },
  { name: 'HELLO with an empty body', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello(''), reason: 'bad-json' },
  { name: 'HELLO body is an array', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello('[]'), reason: 'bad-json' },
  { name: 'HELLO body is null', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello('null'), reason: 'bad-json' },
  { name: 'HELLO body is a string', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello('"hello"'), reason: 'bad-json' },
  { name: 'HELLO body is a number', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello('42'), reason: 'bad-json' },
  { name: 'HELLO body with trailing garbage', direction: C2S, prefix: Buffer.alloc(0), bytes: rawHello(`${JSON.stringify(helloBody())}x`), reason: 'bad-json' },
  {
    name: 'HELLO body with invalid UTF-8 byte 0xff',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: rawHello(Buffer.concat([Buffer.from('{"agent":"'), Buffer.from([0xff]), Buffer.from('"}')])),
    reason: 'bad-json',
  },
  {
    name: 'HELLO body with overlong UTF-8 (0xc0 0xaf)',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: rawHello(Buffer.concat([Buffer.from('{"agent":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])),
    reason: 'bad-json',
  },
  {
    name: 'HELLO body with UTF-8 encoded surrogate',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: rawHello(Buffer.concat([Buffer.from('{"agent":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])),
    reason: 'bad-json',
  },
  {
    name: 'HELLO body starting with a UTF-8 BOM',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: rawHello(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(helloBody()))])),
    reason: 'bad-json',
  },
  {
    name: 'HELLO with a __proto__ key',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: rawHello(`{"__proto__":{"isAdmin":true},${JSON.stringify(helloBody()).slice(1)}`),
    reason: 'bad-json',
  },
  {
    name: 'STATS with nested constructor.prototype',
    direction: C2S,
    bytes: jsonFrame(T.STATS, '{"a":{"constructor":{"prototype":{"x":1}}}}'),
    reason: 'bad-json',
  },
  { name: 'REQUEST body is an array', direction: C2S, bytes: jsonFrame(T.REQUEST, '[1,2]'), reason: 'bad-json' },
  { name: 'STATUS body is true', direction: S2C, bytes: jsonFrame(T.STATUS, 'true'), reason: 'bad-json' },
  // fields missing or of the wrong type
  { name: 'HELLO without agent', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ agent: undefined }), reason: 'bad-field' },
  { name: 'HELLO agent is a number', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ agent: 7 }), reason: 'bad-field' },
  { name: 'HELLO agent of 201 characters', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ agent: 'a'.repeat(201) }), reason: 'bad-field' },
  {
    name: 'HELLO clientNonce of 63 hex characters',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: helloWith({ clientNonce: 'a'.repeat(63) }),
    reason: 'bad-field',
  },
  { name: 'HELLO clientNonce not hex', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ clientNonce: 'g'.repeat(64) }), reason: 'bad-field' },
  { name: 'HELLO clientNonce in upper case', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ clientNonce: 'A'.repeat(64) }), reason: 'bad-field' },
  { name: 'HELLO wantVideo is "yes"', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ wantVideo: 'yes' }), reason: 'bad-field' },
  { name: 'HELLO wantAudio missing', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ wantAudio: undefined }), reason: 'bad-field' },
  { name: 'HELLO version is the string "1"', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ version: '1' }), reason: 'bad-field' },
  { name: 'HELLO version 1.5', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ version: 1.5 }), reason: 'bad-field' },
  { name: 'WELCOME without sessionId', direction: S2C, prefix: challengeOnly, bytes: welcomeWith({ sessionId: undefined }), reason: 'bad-field' },
  { name: 'WELCOME serverTimeUs = 2^53', direction: S2C, prefix: challengeOnly, bytes: welcomeWith({ serverTimeUs: 2 ** 53 }), reason: 'bad-field' },
  { name: 'WELCOME serverTimeUs negative', direction: S2C, prefix: challengeOnly, bytes: welcomeWith({ serverTimeUs: -1 }), reason: 'bad-field' },
  {
    name: 'WELCOME video missing (must be null or an object)',
    direction: S2C,
    prefix: challengeOnly,
    bytes: welcomeWith({ video: undefined }),
    reason: 'bad-field',
  },
  { name: 'WELCOME video is an array', direction: S2C, prefix: challengeOnly, bytes: welcomeWith({ video: [] }), reason: 'bad-field' },
  { name: 'WELCOME video codec hevc', direction: S2C, prefix: challengeOnly, bytes: welcomeVideo({ codec: 'hevc' }), reason: 'bad-field' },
  { name: 'WELCOME video width 0', direction: S2C, prefix: challengeOnly, bytes: welcomeVideo({ width: 0 }), reason: 'bad-field' },
  { name: 'WELCOME video height 16385', direction: S2C, prefix: challengeOnly, bytes: welcomeVideo({ height: 16385 }), reason: 'bad-field' },
  { name: 'WELCOME video fps 241', direction: S2C, prefix: challengeOnly, bytes: welcomeVideo({ fps: 241 }), reason: 'bad-field' },
  { name: 'WELCOME audio channels 9', direction: S2C, prefix: challengeOnly, bytes: welcomeAudio({ channels: 9 }), reason: 'bad-field' },
  { name: 'WELCOME audio sampleRateHz 44100.5', direction: S2C, prefix: challengeOnly, bytes: welcomeAudio({ sampleRateHz: 44100.5 }), reason: 'bad-field' },
  { name: 'WELCOME audio packetMs 0', direction: S2C, prefix: challengeOnly, bytes: welcomeAudio({ packetMs: 0 }), reason: 'bad-field' },
  { name: 'WELCOME audio codec pcm_f32le', direction: S2C, prefix: challengeOnly, bytes: welcomeAudio({ codec: 'pcm_f32le' }), reason: 'bad-field' },
  { name: 'WELCOME audio codec Opus (case matters)', direction: S2C, prefix: challengeOnly, bytes: welcomeAudio({ codec: 'Opus' }), reason: 'bad-field' },
  { name: 'BYE reason of 65 characters', direction: S2C, bytes: jsonFrame(T.BYE, { reason: 'r'.repeat(65), message: '' }), reason: 'bad-field' },
  { name: 'BYE without message', direction: C2S, bytes: jsonFrame(T.BYE, { reason: 'client-quit' }), reason: 'bad-field' },
  { name: 'BYE message of 501 characters', direction: S2C, bytes: jsonFrame(T.BYE, { reason: 'shutdown', message: 'm'.repeat(501) }), reason: 'bad-field' },
  { name: 'STATUS without state', direction: S2C, bytes: jsonFrame(T.STATUS, { message: 'hi' }), reason: 'bad-field' },
  { name: 'STATUS message is a number', direction: S2C, bytes: jsonFrame(T.STATUS, { state: 'live', message: 5 }), reason: 'bad-field' },
  // versions
  { name: 'HELLO version 2', direction: C2S, prefix: Buffer.alloc(0), bytes: helloWith({ version: 2 }), reason: 'version', code: 'LS_ERR_VERSION_MISMATCH' },
  {
    name: 'HELLO version 2 with a v2-only shape',
    direction: C2S,
    prefix: Buffer.alloc(0),
    bytes: jsonFrame(T.HELLO, { version: 2, caps: [] }),
    reason: 'version',
    code: 'LS_ERR_VERSION_MISMATCH',
  },
  { name: 'WELCOME version 0', direction: S2C, prefix: challengeOnly, bytes: welcomeWith({ version: 0 }), reason: 'version', code: 'LS_ERR_VERSION_MISMATCH' },
  // handshake order
  { name: 'PING before HELLO', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(T.PING, 12), reason: 'out-of-order', headerOnly: true },
  { name: 'AUTH before HELLO', direction: C2S, prefix: Buffer.alloc(0), bytes: hdr(T.AUTH, 32), reason: 'out-of-order', headerOnly: true },
  { name: 'ACK after HELLO, before AUTH', direction: C2S, prefix: helloOnly, bytes: hdr(T.ACK, 8), reason: 'out-of-order', headerOnly: true },
  { name: 'HELLO twice in the handshake', direction: C2S, prefix: helloOnly, bytes: helloOnly, reason: 'out-of-order' },
  { name: 'second HELLO after the handshake', direction: C2S, bytes: helloOnly, reason: 'out-of-order' },
  { name: 'second AUTH after the handshake', direction: C2S, bytes: hdr(T.AUTH, 32), reason: 'out-of-order', headerOnly: true },
  { name: 'VIDEO before CHALLENGE', direction: S2C, prefix: Buffer.alloc(0), bytes: hdr(T.VIDEO, 1000, 1), reason: 'out-of-order', headerOnly: true },
  { name: 'WELCOME before CHALLENGE', direction: S2C, prefix: Buffer.alloc(0), bytes: welcomeWith({}), reason: 'out-of-order' },
  { name: 'AUDIO between CHALLENGE and WELCOME', direction: S2C, prefix: challengeOnly, bytes: hdr(T.AUDIO, 20), reason: 'out-of-order', headerOnly: true },
  { name: 'second CHALLENGE after the handshake', direction: S2C, bytes: challengeOnly, reason: 'out-of-order' },
  { name: 'second WELCOME after the handshake', direction: S2C, bytes: welcomeWith({}), reason: 'out-of-order' },
  // after BYE
  { name: 'garbage after BYE in the same chunk', direction: S2C, bytes: Buffer.concat([bye, Buffer.from([0])]), reason: 'after-bye' },
  {
    name: 'a valid PING after BYE',
    direction: C2S,
    prefix: Buffer.concat([CLIENT_HANDSHAKE, bye]),
    bytes: encodeMessage({ type: 'ping', id: 1, sendTimeUs: 1 }),
    reason: 'after-bye',
  },
  { name: 'a single byte after a pre-handshake BYE', direction: S2C, prefix: bye, bytes: Buffer.from([0x10]), reason: 'after-bye' },
];

t.test(`malformed-input catalogue (${catalogue.length} cases)`, async (t) => {
  t.ok(catalogue.length >= 40);
  t.equal(new Set(catalogue.map((c) => c.name)).size, catalogue.length, 'case names are unique');
  for (const c of catalogue) {
    const d = new MessageDecoder({ direction: c.direction });
    d.push(c.prefix ?? open(c.direction));
    const bytes = c.headerOnly ? c.bytes.subarray(0, 8) : c.bytes;
    let caught: unknown;
    try {
      d.push(bytes);
    } catch (err) {
      caught = err;
    }
    if (!(caught instanceof ProtocolError)) {
      t.fail(`${c.name}: expected ProtocolError ${c.reason}, got ${String(caught)}`);
      continue;
    }
    t.equal(caught.reason, c.reason, `${c.name}: ${caught.message}`);
    t.equal(caught.code, c.code ?? 'LS_ERR_PROTOCOL', `${c.name}: code`);
    t.notMatch(caught.message, /\n/, `${c.name}: one-line message`);
    t.equal(d.bufferedBytes, 0, `${c.name}: nothing kept after failing`);
    // Once failed, always failed: with more bytes, no bytes, or a perfectly valid message.
    t.equal(
      t.throws(() => d.push(Buffer.from([1, 2, 3]))),
      caught,
      `${c.name}: stays failed`,
    );
    t.equal(
      t.throws(() => d.push(Buffer.alloc(0))),
      caught,
      `${c.name}: stays failed on empty push`,
    );
    t.equal(d.error, caught);
  }
});

t.test('messages completed before the failure are kept on the error', async (t) => {
  const d = new MessageDecoder({ direction: S2C });
  const err = t.throws(() => d.push(Buffer.concat([bye, Buffer.from('junk')]))) as ProtocolError;
  t.equal(err.reason, 'after-bye');
  t.match(err.decoded, [{ type: 'bye', body: { reason: 'shutdown' } }], 'the BYE reason is still available');
});

t.test('oversize payloads are refused before any of them is buffered', async (t) => {
  const d = new MessageDecoder({ direction: S2C, limits: { maxVideoBytes: 1000 } });
  d.push(SERVER_HANDSHAKE);
  d.push(frame(T.VIDEO, mediaPayload(0, 0, 0, Buffer.alloc(1000))));
  const header = hdr(T.VIDEO, 12 + 1001, 1);
  const err = t.throws(() => d.push(header)) as ProtocolError;
  t.equal(err.reason, 'too-large');
  t.match(err.message, /1001 bytes exceeds maxVideoBytes 1000/, 'names the value and the limit');
  t.match(err.details, { reason: 'too-large', offset: SERVER_HANDSHAKE.length + 1020 });
});

t.test('error messages name the value and what was expected', async (t) => {
  const cases: Array<[Direction, Buffer, RegExp]> = [
    [C2S, hdr(0x7e, 0), /0x7e/],
    [S2C, Buffer.concat([SERVER_HANDSHAKE, hdr(T.PONG, 12)]), /PONG payload is 12 bytes \(expected exactly 20\)/],
    [S2C, Buffer.concat([SERVER_HANDSHAKE, hdr(T.VIDEO, 12, 0x04)]), /flags are 0x04/],
    [C2S, helloWith({ version: 2 }), /version 2.*speaks 1/],
    [C2S, helloWith({ agent: 5 }), /HELLO\.agent is 5 \(expected a string of at most 200 characters\)/],
    [S2C, Buffer.concat([challengeOnly, welcomeVideo({ fps: 500 })]), /WELCOME\.video\.fps is 500 \(expected a number 1–240\)/],
    [S2C, Buffer.concat([challengeOnly, welcomeVideo({ codec: 'av1' })]), /WELCOME\.video\.codec is "av1" \(expected "mjpeg" or "h264"\)/],
    [
      S2C,
      Buffer.concat([SERVER_HANDSHAKE, frame(T.VIDEO, mediaPayload(0, 0xffff_ffff, 0xffff_ffff))]),
      /ptsUs is 18446744073709551615 \(expected at most 9007199254740991\)/,
    ],
  ];
  for (const [direction, bytes, pattern] of cases) {
    const err = t.throws(() => new MessageDecoder({ direction }).push(bytes)) as ProtocolError;
    t.match(err.message, pattern);
  }
});
