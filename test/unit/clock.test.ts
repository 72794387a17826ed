import t from 'tap';
import { nowUs } from '../../src/shared/clock.js';

t.test('nowUs is monotonic and in microseconds', async (t) => {
  const a = nowUs();
  await new Promise((r) => setTimeout(r, 20));
  const b = nowUs();
  t.ok(b - a >= 19_000, `advanced ${b - a} µs over a 20 ms sleep`);
  t.ok(b - a < 1_000_000, 'not in nanoseconds');
});
