/**
 * The access-key proof over real TLS 1.3 on 127.0.0.1, with identities made by loadOrCreateIdentity:
 * both ends derive the same exporter value, the right key is accepted, a wrong key is refused, and a
 * relay in the middle (the client trusted the relay's certificate; the relay opens its own session
 * to the real server and passes bytes through) cannot make the server accept the proof.
 *
 * The exchange here is a stand-in for HELLO/CHALLENGE/AUTH with raw bytes (32-byte client nonce,
 * 32-byte server nonce, 32-byte proof, 1-byte verdict), so this test depends only on auth.ts.
 */
import t from 'tap';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { AUTH_EKM_BYTES, AUTH_EXPORTER_LABEL, computeAuthProof, decodeNonceHex, exportAuthEkm, newNonce, verifyAuthProof } from '../../src/protocol/auth.js';
import { loadOrCreateIdentity, type Identity } from '../../src/server/identity.js';
import { fingerprintOfDer } from '../../src/shared/fingerprint.js';

const ACCEPTED = 1;
const REFUSED = 0;

/** Resolves with exactly n bytes, or rejects if the socket ends first. */
function byteReader(sock: net.Socket): (n: number) => Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let ended = false;
  sock.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    wake?.();
  });
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  sock.on('end', onEnd);
  sock.on('close', onEnd);
  return async (n) => {
    while (buffered.length < n) {
      if (ended) throw new Error(`socket ended after ${buffered.length} of ${n} bytes`);
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
    const out = buffered.subarray(0, n);
    buffered = buffered.subarray(n);
    return out;
  };
}

interface ServerSide {
  ekm: Buffer;
  protocol: string | null;
  accepted: boolean;
}

/** A TLS 1.3 server that runs the challenge and reports what it saw for every connection. */
async function startAuthServer(id: Identity, accessKey: string) {
  const sessions: Promise<ServerSide>[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: id.certPem, key: id.keyPem, minVersion: 'TLSv1.3' }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const read = byteReader(sock);
    sessions.push(
      (async () => {
        const clientNonce = await read(32);
        const ekm = exportAuthEkm(sock);
        const serverNonce = newNonce();
        sock.write(serverNonce);
        const proof = await read(32);
        const accepted = verifyAuthProof(accessKey, ekm, clientNonce, serverNonce, proof);
        sock.end(Buffer.from([accepted ? ACCEPTED : REFUSED]));
        return { ekm, protocol: sock.getProtocol(), accepted };
      })(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port, sessions, close };
}

/** The viewer side: pin the fingerprint, answer the challenge, return what it saw. */
async function runClient(port: number, pinnedFingerprint: string, accessKey: string) {
  const sock = tls.connect({ host: '127.0.0.1', port, minVersion: 'TLSv1.3', rejectUnauthorized: false });
  sock.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', resolve);
      sock.once('error', reject);
    });
    const seenFingerprint = fingerprintOfDer(sock.getPeerCertificate(false).raw);
    if (seenFingerprint !== pinnedFingerprint) throw new Error(`fingerprint ${seenFingerprint} is not the pinned one`);
    const read = byteReader(sock);
    const ekm = exportAuthEkm(sock);
    // @types/node wants a context argument; at run time it is optional, and TLS 1.3 must ignore the difference.
    const exportNoContext = sock.exportKeyingMaterial as (length: number, label: string) => Buffer;
    const ekmNoContext = exportNoContext.call(sock, AUTH_EKM_BYTES, AUTH_EXPORTER_LABEL);
    const clientNonce = newNonce();
    sock.write(clientNonce);
    const serverNonce = await read(32);
    sock.write(computeAuthProof(accessKey, ekm, clientNonce, serverNonce));
    const verdict = (await read(1))[0];
    return { ekm, ekmNoContext, protocol: sock.getProtocol(), accepted: verdict === ACCEPTED, seenFingerprint };
  } finally {
    sock.destroy();
  }
}

