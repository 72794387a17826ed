/**
 * PullPlayout reports each gap (underrun) with the wall-clock context on both sides of the jitter
 * buffer: since the device's last pull and since the last packet. Real time here (sleeps), so only
 * lower bounds are asserted.
 */
import t from 'tap';
import { PullPlayout, logGap, type PlayoutGap } from '../../src/client/sinks/pull-playout.js';
import { captureLogger } from '../helpers/log-capture.js';

const RATE = 48_000;
const BLOCK = 480; // 10 ms mono
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a packet that does not come: one gap, reported with how long the input has been silent', async (t) => {
  const gaps: PlayoutGap[] = [];
  const playout = new PullPlayout(100, (gap) => gaps.push(gap));
  playout.open({ codec: 'pcm_s16le', sampleRateHz: RATE, channels: 1, packetMs: 10 }, 20);
  const packet = Buffer.alloc(BLOCK * 2, 1);
  const out = new Int16Array(BLOCK);
  // Prime (target 20 ms + one block), then 1.5 s of device time in step: past the start-up grace.
  for (let i = 0; i < 3; i++) playout.push(packet, false);
  for (let i = 0; i < 150; i++) {
    playout.push(packet, false);
    playout.pull(out);
  }
  t.same(gaps, [], 'no gap while packets keep pace with the pulls');

  await sleep(40); // the input stops
  for (let i = 0; i < 6 && gaps.length === 0; i++) playout.pull(out);
  t.equal(gaps.length, 1, 'the device ran dry once');
  const gap = gaps[0]!;
  // ≥ 39, not 40: a 40 ms timer can fire up to ~1 ms early against performance.now().
  t.ok(gap.sinceLastPushMs >= 39, `since the last packet: ${gap.sinceLastPushMs.toFixed(1)} ms (slept 40 ms)`);
  t.ok(gap.levelMs < gap.blockMs, `the buffer held ${gap.levelMs.toFixed(1)} ms for a ${gap.blockMs} ms block`);
  t.equal(gap.blockMs, 10);
  t.ok(gap.targetMs >= 20, `target ${gap.targetMs} ms`);
  t.ok(gap.prevPushGapMs < 40, `the packets before came at pace (${gap.prevPushGapMs.toFixed(1)} ms apart)`);
  t.ok(Number.isFinite(gap.pullGapMs) && Number.isFinite(gap.prevPullGapMs), 'pull gaps measured');
});

t.test('logGap: one debug line per gap, every figure to 0.1 ms', async (t) => {
  const log = captureLogger('debug');
  logGap(log.logger, { levelMs: 6.94, blockMs: 10, targetMs: 20, pullGapMs: 3.456, prevPullGapMs: 16.44, sinceLastPushMs: 25.01, prevPushGapMs: 0.24 });
  const lines = log.matching('audio gap');
  t.equal(lines.length, 1);
  t.match(lines[0], { level: 20, levelMs: 6.9, blockMs: 10, targetMs: 20, pullGapMs: 3.5, prevPullGapMs: 16.4, sinceLastPushMs: 25, prevPushGapMs: 0.2 });
  const quiet = captureLogger('info');
  logGap(quiet.logger, { levelMs: 1, blockMs: 10, targetMs: 20, pullGapMs: 10, prevPullGapMs: 10, sinceLastPushMs: 30, prevPushGapMs: 5 });
  t.same(quiet.lines, [], 'nothing at the default levels');
});
