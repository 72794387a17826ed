/**
 * The status text drawn into the video window, so a user who only looks at the window knows it is
 * live, reconnecting or muted. ffplay's drawtext filter re-reads a small text file for every frame
 * (`reload=1`); we replace that file atomically (write + rename) so a frame never sees half a line.
 * While the link is down no frames arrive, so the viewer re-shows the last frame a few times a
 * second (Viewer.repaint) to let the new text appear.
 *
 * The GStreamer window cannot re-read a file, so for it burnOverlay() draws the same text into the
 * JPEG with sharp (decode, composite an SVG, encode: about 15 ms of CPU for 720p), only while the text
 * is not blank — the live picture itself is never re-encoded.
 */
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The longest overlay line that fits the window at the font size filter() picks. */
export const OVERLAY_LINE_CHARS = 52;

/** drawtext refuses an empty text at start; a space draws nothing visible. */
const BLANK = ' ';

/**
 * Where the usual sans-serif fonts live, per platform, in the order tried. drawtext given no font
 * file asks fontconfig for "Sans", and fontconfig first parses its whole configuration (~50 XML
 * files on Debian) and font caches: that ran in ffplay's decoder thread between the first frame and
 * its picture (ffplay alone under Xvfb, 10 interleaved runs: stream opened → window shown 17.9 ms
 * with fontconfig, 11.2 ms with the file named, the same as with no overlay at all). On Linux
 * fontconfig's "Sans" is the first file of the list anyway (DejaVu Sans on Debian, Ubuntu, Fedora
 * and Arch). Windows builds of FFmpeg may have no fontconfig configuration at all, so a named font
 * is the surer way there (not run here: only its escaping is tested). Where none of these files
 * exists, drawtext asks fontconfig as before.
 */
export function overlayFontCandidates(platform: NodeJS.Platform, env: NodeJS.ProcessEnv = process.env): string[] {
  switch (platform) {
    case 'linux':
      return [
        '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', // Debian, Ubuntu
        '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf', // Fedora
        '/usr/share/fonts/TTF/DejaVuSans.ttf', // Arch
        '/usr/share/fonts/dejavu/DejaVuSans.ttf', // Alpine, openSUSE
        '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf',
        '/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf',
      ];
    case 'freebsd':
      return ['/usr/local/share/fonts/dejavu/DejaVuSans.ttf'];
    case 'darwin':
      return ['/System/Library/Fonts/Helvetica.ttc', '/System/Library/Fonts/Supplemental/Arial.ttf', '/Library/Fonts/Arial.ttf'];
    case 'win32': {
      const fonts = path.win32.join(env.WINDIR ?? env.SystemRoot ?? 'C:\\Windows', 'Fonts');
      return [path.win32.join(fonts, 'segoeui.ttf'), path.win32.join(fonts, 'arial.ttf')];
    }
    default:
      return [];
  }
}

/** The first of this platform's overlayFontCandidates that exists, or null (drawtext then asks fontconfig). */
export function overlayFontFile(
  platform: NodeJS.Platform = process.platform,
  exists: (file: string) => boolean = existsSync,
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  return overlayFontCandidates(platform, env).find((file) => exists(file)) ?? null;
}

/**
 * `value` as one option value inside an ffplay `-vf` string, escaped for both levels FFmpeg parses
 * ("Notes on filtergraph escaping" in its filter docs): the option parser's (`\`, `'` and `:` each
 * behind a backslash), then the graph parser's (the whole in single quotes, a quote in it as `'\''`).
 * A Windows temp path (`C:\Users\…`) broke the plain quoting used before: drawtext split it at the
 * colon and ffplay quit at its first frame.
 */
export function filterValue(value: string): string {
  const option = value.replace(/[\\':]/g, (c) => `\\${c}`);
  return `'${option.replace(/'/g, "'\\''")}'`;
}

/** JPEG quality of a frame with the overlay drawn in (it is re-encoded once, for the screen only). */
const BURN_QUALITY = 85;

/** `text` drawn top-left into `jpeg`, in the same place and size as the ffplay overlay. */
export async function burnOverlay(jpeg: Buffer, text: string): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const image = sharp(jpeg);
  const { width = 0, height = 0 } = await image.metadata();
  if (!width || !height) return jpeg;
  const fontPx = Math.round(Math.max(12, Math.min(height / 22, width / 36)));
  const pad = 8;
  const lines = text.split('\n');
  const boxW = Math.min(width - 12, Math.ceil(Math.max(...lines.map((l) => l.length)) * fontPx * 0.62) + 2 * pad);
  const boxH = Math.min(height - 12, Math.ceil(lines.length * fontPx * 1.25) + 2 * pad);
  const tspans = lines.map((l, i) => `<text x="${pad}" y="${pad + Math.round(fontPx * (0.95 + i * 1.25))}">${escapeXml(l)}</text>`).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${boxW}" height="${boxH}"><rect width="100%" height="100%" fill="black" fill-opacity="0.6"/><g font-family="DejaVu Sans, sans-serif" font-size="${fontPx}" fill="white">${tspans}</g></svg>`;
  return image
    .composite([{ input: Buffer.from(svg), left: 12, top: 12 }])
    .jpeg({ quality: BURN_QUALITY, chromaSubsampling: '4:2:0' })
    .toBuffer();
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export interface OverlayTextOptions {
  /** The font drawtext opens (default: overlayFontFile()); null leaves the choice to fontconfig. */
  fontFile?: string | null;
  /** Tests: the rename that replaces the file (default: fs.renameSync). */
  rename?: (from: string, to: string) => void;
}

export class OverlayText {
  readonly file: string;
  readonly #dir: string;
  readonly #fontFile: string | null;
  readonly #rename: (from: string, to: string) => void;
  #text = '';
  /** The last text could not be written yet: set() tries again even if the text is the same. */
  #unwritten = false;

  constructor(o: OverlayTextOptions = {}) {
    this.#fontFile = o.fontFile === undefined ? overlayFontFile() : o.fontFile;
    this.#rename = o.rename ?? renameSync;
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'lanstream-overlay-'));
    this.file = path.join(this.#dir, 'status.txt');
    writeFileSync(this.file, BLANK); // drawtext needs the file when ffplay starts
  }

  get text(): string {
    return this.#text;
  }

  /**
   * Replaces the file's text atomically (write + rename), only when it changed: it was rewritten at
   * every stats tick. A failed replace is not an error of `watch`, whose picture and sound go on: on
   * Windows a file another program has open cannot be renamed over, and ffplay opens this one for
   * every frame (drawtext reload=1). It was thrown and ended watch; now the text waits for the next
   * set(), at the latest the next stats tick, a second later.
   */
  set(text: string): void {
    if (text === this.#text && !this.#unwritten) return;
    this.#text = text;
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, text.length ? text : BLANK);
      this.#rename(tmp, this.file);
      this.#unwritten = false;
    } catch {
      this.#unwritten = true;
    }
  }

  /** The ffplay filter that draws it (top-left, white on a translucent box). */
  filter(): string {
    // Font size follows the picture: a fixed 22 px ran a one-line status off a 640x360 window
    // (volume and the reason for reconnecting were cut off). At w/36 a line of
    // OVERLAY_LINE_CHARS fits from 640x360 to 1280x720 and 4:3 (checked on testsrc2 frames).
    const font = this.#fontFile ? `fontfile=${filterValue(this.#fontFile)}:` : '';
    return `drawtext=${font}textfile=${filterValue(this.file)}:reload=1:fontcolor=white:fontsize='max(12,min(h/22,w/36))':box=1:boxcolor=black@0.6:boxborderw=8:x=12:y=12`;
  }

  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
