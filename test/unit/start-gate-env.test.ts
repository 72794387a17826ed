/** startGateEnv: the environment that holds a standby ffmpeg at its FIFO, per platform (pure). */
import t from 'tap';
import { startGateEnv } from '../../src/server/capture/ffmpeg-standby.js';
import { Platform } from '../../src/server/capture/capture-types.js';

t.test('FFREPORT names the FIFO, quiet, on Linux and macOS', async (t) => {
  t.same(startGateEnv('/tmp/lanstream-gate-ab/gate-1', Platform.LINUX), { FFREPORT: 'file=/tmp/lanstream-gate-ab/gate-1:level=-8' });
  t.same(startGateEnv('/var/folders/x/T/lanstream-gate-1/gate-2', Platform.MACOS), { FFREPORT: 'file=/var/folders/x/T/lanstream-gate-1/gate-2:level=-8' });
});

t.test("ffmpeg's escapes in the path: % (file-name template), \\ : ' (av_get_token)", async (t) => {
  t.same(startGateEnv("/tmp/a:b%c'd\\e", Platform.LINUX), { FFREPORT: "file=/tmp/a\\:b%%c\\'d\\\\e:level=-8" });
  t.same(startGateEnv('/tmp/%p%t', Platform.LINUX), { FFREPORT: 'file=/tmp/%%p%%t:level=-8' }, 'no pid/time expansion');
});

t.test('no FIFOs on Windows: no gate (cold spawn)', async (t) => {
  t.equal(startGateEnv('C:\\Temp\\gate', Platform.WINDOWS), null);
});
