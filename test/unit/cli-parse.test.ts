import t from 'tap';
import { loggerOptions } from '../../src/cli/common.js';
import { parseDurationMs, parseFps, parseIntIn, parsePort, parsePosition, parseSize, parseChoice } from '../../src/cli/parse.js';

t.test('valid values', async (t) => {
  t.equal(parsePort('443'), 443);
  t.same(parseSize('1280x720'), { width: 1280, height: 720 });
  t.same(parseSize('641x361', '--snapshot-size', { even: false }), { width: 641, height: 361 }, 'a picture may have odd sides');
  t.throws(() => parseSize('8x8', '--snapshot-size', { even: false }), /--snapshot-size: 8x8 \(expected sizes between 16x16/);
  t.equal(parseDurationMs('90s', '--duration'), 90_000);
  t.equal(parseDurationMs('1h', '--duration'), 3_600_000);
  t.equal(parseDurationMs('500ms', '--duration'), 500);
  t.equal(parseDurationMs('2', '--duration'), 2000, 'a bare number is seconds');
  t.equal(parseDurationMs('1.5m', '--duration'), 90_000);
  t.equal(parseDurationMs('1d', '--duration'), 86_400_000, 'days, up to the year the message promises');
  t.same(parsePosition('0,0'), { x: 0, y: 0 });
  t.equal(parseIntIn('--volume', '0', 0, 100), 0);
  t.equal(parseFps('30'), 30);
  t.equal(parseFps('29.97'), 29.97, 'NTSC rates (cameras that offer no 30)');
  t.equal(parseFps(' 59.94 '), 59.94);
  t.equal(parseChoice('--audio-output', 'pacat', ['auto', 'pacat'] as const), 'pacat');
});

t.test('bad values name the flag, the value and what was expected', async (t) => {
  const bad: [() => unknown, RegExp][] = [
    [() => parsePort('70000'), /^Invalid --port: 70000 \(expected 1–65535\)$/],
    [() => parsePort('0'), /--port: 0/],
    [() => parsePort('44x'), /--port: 44x \(expected an integer/],
    [() => parseSize('12x'), /--size: 12x \(expected WIDTHxHEIGHT/],
    [() => parseSize('1281x720'), /even sizes/],
    [() => parseDurationMs('soon', '--duration'), /--duration: soon/],
    [() => parseDurationMs('0s', '--duration'), /--duration: 0s/],
    [() => parseDurationMs('400d', '--duration'), /--duration: 400d \(expected a duration between 1 ms and a year\)/],
    [() => loggerOptions({ logFile: '/nonexistent-lanstream-dir/x.log' }), /--log-file: .*\/nonexistent-lanstream-dir does not exist/],
    [() => loggerOptions({ logFile: '/tmp' }), /--log-file: \/tmp \(expected a file, not a directory\)/],
    [() => parsePosition('10', '--window-position'), /--window-position: 10/],
    [() => parseIntIn('--volume', '101', 0, 100), /--volume: 101 \(expected 0–100\)/],
    [() => parseFps('-1'), /--fps: -1/],
    [() => parseFps('0.5'), /--fps: 0\.5 \(expected 1–240\)/],
    [() => parseFps('241'), /--fps: 241/],
    [() => parseFps('29.9701'), /--fps: 29\.9701 \(expected frames per second 1–240, e\.g\. 30 or 29\.97\)/],
    [() => parseFps('30000/1001'), /--fps: 30000\/1001/],
    [() => parseChoice('--audio-output', 'alsa', ['auto', 'pacat'] as const), /one of auto, pacat/],
  ];
  for (const [fn, re] of bad) t.throws(fn, { code: 'LS_ERR_USAGE', message: re });
});
