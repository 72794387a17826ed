/**
 * Property tests of the codec. Runs from FUZZ_RUNS (default 2000 so `npm test` stays fast;
 * `npm run fuzz` sets 100000), seed from FUZZ_SEED (default 42) so a failure replays exactly.
 */
import fc from 'fast-check';
import t from 'tap';
import { HEADER_BYTES, MEDIA_HEADER_BYTES, MessageType, type Limits } from '../../src/protocol/constants.js';
import { MessageDecoder, ProtocolError, type Direction } from '../../src/protocol/decoder.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import type { Message } from '../../src/protocol/messages.js';
import {
  CLIENT_HANDSHAKE,
  SERVER_HANDSHAKE,
  arbAnyStream,
  comparable,
  encodeAll,
  fuzzParameters,
  sameMessages,
  splitAt,
} from '../helpers/protocol-arbitraries.js';

const { numRuns, seed } = fuzzParameters();
const SMALL_LIMITS: Limits = { maxVideoBytes: 1024, maxAudioBytes: 256, maxJsonBytes: 512 };

interface Outcome {
  messages: Message[];
  reason: string | undefined;
}

/**
 * Feeds `chunks` and checks the invariants that must hold after every push, whatever the bytes:
 * only ProtocolError is thrown, the buffer stays within header + largest payload, a failed decoder
 * throws the same error forever, and every decoded message is one the encoder accepts.
 */
function feed(direction: Direction, chunks: readonly Buffer[], limits?: Limits): Outcome {
  const d = new MessageDecoder({ direction, ...(limits ? { limits } : {}) });
  const maxBuffered = HEADER_BYTES + MEDIA_HEADER_BYTES + Math.max(d.limits.maxVideoBytes, d.limits.maxAudioBytes, d.limits.maxJsonBytes);
  const messages: Message[] = [];
  let failure: ProtocolError | undefined;
  for (const chunk of chunks) {
    try {
      messages.push(...d.push(chunk));
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw new Error(`non-protocol error escaped: ${String(err)}`, { cause: err });
      if (failure !== undefined && err !== failure) throw new Error('a failed decoder threw a different error');
      if (failure === undefined) messages.push(...err.decoded);
      failure = err;
    }
    if (d.bufferedBytes > maxBuffered) throw new Error(`buffered ${d.bufferedBytes} > ${maxBuffered}`);
  }
  for (const m of messages) encodeMessage(m, d.limits); // throws RangeError if the decoder let through something invalid
  return { messages, reason: failure?.reason };
}

/** Split-independence: any chunking gives the same messages and the same failure as one push. */
function sameOutcome(a: Outcome, b: Outcome): boolean {
  return a.reason === b.reason && JSON.stringify(a.messages.map(comparable)) === JSON.stringify(b.messages.map(comparable));
}

const direction = fc.constantFrom<Direction>('client-to-server', 'server-to-client');
const cuts = fc.array(fc.nat(), { maxLength: 24 });
const limits = fc.constantFrom<Limits | undefined>(undefined, SMALL_LIMITS);

/** Header-shaped garbage: mostly known types with honest lengths, so payload decoding is reached. */
const frameish = fc
  .record({
    type: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...Object.values(MessageType)) }, fc.integer({ min: 0, max: 255 })),
    flags: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 255 })),
    reserved: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 0xffff })),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      // JSON that is sometimes a near-valid body, so field checks and BYE are reached too.
      fc
        .dictionary(
          fc.constantFrom('version', 'agent', 'reason', 'message', 'state', 'clientNonce', 'video', 'x'),
          fc.oneof(fc.constant(1), fc.constant(2), fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
        )
        .map((o) => Buffer.from(JSON.stringify(o))),
    ),
    lyingLength: fc.option(fc.nat(0xffff_ffff), { freq: 6 }),
  })
  .map(({ type, flags, reserved, payload, lyingLength }) => {
    const h = Buffer.alloc(HEADER_BYTES);
    h[0] = type;
    h[1] = flags;
    h.writeUInt16BE(reserved, 2);
    h.writeUInt32BE(lyingLength ?? payload.length, 4);
    return Buffer.concat([h, payload]);
  });

const arbitraryStream = fc
  .tuple(
    fc.constantFrom('none', 'handshake'),
    fc.array(
      fc.oneof(
        frameish,
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      ),
      { maxLength: 8 },
    ),
  )
  .map(([prefix, parts]) => ({ prefix, parts }));

t.comment(`FUZZ_SEED=${seed} FUZZ_RUNS=${numRuns}`);

t.test('arbitrary bytes in arbitrary splits: only ProtocolError, bounded buffering, split-independent', async (t) => {
  const reasons = new Set<string>();
  fc.assert(
    fc.property(direction, arbitraryStream, cuts, limits, (dir, { prefix, parts }, cutPoints, lim) => {
      const handshake = prefix === 'handshake' ? (dir === 'client-to-server' ? CLIENT_HANDSHAKE : SERVER_HANDSHAKE) : Buffer.alloc(0);
      const bytes = Buffer.concat([handshake, ...parts]);
      const whole = feed(dir, [bytes], lim);
      if (whole.reason !== undefined) reasons.add(whole.reason);
      return sameOutcome(feed(dir, splitAt(bytes, cutPoints), lim), whole);
    }),
    { numRuns, seed },
  );
  // Guards the generator itself: garbage that only ever hit one check would prove little.
  t.ok(reasons.size >= Math.min(9, numRuns / 100), `reached ${reasons.size} distinct failure reasons: ${[...reasons].join(' ')}`);
});

t.test('encode → decode round trip of arbitrary valid streams, split anywhere', async (t) => {
  fc.assert(
    fc.property(arbAnyStream, cuts, ({ dir, messages }, cutPoints) => {
      const bytes = encodeAll(messages);
      const out = feed(dir, splitAt(bytes, cutPoints));
      return out.reason === undefined && sameMessages(out.messages, messages);
    }),
    { numRuns, seed },
  );
  t.pass(`${numRuns} runs`);
});

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Buffer, m: Mutation): Buffer {
  if (bytes.length === 0) return bytes;
  const at = m.at % bytes.length;
  switch (m.kind) {
    case 'set': {
      const out = Buffer.from(bytes);
      out[at] = m.value;
      return out;
    }
    case 'flip': {
      const out = Buffer.from(bytes);
      out[at]! ^= 1 << m.bit;
      return out;
    }
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
    case 'truncate':
      return bytes.subarray(0, at);
  }
}

t.test('corrupted valid streams give ProtocolError or valid messages, never anything else', async (t) => {
  let failed = 0;
  let total = 0;
  fc.assert(
    fc.property(arbAnyStream, fc.array(mutation, { minLength: 1, maxLength: 4 }), cuts, ({ dir, messages }, mutations, cutPoints) => {
      const bytes = mutations.reduce(mutate, encodeAll(messages));
      const whole = feed(dir, [bytes]);
      total++;
      if (whole.reason !== undefined) failed++;
      return sameOutcome(feed(dir, splitAt(bytes, cutPoints)), whole);
    }),
    { numRuns, seed },
  );
  t.ok(failed > 0 && failed < total, `corruption was caught in ${failed} of ${total} runs (the rest hit payload bytes or truncated)`);
});
