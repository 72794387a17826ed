/**
 * Encoder of the lanstream wire protocol: the last step before bytes go onto the TLS socket, on
 * both sides. Pure; it refuses (RangeError) anything the peer's decoder would refuse, so a bug shows
 * up here, with a stack, instead of as a protocol-error BYE from the other machine.
 *
 * Media has a zero-copy path: `encodeMediaHeader()` returns only the 20 header bytes, so a JPEG
 * frame fanned out to many viewers is written as `header` + the same `data` buffer, never copied.
 *
 *  0       1       2       3       4       5       6       7
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * | type  | flags | reserved = 0  |   payloadBytes (u32, big end) |
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 */
import {
  ACK_BYTES,
  DEFAULT_LIMITS,
  FIXED_PAYLOAD_BYTES,
  HEADER_BYTES,
  MEDIA_HEADER_BYTES,
  MessageType,
  PING_BYTES,
  PONG_BYTES,
  type Limits,
} from './constants.js';
import { FORBIDDEN_JSON_KEYS, MEDIA_FLAGS_MASK, ProtocolError, checkJsonBody, resolveLimits, type JsonMessageType } from './decoder.js';
import type { Message } from './messages.js';

const U32_MAX = 0xffff_ffff;
const TWO_POW_32 = 2 ** 32;
const NO_LIMITS: Partial<Limits> = Object.freeze({});

/** Skips re-checking the defaults on the per-frame path. */
function limitsOf(limits: Partial<Limits>): Readonly<Limits> {
  return limits === NO_LIMITS ? DEFAULT_LIMITS : resolveLimits(limits);
}

/** Encodes one message into a new buffer (header + payload). Media data is copied; see encodeMediaHeader. */
export function encodeMessage(msg: Message, limits: Partial<Limits> = NO_LIMITS): Buffer {
  switch (msg.type) {
    case 'video':
    case 'audio':
      return Buffer.concat([encodeMediaHeader(msg.type, msg.flags, msg.seq, msg.ptsUs, msg.data.length, limits), msg.data]);
    case 'challenge':
      return encodeFixed(MessageType.CHALLENGE, 'CHALLENGE.nonce', msg.nonce);
    case 'auth':
      return encodeFixed(MessageType.AUTH, 'AUTH.proof', msg.proof);
    case 'ping': {
      const b = header(MessageType.PING, 0, PING_BYTES);
      writeU32(b, HEADER_BYTES, msg.id, 'PING.id');
      writeU64(b, HEADER_BYTES + 4, msg.sendTimeUs, 'PING.sendTimeUs');
      return b;
    }
    case 'pong': {
      const b = header(MessageType.PONG, 0, PONG_BYTES);
      writeU32(b, HEADER_BYTES, msg.id, 'PONG.id');
      writeU64(b, HEADER_BYTES + 4, msg.echoTimeUs, 'PONG.echoTimeUs');
      writeU64(b, HEADER_BYTES + 12, msg.senderTimeUs, 'PONG.senderTimeUs');
      return b;
    }
    case 'ack': {
      const b = header(MessageType.ACK, 0, ACK_BYTES);
      writeU64(b, HEADER_BYTES, msg.receivedBytes, 'ACK.receivedBytes');
      return b;
    }
    default:
      return encodeJson(msg.type, msg.body, limitsOf(limits).maxJsonBytes);
  }
}

/**
 * The 20 bytes that precede media data on the wire (8-byte header + seq + ptsUs), for
 * `socket.cork(); socket.write(header); socket.write(data); socket.uncork()` without copying data.
 */
export function encodeMediaHeader(
  kind: 'video' | 'audio',
  flags: number,
  seq: number,
  ptsUs: number,
  dataBytes: number,
  limits: Partial<Limits> = NO_LIMITS,
): Buffer {
  const label = kind.toUpperCase();
  if (!Number.isInteger(flags) || flags < 0 || (flags & ~MEDIA_FLAGS_MASK) !== 0) {
    throw new RangeError(`Invalid ${label} flags: ${flags} (expected a combination of MediaFlag bits 0x${MEDIA_FLAGS_MASK.toString(16)})`);
  }
  const resolved = limitsOf(limits);
  const [limitName, maxBytes] = kind === 'video' ? (['maxVideoBytes', resolved.maxVideoBytes] as const) : (['maxAudioBytes', resolved.maxAudioBytes] as const);
  if (!Number.isSafeInteger(dataBytes) || dataBytes < 0 || dataBytes > maxBytes) {
    throw new RangeError(`Invalid ${label} data size: ${dataBytes} bytes (expected 0–${maxBytes}, ${limitName})`);
  }
  const type = kind === 'video' ? MessageType.VIDEO : MessageType.AUDIO;
  const b = header(type, flags, MEDIA_HEADER_BYTES + dataBytes, MEDIA_HEADER_BYTES);
  writeU32(b, HEADER_BYTES, seq, `${label}.seq`);
  writeU64(b, HEADER_BYTES + 4, ptsUs, `${label}.ptsUs`);
  return b;
}

/** Allocates the header plus `ownedBytes` of payload we fill in ourselves, and writes the header. */
function header(type: number, flags: number, payloadBytes: number, ownedBytes = payloadBytes): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES + ownedBytes);
  b[0] = type;
  b[1] = flags;
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(payloadBytes, 4);
  return b;
}

function encodeFixed(type: number, label: string, bytes: Buffer): Buffer {
  const expected = FIXED_PAYLOAD_BYTES[type]!;
  if (bytes.length !== expected) {
    throw new RangeError(`Invalid ${label}: ${bytes.length} bytes (expected exactly ${expected})`);
  }
  const b = header(type, 0, expected);
  bytes.copy(b, HEADER_BYTES);
  return b;
}

function encodeJson(type: JsonMessageType, body: unknown, maxJsonBytes: number): Buffer {
  const label = type.toUpperCase();
  try {
    checkJsonBody(type, body);
  } catch (err) {
    if (err instanceof ProtocolError) throw new RangeError(`Invalid ${label} body: ${err.message}`, { cause: err });
    throw err;
  }
  const json = JSON.stringify(body, (key: string, value: unknown) => {
    if (FORBIDDEN_JSON_KEYS.has(key)) throw new RangeError(`Invalid ${label} body: key "${key}" is refused by every decoder`);
    return value;
  });
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  if (jsonBytes > maxJsonBytes) {
    throw new RangeError(`${label} JSON is ${jsonBytes} bytes (expected at most maxJsonBytes ${maxJsonBytes})`);
  }
  const b = header(MessageType[label as keyof typeof MessageType], 0, jsonBytes);
  b.write(json, HEADER_BYTES, 'utf8');
  return b;
}

function writeU32(b: Buffer, at: number, value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new RangeError(`Invalid ${name}: ${value} (expected an integer 0–${U32_MAX})`);
  }
  b.writeUInt32BE(value, at);
}

function writeU64(b: Buffer, at: number, value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Invalid ${name}: ${value} (expected an integer 0–${Number.MAX_SAFE_INTEGER})`);
  }
  b.writeUInt32BE(Math.floor(value / TWO_POW_32), at);
  b.writeUInt32BE(value >>> 0, at + 4);
}
