#!/usr/bin/env python3
"""Rate-limited TCP forwarder for the bench's fan-out system (bench/lanstream-systems.json,
lanstream-fanout8): one headless viewer connects here instead of to serve, and every byte in
each direction passes a token bucket, so that viewer sits behind a "1 Mbit/s link" on 127.0.0.1.

Why a script: `trickle -d` (Debian) is LD_PRELOAD on the client and had no effect on node (libuv's
epoll loop bypasses it: 14 Gbit/s measured through `trickle -s -d 125`); `tc` on lo would shape the
host's loopback for everyone; socat has no rate limit; the npm stream throttles are not installed.

Why small socket buffers: the proxy reads from serve only as fast as it may send, and the upstream
socket's receive buffer is capped at SO_RCVBUF, so serve's TCP send queue backs up within a fraction
of a second, as it would behind a real slow link, instead of vanishing into megabytes of loopback
buffers. Prints bytes forwarded per second to stderr (kept in the rig's role log).

usage: throttle-proxy.py LISTEN_PORT TARGET_PORT [--kbit 1000] [--host 127.0.0.1] [--max-seconds 600]
"""
import argparse
import asyncio
import socket
import sys
import time

BURST_BYTES = 3000  # ~24 ms at 1 Mbit/s: smooth like a serialising link, not bursty
CHUNK_BYTES = 1500  # about one packet per bucket step
UPSTREAM_RCVBUF = 32 * 1024


class TokenBucket:
    def __init__(self, bytes_per_s: float):
        self.rate = bytes_per_s
        self.tokens = float(BURST_BYTES)
        self.last = time.monotonic()

    async def take(self, n: int) -> None:
        now = time.monotonic()
        self.tokens = min(BURST_BYTES, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < n:
            await asyncio.sleep((n - self.tokens) / self.rate)
            self.last = time.monotonic()
            self.tokens = n
        self.tokens -= n


async def pump(reader, writer, bucket: TokenBucket, counter: list) -> None:
    try:
        while True:
            data = await reader.read(CHUNK_BYTES)
            if not data:
                break
            await bucket.take(len(data))
            writer.write(data)
            await writer.drain()  # the next read waits for this write: backpressure to the sender
            counter[0] += len(data)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('listen_port', type=int)
    ap.add_argument('target_port', type=int)
    ap.add_argument('--kbit', type=float, default=1000.0)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--max-seconds', type=float, default=600.0)
    a = ap.parse_args()
    rate = a.kbit * 1000 / 8
    down = [0]

    async def on_client(c_reader, c_writer) -> None:
        up_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RCVBUF)  # before connect: sets the window
        up_sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(up_sock, (a.host, a.target_port))
        except OSError:
            up_sock.close()
            c_writer.close()  # the viewer's --wait retries, as it would against serve itself
            return
        s_reader, s_writer = await asyncio.open_connection(sock=up_sock)
        print(f'throttle-proxy: viewer connected, {a.kbit:g} kbit/s each way', file=sys.stderr, flush=True)
        try:
            await asyncio.gather(pump(s_reader, c_writer, TokenBucket(rate), down),
                                 pump(c_reader, s_writer, TokenBucket(rate), [0]))
        except asyncio.CancelledError:
            pass  # --max-seconds reached

    server = await asyncio.start_server(on_client, a.host, a.listen_port)
    end = time.monotonic() + a.max_seconds
    last = 0
    while time.monotonic() < end:
        await asyncio.sleep(1)
        print(f'throttle-proxy: {time.time():.1f} down {(down[0] - last) * 8 / 1000:.0f} kbit/s', file=sys.stderr, flush=True)
        last = down[0]
    server.close()


if __name__ == '__main__':
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
