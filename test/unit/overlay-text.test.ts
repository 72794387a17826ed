/**
 * The overlay's text file (overlay.ts OverlayText.set): rewritten only when the text changes, and a
 * replace the OS refuses (on Windows, while ffplay has the file open, which it does for every frame)
 * neither throws nor loses the text: it is written at the next set(). The file and rename are real;
 * the refusal is injected, since a Windows sharing violation cannot happen here.
 */
import t from 'tap';
import { readFileSync, renameSync } from 'node:fs';
import { OverlayText } from '../../src/client/overlay.js';

function overlay(refuse: () => boolean) {
  let renames = 0;
  const o = new OverlayText({
    fontFile: null,
    rename: (from, to) => {
      if (refuse()) throw Object.assign(new Error('EPERM: operation not permitted, rename'), { code: 'EPERM' });
      renames++;
      renameSync(from, to);
    },
  });
  return { o, renames: () => renames };
}

t.test('starts blank; written only when the text changes', async (t) => {
  const { o, renames } = overlay(() => false);
  t.teardown(() => o.close());
  t.equal(readFileSync(o.file, 'utf8'), ' ', 'a blank file exists from the start (drawtext needs one)');
  o.set('');
  t.equal(renames(), 0, 'blank again: nothing written');
  o.set('RECONNECTING');
  o.set('RECONNECTING');
  o.set('RECONNECTING');
  t.equal(renames(), 1, 'the same text three times: written once');
  t.equal(readFileSync(o.file, 'utf8'), 'RECONNECTING');
  o.set('');
  t.equal(readFileSync(o.file, 'utf8'), ' ', 'cleared to a blank');
  t.equal(renames(), 2);
});

t.test('a refused replace does not throw, and the text is written at the next set()', async (t) => {
  let refusing = true;
  const { o, renames } = overlay(() => refusing);
  t.teardown(() => o.close());
  t.doesNotThrow(() => o.set('RECONNECTING - the server is gone'), 'EPERM is not an error of watch');
  t.equal(readFileSync(o.file, 'utf8'), ' ', 'the old text stays meanwhile');
  t.equal(o.text, 'RECONNECTING - the server is gone');
  o.set('RECONNECTING - the server is gone');
  t.equal(renames(), 0, 'still refused');
  refusing = false;
  o.set('RECONNECTING - the server is gone');
  t.equal(readFileSync(o.file, 'utf8'), 'RECONNECTING - the server is gone', 'same text, tried again, written');
  t.equal(renames(), 1);
});
