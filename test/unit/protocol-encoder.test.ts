import t from 'tap';
import { MessageType as T } from '../../src/protocol/constants.js';
import { MessageDecoder, type Direction } from '../../src/protocol/decoder.js';
import { encodeMediaHeader, encodeMessage } from '../../src/protocol/encoder.js';
import type { HelloBody, Message } from '../../src/protocol/messages.js';
import { CLIENT_HANDSHAKE, HELLO, SERVER_HANDSHAKE, WELCOME, comparable, expectedDecode, helloBody } from '../helpers/protocol-arbitraries.js';

/** Decodes one message after whatever part of the handshake a decoder must see before it. */
function roundTrip(msg: Message, direction: Direction): Message | undefined {
  const handshake = direction === 'client-to-server' ? CLIENT_HANDSHAKE : SERVER_HANDSHAKE;
  const firstMessageBytes = 8 + handshake.readUInt32BE(4);
  const prefixBytes = ['hello', 'challenge'].includes(msg.type) ? 0 : ['auth', 'welcome'].includes(msg.type) ? firstMessageBytes : handshake.length;
  const out = new MessageDecoder({ direction }).push(Buffer.concat([handshake.subarray(0, prefixBytes), encodeMessage(msg)]));
  return out[out.length - 1];
}

const everyType: Array<[Message, Direction]> = [
  [HELLO, 'client-to-server'],
  [{ type: 'challenge', nonce: Buffer.alloc(32, 1) }, 'server-to-client'],
  [{ type: 'auth', proof: Buffer.alloc(32, 2) }, 'client-to-server'],
  [WELCOME, 'server-to-client'],
  [{ type: 'video', flags: 1, seq: 4_000_000_000, ptsUs: 2 ** 52 + 1, data: Buffer.from([0xff, 0xd8, 0xff, 0xd9]) }, 'server-to-client'],
  [{ type: 'audio', flags: 2, seq: 0, ptsUs: 0, data: Buffer.alloc(960, 9) }, 'server-to-client'],
  [{ type: 'ping', id: 0xffff_ffff, sendTimeUs: Number.MAX_SAFE_INTEGER }, 'client-to-server'],
  [{ type: 'pong', id: 1, echoTimeUs: 2, senderTimeUs: 3 }, 'server-to-client'],
  [{ type: 'ack', receivedBytes: 2 ** 40 }, 'client-to-server'],
  [{ type: 'stats', body: { fps: 29.97, drops: { video: 1 }, list: [1, 'a', null] } }, 'client-to-server'],
  [{ type: 'status', body: { state: 'capture-failed', message: 'camera unplugged' } }, 'server-to-client'],
  [{ type: 'request', body: { quality: 'low' } }, 'client-to-server'],
  [{ type: 'bye', body: { reason: 'too-slow', message: 'viewer 3 s behind' } }, 'server-to-client'],
];

t.test('every message type survives encode → decode', async (t) => {
  t.equal(everyType.length, Object.keys(T).length, 'all 13 types covered');
  for (const [msg, direction] of everyType) {
    t.same(comparable(roundTrip(msg, direction)!), comparable(expectedDecode(msg)), msg.type);
  }
});

t.test('bytes on the wire match the documented layout', async (t) => {
  t.equal(encodeMessage({ type: 'ping', id: 5, sendTimeUs: 2 ** 32 + 3 }).toString('hex'), '20' + '00' + '0000' + '0000000c' + '00000005' + '0000000100000003');
  t.equal(
    encodeMessage({ type: 'pong', id: 1, echoTimeUs: 2, senderTimeUs: 3 }).toString('hex'),
    '21000000' + '00000014' + '00000001' + '0000000000000002' + '0000000000000003',
  );
  t.equal(encodeMessage({ type: 'ack', receivedBytes: 258 }).toString('hex'), '22000000' + '00000008' + '0000000000000102');
  t.equal(
    encodeMessage({ type: 'video', flags: 3, seq: 0x01020304, ptsUs: 0x0506070809, data: Buffer.from('ab') }).toString('hex'),
    '10030000' + '0000000e' + '01020304' + '0000000506070809' + '6162',
  );
  const bye = encodeMessage({ type: 'bye', body: { reason: 'shutdown', message: 'ü' } });
  t.equal(bye.subarray(0, 8).toString('hex'), '2f000000' + bye.readUInt32BE(4).toString(16).padStart(8, '0'));
  t.equal(bye.subarray(8).toString('utf8'), '{"reason":"shutdown","message":"ü"}', 'JSON body as UTF-8');
  t.equal(bye.readUInt32BE(4), Buffer.byteLength('{"reason":"shutdown","message":"ü"}'), 'length counts bytes, not characters');
});

