/**
 * scripts/bench-report.mjs on hand-made rig runs: the medians, ranges, the clicks at the recording's
 * end, serve's CPU split and the verdicts it writes into the README's tables come from these rules,
 * so each is checked against a value worked out by hand here, not against an earlier report.
 */
import t from 'tap';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const script = fileURLToPath(new URL('../../scripts/bench-report.mjs', import.meta.url));

interface Run {
  system: string;
  started: string;
  [key: string]: unknown;
}

/** A results dir with these runs in runs/<system>/<n>.json; `raw` replaces a run's JSON text. */
function resultsDir(teardown: (fn: () => void) => void, runs: (Run | { system: string; raw: string })[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'lanstream-bench-report-'));
  teardown(() => rmSync(dir, { recursive: true, force: true }));
  runs.forEach((r, i) => {
    mkdirSync(path.join(dir, 'runs', r.system), { recursive: true });
    writeFileSync(path.join(dir, 'runs', r.system, `${i}.json`), 'raw' in r && typeof r.raw === 'string' ? r.raw : JSON.stringify(r));
  });
  return dir;
}

async function report(dir: string, ...args: string[]) {
  const out = path.join(dir, 'out.md');
  const res = await execa('node', [script, '--results', dir, '--config', path.join(dir, 'none.json'), '--out', out, ...args], { reject: false });
  return { ...res, md: res.exitCode === 0 ? readFileSync(out, 'utf8') : '' };
}

/** The markdown row whose first cell is `first`, split into its cells. */
function row(md: string, first: string): string[] {
  const line = md.split('\n').find((l) => l.startsWith(`| ${first} |`));
  if (!line) throw new Error(`no row "${first}" in:\n${md}`);
  return line.split(' | ').map((c) => c.replace(/^\| | \|$/g, ''));
}

/** cpu <t> <node ticks> <ffmpeg ticks> once a second: node 6 %, ffmpeg 20 % of a core (ticks are 1/100 s). */
const zcpu = Array.from({ length: 12 }, (_, s) => `cpu ${s} ${1000 + 6 * s} ${5000 + 20 * s}`).join('\n');

const click = (times: number[]) => times.map((tS) => [tS, 40]);

