/**
 * The overlay filter as ffplay gets it, run through real FFmpeg (ffmpeg's drawtext is the same
 * libavfilter as ffplay's): with the font file named, drawtext never consults fontconfig, which on
 * a window's first frame cost ~7 ms (overlay.ts OVERLAY_FONT_FILES). Fontconfig is pointed at a
 * missing configuration, so any use of it says "Fontconfig error" on stderr; the control, the same
 * filter without a font file, must say it, or this test could not tell.
 */
import t from 'tap';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
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
    const control = new OverlayText(null);
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
