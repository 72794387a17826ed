/**
 * ffplay's environment (window-sink.ts ffplayEnv): on Linux SDL gets its software framebuffer, the
 * user's own SDL settings win, other platforms are left alone. That ffplay really runs this way is
 * checked on a real window in test/integration/window-sink.test.ts.
 */
import t from 'tap';
import { ffplayEnv } from '../../src/client/sinks/window-sink.js';

t.test('Linux: software renderer, no framebuffer acceleration, the rest of the environment kept', async (t) => {
  const env = ffplayEnv({ DISPLAY: ':5', PATH: '/usr/bin' }, 'linux');
  t.same(env, { SDL_RENDER_DRIVER: 'software', SDL_FRAMEBUFFER_ACCELERATION: '0', DISPLAY: ':5', PATH: '/usr/bin' });
});

t.test("the user's SDL settings win", async (t) => {
  const env = ffplayEnv({ SDL_RENDER_DRIVER: 'opengl', SDL_FRAMEBUFFER_ACCELERATION: '1' }, 'linux');
  t.equal(env.SDL_RENDER_DRIVER, 'opengl');
  t.equal(env.SDL_FRAMEBUFFER_ACCELERATION, '1');
});

t.test('macOS and Windows keep SDL defaults (not measured there)', async (t) => {
  for (const platform of ['darwin', 'win32'] as const) {
    const base = { PATH: 'x' };
    t.equal(ffplayEnv(base, platform), base, platform);
  }
});
