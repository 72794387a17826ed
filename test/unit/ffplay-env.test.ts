/**
 * ffplay's environment (window-sink.ts ffplayEnv): on Linux SDL gets its software framebuffer and
 * Xlib no Compose table to parse, ffplay-wake is preloaded when it was built, the user's own settings
 * win, other platforms are left alone. That ffplay really runs this way is checked on a real window in
 * test/integration/window-sink.test.ts (and ffplay-wake's effect in test/integration/ffplay-wake.test.ts).
 */
import t from 'tap';
import { FFPLAY_WAKE_ENV, ffplayEnv, ffplayWakeLibrary } from '../../src/client/sinks/window-sink.js';

const WAKE = '/opt/lanstream/native/ffplay-wake.so';

t.test('Linux: software renderer, no framebuffer acceleration, no Compose table, the rest of the environment kept', async (t) => {
  const env = ffplayEnv({ DISPLAY: ':5', PATH: '/usr/bin' }, 'linux', null);
  t.same(env, { SDL_RENDER_DRIVER: 'software', SDL_FRAMEBUFFER_ACCELERATION: '0', XCOMPOSEFILE: '/dev/null', DISPLAY: ':5', PATH: '/usr/bin' });
});

t.test("the user's own settings win", async (t) => {
  const env = ffplayEnv({ SDL_RENDER_DRIVER: 'opengl', SDL_FRAMEBUFFER_ACCELERATION: '1', XCOMPOSEFILE: '/home/me/.XCompose' }, 'linux', null);
  t.equal(env.SDL_RENDER_DRIVER, 'opengl');
  t.equal(env.SDL_FRAMEBUFFER_ACCELERATION, '1');
  t.equal(env.XCOMPOSEFILE, '/home/me/.XCompose');
});

t.test('macOS and Windows keep SDL defaults (not measured there)', async (t) => {
  for (const platform of ['darwin', 'win32'] as const) {
    const base = { PATH: 'x' };
    t.equal(ffplayEnv(base, platform), base, platform);
    t.equal(ffplayEnv(base, platform).LD_PRELOAD, undefined, `${platform}: nothing preloaded`);
  }
});

t.test('ffplay-wake: preloaded on Linux, before what the user preloads', async (t) => {
  t.equal(ffplayEnv({ PATH: 'x' }, 'linux', WAKE).LD_PRELOAD, WAKE);
  t.equal(ffplayEnv({ LD_PRELOAD: '/usr/lib/libfoo.so' }, 'linux', WAKE).LD_PRELOAD, `${WAKE}:/usr/lib/libfoo.so`);
  t.equal(ffplayEnv({ LD_PRELOAD: '/usr/lib/libfoo.so' }, 'linux', null).LD_PRELOAD, '/usr/lib/libfoo.so', 'not built: the user’s own alone');
});

t.test('ffplay-wake: found where native/build.mjs puts it in this checkout; LANSTREAM_FFPLAY_WAKE=0 turns it off', async (t) => {
  // The suite's pretest builds it (npm run build), so a checkout under test has it.
  const found = ffplayWakeLibrary({});
  t.match(found, /\/native\/ffplay-wake\.so$/);
  t.equal(ffplayWakeLibrary({ [FFPLAY_WAKE_ENV]: '0' }), undefined);
  t.equal(ffplayEnv({ [FFPLAY_WAKE_ENV]: '0' }, 'linux').LD_PRELOAD, undefined);
  t.equal(ffplayEnv({}, 'linux').LD_PRELOAD, found, 'the default on Linux');
  t.equal(ffplayEnv({}, 'freebsd').LD_PRELOAD, undefined, 'built for Linux only');
});
