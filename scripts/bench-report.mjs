#!/usr/bin/env node
/**
 * bench report: the last step of `npm run bench` (scripts/bench.sh). Reads the run JSON files the
 * glass-to-glass rig wrote for ONE batch (runs started at/after --since), prints and writes
 * bench/results/latest.md: per system the medians over its runs, then lanstream / peer ratios next
 * to the targets of the issues. Medians over runs, because ffmpeg/ffplay peers land on a different
 * latency plateau per run (bench README "Caveats"); the run range is shown next to each p50.
 *
 * Serve's own CPU cost comes from the `zcpu` role of the lanstream entries: it prints, once a
 * second, cumulative clock ticks of serve's node process and of its ffmpeg children; the delta over
 * the measurement window gives "serve total / ffmpeg children alone" in the same run.
 *
 *   node scripts/bench-report.mjs --since 20261125-160000 [--until 20261125-163000] [--results bench/results] [--out FILE]
 */
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const CLK_TCK = 100;
const { values: opts } = parseArgs({
  options: {
    since: { type: 'string' },
    until: { type: 'string' },
    results: { type: 'string', default: 'bench/results' },
    config: { type: 'string', default: 'bench/lanstream-systems.json' },
    out: { type: 'string' },
    command: { type: 'string', default: 'npm run bench' },
  },
});
if (!opts.since) {
  process.stderr.write('bench-report: --since <YYYYmmdd-HHMMSS> (the batch stamp printed by scripts/bench.sh) is required\n');
  process.exit(2);
}
const outPath = opts.out ?? path.join(opts.results, 'latest.md');
const config = existsSync(opts.config) ? JSON.parse(readFileSync(opts.config, 'utf8')) : { systems: {} };

