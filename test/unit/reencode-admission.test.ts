/**
 * ReencodeAdmission: one viewer starts re-encoding per 2 s at most, none while serve's own CPU is over
 * its budget; the CPU is this process's real CPU time (process.cpuUsage) unless a test injects it.
 */
import t from 'tap';
import { ReencodeAdmission, SPACING_US } from '../../src/server/reencode-admission.js';

t.test('one start per 2 s, whatever the CPU', async (t) => {
  const a = new ReencodeAdmission({ cpuBudgetCores: 0.5, cpuTimeUs: () => 0 });
  t.same(a.tryStart(1_000_000), { ok: true }, 'the first viewer starts');
  const second = a.tryStart(1_500_000);
  t.match(second, { ok: false, why: /less than 2 s ago/ }, 'a second in the same 2 s waits');
  t.same(a.tryStart(1_000_000 + SPACING_US), { ok: true }, '2 s later it may');
});

t.test('no start while serve used more than its budget over the last window', async (t) => {
  let cpuUs = 0;
  const a = new ReencodeAdmission({ cpuBudgetCores: 0.5, cpuTimeUs: () => cpuUs });
  a.sample(0);
  cpuUs = 1_600_000; // 0.8 of a core over 2 s
  a.sample(2_000_000);
  t.equal(a.recentCores, 0.8);
  t.match(a.tryStart(2_100_000), { ok: false, why: /serve used 80 % of a core \(budget 50 %\)/ });
  cpuUs += 400_000; // 0.2 of a core over the next 2 s
  a.sample(4_000_000);
  t.same(a.tryStart(4_000_000), { ok: true }, 'under the budget again: allowed');
});

t.test('8 sessions sampling on each heartbeat read the CPU clock once per window, not once per call', async (t) => {
  let reads = 0;
  const a = new ReencodeAdmission({ cpuBudgetCores: 0.5, cpuTimeUs: () => (reads++, 0) });
  // 8 heartbeats every 500 ms for 6 s: 96 calls, windows closing at 2, 4 and 6 s.
  for (let us = 0; us <= 6_000_000; us += 500_000) for (let s = 0; s < 8; s++) a.sample(us + s * 1000);
  t.equal(reads, 4, 'one read to open the first window, one to close each of the 3 windows');
  t.equal(a.recentCores, 0);
});

t.test("the default budget is a quarter of the cores; the CPU measured is this process's own", async (t) => {
  const a = new ReencodeAdmission({ cpuBudgetCores: 0.1 });
  const { availableParallelism } = await import('node:os');
  t.equal(new ReencodeAdmission().budgetCores, availableParallelism() / 4);
  const startUs = performance.now() * 1000;
  const cpu0 = process.cpuUsage();
  a.sample(startUs);
  // Busy on this thread for 2.1 s. What share of a core that is depends on what else runs on the
  // machine, so the reading is compared with process.cpuUsage() over the same time, not with 1.
  const until = performance.now() + 2100;
  while (performance.now() < until);
  const endUs = performance.now() * 1000;
  a.sample(endUs);
  const cpu = process.cpuUsage(cpu0);
  const expected = (cpu.user + cpu.system) / (endUs - startUs);
  t.ok(
    a.recentCores !== null && Math.abs(a.recentCores - expected) < 0.1,
    `a busy loop reads as ${a.recentCores?.toFixed(2)} of a core; process.cpuUsage() says ${expected.toFixed(2)}`,
  );
  t.ok(expected > 0.2, `the loop got the CPU (${expected.toFixed(2)} of a core)`);
  t.match(a.tryStart(performance.now() * 1000), { ok: false, why: /budget 10 %/ });
});
