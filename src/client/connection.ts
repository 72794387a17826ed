/**
 * The viewer's side of the one TLS connection: dial out (so a firewall that only allows outgoing
 * 443 lets it through), verify the pinned certificate, prove the access key, then receive media
 * and keep the link honest: ACKs for the server's flow control, PING/PONG both ways for RTT and
 * clock offset, and a dead-link timer (~2 s of silence) instead of TCP's retransmission backoff
 * (measured: a 3.5 s cable pull froze plain ffmpeg for 6.6 s). After the first success it
 * reconnects by itself with a short capped backoff; a server restart looks the same.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ALPN_PROTOCOL, ByeReason, PROTOCOL_VERSION } from '../protocol/constants.js';
import { encodeMessage } from '../protocol/encoder.js';
import { MessageDecoder, ProtocolError } from '../protocol/decoder.js';
import type { Message, MessageOf, StatusBody, WelcomeBody } from '../protocol/messages.js';
import { exportAuthEkm, computeAuthProof, newNonce } from '../protocol/auth.js';
import { LanstreamError, isLanstreamError } from '../shared/errors.js';
import { nowUs } from '../shared/clock.js';
import { fingerprintOfDer, fingerprintsEqual } from '../shared/fingerprint.js';
import { formatHostPort, isIPAddress } from '../shared/connect-url.js';
import { fingerprintChangedError, type KnownHosts } from './known-hosts.js';
import { ClockSync } from './clock-sync.js';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'disconnected' | 'closed';

export interface ConnectionOptions {
  host: string;
  port: number;
  insecure: boolean;
  key: string;
  /** Pinned "sha256:…" fingerprint; without it, known-hosts trust on first use. */
  fingerprint?: string;
  knownHosts?: KnownHosts | null;
  wantVideo: boolean;
  wantAudio: boolean;
  agent: string;
  logger: Logger;
  connectTimeoutMs?: number;
  heartbeatMs?: number;
  deadMs?: number;
  /** Give up after this long without a live connection (after the first success); null = never. */
  reconnectTimeoutMs?: number | null;
  /** Keep retrying even before the first success (e.g. started before the server). */
  retryFirst?: boolean;
}

export interface ConnectionEvents {
  state: [ConnectionState, string | undefined];
  welcome: [WelcomeBody];
  video: [MessageOf<'video'>, number];
  audio: [MessageOf<'audio'>, number];
  status: [StatusBody];
  /** The connection ended for good (null = closed by us). */
  closed: [LanstreamError | null];
}

type ResolvedOptions = Required<Omit<ConnectionOptions, 'fingerprint' | 'knownHosts'>> & Pick<ConnectionOptions, 'fingerprint' | 'knownHosts'>;

// Short and capped: the target is a picture back within 1 s of the link returning, and a LAN
// server can take a few connection attempts a second from each viewer.
const BACKOFF_MS = [50, 100, 200, 250];
/**
 * A connection lost after being live this long is redialled at once (a cut link, a server restart);
 * one lost sooner goes through the backoff, and its WELCOME does not reset it. Otherwise a server
 * that breaks the protocol right after WELCOME was redialled ~330 times a second.
 */
const INSTANT_REDIAL_AFTER_LIVE_MS = 1000;
/** A LAN handshake takes milliseconds; a reconnect attempt silent for this long is abandoned. */
const RECONNECT_ATTEMPT_TIMEOUT_MS = 700;

export class ViewerConnection extends EventEmitter<ConnectionEvents> {
  readonly #o: ResolvedOptions;
  readonly #log: Logger;
  readonly clock = new ClockSync();
  #socket: tls.TLSSocket | net.Socket | null = null;
  #state: ConnectionState = 'connecting';
  #everLive = false;
  #attempt = 0;
  #lostAtMs: number | null = null;
  #liveSinceMs = 0;
  #closing: Promise<void> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #paused = false;
  /** reconnect() dropped the link: the close that follows is not a lost connection. */
  #reconnectAsked = false;
  #firstResult: { resolve: () => void; reject: (err: LanstreamError) => void } | null = null;
  #bytesReceived = 0;
  #connections = 0;

