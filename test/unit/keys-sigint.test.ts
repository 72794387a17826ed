/**
 * Ctrl-C from a raw-mode terminal (keys.ts raiseSigint): the SIGINT handlers run through
 * process.emit, because process.kill(pid, 'SIGINT') ends a process on Windows without running any.
 * Checked on a stand-in for `process` that records what was called; that a real Ctrl-C on a
 * pseudo-terminal still stops watch with exit 130 is test/e2e/controls-keys.test.ts.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { raiseSigint } from '../../src/cli/keys.js';

function fakeProcess() {
  const emitter = new EventEmitter();
  const kills: Array<[number, string]> = [];
  const proc = Object.assign(emitter, {
    pid: 4242,
    kill: (pid: number, sig: string) => {
      kills.push([pid, sig]);
      return true;
    },
  });
  return { proc: proc as unknown as Parameters<typeof raiseSigint>[0], emitter, kills };
}

t.test('a SIGINT handler is there: it runs, with the signal name, and nothing is killed', async (t) => {
  const { proc, emitter, kills } = fakeProcess();
  const got: unknown[] = [];
  emitter.on('SIGINT', (sig: unknown) => got.push(sig));
  raiseSigint(proc);
  t.same(got, ['SIGINT']);
  t.same(kills, []);
});

t.test('nobody listens: the real signal (its default ends the process)', async (t) => {
  const { proc, kills } = fakeProcess();
  raiseSigint(proc);
  t.same(kills, [[4242, 'SIGINT']]);
});
