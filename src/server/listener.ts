/**
 * The one listening port: TLS 1.3 with ALPN "lanstream/1" by default (443, so a viewer behind a
 * firewall that only lets it dial out to 443 gets through), plain TCP only with --insecure.
 * Enforces the connection-level limits before any session allocates: viewers, pending handshakes.
 * Turns bind failures into one-line errors that say what to do.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ALPN_PROTOCOL } from '../protocol/constants.js';
import { LanstreamError } from '../shared/errors.js';

export interface ListenerOptions {
  host?: string;
  port: number;
  insecure: boolean;
  certPem?: string;
  keyPem?: string;
  logger: Logger;
  /** A connection that passed TLS (or accepted as plain TCP with --insecure). */
  onConnection: (socket: tls.TLSSocket | net.Socket, secure: boolean) => void;
}

export class Listener {
  readonly #o: ListenerOptions;
  readonly #server: net.Server;
  #closing: Promise<void> | null = null;

  constructor(options: ListenerOptions) {
    this.#o = options;
    const log = options.logger;
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
          if (socket.alpnProtocol !== ALPN_PROTOCOL) {
            log.info({ address: socket.remoteAddress, alpn: socket.alpnProtocol }, 'closed a TLS client that does not speak lanstream');
            socket.destroy();
            return;
          }
          options.onConnection(socket, true);
        },
      );
      server.on('tlsClientError', (err, socket) => {
        log.info({ address: socket.remoteAddress, err: err.message }, 'closed a connection that failed the TLS handshake');
        // With a tlsClientError listener Node leaves the socket open, even after the handshake
        // timeout (measured on Node 20: a silent TCP client stayed connected indefinitely).
        socket.destroy();
      });
      this.#server = server;
    }
    this.#server.on('connection', (socket: net.Socket) => socket.setNoDelay(true));
  }

  /** Resolves with the bound port once listening; rejects with a one-line LanstreamError. */
  start(): Promise<number> {
    const { host, port } = this.#o;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port));
      this.#server.once('error', onError);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#o.logger.error({ err: err.message }, 'listener error'));
        resolve((this.#server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stop accepting; existing sockets are the sessions' business. */
  close(): Promise<void> {
    this.#closing ??= new Promise((resolve) => this.#server.close(() => resolve()));
    return this.#closing;
  }
}

export function listenError(err: NodeJS.ErrnoException, host: string | undefined, port: number): LanstreamError {
  const where = `${host ?? '*'}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new LanstreamError('LS_ERR_PORT_BUSY', `Port ${port} is already in use on ${where}: stop the other program or use --port <another>`, { cause: err });
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
      return new LanstreamError('LS_ERR_BIND_FAILED', `Address ${host} is not on this machine: use --host with one of its addresses, or omit it`, { cause: err });
    default:
      return new LanstreamError('LS_ERR_BIND_FAILED', `Cannot listen on ${where}: ${err.message}`, { cause: err });
  }
}
