/**
 * Who gives way when too many connections are still in a handshake: shared by the TLS layer
 * (Listener, sockets that have not finished TLS) and the lanstream layer (serve, sessions that have
 * not proved the key). A newcomer is never refused; instead the oldest unfinished handshake of its
 * own address (beyond `perAddress`) or, beyond `total`, of the address holding the most slots goes.
 * An honest handshake takes milliseconds, so the oldest one is almost always a stalled one, and a
 * flood from one machine only ever evicts its own connections.
 */

export interface HandshakeLimits {
  /** Unfinished handshakes in all. */
  total: number;
  /** Unfinished handshakes from one address. */
  perAddress: number;
}

export interface PendingHandshake {
  readonly address: string;
  /** When the connection was accepted (ms, any monotonic-enough clock). */
  readonly sinceMs: number;
}

/** The handshake to drop before admitting one more from `address`, or undefined if there is room. */
export function handshakeToEvict<T extends PendingHandshake>(pending: Iterable<T>, address: string, limits: HandshakeLimits): T | undefined {
  const byAddress = new Map<string, T[]>();
  let count = 0;
  for (const p of pending) {
    count++;
    const list = byAddress.get(p.address);
    if (list) list.push(p);
    else byAddress.set(p.address, [p]);
  }
  const mine = byAddress.get(address) ?? [];
  if (mine.length >= limits.perAddress) return oldest(mine);
  if (count < limits.total) return undefined;
  let busiest: T[] = [];
  for (const list of byAddress.values()) if (list.length > busiest.length) busiest = list;
  return oldest(busiest);
}

function oldest<T extends PendingHandshake>(list: T[]): T | undefined {
  return list.reduce<T | undefined>((a, b) => (a === undefined || b.sinceMs < a.sinceMs ? b : a), undefined);
}