t.test('auth proof over real TLS 1.3', async (t) => {
  t.setTimeout(10_000);
  const root = t.testdir();
  const server = await loadOrCreateIdentity({ configDir: path.join(root, 'server') });
  const relayId = await loadOrCreateIdentity({ configDir: path.join(root, 'relay') });
  const real = await startAuthServer(server, server.accessKey);
  t.teardown(real.close);

  t.test('the right key is accepted; both ends derive the same exporter value', async (t) => {
    const before = real.sessions.length;
    const client = await runClient(real.port, server.fingerprint, server.accessKey);
    const seen = await real.sessions[before]!;
    t.equal(client.seenFingerprint, server.fingerprint, 'the fingerprint the viewer sees is the one serve prints');
    t.equal(client.protocol, 'TLSv1.3');
    t.equal(seen.protocol, 'TLSv1.3');
    t.same(client.ekm, seen.ekm, 'same EKM on both ends');
    t.equal(client.ekm.length, AUTH_EKM_BYTES);
    t.same(client.ekmNoContext, client.ekm, 'TLS 1.3: no context and empty context give the same EKM');
    t.ok(seen.accepted, 'server accepts');
    t.ok(client.accepted, 'client is told it is accepted');

    const again = await runClient(real.port, server.fingerprint, server.accessKey);
    t.notSame(again.ekm, client.ekm, 'every TLS session has its own EKM');
  });

  t.test('a wrong key is refused', async (t) => {
    const before = real.sessions.length;
    const client = await runClient(real.port, server.fingerprint, relayId.accessKey);
    t.notOk(client.accepted);
    t.notOk((await real.sessions[before]!).accepted);
  });

  t.test('a proof relayed into another TLS session does not verify', async (t) => {
    // The relay terminates the viewer's TLS with its own certificate and opens its own session to the
    // real server, passing every byte through unchanged (the best a relay without the key can do).
    const relayed = new Set<net.Socket>();
    const relay = tls.createServer({ cert: relayId.certPem, key: relayId.keyPem, minVersion: 'TLSv1.3' }, (viewerSide) => {
      const upstream = tls.connect({ host: '127.0.0.1', port: real.port, minVersion: 'TLSv1.3', rejectUnauthorized: false });
      for (const s of [viewerSide, upstream]) {
        relayed.add(s);
        s.on('error', () => undefined);
        s.on('close', () => relayed.delete(s));
      }
      viewerSide.pipe(upstream);
      upstream.pipe(viewerSide);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    t.teardown(async () => {
      for (const s of relayed) s.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    });
    const relayPort = (relay.address() as net.AddressInfo).port;

    const before = real.sessions.length;
    // Worst case: the viewer was talked into pinning the relay's certificate and uses the right key.
    const client = await runClient(relayPort, relayId.fingerprint, server.accessKey);
    const seen = await real.sessions[before]!;
    t.notSame(client.ekm, seen.ekm, 'the two sessions have different EKMs');
    t.notOk(seen.accepted, 'the real server refuses the relayed proof');
    t.notOk(client.accepted);
  });
});

t.test('proof function properties', async (t) => {
  const key = 'k'.repeat(22);
  const ekm = Buffer.alloc(32, 1);
  const cn = Buffer.alloc(32, 2);
  const sn = Buffer.alloc(32, 3);
  const proof = computeAuthProof(key, ekm, cn, sn);
  t.equal(proof.length, 32);
  t.same(computeAuthProof(key, ekm, cn, sn), proof, 'deterministic');
  t.ok(verifyAuthProof(key, ekm, cn, sn, proof));
  const flip = (b: Buffer) => {
    const c = Buffer.from(b);
    c[0] = (c[0] ?? 0) ^ 1;
    return c;
  };
  t.notOk(verifyAuthProof(key + 'x', ekm, cn, sn, proof), 'other key');
  t.notOk(verifyAuthProof(key, flip(ekm), cn, sn, proof), 'other session');
  t.notOk(verifyAuthProof(key, ekm, flip(cn), sn, proof), 'other client nonce');
  t.notOk(verifyAuthProof(key, ekm, cn, flip(sn), proof), 'other server nonce');
  t.notOk(verifyAuthProof(key, ekm, sn, cn, proof), 'nonces swapped');
  t.notOk(verifyAuthProof(key, ekm, cn, sn, flip(proof)), 'tampered proof');
  t.notOk(verifyAuthProof(key, ekm, cn, sn, proof.subarray(0, 31)), 'short proof: false, no throw');
  t.notOk(verifyAuthProof(key, ekm, cn, sn, Buffer.alloc(0)), 'empty proof');
  t.notOk(verifyAuthProof(key, ekm, cn.subarray(1), sn, proof), 'short nonce: false, no throw');
  t.throws(() => computeAuthProof(key, ekm.subarray(1), cn, sn), TypeError);
  t.not(newNonce().toString('hex'), newNonce().toString('hex'));
  t.equal(newNonce().length, 32);
  const hex = cn.toString('hex');
  t.same(decodeNonceHex(hex), cn);
  t.same(decodeNonceHex(hex.toUpperCase()), cn);
  for (const bad of ['', hex.slice(2), hex + '00', hex.slice(2) + 'zz', ' '.repeat(64)]) t.equal(decodeNonceHex(bad), null, JSON.stringify(bad));
  t.equal(decodeNonceHex(42 as unknown as string), null, 'not a string (hostile JSON)');
});
