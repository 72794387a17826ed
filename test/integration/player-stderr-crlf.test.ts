/**
 * A window program that fails with CRLF line ends (as FFmpeg and GStreamer print on Windows): the
 * error watch reports carries its last lines without a carriage return, which on a console sent the
 * cursor back to the line's start and let the message overwrite itself. A real child process (a
 * script standing in for ffplay) writes the CRLF lines and exits 1; only the line ends are Windows'.
 */
import t from 'tap';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WindowSink } from '../../src/client/sinks/window-sink.js';
import { silentLogger } from '../../src/shared/logger.js';
import { waitFor } from '../helpers/process.js';

t.test('the reported error has the player’s last lines, without carriage returns', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ls-crlf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const player = path.join(dir, 'ffplay');
  await writeFile(player, "#!/bin/sh\nprintf 'first line\\r\\nInvalid data found when processing input\\r\\n' >&2\nexit 1\n");
  await chmod(player, 0o755);
  const errors: Error[] = [];
  const sink = new WindowSink({ playerPath: player, title: 't', logger: silentLogger(), events: { onError: (e) => errors.push(e) } });
  t.teardown(() => sink.close());
  await sink.start({ codec: 'mjpeg', width: 320, height: 240, fps: 30 });
  await waitFor(() => errors.length > 0, 5000, 20, 'the player’s failure reported');
  t.match(errors[0]!.message, /stopped \(exit code 1\): first line \| Invalid data found when processing input/);
  t.notMatch(errors[0]!.message, /\r/, 'no carriage return in the message');
});