t.test('medians over runs, per-run ranges, the clicks at the recording end and serve CPU', async (t) => {
  const dir = resultsDir(
    (fn) => t.teardown(fn),
    [
      // Before --since: wild values that must not count.
      { system: 'lanstream', started: '20261127-100000', video: { lat_p50_ms: 900 }, audio: { lat_p50_ms: 900 } },
      {
        system: 'lanstream',
        started: '20261127-120001',
        window: [1, 9],
        log_tails: { zcpu },
        video: { lat_p50_ms: 30, lat_p90_ms: 35, lat_p99_ms: 50, delivered_fps: 30, time_to_first_frame_s: 0.2 },
        // heard every click of the schedule 1, 2, 3 s
        audio: { lat_p50_ms: 40, lat_p90_ms: 45, clicks_total: 3, clicks_missing: 0, duration_s: 3.6, lag_series: click([1, 2, 3]) },
        av_skew_ms: 10,
      },
      {
        system: 'lanstream',
        started: '20261127-120101',
        video: { lat_p50_ms: 20, lat_p90_ms: 25, lat_p99_ms: 40, delivered_fps: 29, time_to_first_frame_s: 0.4 },
        // missed the click at 3 s, 0.1 s before its recording ended, after the last one it heard: an edge, not lost
        audio: { lat_p50_ms: 44, lat_p90_ms: 50, clicks_total: 3, clicks_missing: 1, duration_s: 3.1, lag_series: click([1, 2]) },
        av_skew_ms: 20,
      },
      {
        system: 'lanstream',
        started: '20261127-120201',
        video: { lat_p50_ms: 40, lat_p90_ms: 45, lat_p99_ms: 60, delivered_fps: 31, time_to_first_frame_s: 0.3 },
        // missed the click at 2 s, in the middle: lost
        audio: { lat_p50_ms: 41, lat_p90_ms: 48, clicks_total: 3, clicks_missing: 1, duration_s: 3.6, lag_series: click([1, 3]) },
        av_skew_ms: 30,
      },
      // A failed run: counted in "runs", not in any median.
      { system: 'lanstream', started: '20261127-120301', error: 'viewer died', video: { lat_p50_ms: 500 } },
      // Python's json writes NaN; the run still counts.
      {
        system: 'gst-mjpeg',
        raw: JSON.stringify({ system: 'gst-mjpeg', started: '20261127-120030', video: { lat_p50_ms: 25, gain: 1 } }).replace('"gain":1', '"gain":NaN'),
      },
      { system: 'gst-mjpeg', started: '20261127-120130', video: { lat_p50_ms: 35 } },
    ],
  );
  const { exitCode, md, stderr } = await report(dir, '--since', '20261127-120000');
  t.equal(exitCode, 0, stderr);

  const l = row(md, '`lanstream`');
  t.equal(l[1], '3/4', 'three good runs of four; the one before --since is not in the batch');
  t.equal(l[2], '30 (20–40) / 35 / 50', 'video p50 median and per-run range, p90, p99 medians');
  t.equal(l[5], '0.30', 'first picture: median of 0.2, 0.4, 0.3 s');
  t.equal(l[6], '41 (40–44) / 48', 'audio p50 median and range, p90 median');
  t.equal(l[7], "1/9 (+1 at the recording's end)", 'one click lost in the middle, one at the recording end');
  t.equal(l[8], '20', 'A/V skew median');
  t.equal(row(md, '`gst-mjpeg`')[2], '30 (25–35) / – / –', 'the NaN run is read; median of 25 and 35');

  t.match(row(md, 'video p50 lanstream / gst-mjpeg'), ['video p50 lanstream / gst-mjpeg', '1.00×', '≤ 1.0× (issue 5)', '**met**']);
  t.match(row(md, 'audio p50 lanstream (issue 5)'), ['audio p50 lanstream (issue 5)', '41 ms', '≤ 40 ms', '**missed**']);
  t.match(row(md, 'serve CPU / its ffmpeg children, lanstream'), [
    'serve CPU / its ffmpeg children, lanstream',
    '1.30×',
    '≤ 1.2×',
    '**missed**',
    'node 6.0 % + ffmpeg 20.0 % of a core (same run, zcpu sampler)',
  ]);
  const perRun = (stamp: string) => row(md, `\`${path.join('runs', 'lanstream', `${stamp}.json`)}\``);
  t.equal(perRun('2')[5], "0/3 (+1 at the recording's end)", 'the per-run table says the same of the edge run');
  t.equal(perRun('3')[5], '1/3', '… and of the run that lost one');
  t.equal(perRun('1')[9], '6.0 + 20.0', 'serve node + ffmpeg % of the run with a zcpu tail');
  t.equal(perRun('4')[11], 'viewer died', 'the failed run is listed with its error');
});

t.test('--until ends the batch; a click missed 0.4 s before the end is lost, not an edge', async (t) => {
  const dir = resultsDir(
    (fn) => t.teardown(fn),
    [
      {
        system: 'lanstream',
        started: '20261127-120000',
        audio: { lat_p50_ms: 30, clicks_total: 3, clicks_missing: 0, duration_s: 3.6, lag_series: click([1, 2, 3]) },
      },
      {
        system: 'lanstream',
        started: '20261127-120100',
        audio: { lat_p50_ms: 39, clicks_total: 3, clicks_missing: 1, duration_s: 3.4, lag_series: click([1, 2]) },
      },
      { system: 'lanstream', started: '20261127-130000', audio: { lat_p50_ms: 99 } },
    ],
  );
  const { exitCode, md } = await report(dir, '--since', '20261127-120000', '--until', '20261127-125959');
  t.equal(exitCode, 0);
  const l = row(md, '`lanstream`');
  t.equal(l[1], '2/2');
  t.equal(l[6], '35 (30–39) / –', 'median of 30 and 39 is 34.5, printed as 35; the later run left out');
  t.equal(l[7], '1/6', '0.4 s before the end is more than the 0.3 s edge');
  t.match(row(md, 'audio p50 lanstream (issue 5)'), ['audio p50 lanstream (issue 5)', '35 ms', '≤ 40 ms', '**met**']);
});

t.test('usage and empty batches get an exit code a script can tell apart', async (t) => {
  const dir = resultsDir((fn) => t.teardown(fn), [{ system: 'lanstream', started: '20261127-100000', video: { lat_p50_ms: 30 } }]);
  const noSince = await report(dir);
  t.equal(noSince.exitCode, 2, 'no --since: usage error');
  t.match(noSince.stderr, /--since/);
  const none = await report(dir, '--since', '20261127-120000');
  t.equal(none.exitCode, 1, 'no runs in the batch');
  t.match(none.stderr, /no runs since 20261127-120000/);
});
