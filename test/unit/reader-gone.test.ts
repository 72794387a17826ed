/**
 * lifecycle.ts readerGone: a write to stdout whose reader went away is EPIPE, and on Windows also
 * EOF (libuv's name there for ERROR_BROKEN_PIPE); both end watch with 141 instead of a crash. That a
 * closed pipe ends watch with 141 on Linux is test/e2e (scripting tests with `| head`).
 */
import t from 'tap';
import { readerGone } from '../../src/cli/lifecycle.js';

const err = (code: string) => Object.assign(new Error(`write ${code}`), { code }) as NodeJS.ErrnoException;

t.test('EPIPE and EOF: the reader is gone; anything else is a real error', async (t) => {
  t.ok(readerGone(err('EPIPE')));
  t.ok(readerGone(err('EOF')), 'Windows');
  t.notOk(readerGone(err('ENOSPC')));
  t.notOk(readerGone(err('EBADF')));
});
