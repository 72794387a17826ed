/**
 * The overlay filter as ffplay gets it, run through real FFmpeg (ffmpeg's drawtext is the same
 * libavfilter as ffplay's): with the font file named, drawtext never consults fontconfig, which on
 * a window's first frame cost ~7 ms (overlay.ts OVERLAY_FONT_FILES). Fontconfig is pointed at a
 * missing configuration, so any use of it says "Fontconfig error" on stderr; the control, the same
 * filter without a font file, must say it, or this test could not tell. Also: paths with the
 * characters FFmpeg's filter syntax treats specially (every Windows temp path has 'C:\') are escaped
 * (overlay.ts filterValue).
 */
import t from 'tap';
import { execa } from 'execa';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OverlayText, overlayFontFile } from '../../src/client/overlay.js';
import { hasCommand } from '../helpers/process.js';

const font = overlayFontFile();

async function drawOnce(filter: string): Promise<{ exitCode: number | undefined; stderr: string }> {
  const r = await execa(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30',
      '-frames:v',
      '2',
      '-vf',
      `format=bgra,${filter}`,
      '-f',
      'null',
      '-',
    ],
    { env: { FONTCONFIG_FILE: '/nonexistent/lanstream-test/fonts.conf' }, reject: false, timeout: 20_000 },
  );
  return { exitCode: r.exitCode, stderr: r.stderr };
}

t.test(
  'with the font file named, drawtext draws without fontconfig',
  { skip: !hasCommand('ffmpeg') ? 'no ffmpeg' : !font ? 'none of the usual font files here (the CI installs fonts-dejavu-core)' : false },
  async (t) => {
    const named = new OverlayText();
    const control = new OverlayText({ fontFile: null });
    t.teardown(() => [named, control].forEach((o) => o.close()));
    for (const o of [named, control]) writeFileSync(o.file, 'RECONNECTING - test');
    t.match(named.filter(), `fontfile='${font}'`);
    const withFile = await drawOnce(named.filter());
    const withFontconfig = await drawOnce(control.filter());
    t.equal(withFontconfig.exitCode, 0, 'the control draws too');
    t.match(withFontconfig.stderr, /Fontconfig/, 'control: fontconfig was consulted (so the probe works)');
    t.equal(withFile.exitCode, 0, withFile.stderr);
    t.notMatch(withFile.stderr, /Fontconfig/, 'fontconfig was not consulted');
  },
);

t.test(
  "a temp dir and font path with ':', '\\', a quote and a space (as in a Windows path) still work",
  { skip: !hasCommand('ffmpeg') ? 'no ffmpeg' : !font ? 'none of the usual font files here' : false },
  async (t) => {
    const odd = mkdtempSync(path.join(os.tmpdir(), "lanstream-odd C:\\it's-"));
    t.teardown(() => rmSync(odd, { recursive: true, force: true }));
    const oddFont = path.join(odd, "Sans: it's.ttf");
    copyFileSync(font!, oddFont);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = odd; // os.tmpdir(): where OverlayText makes its dir
    let overlay: OverlayText;
    try {
      overlay = new OverlayText({ fontFile: oddFont });
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    t.teardown(() => overlay.close());
    t.ok(overlay.file.startsWith(odd), overlay.file);
    writeFileSync(overlay.file, 'RECONNECTING - test');
    const r = await drawOnce(overlay.filter());
    t.equal(r.exitCode, 0, r.stderr);
    t.notMatch(r.stderr, /Fontconfig/, 'the odd font path was opened, not a fontconfig fallback');
    // The quoting used before: the same paths split at the colon, and drawtext failed.
    const before = await drawOnce(`drawtext=fontfile='${oddFont}':textfile='${overlay.file}':reload=1:fontcolor=white`);
    t.not(before.exitCode, 0, 'the old quoting fails on these paths (so this test can tell)');
  },
);
