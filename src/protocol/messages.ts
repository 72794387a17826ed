/**
 * Decoded message shapes (what the encoder takes and the decoder yields). Pure data, no I/O.
 */
import type { ByeReason } from './constants.js';

/** Video codecs. MJPEG: every chunk one JPEG; H.264: every chunk one Annex-B access unit (IDR = KEYFRAME). */
export const VideoCodec = { MJPEG: 'mjpeg', H264: 'h264' } as const;
export type VideoCodec = (typeof VideoCodec)[keyof typeof VideoCodec];
/** Audio codecs. PCM: s16le samples; Opus: every chunk one Opus packet (RFC 6716), 48 kHz timeline. */
export const AudioCodec = { PCM_S16LE: 'pcm_s16le', OPUS: 'opus' } as const;
export type AudioCodec = (typeof AudioCodec)[keyof typeof AudioCodec];

export interface HelloBody {
  version: number;
  /** Client software, e.g. "lanstream/0.1.0". */
  agent: string;
  /** 32 random bytes, hex; mixed into the auth proof. */
  clientNonce: string;
  /** What the viewer wants to receive. */
  wantVideo: boolean;
  wantAudio: boolean;
}

export interface VideoParams {
  codec: VideoCodec;
  width: number;
  height: number;
  fps: number;
}

export interface AudioParams {
  codec: AudioCodec;
  sampleRateHz: number;
  channels: number;
  /** Duration of one AUDIO chunk (10 ms by default). */
  packetMs: number;
}

export interface WelcomeBody {
  version: number;
  agent: string;
  /** Server monotonic clock at send time (µs), a first clock-offset estimate. */
  serverTimeUs: number;
  video: VideoParams | null;
  audio: AudioParams | null;
  /** Id of this viewer on the server (logs on both sides). */
  sessionId: string;
}

export interface ByeBody {
  reason: ByeReason;
  /** One line, for humans. */
  message: string;
}

export interface StatusBody {
  /** e.g. "capture-restarting", "capture-failed", "live" */
  state: string;
  message?: string;
}

export type Message =
  | { type: 'hello'; body: HelloBody }
  | { type: 'challenge'; nonce: Buffer }
  | { type: 'auth'; proof: Buffer }
  | { type: 'welcome'; body: WelcomeBody }
  | { type: 'video'; flags: number; seq: number; ptsUs: number; data: Buffer }
  | { type: 'audio'; flags: number; seq: number; ptsUs: number; data: Buffer }
  | { type: 'ping'; id: number; sendTimeUs: number }
  | { type: 'pong'; id: number; echoTimeUs: number; senderTimeUs: number }
  | { type: 'ack'; receivedBytes: number }
  | { type: 'stats'; body: Record<string, unknown> }
  | { type: 'status'; body: StatusBody }
  | { type: 'request'; body: Record<string, unknown> }
  | { type: 'bye'; body: ByeBody };

export type MessageOf<T extends Message['type']> = Extract<Message, { type: T }>;
