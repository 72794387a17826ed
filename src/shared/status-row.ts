/**
 * The terminal row that a status line (watch's or serve's) keeps redrawing at the bottom. Logs on a
 * terminal are printed above it: the logger clears the row, writes its line, and draws the status
 * again, so a log line never hides the status (e.g. "[reconnecting]") until its next refresh.
 */
let row = '';

/** Draw `text` as the status row (stderr, in place). */
export function drawStatusRow(text: string): void {
  row = text;
  process.stderr.write(`\r\x1b[2K${text}`);
}

/** The status line is finished: leave it on screen and start a new row. */
export function endStatusRow(): void {
  if (row) process.stderr.write('\n');
  row = '';
}

/** A log line for the terminal, printed above the status row. */
export function writeAboveStatusRow(line: string, done: () => void): void {
  process.stderr.write(`\r\x1b[2K${line}${row ? `\r\x1b[2K${row}` : ''}`, () => done());
}
