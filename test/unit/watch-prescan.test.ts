/**
 * The pre-scan of `watch`'s command line (src/cli/watch-prescan.ts) starts the window program before
 * commander loads; commander's reading then decides whether that window is kept
 * (reconcileEarlyWindow). These tests hold the pre-scan's table to commander's definition of the
 * command, and check that on the command lines people and scripts write both plan the same window,
 * so the head start is not thrown away.
 */
import t from 'tap';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { Output } from '../../src/cli/output.js';
import { EARLY_WINDOW_VALUE_FLAGS, WATCH_VALUE_FLAGS, prescanWatch } from '../../src/cli/watch-prescan.js';
import { planEarlyWindow, reconcileEarlyWindow, samePlan, type EarlyWindow, type EarlyWindowFlags, type EarlyWindowPlan } from '../../src/cli/early-window.js';

/** A config dir that does not exist: lastCodec() then says MJPEG without reading anything of the user's. */
const CONFIG = ['--config-dir', '/nonexistent/lanstream-prescan-test'];

function watchCommand(): Command {
  return buildProgram(new Output()).commands.find((c) => c.name() === 'watch')!;
}

/** What commander hands watch's action for this command line (the action itself replaced). */
async function commanderFlags(args: string[], env: Record<string, string> = {}): Promise<{ target: string; flags: EarlyWindowFlags }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const program = buildProgram(new Output());
    let got: { target: string; flags: EarlyWindowFlags } | null = null;
    program.commands
      .find((c) => c.name() === 'watch')!
      .action((target: string, flags: EarlyWindowFlags) => {
        got = { target, flags };
      });
    await program.parseAsync(['watch', ...args], { from: 'user' });
    return got!;
  } finally {
    for (const name of Object.keys(env)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}

t.test("the pre-scan knows every watch flag that takes a value, by commander's definition", async (t) => {
  const options = watchCommand().options.filter((o) => o.required || o.optional);
  const fromCommander = Object.fromEntries(options.map((o) => [o.long!.slice(2), o.short?.slice(1)]));
  t.same({ ...WATCH_VALUE_FLAGS }, fromCommander);
});

t.test("the early window's flags are read from the same variables commander reads", async (t) => {
  const byLong = new Map(watchCommand().options.map((o) => [o.long!.slice(2), o]));
  for (const [attr, flag, envName] of EARLY_WINDOW_VALUE_FLAGS) {
    const option = byLong.get(flag);
    t.ok(option, `--${flag} is a watch flag`);
    t.equal(option?.attributeName(), attr, `--${flag} is opts.${attr}`);
    t.equal(option?.envVar, envName, `--${flag} from ${envName ?? 'no variable'}`);
  }
  const port = byLong.get('port')!;
  t.equal(port.defaultValue, '443', 'port default as the pre-scan assumes (DEFAULT_PORT)');
  t.equal(byLong.get('window')!.defaultValue, 'ffplay', 'ffplay is the default window');
});

const LINES: Array<{ name: string; args: string[]; env?: Record<string, string> }> = [
  { name: 'a host', args: ['192.168.1.20'] },
  { name: 'the line serve prints', args: ['lanstream://192.168.1.20:8443/?key=abcdefghijklmnopqrst&fp=sha256:' + 'ab'.repeat(32)] },
  { name: 'flags after the target', args: ['pc.local', '--port', '8443', '--window-position', '10,20', '--borderless'] },
  { name: 'flags before the target, --flag=value', args: ['--port=9000', '--window-position=0,0', 'pc.local'] },
  { name: '-p and -pN', args: ['-p', '9000', 'pc.local'] },
  { name: '-p9000', args: ['-p9000', 'pc.local'] },
  { name: 'a negative window position', args: ['h', '--window-position', '-5,3'] },
  {
    name: 'value flags that do not matter to the window',
    args: ['--key', 'abcdefghijklmnopq', 'h', '--volume', '50', '--audio-output', 'pacat', '--json', '--log-level', 'debug', '--duration', '5s', '-q'],
  },
  { name: 'sound only', args: ['h', '--no-video'] },
  { name: 'no playback', args: ['h', '--no-playback'] },
  { name: 'picture only', args: ['h', '--no-audio', '--wait', '--reconnect-timeout', '10s'] },
  { name: 'a snapshot', args: ['h', '--snapshot', 'x.jpg'] },
  { name: 'the GStreamer window', args: ['h', '--window', 'gstreamer'] },
  { name: 'ffplay by path', args: ['h', '--ffplay', '/opt/ffmpeg/ffplay'] },
  { name: 'port and position from the environment', args: ['h'], env: { LANSTREAM_PORT: '9001', LANSTREAM_WINDOW_POSITION: '3,4' } },
  { name: 'a flag beats its variable', args: ['h', '--port', '9002'], env: { LANSTREAM_PORT: '9001' } },
  { name: 'the window from the environment', args: ['h'], env: { LANSTREAM_WINDOW: 'gstreamer' } },
  { name: 'ffmpeg from the environment', args: ['h'], env: { LANSTREAM_FFMPEG: '/opt/ffmpeg/ffmpeg' } },
];

t.test('on the command lines people and scripts write, the pre-scan plans the window commander plans', async (t) => {
  let planned = 0;
  for (const line of LINES) {
    const args = [...line.args, ...CONFIG];
    const pre = prescanWatch(args, { ...process.env, ...line.env });
    t.ok(pre, `${line.name}: read`);
    const fromCommander = await commanderFlags(args, line.env);
    t.equal(pre?.target, fromCommander.target, `${line.name}: the same target`);
    const a = pre && planEarlyWindow(pre.target, pre.flags);
    const b = planEarlyWindow(fromCommander.target, fromCommander.flags);
    t.ok(a === null ? b === null : b !== null && samePlan(a, b), `${line.name}: the same window (${JSON.stringify(a)} / ${JSON.stringify(b)})`);
    if (b) planned++;
  }
  t.ok(planned >= 10, `most of these lines start a window (${planned})`);
});

t.test('the pre-scan leaves lines it cannot read alone (commander starts the window then)', async (t) => {
  t.equal(prescanWatch(['a', 'b'], {}), null, 'two targets');
  t.equal(prescanWatch([], {}), null, 'no target');
  t.equal(prescanWatch(['h', '--help'], {}), null, '--help');
  t.equal(prescanWatch(['h', '-h'], {}), null, '-h');
});

/** An early window that records what was done to it, without a process behind it. */
function fakeEarly(plan: EarlyWindowPlan): EarlyWindow & { discarded: number; closed: number } {
  const early = {
    plan,
    playerPath: plan.playerPath,
    discarded: 0,
    closed: 0,
    launch: { discard: () => (early.discarded++, true) },
    overlay: { close: () => void early.closed++ },
  };
  return early as unknown as EarlyWindow & { discarded: number; closed: number };
}

t.test('reconcileEarlyWindow keeps the pre-started window only when commander plans the same one', async (t) => {
  const flags: EarlyWindowFlags = { port: '443', playback: true, video: true, configDir: CONFIG[1] };
  const plan = planEarlyWindow('h', flags)!;
  t.ok(plan, 'a window is planned');

  const same = fakeEarly(plan);
  t.equal(reconcileEarlyWindow(same, 'h', flags), same, 'same plan: kept');
  t.equal(same.discarded + same.closed, 0, 'and not ended');

  const other = fakeEarly(plan);
  t.equal(reconcileEarlyWindow(other, 'h', { ...flags, playback: false }), null, 'commander says no window: none');
  t.equal(other.discarded, 1, 'the pre-started one is ended');
  t.equal(other.closed, 1, 'with its overlay');

  const moved = fakeEarly({ ...plan, position: { x: 1, y: 1 } });
  const replaced = reconcileEarlyWindow(moved, 'h', { ...flags, playback: false });
  t.equal(replaced, null);
  t.equal(moved.discarded, 1, 'another position: the pre-started one is ended');
  t.equal(reconcileEarlyWindow(null, 'h', { ...flags, video: false }), null, 'nothing pre-started, nothing to start');
});
