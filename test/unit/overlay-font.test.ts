/**
 * The overlay's font (overlay.ts overlayFontFile): drawtext is given the platform's usual sans-serif
 * file when one exists, so it opens that file instead of asking fontconfig. The candidates are
 * checked through an injected `exists`, so each platform's choice is tested here; that FFmpeg's
 * drawtext then leaves fontconfig alone is shown with real ffmpeg in
 * test/integration/overlay-font.test.ts.
 */
import t from 'tap';
import { OverlayText, filterValue, overlayFontCandidates, overlayFontFile } from '../../src/client/overlay.js';

const only = (file: string) => (f: string) => f === file;

t.test('the first existing candidate of the platform, in order', async (t) => {
  const linux = overlayFontCandidates('linux');
  t.equal(
    overlayFontFile('linux', () => true),
    linux[0],
    'Debian’s DejaVu first',
  );
  t.equal(overlayFontFile('linux', only('/usr/share/fonts/TTF/DejaVuSans.ttf')), '/usr/share/fonts/TTF/DejaVuSans.ttf', 'Arch');
  t.equal(overlayFontFile('linux', only('/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf')), '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf', 'Fedora');
  t.equal(
    overlayFontFile('darwin', only('/System/Library/Fonts/Supplemental/Arial.ttf')),
    '/System/Library/Fonts/Supplemental/Arial.ttf',
    'macOS without Helvetica.ttc',
  );
  t.equal(overlayFontFile('darwin', only(linux[0]!)), null, 'another platform’s paths are not tried');
});

t.test('none found: null (drawtext asks fontconfig as before)', async (t) => {
  t.equal(
    overlayFontFile('linux', () => false),
    null,
  );
  t.equal(
    overlayFontFile('aix', () => true),
    null,
    'a platform without a list',
  );
});

t.test('Windows: Segoe UI, then Arial, in the Fonts folder of WINDIR', async (t) => {
  t.same(overlayFontCandidates('win32', { WINDIR: 'D:\\WIN' }), ['D:\\WIN\\Fonts\\segoeui.ttf', 'D:\\WIN\\Fonts\\arial.ttf']);
  t.equal(overlayFontFile('win32', only('C:\\Windows\\Fonts\\arial.ttf'), {}), 'C:\\Windows\\Fonts\\arial.ttf', 'no WINDIR: C:\\Windows');
});

t.test('filterValue escapes for the option parser, then quotes for the graph parser', async (t) => {
  t.equal(filterValue('/tmp/lanstream-overlay-x/status.txt'), "'/tmp/lanstream-overlay-x/status.txt'", 'a plain path is only quoted');
  t.equal(filterValue('C:\\Users\\me\\status.txt'), "'C\\:\\\\Users\\\\me\\\\status.txt'");
  t.equal(filterValue("it's"), "'it\\'\\''s'");
});

t.test('the filter names the font file, or leaves it out', async (t) => {
  const withFont = new OverlayText({ fontFile: '/usr/share/fonts/TTF/DejaVuSans.ttf' });
  const without = new OverlayText({ fontFile: null });
  t.teardown(() => [withFont, without].forEach((o) => o.close()));
  t.match(withFont.filter(), /^drawtext=fontfile='\/usr\/share\/fonts\/TTF\/DejaVuSans\.ttf':textfile='/);
  t.notMatch(without.filter(), /fontfile/);
  t.equal(
    without.filter(),
    withFont.filter().replace("fontfile='/usr/share/fonts/TTF/DejaVuSans.ttf':", '').replace(withFont.file, without.file),
    'nothing else differs',
  );
});
