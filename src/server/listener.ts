/**
 * The one listening port: TLS 1.3 with ALPN "lanstream/1" by default (443, so a viewer behind a
 * firewall that only lets it dial out to 443 gets through), plain TCP only with --insecure.
 * Enforces the connection-level limits before any session allocates: sockets still in the TLS
 * handshake are bounded (handshake-slots.ts: a flood from one address only evicts its own oldest), so
 * connections that say nothing cannot use up file descriptors or memory for the 5 s handshake timeout
 * (without the bound, 1000 silent connects a second held 5000 sockets open, past a default ulimit of
 * 1024). Failed handshakes and evictions are logged as counts, at most one line a second each.
 * Turns bind failures into one-line errors that say what to do.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ALPN_PROTOCOL } from '../protocol/constants.js';
import { formatHostPort, plainAddress } from '../shared/connect-url.js';
import { LanstreamError } from '../shared/errors.js';
import { LogThrottle } from '../shared/log-throttle.js';
import { handshakeToEvict, type HandshakeLimits } from './handshake-slots.js';

/** Default bound on sockets still in the TLS handshake: in all, and from one address. */
export const DEFAULT_TLS_HANDSHAKE_LIMITS: HandshakeLimits = { total: 64, perAddress: 8 };
/** A flood of failures is summarised in one log line per this interval. */
const LOG_EVERY_MS = 1000;

export interface ListenerOptions {
  host?: string;
  port: number;
  insecure: boolean;
  certPem?: string;
  keyPem?: string;
  logger: Logger;
  /** A connection that passed TLS (or accepted as plain TCP with --insecure). */
  onConnection: (socket: tls.TLSSocket | net.Socket, secure: boolean) => void;
  /** Sockets still in the TLS handshake (default DEFAULT_TLS_HANDSHAKE_LIMITS). */
  tlsHandshakeLimits?: HandshakeLimits;
}

interface Handshaking {
  readonly socket: net.Socket;
  readonly address: string;
  readonly sinceMs: number;
}

export class Listener {
  readonly #o: ListenerOptions;
  readonly #server: net.Server;
  #closing: Promise<void> | null = null;
  /** Sockets accepted whose TLS handshake has not finished, by "address:port". */
  readonly #handshaking = new Map<string, Handshaking>();

