import t from 'tap';
import { AuthLimiter } from '../../src/server/auth-limiter.js';

t.test('the first two wrong keys are free; the third blocks for 1 s, then 2 s, 4 s … capped at 60 s', async (t) => {
  const limiter = new AuthLimiter();
  const a = '192.0.2.10';
  let now = 1_000_000;
  limiter.recordFailure(a, now);
  limiter.recordFailure(a, now);
  t.same(limiter.isBlocked(a, now), { blocked: false, retryAfterMs: 0 }, 'two failures do not block');
  limiter.recordFailure(a, now);
  t.same(limiter.isBlocked(a, now), { blocked: true, retryAfterMs: 1_000 });
  t.same(limiter.isBlocked(a, now + 999), { blocked: true, retryAfterMs: 1 });
  t.same(limiter.isBlocked(a, now + 1_000), { blocked: false, retryAfterMs: 0 }, 'free again after the block');
  const seen: number[] = [];
  for (let i = 0; i < 9; i++) {
    now += 100_000; // well after every block, well inside the window
    limiter.recordFailure(a, now);
    seen.push(limiter.isBlocked(a, now).retryAfterMs);
  }
  t.same(seen, [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
});

t.test('addresses are independent; IPv4-mapped IPv6 is the same address as IPv4', async (t) => {
  const limiter = new AuthLimiter({ maxFailures: 1 });
  limiter.recordFailure('::ffff:192.0.2.1', 0);
  t.ok(limiter.isBlocked('192.0.2.1', 0).blocked);
  t.notOk(limiter.isBlocked('192.0.2.2', 0).blocked);
  t.notOk(limiter.isBlocked('fd00::1', 0).blocked);
  limiter.recordFailure('FD00::1', 0);
  t.ok(limiter.isBlocked('fd00::1', 0).blocked, 'IPv6 case-insensitive');
  t.notOk(limiter.isBlocked('fd00::2', 0).blocked, 'a neighbour in the same /64 is not punished');
});

t.test('a success forgets the failures', async (t) => {
  const limiter = new AuthLimiter();
  limiter.recordFailure('a', 0);
  limiter.recordFailure('a', 0);
  limiter.recordSuccess('a');
  limiter.recordFailure('a', 0);
  t.notOk(limiter.isBlocked('a', 0).blocked, 'count restarted');
  t.equal(limiter.size, 1);
  limiter.recordSuccess('a');
  t.equal(limiter.size, 0);
});

t.test('failures older than the window are forgotten', async (t) => {
  const limiter = new AuthLimiter({ windowMs: 10_000 });
  limiter.recordFailure('a', 0);
  limiter.recordFailure('a', 5_000);
  limiter.recordFailure('a', 15_001); // 10 001 ms after the last one
  t.notOk(limiter.isBlocked('a', 15_001).blocked);
  limiter.recordFailure('a', 16_000);
  t.notOk(limiter.isBlocked('a', 16_000).blocked, 'only two in the new window');
  limiter.recordFailure('a', 17_000);
  t.ok(limiter.isBlocked('a', 17_000).blocked);
});

t.test('memory is bounded: the oldest address is evicted', async (t) => {
  const limiter = new AuthLimiter({ maxEntries: 100, maxFailures: 1 });
  for (let i = 0; i < 1_000; i++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`, i);
  t.equal(limiter.size, 100);
  t.notOk(limiter.isBlocked('10.0.0.0', 1_000).blocked, 'first address evicted');
  t.ok(limiter.isBlocked('10.0.3.231', 1_000).blocked, 'the latest (i=999) is kept');
  // Touching an old entry makes it recent again.
  const l2 = new AuthLimiter({ maxEntries: 2, maxFailures: 1, baseBlockMs: 1_000_000, maxBlockMs: 1_000_000 });
  l2.recordFailure('x', 0);
  l2.recordFailure('y', 1);
  l2.recordFailure('x', 2);
  l2.recordFailure('z', 3);
  t.ok(l2.isBlocked('x', 4).blocked, 'x was refreshed, y was evicted instead');
  t.notOk(l2.isBlocked('y', 4).blocked);
});

t.test('options are validated', async (t) => {
  t.throws(() => new AuthLimiter({ maxFailures: 0 }), RangeError);
  t.throws(() => new AuthLimiter({ maxEntries: 1.5 }), RangeError);
});
