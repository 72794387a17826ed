/**
 * Test helper: a TCP proxy on 127.0.0.1 between a viewer and the server that can throttle the
 * server→viewer direction, stall it, or cut every connection (a cable pull or a server restart as
 * the viewer sees it). Bytes pass through untouched, so TLS and pinning work as on a real link.
 * Throttling uses a token bucket per connection with a bounded queue, like a slow router: what does
 * not fit waits (it is TCP), so the sender sees the link's real rate.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Server→viewer bytes per second; null = unlimited. */
  setRate(bytesPerS: number | null): void;
  /** Hold every byte in both directions until resume() (nothing is dropped: a frozen link). */
  stall(): void;
  resume(): void;
  /** Destroy every connection and refuse new ones for downMs (a link cut). */
  cut(downMs: number): Promise<void>;
  connections(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let rate: number | null = null;
  let stalled = false;
  let down = false;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; pump: () => void }>();

  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const queue: Buffer[] = [];
    let queued = 0;
    let tokens = 0;
    let last = Date.now();
    let timer: NodeJS.Timeout | null = null;
    const upQueue: Buffer[] = [];
    const pump = () => {
      if (timer) return;
      if (stalled) return;
      while (upQueue.length) upstream.write(upQueue.shift()!);
      const now = Date.now();
      if (rate !== null) tokens = Math.min(rate * 0.02, tokens + ((now - last) / 1000) * rate);
      last = now;
      while (queue.length) {
        const head = queue[0]!;
        if (rate === null) {
          client.write(head);
          queue.shift();
          queued -= head.length;
          continue;
        }
        if (tokens < 1) break;
        const n = Math.min(head.length, Math.floor(tokens));
        client.write(head.subarray(0, n));
        tokens -= n;
        queued -= n;
        if (n === head.length) queue.shift();
        else queue[0] = head.subarray(n);
      }
      if (queued < 256 * 1024) upstream.resume();
      if (queue.length) timer = setTimeout(() => ((timer = null), pump()), 5);
    };
    upstream.on('data', (d: Buffer) => {
      queue.push(d);
      queued += d.length;
      // Back-pressure to the server once a router-sized queue is full.
      if (queued >= 256 * 1024) upstream.pause();
      pump();
    });
    client.on('data', (d: Buffer) => {
      upQueue.push(d);
      pump();
    });
    const pair = { client, upstream, pump };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      if (timer) clearTimeout(timer);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    setRate: (r) => {
      rate = r;
    },
    stall: () => {
      stalled = true;
    },
    resume: () => {
      stalled = false;
      for (const p of pairs) p.pump();
    },
    cut: async (downMs) => {
      down = true;
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      }
      await new Promise((r) => setTimeout(r, downMs));
      down = false;
    },
    connections: () => pairs.size,
    close: () =>
      new Promise<void>((r) => {
        for (const p of pairs) {
          p.client.destroy();
          p.upstream.destroy();
        }
        server.close(() => r());
      }),
  };
}