  constructor(options: ListenerOptions) {
    this.#o = options;
    const log = options.logger;
    const limits = options.tlsHandshakeLimits ?? DEFAULT_TLS_HANDSHAKE_LIMITS;
    // What failed in the window being counted: a few distinct reasons and addresses, not one line each.
    let reasons = new Map<string, number>();
    let addresses = new Set<string>();
    const failures = new LogThrottle(LOG_EVERY_MS, (n) => {
      log.info({ failed: n, reasons: Object.fromEntries(reasons), addresses: [...addresses] }, `closed ${n} connection(s) that failed the TLS handshake`);
      reasons = new Map();
      addresses = new Set();
    });
    let lastEvicted: string | undefined;
    const evictions = new LogThrottle(LOG_EVERY_MS, (n) =>
      log.warn(
        { address: lastEvicted, dropped: n },
        `dropped ${n} unfinished TLS handshake(s) to make room (limits: ${limits.total} in all, ${limits.perAddress} per address)`,
      ),
    );
    if (options.insecure) {
      this.#server = net.createServer((socket) => options.onConnection(socket, false));
    } else {
      const server = tls.createServer(
        {
          cert: options.certPem,
          key: options.keyPem,
          minVersion: 'TLSv1.3',
          ALPNProtocols: [ALPN_PROTOCOL],
          // A handshake that does not finish in time is dropped (slowloris on the TLS layer).
          handshakeTimeout: 5000,
        },
        (socket) => {
          this.#handshaking.delete(handshakeKey(socket));
          if (socket.alpnProtocol !== ALPN_PROTOCOL) {
            log.info({ address: plainAddress(socket.remoteAddress), alpn: socket.alpnProtocol }, 'closed a TLS client that does not speak lanstream');
            socket.destroy();
            return;
          }
          options.onConnection(socket, true);
        },
      );
      server.on('tlsClientError', (err, socket) => {
        this.#handshaking.delete(handshakeKey(socket));
        const reason = (err as NodeJS.ErrnoException).code ?? err.message; // e.g. ERR_SSL_HTTP_REQUEST
        if (reasons.size < 8 || reasons.has(reason)) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        const address = plainAddress(socket.remoteAddress);
        if (addresses.size < 8 && address) addresses.add(address);
        failures.note();
        // With a tlsClientError listener Node leaves the socket open, even after the handshake
        // timeout (measured on Node 20: a silent TCP client stayed connected indefinitely).
        socket.destroy();
      });
      server.on('connection', (raw: net.Socket) => {
        const address = plainAddress(raw.remoteAddress);
        const victim = handshakeToEvict(this.#handshaking.values(), address, limits);
        if (victim) {
          this.#handshaking.delete(handshakeKey(victim.socket));
          victim.socket.destroy();
          lastEvicted = victim.address;
          evictions.note();
        }
        const key = handshakeKey(raw);
        this.#handshaking.set(key, { socket: raw, address, sinceMs: Date.now() });
        raw.once('close', () => {
          if (this.#handshaking.get(key)?.socket === raw) this.#handshaking.delete(key);
        });
      });
      this.#server = server;
    }
    this.#server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
  }

  /** Sockets accepted that have not finished the TLS handshake yet (tests, stats). */
  get tlsHandshakesInProgress(): number {
    return this.#handshaking.size;
  }

  /** Resolves with the bound port once listening; rejects with a one-line LanstreamError. */
  async start(): Promise<number> {
    await listenOrFail(this.#server, this.#o.host, this.#o.port);
    this.#server.on('error', (err) => this.#o.logger.error({ err: err.message }, 'listener error'));
    return (this.#server.address() as net.AddressInfo).port;
  }

  /**
   * Fails now, with start()'s message, if the port cannot be had (busy, privileged, an address not
   * on this machine), so serve says so before it writes a certificate or opens the camera and the
   * microphone to check them. Binds and lets go at once; port 0 (any free port) is not checked.
   */
  static async probe(host: string | undefined, port: number): Promise<void> {
    if (port === 0) return;
    const server = net.createServer();
    await listenOrFail(server, host, port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Stop accepting; existing sockets are the sessions' business. */
  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => this.#server.close(() => resolve()));
    return this.#closing;
  }
}

function listenOrFail(server: net.Server, host: string | undefined, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Raw socket and the TLSSocket made from it share this key (the TLS callbacks never see the raw one). */
function handshakeKey(socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

export function listenError(err: NodeJS.ErrnoException, host: string | undefined, port: number): LanstreamError {
  // An IPv6 --host in brackets ([fd00::2]:8443): without them the port read as part of the address.
  const where = host === undefined ? `*:${port}` : formatHostPort(host, port);
  switch (err.code) {
    case 'EADDRINUSE':
      return new LanstreamError('LS_ERR_PORT_BUSY', `Port ${port} is already in use on ${where}: stop the other program or use --port <another>`, {
        cause: err,
      });
    case 'EACCES':
      if (port < 1024) {
        return new LanstreamError(
          'LS_ERR_PORT_PRIVILEGED',
          `Port ${port} needs privilege: run sudo setcap 'cap_net_bind_service=+ep' "$(command -v node)" once, or use --port 8443`,
          { cause: err },
        );
      }
      return new LanstreamError('LS_ERR_BIND_FAILED', `Not allowed to listen on ${where}: ${err.message}`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new LanstreamError('LS_ERR_BIND_FAILED', `Address ${host} is not on this machine: use --host with one of its addresses, or omit it`, {
        cause: err,
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new LanstreamError('LS_ERR_BIND_FAILED', `--host ${host} is not a name this machine can resolve: give one of its IP addresses, or omit --host`, {
        cause: err,
      });
    default:
      return new LanstreamError('LS_ERR_BIND_FAILED', `Cannot listen on ${where}: ${err.message}`, { cause: err });
  }
}
