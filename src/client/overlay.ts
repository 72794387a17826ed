/**
 * The status text drawn into the video window, so a user who only looks at the window knows it is
 * live, reconnecting or muted. ffplay's drawtext filter re-reads a small text file for every frame
 * (`reload=1`); we replace that file atomically (write + rename) so a frame never sees half a line.
 * While the link is down no frames arrive, so the viewer re-shows the last frame a few times a
 * second (Viewer.repaint) to let the new text appear.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The longest overlay line that fits the window at the font size filter() picks. */
export const OVERLAY_LINE_CHARS = 52;

/** drawtext refuses an empty text at start; a space draws nothing visible. */
const BLANK = ' ';

export class OverlayText {
  readonly file: string;
  readonly #dir: string;
  #text = '';

  constructor() {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'lanstream-overlay-'));
    this.file = path.join(this.#dir, 'status.txt');
    this.set('');
  }

  get text(): string {
    return this.#text;
  }

  set(text: string): void {
    if (text === this.#text && this.#text !== '') return;
    this.#text = text;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, text.length ? text : BLANK);
    renameSync(tmp, this.file);
  }

  /** The ffplay filter that draws it (top-left, white on a translucent box). */
  filter(): string {
    // The temp path has no ':' or quotes (mkdtemp under os.tmpdir()), so plain quoting suffices.
    // Font size follows the picture: a fixed 22 px ran a one-line status off a 640x360 window
    // (volume and the reason for reconnecting were cut off). At w/36 a line of
    // OVERLAY_LINE_CHARS fits from 640x360 to 1280x720 and 4:3 (checked on testsrc2 frames).
    return `drawtext=textfile='${this.file}':reload=1:fontcolor=white:fontsize='max(12,min(h/22,w/36))':box=1:boxcolor=black@0.6:boxborderw=8:x=12:y=12`;
  }

  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
