/**
 * Entry point used by bin/lanstream.js. For `watch`, the window program is started from a pre-scan
 * of the command line (watch-prescan.ts) before the CLI parser and the rest of the commands load
 * (program.ts); commander's own reading of the line then decides whether that window is kept.
 */
import { endEarlyWindow, planEarlyWindow, startEarlyWindow, type EarlyWindow } from './early-window.js';
import { guardStartup } from './lifecycle.js';
import { prescanWatch } from './watch-prescan.js';

/** The early window for `lanstream watch …`, from the pre-scan; null for anything else or nothing to start. */
export function prestartWatchWindow(argv: readonly string[], env: NodeJS.ProcessEnv): EarlyWindow | null {
  if (argv[2] !== 'watch') return null;
  const pre = prescanWatch(argv.slice(3), env);
  const plan = pre && planEarlyWindow(pre.target, pre.flags);
  return plan ? startEarlyWindow(plan) : null;
}

/** Sets process.exitCode; throws only if the CLI's own modules cannot load (bin/lanstream.js says so). */
export async function main(argv: string[]): Promise<void> {
  // Asked for first: the loader reads the parser's files while the window program is being started,
  // and for watch its own module too, which its action would otherwise only ask for once parsed.
  const program = import('./program.js');
  if (argv[2] === 'watch') import('./watch-command.js').catch(() => undefined); // the action reports a failure
  const prestarted = prestartWatchWindow(argv, process.env);
  // A signal before watch's own handlers are in place ends the window and its overlay's temp dir too.
  const release = prestarted ? guardStartup(() => endEarlyWindow(prestarted)) : null;
  try {
    await (await program).runCli(argv, prestarted);
  } finally {
    release?.();
    // Ended if watch never took it as its window; its overlay's temp dir goes either way (watch is done).
    endEarlyWindow(prestarted);
  }
}