// ---------------------------------------------------------------- load
/** @type {Map<string, any[]>} */
const runs = new Map();
const runsDir = path.join(opts.results, 'runs');
for (const sys of existsSync(runsDir) ? readdirSync(runsDir) : []) {
  for (const f of readdirSync(path.join(runsDir, sys))) {
    if (!f.endsWith('.json')) continue;
    let r;
    try {
      // Python's json writes NaN/Infinity (e.g. gain_db of a silent channel), which JSON.parse refuses.
      const text = readFileSync(path.join(runsDir, sys, f), 'utf8').replace(/([:[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '$1null');
      r = JSON.parse(text);
    } catch {
      continue;
    }
    if ((r.started ?? '') < opts.since) continue;
    if (opts.until && (r.started ?? '') > opts.until) continue;
    r._file = path.join('runs', sys, f);
    if (!runs.has(r.system)) runs.set(r.system, []);
    runs.get(r.system).push(r);
  }
}
for (const rs of runs.values()) rs.sort((a, b) => (a.started < b.started ? -1 : 1));
if (runs.size === 0) {
  process.stderr.write(`bench-report: no runs since ${opts.since} under ${runsDir}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------- helpers
const get = (o, ...keys) => keys.reduce((x, k) => (x == null ? undefined : x[k]), o);
function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
function range(xs, nd = 0) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length < 2) return '';
  return `${Math.min(...v).toFixed(nd)}–${Math.max(...v).toFixed(nd)}`;
}
const fmt = (x, nd = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(nd) : '–');
const ok = (r) => !r.error;

/** serve's node process vs its ffmpeg children over the window, from the zcpu role's log tail. */
function serveCpuSplit(r) {
  const tail = get(r, 'log_tails', 'zcpu');
  const [t0, t1] = r.window ?? [];
  if (!tail || t0 === undefined) return undefined;
  const rows = tail
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p[0] === 'cpu' && p.length >= 4)
    .map((p) => ({ t: Number(p[1]), node: Number(p[2]), ff: Number(p[3]) }))
    .filter((x) => x.t >= t0 - 0.6 && x.t <= t1 + 0.6);
  if (rows.length < 3) return undefined;
  const a = rows[0];
  const b = rows[rows.length - 1];
  const s = b.t - a.t;
  if (s <= 0 || b.ff < a.ff || b.node < a.node) return undefined;
  const nodePct = (100 * (b.node - a.node)) / CLK_TCK / s;
  const ffPct = (100 * (b.ff - a.ff)) / CLK_TCK / s;
  return { nodePct, ffPct, ratio: ffPct > 0 ? (nodePct + ffPct) / ffPct : undefined };
}

/**
 * Clicks the rig counts as missing only because they sit at the very end of its recording. The rig
 * (../shared/bench lib/audio.py) admits a click when its ±150 ms echo window fits in the recording,
 * and the echo of a click ~0.2 s before the end is then not found: in batch AC (2026-11-27) every one
 * of 13 "1 of 37 missing" runs missed the last click, at 28.37 s of a recording that ended 0.17–0.22 s
 * later, and every run whose recording went past 28.61 s found it. The click schedule is the same in
 * every run of a batch, so the clicks any run heard (`lag_series` times) give the schedule; a click
 * this run did not hear, later than its last heard one and within EDGE_S of its end, is such an edge.
 */
const EDGE_S = 0.3;
const scheduleTimes = (() => {
  const ts = [];
  for (const rs of runs.values()) for (const r of rs) for (const [t] of get(r, 'audio', 'lag_series') ?? []) ts.push(t);
  ts.sort((x, y) => x - y);
  return ts.filter((t, i) => i === 0 || t - ts[i - 1] > 0.02);
})();
function edgeMisses(r) {
  const missing = get(r, 'audio', 'clicks_missing') ?? 0;
  const heard = (get(r, 'audio', 'lag_series') ?? []).map(([t]) => t);
  const end = get(r, 'audio', 'duration_s');
  if (missing === 0 || heard.length === 0 || typeof end !== 'number') return 0;
  const last = heard[heard.length - 1];
  const atEdge = scheduleTimes.filter((t) => t > last + 0.02 && t < end && t >= end - EDGE_S).length;
  return Math.min(missing, atEdge);
}
/** "lost/total", plus the clicks at the recording's end (edgeMisses) when there are any. */
function clicksText(lost, total, edge) {
  return `${lost}/${total}${edge ? ` (+${edge} at the recording's end)` : ''}`;
}

/** Per-system medians over its successful runs. */
function summarise(sys, rs) {
  const good = rs.filter(ok);
  const edges = good.map(edgeMisses);
  const v = (...k) => good.map((r) => get(r, ...k));
  const split = good.map(serveCpuSplit).filter(Boolean);
  return {
    sys,
    label: get(config, 'systems', sys, 'label') ?? rs[0]?.label ?? sys,
    n: good.length,
    total: rs.length,
    errors: rs.filter((r) => r.error).map((r) => r.error),
    vP50: median(v('video', 'lat_p50_ms')),
    vP50range: range(v('video', 'lat_p50_ms')),
    vP90: median(v('video', 'lat_p90_ms')),
    vP99: median(v('video', 'lat_p99_ms')),
    fps: median(v('video', 'delivered_fps')),
    freeze: median(v('video', 'longest_freeze_ms')),
    firstS: median(v('video', 'time_to_first_frame_s')),
    firstRange: range(v('video', 'time_to_first_frame_s'), 2),
    aP50: median(v('audio', 'lat_p50_ms')),
    aP50range: range(v('audio', 'lat_p50_ms')),
    aP90: median(v('audio', 'lat_p90_ms')),
    edge: edges.reduce((s, e) => s + e, 0),
    missing: good.reduce((s, r, i) => s + (get(r, 'audio', 'clicks_missing') ?? 0) - edges[i], 0),
    clicks: good.reduce((s, r) => s + (get(r, 'audio', 'clicks_total') ?? 0), 0),
    snr: median(v('audio', 'snr_db_p50')),
    skew: median(good.map((r) => r.av_skew_ms)),
    skewRange: range(good.map((r) => r.av_skew_ms)),
    kbps: median(good.map((r) => r.wire_kbps)),
    cpuS: median(v('cpu_pct', 'sender')),
    cpuR: median(v('cpu_pct', 'receiver')),
    other: median(good.map((r) => r.foreign_cpu_pct)),
    otherMax: Math.max(...good.map((r) => r.foreign_cpu_pct ?? 0)),
    nodePct: median(split.map((x) => x.nodePct)),
    ffPct: median(split.map((x) => x.ffPct)),
    cpuRatio: median(split.map((x) => x.ratio)),
    media: rs[0]?.media ?? [],
  };
}

const order = Object.keys(config.systems ?? {});
const systems = [...runs.keys()].sort((a, b) => {
  const ia = order.indexOf(a);
  const ib = order.indexOf(b);
  return (ia < 0 ? 1e9 : ia) - (ib < 0 ? 1e9 : ib) || a.localeCompare(b);
});
const S = Object.fromEntries(systems.map((s) => [s, summarise(s, runs.get(s))]));
const floorP50 = S.floor?.vP50;
const allRuns = [...runs.values()].flat();
const first = allRuns.reduce((a, r) => (r.started < a ? r.started : a), '99999999');
const last = allRuns.reduce((a, r) => (r.started > a ? r.started : a), '');
const anyRun = allRuns.find((r) => r.vars) ?? {};
const stampToText = (s) => s.replace(/^(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)$/, '$1-$2-$3 $4:$5:$6');

// ---------------------------------------------------------------- ratios vs targets
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : undefined);
const verdict = (pass) => (pass === undefined ? '–' : pass ? '**met**' : '**missed**');
const rows = [];
function target(what, value, unit, goal, pass, basis) {
  rows.push(`| ${what} | ${value}${value === '–' ? '' : unit} | ${goal} | ${verdict(pass)} | ${basis} |`);
}
const L = S.lanstream;
const ff = S['ffmpeg-mjpeg-lowlat'];
const gst = S['gst-mjpeg'];
const pac = S['ffmpeg-pcm-pacat-rxlisten'];
for (const [name, s] of [
  ['lanstream', L],
  ['lanstream-video', S['lanstream-video']],
]) {
  if (!s || !ff) continue;
  const r = ratio(s.vP50, ff.vP50);
  target(
    `video p50 ${name} / ffmpeg-mjpeg-lowlat`,
    fmt(r, 2),
    '×',
    '≤ 0.6×',
    r === undefined ? undefined : r <= 0.6,
    `${fmt(s.vP50)} / ${fmt(ff.vP50)} ms (medians over runs)`,
  );
}
for (const single of ['lanstream', 'lanstream-gst']) {
  // Issue 5 fan-out, glass to glass: the same window viewer with 7 headless viewers beside it, one at 1 Mbit/s.
  const fo = S[`${single}-fanout8`];
  const one = S[single];
  const r = ratio(fo?.vP50, one?.vP50);
  if (fo && one)
    target(
      `video p50 ${single}-fanout8 / ${single}`,
      fmt(r, 2),
      '×',
      '≤ 1.1× (issue 5)',
      r === undefined ? undefined : r <= 1.1,
      `${fmt(fo.vP50)} / ${fmt(one.vP50)} ms (medians over runs); fps ${fmt(fo.fps, 1)} / ${fmt(one.fps, 1)}`,
    );
  // The control (all 8 direct) splits that ratio: 7 more viewers on the same cores, and the slow one.
  const direct = S[`${single}-fanout8-direct`];
  if (fo && direct) {
    const rs = ratio(fo.vP50, direct.vP50);
    target(
      `video p50 ${single}-fanout8 / ${single}-fanout8-direct`,
      fmt(rs, 2),
      '×',
      'what the 1 Mbit/s viewer costs the others',
      undefined,
      `${fmt(fo.vP50)} / ${fmt(direct.vP50)} ms; 8 direct viewers / 1: ${fmt(ratio(direct.vP50, one?.vP50), 2)}×`,
    );
  }
}
for (const name of ['lanstream', 'lanstream-gst', 'lanstream-h264', 'lanstream-h264-gst', 'lanstream-video']) {
  const s = S[name];
  if (!s || !gst) continue;
  const r = ratio(s.vP50, gst.vP50);
  target(
    `video p50 ${name} / gst-mjpeg`,
    fmt(r, 2),
    '×',
    '≤ 1.0× (issue 5)',
    r === undefined ? undefined : r <= 1.0,
    `${fmt(s.vP50)} / ${fmt(gst.vP50)} ms (medians over runs; per-run ${s.vP50range || fmt(s.vP50)} / ${gst.vP50range || fmt(gst.vP50)})`,
  );
}
for (const name of ['lanstream', 'lanstream-join5', 'lanstream-gst', 'lanstream-gst-join5', 'lanstream-h264-gst']) {
  const s = S[name];
  if (!s || s.aP50 === undefined) continue;
  target(
    `audio p50 ${name} (issue 5)`,
    fmt(s.aP50),
    ' ms',
    '≤ 40 ms',
    s.aP50 <= 40,
    `run range ${s.aP50range || fmt(s.aP50)} ms; ${clicksText(s.missing, s.clicks, s.edge)} clicks missing`,
  );
}
for (const name of ['lanstream', 'lanstream-gst', 'lanstream-gst-join5', 'lanstream-h264-gst']) {
  const s = S[name];
  if (!s || s.firstS === undefined) continue;
  target(`first picture ${name} (issue 5)`, fmt(s.firstS * 1000), ' ms', '≤ 300 ms', s.firstS <= 0.3, `runs ${s.firstRange || fmt(s.firstS, 2)} s`);
}
for (const name of ['lanstream', 'lanstream-join5', 'lanstream-audio', 'lanstream-insecure', 'lanstream-pacat', 'lanstream-warm']) {
  const s = S[name];
  if (!s || s.aP50 === undefined) continue;
  target(
    `audio p50 ${name}`,
    fmt(s.aP50),
    ' ms',
    '≤ 60 ms',
    s.aP50 <= 60,
    `run range ${s.aP50range || fmt(s.aP50)} ms; ${clicksText(s.missing, s.clicks, s.edge)} clicks missing` +
      (pac ? `; ratio to ffmpeg-pcm-pacat-rxlisten ${fmt(ratio(s.aP50, pac.aP50), 2)}× (${fmt(pac.aP50)} ms)` : ''),
  );
}
for (const name of [
  'lanstream',
  'lanstream-join5',
  'lanstream-gst',
  'lanstream-gst-join5',
  'lanstream-insecure',
  'lanstream-pacat',
  'lanstream-warm',
  'lanstream-nosync',
]) {
  const s = S[name];
  if (!s || s.skew === undefined) continue;
  target(
    `|A/V skew p50| ${name}`,
    fmt(Math.abs(s.skew)),
    ' ms',
    '≤ 40 ms',
    Math.abs(s.skew) <= 40,
    `skew = audio − video p50 = ${fmt(s.skew)} ms (runs ${s.skewRange || fmt(s.skew)})`,
  );
}
for (const name of ['lanstream', 'lanstream-video', 'lanstream-join5', 'lanstream-insecure', 'lanstream-pacat', 'lanstream-warm']) {
  const s = S[name];
  if (!s || s.firstS === undefined) continue;
  target(
    `first picture ${name}`,
    fmt(s.firstS * 1000),
    ' ms',
    '≤ 500 ms',
    s.firstS <= 0.5,
    `watch start → first decoded barcode on the viewer display (runs ${s.firstRange || fmt(s.firstS, 2)} s)`,
  );
}
for (const name of ['lanstream', 'lanstream-video', 'lanstream-audio', 'lanstream-insecure']) {
  const s = S[name];
  if (!s || s.cpuRatio === undefined) continue;
  target(
    `serve CPU / its ffmpeg children, ${name}`,
    fmt(s.cpuRatio, 2),
    '×',
    '≤ 1.2×',
    s.cpuRatio <= 1.2,
    `node ${fmt(s.nodePct, 1)} % + ffmpeg ${fmt(s.ffPct, 1)} % of a core (same run, zcpu sampler)`,
  );
}
const cmp = [];
function cmpRow(what, a, b, an, bn, unit, nd = 0) {
  if (!a || !b) return;
  const av = a[an];
  const bv = b[bn];
  cmp.push(`| ${what} | ${fmt(av, nd)} ${unit} | ${fmt(bv, nd)} ${unit} | ${fmt(ratio(av, bv), 2)}× |`);
}
cmpRow('video p50: lanstream vs ffmpeg-mjpeg-lowlat', L, ff, 'vP50', 'vP50', 'ms');
cmpRow('video p50: lanstream-video vs ffmpeg-mjpeg-lowlat', S['lanstream-video'], ff, 'vP50', 'vP50', 'ms');
cmpRow('video p50: lanstream vs ffmpeg-mjpeg-lowlat-1thread', L, S['ffmpeg-mjpeg-lowlat-1thread'], 'vP50', 'vP50', 'ms');
cmpRow('video p50: lanstream vs gst-mjpeg', L, gst, 'vP50', 'vP50', 'ms');
cmpRow('video p50: lanstream vs lanstream-nowake (ffplay-wake off)', L, S['lanstream-nowake'], 'vP50', 'vP50', 'ms');
cmpRow('video p99: lanstream vs lanstream-nowake (ffplay-wake off)', L, S['lanstream-nowake'], 'vP99', 'vP99', 'ms');
cmpRow('video p50: lanstream vs ffmpeg-av-nut-lowlat-rxlisten (A/V)', L, S['ffmpeg-av-nut-lowlat-rxlisten'], 'vP50', 'vP50', 'ms');
cmpRow('audio p50: lanstream vs ffmpeg-pcm-pacat-rxlisten', L, pac, 'aP50', 'aP50', 'ms');
cmpRow('audio p50: lanstream-audio vs ffmpeg-pcm-pacat-rxlisten', S['lanstream-audio'], pac, 'aP50', 'aP50', 'ms');
cmpRow('audio p50: lanstream-pacat vs ffmpeg-pcm-pacat-rxlisten', S['lanstream-pacat'], pac, 'aP50', 'aP50', 'ms');
cmpRow('audio p50: lanstream-join5 vs ffmpeg-pcm-pacat-join5', S['lanstream-join5'], S['ffmpeg-pcm-pacat-join5'], 'aP50', 'aP50', 'ms');
cmpRow('audio p50: lanstream vs ffmpeg-av-nut-lowlat-rxlisten (A/V)', L, S['ffmpeg-av-nut-lowlat-rxlisten'], 'aP50', 'aP50', 'ms');
cmpRow('sender CPU: lanstream-video vs ffmpeg-mjpeg-lowlat', S['lanstream-video'], ff, 'cpuS', 'cpuS', '%');
cmpRow('receiver CPU: lanstream-video vs ffmpeg-mjpeg-lowlat', S['lanstream-video'], ff, 'cpuR', 'cpuR', '%');
cmpRow('sender CPU: lanstream vs ffmpeg-av-nut-lowlat-rxlisten', L, S['ffmpeg-av-nut-lowlat-rxlisten'], 'cpuS', 'cpuS', '%');
cmpRow('receiver CPU: lanstream vs ffmpeg-av-nut-lowlat-rxlisten', L, S['ffmpeg-av-nut-lowlat-rxlisten'], 'cpuR', 'cpuR', '%');
cmpRow('sender CPU: lanstream vs lanstream-insecure (TLS cost)', L, S['lanstream-insecure'], 'cpuS', 'cpuS', '%');
cmpRow('receiver CPU: lanstream vs lanstream-insecure (TLS cost)', L, S['lanstream-insecure'], 'cpuR', 'cpuR', '%');
cmpRow('wire: lanstream-video vs ffmpeg-mjpeg-lowlat', S['lanstream-video'], ff, 'kbps', 'kbps', 'kbit/s');
cmpRow('wire: lanstream vs ffmpeg-av-nut-lowlat-rxlisten', L, S['ffmpeg-av-nut-lowlat-rxlisten'], 'kbps', 'kbps', 'kbit/s');
cmpRow('wire: lanstream-video vs gst-mjpeg', S['lanstream-video'], gst, 'kbps', 'kbps', 'kbit/s');

// ---------------------------------------------------------------- markdown
const out = [];
out.push('# lanstream benchmark: latest batch\n');
out.push(
  `Batch ${stampToText(first)} … ${stampToText(last)} (runs started in this window, stamps ≥ \`${opts.since}\`${opts.until ? ` and ≤ \`${opts.until}\`` : ''}), ` +
    `command \`${opts.command}\`; written by \`scripts/bench-report.mjs\`. Rig: \`../shared/bench\` ` +
    `(camera ${get(anyRun, 'vars', 'width')}x${get(anyRun, 'vars', 'height')} @ ${get(anyRun, 'vars', 'fps')} fps from Xvfb, viewer probed at ` +
    `${anyRun.probe_fps ?? 60} fps, audio clicks through a private PulseAudio, ${anyRun.seconds ?? '?'} s window after ${anyRun.warmup ?? '?'} s warm-up, ` +
    `everything on 127.0.0.1, 2 shared cores). Systems ran interleaved (lanstream, peer, lanstream, …) in every round.\n`,
);
if (floorP50 !== undefined)
  out.push(`Rig floor (probe grabs the camera display directly): video p50 ${fmt(floorP50, 1)} ms — part of every video number below.\n`);
out.push(
  'All values are medians over the runs of the batch; "range" is min–max of the per-run p50. CPU in % of one core ' +
    '(whole process tree of the role). "other" = CPU used by other tenants of the machine during the run (max over runs in brackets). ' +
    '"missing clicks": not heard / in the window; "+N at the recording\'s end" are clicks the rig admitted within 0.3 s of the end ' +
    'of its recording, after the last one it heard, whose echo it then did not find (an edge of its analysis, not sound lost).\n',
);
out.push(
  '| system | runs | video p50 (range) / p90 / p99 ms | fps | longest freeze ms | first picture s | audio p50 (range) / p90 ms | missing clicks | A/V skew ms | kbit/s | CPU sender / receiver % | other % |',
);
out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const s of Object.values(S)) {
  const video = s.vP50 === undefined ? '–' : `${fmt(s.vP50)}${s.vP50range ? ` (${s.vP50range})` : ''} / ${fmt(s.vP90)} / ${fmt(s.vP99)}`;
  const audio = s.aP50 === undefined ? '–' : `${fmt(s.aP50)}${s.aP50range ? ` (${s.aP50range})` : ''} / ${fmt(s.aP90)}`;
  const miss = s.clicks ? clicksText(s.missing, s.clicks, s.edge) : '–';
  out.push(
    `| \`${s.sys}\` | ${s.n}/${s.total} | ${video} | ${fmt(s.fps, 1)} | ${fmt(s.freeze)} | ${fmt(s.firstS, 2)} | ${audio} | ${miss} | ${fmt(s.skew)} | ` +
      `${fmt(s.kbps)} | ${fmt(s.cpuS)} / ${fmt(s.cpuR)} | ${fmt(s.other)} (${fmt(s.otherMax)}) |`,
  );
}
out.push('');
out.push('## Targets\n');
out.push('| target | measured | goal | verdict | basis |');
out.push('|---|---|---|---|---|');
out.push(...rows);
out.push('');
out.push('## lanstream / peer ratios\n');
out.push('| comparison | lanstream | peer | ratio |');
out.push('|---|---|---|---|');
out.push(...cmp);
out.push('');
out.push('## Systems\n');
for (const s of Object.values(S)) {
  out.push(`* \`${s.sys}\`: ${s.label}${s.errors.length ? ` — **errors**: ${s.errors.join('; ')}` : ''}`);
}
out.push('');
out.push('## Runs\n');
out.push('| file | video p50/p90/p99 | fps | first s | audio p50/p90 | missing | skew | kbit/s | CPU s/r | serve node + ffmpeg % | other % | error |');
out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of allRuns.sort((a, b) => (a.started < b.started ? -1 : 1))) {
  const v = r.video ?? {};
  const a = r.audio ?? {};
  const sp = serveCpuSplit(r);
  const edge = edgeMisses(r);
  out.push(
    `| \`${r._file}\` | ${v.lat_p50_ms === undefined ? '–' : `${fmt(v.lat_p50_ms)}/${fmt(v.lat_p90_ms)}/${fmt(v.lat_p99_ms)}`} | ${fmt(v.delivered_fps, 1)} | ` +
      `${fmt(v.time_to_first_frame_s, 2)} | ${a.lat_p50_ms === undefined ? '–' : `${fmt(a.lat_p50_ms)}/${fmt(a.lat_p90_ms)}`} | ` +
      `${a.clicks_total ? clicksText(a.clicks_missing - edge, a.clicks_total, edge) : '–'} | ${fmt(r.av_skew_ms)} | ${fmt(r.wire_kbps)} | ` +
      `${fmt(get(r, 'cpu_pct', 'sender'))}/${fmt(get(r, 'cpu_pct', 'receiver'))} | ${sp ? `${fmt(sp.nodePct, 1)} + ${fmt(sp.ffPct, 1)}` : '–'} | ` +
      `${fmt(r.foreign_cpu_pct)} | ${r.error ?? v.error ?? a.error ?? ''} |`,
  );
}
out.push('');
const md = out.join('\n');
writeFileSync(outPath, md);
process.stdout.write(md);
process.stderr.write(`bench-report: wrote ${outPath}\n`);