t.test('encodeMediaHeader + data is byte-identical to encodeMessage', async (t) => {
  const data = Buffer.alloc(5000, 0x42);
  const header = encodeMediaHeader('video', 1, 77, 123_456, data.length);
  t.equal(header.length, 20);
  t.same(Buffer.concat([header, data]), encodeMessage({ type: 'video', flags: 1, seq: 77, ptsUs: 123_456, data }));
  const audioHeader = encodeMediaHeader('audio', 0, 1, 2, 480);
  t.equal(audioHeader[0], T.AUDIO);
  t.equal(audioHeader.readUInt32BE(4), 12 + 480);
  t.same(encodeMediaHeader('video', 0, 0, 0, 0), Buffer.from('10000000' + '0000000c' + '0'.repeat(24), 'hex'), 'empty frame');
});

t.test('values out of range throw RangeError', async (t) => {
  const media = (over: Partial<{ flags: number; seq: number; ptsUs: number; dataBytes: number }>) => () =>
    encodeMediaHeader('video', over.flags ?? 0, over.seq ?? 0, over.ptsUs ?? 0, over.dataBytes ?? 0);
  const cases: Array<[string, () => unknown]> = [
    ['seq above u32', media({ seq: 2 ** 32 })],
    ['negative seq', media({ seq: -1 })],
    ['fractional seq', media({ seq: 1.5 })],
    ['negative ptsUs', media({ ptsUs: -1 })],
    ['ptsUs above MAX_SAFE_INTEGER', media({ ptsUs: 2 ** 53 })],
    ['ptsUs NaN', media({ ptsUs: Number.NaN })],
    ['fractional ptsUs', media({ ptsUs: 0.5 })],
    ['unknown media flag', media({ flags: 4 })],
    ['video data above maxVideoBytes', media({ dataBytes: 8 * 1024 * 1024 + 1 })],
    ['audio data above maxAudioBytes', () => encodeMediaHeader('audio', 0, 0, 0, 64 * 1024 + 1)],
    ['data above a custom limit', () => encodeMediaHeader('video', 0, 0, 0, 1001, { maxVideoBytes: 1000 })],
    ['ping id above u32', () => encodeMessage({ type: 'ping', id: 2 ** 32, sendTimeUs: 0 })],
    ['pong time negative', () => encodeMessage({ type: 'pong', id: 0, echoTimeUs: -5, senderTimeUs: 0 })],
    ['ack not an integer', () => encodeMessage({ type: 'ack', receivedBytes: 1.25 })],
    ['challenge nonce of 31 bytes', () => encodeMessage({ type: 'challenge', nonce: Buffer.alloc(31) })],
    ['auth proof of 33 bytes', () => encodeMessage({ type: 'auth', proof: Buffer.alloc(33) })],
    ['stats JSON above maxJsonBytes', () => encodeMessage({ type: 'stats', body: { pad: 'x'.repeat(4096) } })],
    ['JSON above a custom maxJsonBytes', () => encodeMessage(HELLO, { maxJsonBytes: 50 })],
    ['hello agent of 201 characters', () => encodeMessage({ type: 'hello', body: helloBody({ agent: 'a'.repeat(201) }) as unknown as HelloBody })],
    ['hello of another version', () => encodeMessage({ type: 'hello', body: helloBody({ version: 2 }) as unknown as HelloBody })],
    ['bye message of 501 characters', () => encodeMessage({ type: 'bye', body: { reason: 'shutdown', message: 'm'.repeat(501) } })],
    ['stats body is an array', () => encodeMessage({ type: 'stats', body: [] as never })],
    ['request with a __proto__ key', () => encodeMessage({ type: 'request', body: JSON.parse('{"a":{"__proto__":{"x":1}}}') as Record<string, unknown> })],
    ['invalid limit', () => encodeMessage({ type: 'stats', body: {} }, { maxJsonBytes: -1 })],
  ];
  for (const [name, fn] of cases) t.throws(fn, RangeError, name);
});

t.test('the encoder never emits a JSON body the decoder would refuse', async (t) => {
  const d = new MessageDecoder({ direction: 'server-to-client' });
  d.push(SERVER_HANDSHAKE);
  const status: Message = { type: 'status', body: { state: 'live' } };
  const [decoded] = d.push(encodeMessage(status));
  t.same(decoded, status, 'optional message omitted stays omitted');
  t.notOk(encodeMessage(status).includes('message'), 'undefined optional fields are not on the wire');
});
