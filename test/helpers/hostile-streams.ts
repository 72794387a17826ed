/**
 * Test helper: seed-reproducible hostile byte streams for the flood test — what a broken or
 * malicious client might send on a connection that passed TLS with ALPN lanstream/1.
 */
import { MessageType } from '../../src/protocol/constants.js';
import { encodeMessage } from '../../src/protocol/encoder.js';

export type HostileKind = 'random' | 'hello-then-garbage' | 'huge-length' | 'oversized-json' | 'wrong-proof' | 'deep-json';

export interface HostileStream {
  kind: HostileKind;
  bytes: Buffer;
}

/** mulberry32: tiny, fast, seedable (Math.random is not). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export const HOSTILE_KINDS: readonly HostileKind[] = ['random', 'hello-then-garbage', 'huge-length', 'oversized-json', 'wrong-proof', 'deep-json'];
/** Kinds no valid prefix can explain: the server must close them on the bytes, not at its hello timeout. */
export const MUST_CLOSE_KINDS: readonly HostileKind[] = ['huge-length', 'oversized-json', 'wrong-proof'];

function header(type: number, payloadBytes: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(payloadBytes >>> 0, 4);
  return h;
}

export function hostileStream(rand: () => number): HostileStream {
  const int = (n: number) => Math.floor(rand() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const hello = encodeMessage({
    type: 'hello',
    body: { version: 1, agent: 'hostile', clientNonce: bytes(32).toString('hex'), wantVideo: true, wantAudio: true },
  });
  const kind = HOSTILE_KINDS[int(HOSTILE_KINDS.length)]!;
  switch (kind) {
    case 'random':
      return { kind, bytes: bytes(int(2000)) };
    case 'hello-then-garbage':
      return { kind, bytes: Buffer.concat([hello, bytes(1 + int(500))]) };
    case 'huge-length': {
      const types = [MessageType.HELLO, MessageType.VIDEO, MessageType.STATS, MessageType.AUTH, MessageType.BYE];
      const prefix = rand() < 0.5 ? hello : Buffer.alloc(0);
      return { kind, bytes: Buffer.concat([prefix, header(types[int(types.length)]!, 0xffff_ffff - int(1000)), bytes(int(3000))]) };
    }
    case 'oversized-json': {
      const size = 4097 + int(60_000);
      const json = Buffer.from(JSON.stringify({ version: 1, agent: 'x'.repeat(size), clientNonce: '0'.repeat(64), wantVideo: true, wantAudio: true }));
      return { kind, bytes: Buffer.concat([header(MessageType.HELLO, json.length), json]) };
    }
    case 'wrong-proof':
      return { kind, bytes: Buffer.concat([hello, header(MessageType.AUTH, 32), bytes(32), bytes(int(100))]) };
    case 'deep-json': {
      const depth = 1000 + int(1000);
      const json = Buffer.from(
        `{"version":1,"agent":"x","clientNonce":"${'a'.repeat(64)}","wantVideo":true,"wantAudio":true,"x":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      );
      return { kind, bytes: Buffer.concat([header(MessageType.HELLO, json.length), json]) };
    }
  }
}
