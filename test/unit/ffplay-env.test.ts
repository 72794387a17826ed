/**
 * ffplay's environment (window-sink.ts ffplayEnv): on Linux SDL gets its software framebuffer and
 * Xlib no Compose table to parse, the user's own settings win, other platforms are left alone.
 * That ffplay really runs this way is checked on a real window in test/integration/window-sink.test.ts.
 */
import t from 'tap';
import { ffplayEnv } from '../../src/client/sinks/window-sink.js';

t.test('Linux: software renderer, no framebuffer acceleration, no Compose table, the rest of the environment kept', async (t) => {
  const env = ffplayEnv({ DISPLAY: ':5', PATH: '/usr/bin' }, 'linux');
  t.same(env, { SDL_RENDER_DRIVER: 'software', SDL_FRAMEBUFFER_ACCELERATION: '0', XCOMPOSEFILE: '/dev/null', DISPLAY: ':5', PATH: '/usr/bin' });
});

t.test("the user's own settings win", async (t) => {
  const env = ffplayEnv({ SDL_RENDER_DRIVER: 'opengl', SDL_FRAMEBUFFER_ACCELERATION: '1', XCOMPOSEFILE: '/home/me/.XCompose' }, 'linux');
  t.equal(env.SDL_RENDER_DRIVER, 'opengl');
  t.equal(env.SDL_FRAMEBUFFER_ACCELERATION, '1');
  t.equal(env.XCOMPOSEFILE, '/home/me/.XCompose');
});

t.test('macOS and Windows keep SDL defaults (not measured there)', async (t) => {
  for (const platform of ['darwin', 'win32'] as const) {
    const base = { PATH: 'x' };
    t.equal(ffplayEnv(base, platform), base, platform);
  }
});
