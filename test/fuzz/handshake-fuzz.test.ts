/**
 * Fuzz of the HELLO/CHALLENGE/AUTH exchange against a real in-process server over TLS: random
 * sequences of valid and invalid handshake messages, control messages and raw bytes. Whatever
 * the sequence, the server never crashes and never sends WELCOME or media unless a valid proof
 * (right key, this TLS session, this challenge) was sent. Runs: HANDSHAKE_FUZZ_RUNS, else
 * FUZZ_RUNS (capped at 5000: each run is a real TLS connection), default 300; seed FUZZ_SEED.
 */
import fc from 'fast-check';
import t from 'tap';
import { MessageType, PROTOCOL_VERSION } from '../../src/protocol/constants.js';
import { computeAuthProof } from '../../src/protocol/auth.js';
import { startTestServer, testViewer } from '../helpers/lanstream.js';
import { captureLogger } from '../helpers/log-capture.js';
import { RawClient } from '../helpers/raw-client.js';
import { sleep, waitFor } from '../helpers/process.js';

const numRuns = Math.min(5000, Number(process.env.HANDSHAKE_FUZZ_RUNS ?? process.env.FUZZ_RUNS ?? 300) || 300);
const seed = Number(process.env.FUZZ_SEED ?? 42) || 42;

type Step =
  | { kind: 'hello' }
  | { kind: 'hello-bad'; body: Record<string, unknown> }
  | { kind: 'auth-right' }
  | { kind: 'auth-wrong-key' }
  | { kind: 'auth-replayed' }
  | { kind: 'auth-random'; proof: Buffer }
  | { kind: 'ping' }
  | { kind: 'ack'; receivedBytes: number }
  | { kind: 'stats' }
  | { kind: 'bye' }
  | { kind: 'bytes'; data: Buffer }
  | { kind: 'wait'; ms: number };

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));
const validHello = { version: PROTOCOL_VERSION, agent: 'fuzz', clientNonce: 'ab'.repeat(32), wantVideo: true, wantAudio: true };
const arbStep: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Step>({ kind: 'hello' }) },
  {
    weight: 2,
    arbitrary: fc
      .record({ key: fc.constantFrom('version', 'clientNonce', 'wantVideo', 'agent', 'extra'), value: fc.jsonValue() })
      .map(({ key, value }): Step => ({ kind: 'hello-bad', body: { ...validHello, [key]: value } })),
  },
  { weight: 3, arbitrary: fc.constant<Step>({ kind: 'auth-right' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'auth-wrong-key' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'auth-replayed' }) },
  { weight: 1, arbitrary: bytes(32, 32).map((proof): Step => ({ kind: 'auth-random', proof })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'ping' }) },
  { weight: 1, arbitrary: fc.maxSafeNat().map((n): Step => ({ kind: 'ack', receivedBytes: n })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'stats' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'bye' }) },
  { weight: 2, arbitrary: bytes(1, 64).map((data): Step => ({ kind: 'bytes', data })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }).map((ms): Step => ({ kind: 'wait', ms })) },
);

t.test(`handshake fuzz over real TLS (${numRuns} runs, seed ${seed})`, async (t) => {
  const log = captureLogger('warn');
  const ts = await startTestServer({ logger: log.logger, maxPendingHandshakes: 1000, maxPendingPerAddress: 1000 });
  t.teardown(() => ts.close());
  const key = ts.ready.accessKey;
  let run = 0;
  let welcomed = 0;
  let refused = 0;

  await fc.assert(
    fc.asyncProperty(fc.array(arbStep, { minLength: 1, maxLength: 8 }), async (steps) => {
      run++;
      // Most runs from their own address (so the rate limiter does not hide the later steps); every
      // fourth from one shared address, so rate-limited refusals are fuzzed too.
      const localAddress = run % 4 === 0 ? '127.0.0.9' : `127.1.${(run >> 8) & 0xff}.${run & 0xff || 1}`;
      const c = await RawClient.connect({ port: ts.ready.port, localAddress });
      let validProofSent = false;
      let helloSent = false;
      try {
        for (const step of steps) {
          if (c.isClosed) break;
          switch (step.kind) {
            case 'hello':
              c.hello();
              helloSent = true;
              break;
            case 'hello-bad':
              c.sendRawJson(MessageType.HELLO, step.body);
              break;
            case 'auth-right': {
              const challenged = helloSent && (await c.waitFor('challenge', 200)) !== null;
              if (challenged) {
                c.auth(key);
                validProofSent = true;
              } else {
                c.sendMessage({ type: 'auth', proof: computeAuthProof(key, Buffer.alloc(32), c.clientNonce, Buffer.alloc(32)) });
              }
              break;
            }
            case 'auth-wrong-key':
              if (c.messages.some((m) => m.type === 'challenge')) c.auth(`${key}x`);
              else c.sendMessage({ type: 'auth', proof: Buffer.alloc(32, 1) });
              break;
            case 'auth-replayed': {
              // The right key, but for another TLS session (as a relay would forward it).
              const challenge = c.messages.find((m) => m.type === 'challenge');
              const nonce = challenge?.type === 'challenge' ? challenge.nonce : Buffer.alloc(32);
              c.sendMessage({ type: 'auth', proof: computeAuthProof(key, Buffer.alloc(32, 7), c.clientNonce, nonce) });
              break;
            }
            case 'auth-random':
              c.sendMessage({ type: 'auth', proof: step.proof });
              break;
            case 'ping':
              c.sendMessage({ type: 'ping', id: 1, sendTimeUs: 1 });
              break;
            case 'ack':
              c.sendMessage({ type: 'ack', receivedBytes: step.receivedBytes });
              break;
            case 'stats':
              c.sendMessage({ type: 'stats', body: { fuzz: true } });
              break;
            case 'bye':
              c.sendMessage({ type: 'bye', body: { reason: 'client-quit', message: 'fuzz' } });
              break;
            case 'bytes':
              c.send(step.data);
              break;
            case 'wait':
              await sleep(step.ms);
              break;
          }
        }
        await c.waitClosed(validProofSent ? 150 : 60);
        const gotWelcome = c.messages.some((m) => m.type === 'welcome');
        if (gotWelcome) welcomed++;
        if (c.bye()) refused++;
        if ((gotWelcome || c.mediaCount() > 0) && !validProofSent) {
          throw new Error(`WELCOME or media without a valid proof after ${JSON.stringify(steps.map((s) => s.kind))}`);
        }
        const before = c.messages.findIndex((m) => m.type === 'welcome');
        const firstMedia = c.messages.findIndex((m) => m.type === 'video' || m.type === 'audio');
        if (firstMedia !== -1 && (before === -1 || firstMedia < before)) throw new Error('media before WELCOME');
      } finally {
        c.destroy();
      }
    }),
    { numRuns, seed, endOnFailure: true },
  );
  t.comment(`${run} runs: ${welcomed} welcomed after a valid proof, ${refused} ended with a BYE`);
  t.ok(welcomed > 0, 'the fuzzer did reach the welcome path (valid proofs were generated)');
  t.equal(log.lines.filter((l) => l.level >= 50).length, 0, 'no error-level log line');

  const good = testViewer(ts);
  t.teardown(() => good.viewer.close());
  await good.viewer.start();
  await waitFor(() => good.video.length > 5, 5000, 50, 'video for a good viewer after the fuzz');
  t.pass('the server still serves a good viewer after the fuzz');
  await waitFor(() => ts.server.sessions().length === 1, 3000, 50, 'fuzz sessions gone');
  t.pass('no fuzz session left behind');
});
