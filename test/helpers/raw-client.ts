/**
 * Test helper: a client that speaks whatever bytes a test wants over real TLS (ALPN lanstream/1 by
 * default) or plain TCP, and records what the server answered, decoded as lanstream messages. The
 * hostile-client, limit and fuzz tests use it to play attacker; it can also do the honest
 * handshake step by step, so a test can stop or cheat at any point.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ALPN_PROTOCOL, PROTOCOL_VERSION } from '../../src/protocol/constants.js';
import { MessageDecoder } from '../../src/protocol/decoder.js';
import { encodeMessage } from '../../src/protocol/encoder.js';
import type { Message } from '../../src/protocol/messages.js';
import { computeAuthProof, exportAuthEkm, newNonce } from '../../src/protocol/auth.js';

export interface RawClientOptions {
  port: number;
  host?: string;
  /** Another loopback address (127.0.0.2 …) to look like another machine to the server. */
  localAddress?: string;
  /** Plain TCP instead of TLS. */
  plain?: boolean;
  /** ALPN offered; null = none. */
  alpn?: string[] | null;
  connectTimeoutMs?: number;
  /** Keep our side open when the server ends its side (a peer that never closes). */
  allowHalfOpen?: boolean;
}

export interface CloseInfo {
  /** Milliseconds from the end of the (TLS) connect to the close. */
  afterMs: number;
  error: string | null;
}

export class RawClient {
  readonly socket: net.Socket | tls.TLSSocket;
  readonly received: Buffer[] = [];
  readonly messages: Message[] = [];
  /** Set when the server's bytes stopped parsing as lanstream (e.g. a TLS alert on a plain socket). */
  decodeError: Error | null = null;
  readonly closed: Promise<CloseInfo>;
  readonly clientNonce = newNonce();
  #decoder = new MessageDecoder({ direction: 'server-to-client' });
  #connectedAtMs = Date.now();
  #error: string | null = null;
  #waiters: (() => void)[] = [];

  private constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      if (!this.decodeError) {
        try {
          this.messages.push(...this.#decoder.push(chunk));
        } catch (err) {
          this.decodeError = err as Error;
        }
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', (err) => (this.#error ??= err.message));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        for (const w of this.#waiters.splice(0)) w();
        resolve({ afterMs: Date.now() - this.#connectedAtMs, error: this.#error });
      }),
    );
  }

  /** Resolves once TCP (plain) or TLS is up; rejects if that fails. */
  static connect(o: RawClientOptions): Promise<RawClient> {
    const host = o.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const socket = o.plain
        ? net.connect({ host, port: o.port, localAddress: o.localAddress, allowHalfOpen: o.allowHalfOpen ?? false })
        : tls.connect({
            // tls.connect has no localAddress: dial the TCP socket ourselves and wrap it.
            socket: net.connect({ host, port: o.port, localAddress: o.localAddress, allowHalfOpen: o.allowHalfOpen ?? false }),
            rejectUnauthorized: false,
            minVersion: 'TLSv1.3',
            ...(o.alpn === null ? {} : { ALPNProtocols: o.alpn ?? [ALPN_PROTOCOL] }),
          });
      const client = new RawClient(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`raw client: no connection to ${host}:${o.port} within ${o.connectTimeoutMs ?? 5000} ms`));
      }, o.connectTimeoutMs ?? 5000);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', onError);
      socket.once(o.plain ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        client.#connectedAtMs = Date.now();
        resolve(client);
      });
    });
  }

  get receivedBytes(): number {
    return this.received.reduce((n, b) => n + b.length, 0);
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** VIDEO and AUDIO messages received (what must stay 0 without a valid proof). */
  mediaCount(): number {
    return this.messages.filter((m) => m.type === 'video' || m.type === 'audio').length;
  }

  /** The BYE the server sent, if any. */
  bye(): { reason: string; message: string } | null {
    const m = this.messages.find((x) => x.type === 'bye');
    return m && m.type === 'bye' ? m.body : null;
  }

  send(bytes: Buffer | string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes);
  }

  sendMessage(msg: Message): void {
    this.send(encodeMessage(msg));
  }

  /** A JSON message the encoder would refuse to build (bad fields, wrong version): header + body as given. */
  sendRawJson(type: number, body: unknown): void {
    const json = Buffer.from(JSON.stringify(body) ?? 'null');
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(json.length, 4);
    this.send(Buffer.concat([header, json]));
  }

  hello(overrides: { wantVideo?: boolean; wantAudio?: boolean } = {}): void {
    this.sendMessage({
      type: 'hello',
      body: {
        version: PROTOCOL_VERSION,
        agent: 'raw-client',
        clientNonce: this.clientNonce.toString('hex'),
        wantVideo: overrides.wantVideo ?? true,
        wantAudio: overrides.wantAudio ?? true,
      },
    });
  }

  /** Proves `key` for the CHALLENGE already received (throws if none came). */
  auth(key: string): void {
    const challenge = this.messages.find((m) => m.type === 'challenge');
    if (!challenge || challenge.type !== 'challenge') throw new Error('raw client: no CHALLENGE received yet');
    const ekm = this.socket instanceof tls.TLSSocket ? exportAuthEkm(this.socket) : Buffer.alloc(32);
    this.sendMessage({ type: 'auth', proof: computeAuthProof(key, ekm, this.clientNonce, challenge.nonce) });
  }

  /** Resolves with the first message of `type` (or null when the connection closes or time is up). */
  async waitFor(type: Message['type'], timeoutMs: number): Promise<Message | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((m) => m.type === type);
      if (found) return found;
      if (this.socket.destroyed || Date.now() >= deadline) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Closed by the server within `timeoutMs`? Resolves with the close info, or null if still open. */
  async waitClosed(timeoutMs: number): Promise<CloseInfo | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const result = await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