  constructor(options: ConnectionOptions) {
    super();
    this.#o = {
      connectTimeoutMs: 5000,
      heartbeatMs: 500,
      deadMs: 2000,
      reconnectTimeoutMs: null,
      retryFirst: false,
      ...options,
    } as ResolvedOptions;
    this.#log = options.logger.child({ component: 'connection', server: `${options.host}:${options.port}` });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Total bytes received over all connections. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  get connections(): number {
    return this.#connections;
  }

  /** Resolves at the first WELCOME; rejects if the first attempt fails (unless retryFirst). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#firstResult = { resolve, reject };
      this.#dial();
    });
  }

  /** Viewer stats for the server's status display (best effort, only while live). */
  sendStats(body: Record<string, unknown>): void {
    const socket = this.#socket;
    if (this.#state === 'live' && socket && !socket.destroyed) socket.write(encodeMessage({ type: 'stats', body }));
  }

  /** Drop the current link on purpose and dial again (the `r` key, tests). */
  reconnect(): void {
    if (!this.#socket || this.#socket.destroyed) return;
    this.#reconnectAsked = true;
    this.#socket.destroy();
  }

  /** Leave on purpose (the `d` key): say goodbye and stay away until connect(). */
  disconnect(): void {
    if (this.#state === 'closed' || this.#paused) return;
    this.#paused = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const socket = this.#socket;
    if (socket && !socket.destroyed) {
      try {
        socket.write(encodeMessage({ type: 'bye', body: { reason: ByeReason.CLIENT_QUIT, message: 'viewer paused' } }));
      } catch {
        // already broken
      }
      socket.end();
      setTimeout(() => socket.destroy(), 500).unref();
    }
    this.#setState('disconnected', 'disconnected by the viewer');
  }

  /** Come back after disconnect(). */
  connect(): void {
    if (!this.#paused || this.#state === 'closed') return;
    this.#paused = false;
    // The socket disconnect() is still ending (up to 500 ms) must not outlive this dial.
    this.#socket?.destroy();
    this.#socket = null;
    this.#setState('connecting');
    this.#dial();
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    let done!: () => void;
    this.#closing = new Promise<void>((resolve) => (done = resolve));
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const socket = this.#socket;
    this.#setState('closed', 'closed by the viewer');
    // A start() still waiting must settle: once 'closed', the socket's close handler stays silent,
    // so without this `watch` waited for ever (or exited 0) when the viewer ended while connecting.
    this.#firstResult?.reject(
      new LanstreamError('LS_ERR_CONNECTION_LOST', `Closed by the viewer before ${formatHostPort(this.#o.host, this.#o.port)} was live`),
    );
    this.#firstResult = null;
    if (!socket || socket.destroyed) {
      done();
    } else {
      socket.once('close', () => done());
      try {
        socket.write(encodeMessage({ type: 'bye', body: { reason: ByeReason.CLIENT_QUIT, message: 'viewer closed' } }));
      } catch {
        // already broken
      }
      socket.end();
      setTimeout(() => socket.destroy(), 500).unref();
    }
    this.emit('closed', null);
    return this.#closing;
  }

  #setState(state: ConnectionState, detail?: string): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    this.emit('state', state, detail);
  }

  #dial(): void {
    if (this.#state === 'closed') return;
    const o = this.#o;
    // In every message of this attempt, and the known-hosts key: an IPv6 host in brackets.
    const hostPort = formatHostPort(o.host, o.port);
    const decoder = new MessageDecoder({ direction: 'server-to-client' });
    const clientNonce = newNonce();
    let lastHeardUs = nowUs();
    let live = false;
    let failure: LanstreamError | null = null;
    let heartbeat: NodeJS.Timeout | null = null;
    let ackScheduled = false;
    let pingId = 0;

    const socket: tls.TLSSocket | net.Socket = o.insecure
      ? net.connect({ host: o.host, port: o.port })
      : tls.connect({
          host: o.host,
          port: o.port,
          servername: isIPAddress(o.host) ? undefined : o.host,
          ALPNProtocols: [ALPN_PROTOCOL],
          minVersion: 'TLSv1.3',
          // The certificate is self-signed: trust comes from the pinned fingerprint, checked below.
          rejectUnauthorized: false,
        });
    this.#socket = socket;
    socket.setNoDelay(true);
    // While reconnecting, an attempt whose SYN was lost (the link was still down) is retried by us
    // after a short wait, not by the kernel's 1 s, 2 s, 4 s SYN backoff (measured on netlab: a
    // blackholed link came back 0.6–0.9 s late because of it).
    const attemptTimeoutMs = this.#everLive ? RECONNECT_ATTEMPT_TIMEOUT_MS : o.connectTimeoutMs;
    socket.setTimeout(attemptTimeoutMs, () => {
      failure ??= new LanstreamError('LS_ERR_CONNECT_TIMEOUT', `No answer from ${hostPort} within ${attemptTimeoutMs} ms: is the host up and the port open?`);
      socket.destroy();
    });

    const send = (msg: Message) => {
      if (!socket.destroyed) socket.write(encodeMessage(msg));
    };
    const fail = (err: LanstreamError) => {
      failure ??= err;
      socket.destroy();
    };

    const onConnected = async () => {
      if (!o.insecure) {
        const tlsSocket = socket as tls.TLSSocket;
        const der = tlsSocket.getPeerX509Certificate()?.raw;
        if (!der) return fail(new LanstreamError('LS_ERR_TLS_FAILED', `${hostPort} sent no certificate`));
        const seen = fingerprintOfDer(der);
        if (o.fingerprint) {
          if (!fingerprintsEqual(o.fingerprint, seen)) {
            return fail(
              new LanstreamError(
                'LS_ERR_FINGERPRINT_MISMATCH',
                `The certificate of ${hostPort} is ${seen}, not the pinned ${o.fingerprint}: someone may be in the middle; refusing`,
                { details: { expected: o.fingerprint, seen } },
              ),
            );
          }
          // Pinned and right: that is also how a user accepts a server's new certificate, so the
          // known-hosts line follows and the next run without --fingerprint is not refused again.
          if (o.knownHosts) {
            try {
              if ((await o.knownHosts.check(hostPort, seen)).status !== 'match') await o.knownHosts.remember(hostPort, seen);
            } catch (err) {
              this.#log.warn({ err: (err as Error).message }, `could not record ${hostPort} in ${o.knownHosts.path}`);
            }
          }
        } else if (o.knownHosts) {
          try {
            const verdict = await o.knownHosts.check(hostPort, seen);
            if (verdict.status === 'changed') return fail(fingerprintChangedError(hostPort, verdict.known, seen, o.knownHosts.path));
            if (verdict.status === 'new') {
              await o.knownHosts.remember(hostPort, seen);
              this.#log.warn({ fingerprint: seen }, `trusting ${hostPort} on first use; pin it with --fingerprint ${seen}`);
            }
          } catch (err) {
            return fail(
              isLanstreamError(err) ? err : new LanstreamError('LS_ERR_CONFIG', `Cannot use the known-hosts file: ${(err as Error).message}`, { cause: err }),
            );
          }
        }
      }
      send({
        type: 'hello',
        body: { version: PROTOCOL_VERSION, agent: o.agent, clientNonce: clientNonce.toString('hex'), wantVideo: o.wantVideo, wantAudio: o.wantAudio },
      });
    };

    const handle = (msg: Message, arrivalUs: number) => {
      switch (msg.type) {
        case 'challenge': {
          const ekm = o.insecure ? Buffer.alloc(32) : exportAuthEkm(socket as tls.TLSSocket);
          send({ type: 'auth', proof: computeAuthProof(o.key, ekm, clientNonce, msg.nonce) });
          return;
        }
        case 'welcome':
          live = true;
          socket.setTimeout(0);
          this.#connections++;
          this.#liveSinceMs = Date.now();
          this.#lostAtMs = null;
          this.clock.reset(msg.body.serverTimeUs, arrivalUs);
          this.#everLive = true;
          this.#setState('live');
          this.emit('welcome', msg.body);
          this.#firstResult?.resolve();
          this.#firstResult = null;
          heartbeat = setInterval(() => {
            if (nowUs() - lastHeardUs > o.deadMs * 1000) {
              this.#log.warn(`no data for ${o.deadMs} ms: link considered dead`);
              fail(new LanstreamError('LS_ERR_CONNECTION_LOST', `No data from ${hostPort} for ${o.deadMs} ms`));
              return;
            }
            pingId = (pingId + 1) >>> 0;
            send({ type: 'ping', id: pingId, sendTimeUs: nowUs() });
          }, o.heartbeatMs);
          heartbeat.unref();
          return;
        case 'video':
          this.emit('video', msg, arrivalUs);
          return;
        case 'audio':
          this.emit('audio', msg, arrivalUs);
          return;
        case 'ping':
          send({ type: 'pong', id: msg.id, echoTimeUs: msg.sendTimeUs, senderTimeUs: nowUs() });
          return;
        case 'pong':
          this.clock.onPong(msg.echoTimeUs, msg.senderTimeUs, arrivalUs);
          return;
        case 'status':
          this.emit('status', msg.body);
          return;
        case 'bye':
          fail(byeError(msg.body.reason, msg.body.message, hostPort));
          return;
        default:
          return;
      }
    };

    socket.once(o.insecure ? 'connect' : 'secureConnect', () => void onConnected());
    socket.on('data', (chunk: Buffer) => {
      const arrivalUs = nowUs();
      lastHeardUs = arrivalUs;
      this.#bytesReceived += chunk.length;
      let messages: Message[];
      try {
        messages = decoder.push(chunk);
      } catch (err) {
        fail(unsupportedCodecError(err, hostPort) ?? (isLanstreamError(err) ? err : new LanstreamError('LS_ERR_PROTOCOL', String(err))));
        return;
      }
      for (const msg of messages) handle(msg, arrivalUs);
      if (live && !ackScheduled) {
        ackScheduled = true;
        setImmediate(() => {
          ackScheduled = false;
          send({ type: 'ack', receivedBytes: decoder.bytesReceived });
        });
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= connectError(err, o.host, o.port, o.insecure);
    });
    socket.on('close', () => {
      if (heartbeat) clearInterval(heartbeat);
      // A socket that is no longer ours (disconnect() then connect() before it closed) must not
      // dial again: it did, and the viewer ended up with two live sessions and never exited.
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (this.#state === 'closed') return;
      // A TLS server drops a plain-TCP HELLO without a word (measured: no bytes back), so a close
      // before WELCOME in --insecure mode most likely means the server speaks TLS.
      const err =
        failure ??
        new LanstreamError(
          'LS_ERR_CONNECTION_LOST',
          !live && o.insecure
            ? `${hostPort} closed the connection before the lanstream handshake: if the server runs without --insecure (TLS, the default), drop --insecure here`
            : `The connection to ${hostPort} closed`,
        );
      this.#afterClose(err, live);
    });
  }

  #afterClose(err: LanstreamError, wasLive: boolean): void {
    if (this.#paused) return;
    const fatal = ['LS_ERR_AUTH_REFUSED', 'LS_ERR_FINGERPRINT_MISMATCH', 'LS_ERR_VERSION_MISMATCH', 'LS_ERR_CODEC_UNSUPPORTED', 'LS_ERR_CONFIG'].includes(
      err.code,
    );
    if (!this.#everLive && !this.#o.retryFirst) {
      this.#state = 'closed';
      this.#firstResult?.reject(err);
      this.#firstResult = null;
      return;
    }
    if (fatal) {
      this.#setState('closed', err.message);
      this.#firstResult?.reject(err);
      this.#firstResult = null;
      this.emit('closed', err);
      return;
    }
    const nowMs = Date.now();
    if (wasLive || this.#lostAtMs === null) this.#lostAtMs = nowMs;
    const limit = this.#o.reconnectTimeoutMs;
    if (limit !== null && nowMs - this.#lostAtMs > limit) {
      // Never connected (watch --wait for a server that did not come): the reason stays what it was (refused, …).
      const code = this.#everLive ? 'LS_ERR_CONNECTION_LOST' : err.code;
      const lost = new LanstreamError(code, `${err.message}; gave up after ${limit} ms (--reconnect-timeout)`, { cause: err });
      this.#setState('closed', lost.message);
      this.#firstResult?.reject(lost);
      this.#firstResult = null;
      this.emit('closed', lost);
      return;
    }
    const instant = wasLive && nowMs - this.#liveSinceMs >= INSTANT_REDIAL_AFTER_LIVE_MS;
    if (instant) this.#attempt = 0;
    const delay = instant ? 0 : BACKOFF_MS[Math.min(this.#attempt++, BACKOFF_MS.length - 1)]!;
    // Asked for (the `r` key): not a lost link, so no warning and no "connection lost" on screen.
    const asked = this.#reconnectAsked;
    this.#reconnectAsked = false;
    if (asked) this.#log.info('reconnecting, as asked');
    else if (wasLive) this.#log.warn({ code: err.code }, `${err.message}; reconnecting`);
    this.#setState('reconnecting', asked ? 'reconnecting, as asked' : err.message);
    this.#reconnectTimer = setTimeout(() => this.#dial(), delay);
  }
}

/**
 * A WELCOME announcing a codec this build does not know (a newer server) is not line noise: say
 * which codec, and the two ways out, instead of a protocol error — and do not retry it forever.
 */
export function unsupportedCodecError(err: unknown, where: string): LanstreamError | null {
  if (!(err instanceof ProtocolError) || err.reason !== 'bad-field') return null;
  const m = /^WELCOME\.(video|audio)\.codec$/.exec(String(err.details.path ?? ''));
  if (!m) return null;
  const kind = m[1] as 'video' | 'audio';
  const value = err.details.value;
  return new LanstreamError(
    'LS_ERR_CODEC_UNSUPPORTED',
    `${where} sends ${kind} as ${typeof value === 'string' ? `"${value}"` : 'an unknown codec'}, which this lanstream cannot decode: update lanstream here, or run serve with --${kind}-codec ${kind === 'video' ? 'mjpeg' : 'pcm'}`,
    { cause: err },
  );
}

function byeError(reason: string, message: string, where: string): LanstreamError {
  switch (reason) {
    case ByeReason.AUTH_FAILED:
      return new LanstreamError('LS_ERR_AUTH_REFUSED', `${where} refused the access key: ${message}`);
    case ByeReason.RATE_LIMITED:
      return new LanstreamError('LS_ERR_AUTH_RATE_LIMITED', `${where}: ${message}`);
    case ByeReason.VERSION:
      return new LanstreamError('LS_ERR_VERSION_MISMATCH', `${where} speaks another protocol version: ${message}; update lanstream on both machines`);
    default:
      return new LanstreamError('LS_ERR_SERVER_CLOSED', `${where} ended the session (${reason}): ${message}`, { details: { reason } });
  }
}

export function connectError(err: NodeJS.ErrnoException, host: string, port: number, insecure: boolean): LanstreamError {
  const where = formatHostPort(host, port);
  switch (err.code) {
    case 'ECONNREFUSED':
      return new LanstreamError('LS_ERR_CONNECT_REFUSED', `Nothing listens on ${where}: is \`lanstream serve\` running there, and on this --port?`, {
        cause: err,
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new LanstreamError('LS_ERR_HOST_UNKNOWN', `Unknown host ${host}: check the name, or use the IP address the server printed`, { cause: err });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new LanstreamError('LS_ERR_CONNECT_TIMEOUT', `Cannot reach ${where} (${err.code}): is the host up and on this network?`, { cause: err });
    case 'ECONNRESET':
    case 'EPIPE':
      return new LanstreamError('LS_ERR_CONNECTION_LOST', `The connection to ${where} was reset`, { cause: err });
    default:
      if (!insecure && (err.code?.startsWith('ERR_SSL') || err.code?.startsWith('ERR_TLS') || /SSL|TLS|wrong version number/i.test(err.message))) {
        // OpenSSL messages span lines ("…:wrong version number:../deps/openssl/…c:350:" and a newline); the reason alone keeps the error one line.
        const reason = (err as { reason?: string }).reason ?? err.message.split('\n')[0]!.trim();
        return new LanstreamError(
          'LS_ERR_TLS_FAILED',
          `TLS handshake with ${where} failed (${reason}); if the server runs with --insecure, pass --insecure here too`,
          { cause: err },
        );
      }
      return new LanstreamError('LS_ERR_CONNECTION_LOST', `Connection to ${where} failed: ${err.message}`, { cause: err });
  }
}
