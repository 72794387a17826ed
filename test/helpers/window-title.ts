/**
 * Test helper: the two titles an X window carries — WM_NAME (legacy, Latin-1) and _NET_WM_NAME
 * (UTF-8, what window managers and task bars show). xdotool matches either, so a test that only
 * searches by name can pass while the title bar says something else; read both with xprop.
 */
import { run } from './process.js';

export interface WindowTitles {
  wmName: string | null;
  netWmName: string | null;
}

export async function windowTitles(display: string, windowId: string): Promise<WindowTitles> {
  const res = await run('xprop', ['-id', windowId, 'WM_NAME', '_NET_WM_NAME'], {
    env: { ...process.env, DISPLAY: display },
    timeoutMs: 5000,
  });
  const text = res.stdout.toString();
  // xprop prints `WM_NAME(STRING) = "…"`, escaping non-ASCII bytes as \ooo; unescape to compare.
  const read = (prop: string): string | null => {
    const m = text.match(new RegExp(`^${prop}\\([A-Z0-9_]+\\) = "(.*)"$`, 'm'));
    return m
      ? Buffer.from(m[1]!.replace(/\\(\d{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8))).replace(/\\(.)/g, '$1'), 'latin1').toString('utf8')
      : null;
  };
  return { wmName: read('WM_NAME'), netWmName: read('_NET_WM_NAME') };
}
