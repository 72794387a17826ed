/**
 * Keyboard controls for `watch`, only when stdin is a terminal: scripts and cron jobs never get a
 * key reader (a non-TTY stdin is left alone, so nothing can block on it).
 */
import { emitKeypressEvents } from 'node:readline';

export const KEY_HELP = `keys: + / - volume · m mute · d disconnect/connect · r reconnect · o overlay · q quit · ? help`;

export type KeyAction = 'volume-up' | 'volume-down' | 'mute' | 'toggle-connection' | 'reconnect' | 'overlay' | 'quit' | 'help';

const KEYS: Record<string, KeyAction> = {
  '+': 'volume-up',
  '=': 'volume-up',
  up: 'volume-up',
  '-': 'volume-down',
  down: 'volume-down',
  m: 'mute',
  d: 'toggle-connection',
  r: 'reconnect',
  o: 'overlay',
  q: 'quit',
  '?': 'help',
  h: 'help',
};

/** Pure: which action a keypress means (null = none). Ctrl-C is left to the SIGINT handler. */
export function keyAction(str: string | undefined, key: { name?: string; ctrl?: boolean } | undefined): KeyAction | null {
  if (key?.ctrl) return null;
  return KEYS[str ?? ''] ?? KEYS[key?.name ?? ''] ?? null;
}

export interface KeyReader {
  close(): void;
}

/**
 * Ctrl-C read from a raw-mode terminal, delivered as SIGINT. Our handlers are called directly
 * (process.emit), as the signal would: process.kill(process.pid, 'SIGINT') ends the process at once on
 * Windows without running any (Node's process.kill docs), so watch exited 1 there, with no `stopped`
 * line and its recording not closed in order. With nobody listening, the signal itself: its default
 * ends the process.
 */
export function raiseSigint(proc: Pick<NodeJS.Process, 'listenerCount' | 'emit' | 'kill' | 'pid'> = process): void {
  if (proc.listenerCount('SIGINT') > 0) proc.emit('SIGINT', 'SIGINT');
  else proc.kill(proc.pid, 'SIGINT');
}

export function startKeys(stdin: NodeJS.ReadStream, onAction: (action: KeyAction) => void): KeyReader | null {
  if (!stdin.isTTY) return null;
  emitKeypressEvents(stdin);
  stdin.setRawMode(true);
  const onKey = (str: string | undefined, key: { name?: string; ctrl?: boolean; sequence?: string }) => {
    // Raw mode swallows Ctrl-C: turn it back into the signal so the usual shutdown runs.
    if (key?.ctrl && key.name === 'c') {
      raiseSigint();
      return;
    }
    const action = keyAction(str, key);
    if (action) onAction(action);
  };
  stdin.on('keypress', onKey);
  stdin.resume();
  return {
    close: () => {
      stdin.off('keypress', onKey);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
