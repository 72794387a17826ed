/**
 * lanstream wire protocol, version 1 — constants and the byte diagram (also in docs/protocol.md).
 *
 * One TLS connection (ALPN "lanstream/1") carries every message in both directions. Each message is
 * an 8-byte header followed by exactly `payloadBytes` bytes, so a receiver always knows where a
 * message ends without waiting for the next one (scrcpy saved a whole frame of latency this way).
 *
 *  0       1       2       3       4       5       6       7
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * | type  | flags | reserved = 0  |   payloadBytes (u32, big end) |
 * +-------+-------+-------+-------+-------+-------+-------+-------+
 * | payload (payloadBytes bytes) ...
 *
 * Media payload (VIDEO, AUDIO):
 *  0               4                               12
 * +---------------+-------------------------------+------------------
 * | seq (u32 BE)  | ptsUs (u64 BE, server clock)  | data (JPEG frame / s16le PCM) ...
 * +---------------+-------------------------------+------------------
 *
 * Handshake (client speaks first; no media byte before WELCOME):
 *   client HELLO {json}  →  server CHALLENGE (32-byte nonce)  →  client AUTH (32-byte proof)
 *   →  server WELCOME {json}  →  media + control both ways.   Any refusal: server BYE {json}.
 */

/** The port serve listens on and watch dials when none is given: 443, which strict firewalls let out. */
export const DEFAULT_PORT = 443;
export const PROTOCOL_VERSION = 1;
export const ALPN_PROTOCOL = 'lanstream/1';
export const HEADER_BYTES = 8;
export const MEDIA_HEADER_BYTES = 12;

export const MessageType = {
  HELLO: 0x01,
  CHALLENGE: 0x02,
  AUTH: 0x03,
  WELCOME: 0x04,
  VIDEO: 0x10,
  AUDIO: 0x11,
  PING: 0x20,
  PONG: 0x21,
  ACK: 0x22,
  STATS: 0x23,
  STATUS: 0x24,
  REQUEST: 0x25,
  BYE: 0x2f,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Media flags (byte 1 of VIDEO/AUDIO). Control messages use flags = 0. */
export const MediaFlag = {
  /** A frame that decodes on its own (every MJPEG frame; H.264 IDR). */
  KEYFRAME: 0x01,
  /** Something was dropped right before this chunk (seq gap is intentional). */
  DISCONTINUITY: 0x02,
} as const;

/** Which side may send which type. A message from the wrong side is a protocol error. */
export const CLIENT_TO_SERVER: ReadonlySet<number> = new Set([
  MessageType.HELLO,
  MessageType.AUTH,
  MessageType.PING,
  MessageType.PONG,
  MessageType.ACK,
  MessageType.STATS,
  MessageType.REQUEST,
  MessageType.BYE,
]);
export const SERVER_TO_CLIENT: ReadonlySet<number> = new Set([
  MessageType.CHALLENGE,
  MessageType.WELCOME,
  MessageType.VIDEO,
  MessageType.AUDIO,
  MessageType.PING,
  MessageType.PONG,
  MessageType.STATUS,
  MessageType.BYE,
]);

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const PING_BYTES = 12; // id u32 + sendTimeUs u64
export const PONG_BYTES = 20; // id u32 + echoTimeUs u64 + senderTimeUs u64
export const ACK_BYTES = 8; // receivedBytes u64 (cumulative, all messages)

/** Limits, checked from the header before a single payload byte is buffered. */
export interface Limits {
  maxVideoBytes: number;
  maxAudioBytes: number;
  /** JSON control messages: HELLO, WELCOME, STATS, STATUS, REQUEST, BYE. */
  maxJsonBytes: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxVideoBytes: 8 * 1024 * 1024,
  maxAudioBytes: 64 * 1024,
  maxJsonBytes: 4096,
});

/** Exact payload size for fixed-size types; undefined for variable ones. */
export const FIXED_PAYLOAD_BYTES: Readonly<Partial<Record<number, number>>> = Object.freeze({
  [MessageType.CHALLENGE]: NONCE_BYTES,
  [MessageType.AUTH]: PROOF_BYTES,
  [MessageType.PING]: PING_BYTES,
  [MessageType.PONG]: PONG_BYTES,
  [MessageType.ACK]: ACK_BYTES,
});

/** Reasons carried in BYE (stable strings; scripts may match them). */
export const ByeReason = {
  SHUTDOWN: 'shutdown',
  AUTH_FAILED: 'auth-failed',
  RATE_LIMITED: 'rate-limited',
  VERSION: 'version-mismatch',
  PROTOCOL: 'protocol-error',
  TIMEOUT: 'timeout',
  TOO_SLOW: 'too-slow',
  SERVER_FULL: 'server-full',
  CLIENT_QUIT: 'client-quit',
} as const;
export type ByeReason = (typeof ByeReason)[keyof typeof ByeReason];
