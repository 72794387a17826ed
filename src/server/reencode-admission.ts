/**
 * Server-wide gate on the one quality step that costs CPU: from the captured stream to a re-encoded
 * one (QualityAdapter level 0 → a reduced level). Each re-encoding viewer costs serve 4–12 ms of
 * sharp per 720p frame, up to a third of a core at 30 fps (quality-adapter.ts), and that CPU is taken
 * from the same machine whose business is capture and sending.
 *
 * Why (rig, batch R, 2026-11-26 17:12, 8 viewers with one behind a 1 Mbit/s proxy, 2 shared cores):
 * in 1 run of 3 the fast viewers' flow windows held frames back for a moment on the loaded machine,
 * and that read as slow links: 3 fast viewers stepped down in the same 2 s, 7 within 14 s; serve went
 * from ~16 % to 66 % of a core, the machine to 99 %, and the measured viewer to 11 fps, 112 ms p50 (the
 * other two runs: 44–48 ms, no fast viewer stepped down). Each re-encode made the CPU busier and so
 * the next viewer's window blocked sooner.
 *
 * So at most one viewer starts re-encoding per SPACING_US, and none while serve's own CPU (the event
 * loop and sharp's threads, process.cpuUsage()) over the last window was above the budget, a quarter
 * of the machine's cores (half a core on 2). A viewer refused keeps the captured stream; its flow
 * window still drops frames, which costs nothing, and it asks again at its next evaluation. Steps
 * between reduced levels and back up are not gated: they cost no more.
 */
import os from 'node:os';

/** One viewer may start re-encoding per this long: the CPU it adds shows in the next window first. */
export const SPACING_US = 2_000_000;
/** serve's CPU is measured over windows of about this length. */
const CPU_WINDOW_US = 2_000_000;

export interface ReencodeAdmissionOptions {
  /** Cores serve may be using (event loop + sharp) and still admit a new re-encoding viewer; default a quarter of the machine's. */
  cpuBudgetCores?: number;
  /** CPU time of this process in µs (tests); default process.cpuUsage(). */
  cpuTimeUs?: () => number;
}

export class ReencodeAdmission {
  readonly budgetCores: number;
  readonly #cpuTimeUs: () => number;
  #lastStartUs: number | null = null;
  #windowStart: { atUs: number; cpuUs: number } | null = null;
  /** serve's CPU over the last whole window, in cores (null before one). */
  #recentCores: number | null = null;

  constructor(o: ReencodeAdmissionOptions = {}) {
    this.budgetCores = o.cpuBudgetCores ?? os.availableParallelism() / 4;
    this.#cpuTimeUs =
      o.cpuTimeUs ??
      (() => {
        const u = process.cpuUsage();
        return u.user + u.system;
      });
  }

  /** serve's CPU over the last whole window, in cores (null before one); updated by sample(). */
  get recentCores(): number | null {
    return this.#recentCores;
  }

  /** Closes the CPU window when it is long enough; each session's heartbeat calls it before it may ask tryStart(). */
  sample(nowUs: number): void {
    // Every session's heartbeat calls this: read the CPU clock (a getrusage call) only to open or close a window.
    if (this.#windowStart !== null && nowUs - this.#windowStart.atUs < CPU_WINDOW_US) return;
    const cpuUs = this.#cpuTimeUs();
    if (this.#windowStart === null) {
      this.#windowStart = { atUs: nowUs, cpuUs };
      return;
    }
    const elapsedUs = nowUs - this.#windowStart.atUs;
    this.#recentCores = (cpuUs - this.#windowStart.cpuUs) / elapsedUs;
    this.#windowStart = { atUs: nowUs, cpuUs };
  }

  /**
   * May a viewer start re-encoding now? Yes records the start (the next must wait SPACING_US). No
   * says why, for the log.
   */
  tryStart(nowUs: number): { ok: true } | { ok: false; why: string } {
    if (this.#lastStartUs !== null && nowUs - this.#lastStartUs < SPACING_US) {
      return { ok: false, why: 'another viewer started re-encoding less than 2 s ago' };
    }
    if (this.#recentCores !== null && this.#recentCores > this.budgetCores) {
      const pct = (x: number) => `${Math.round(x * 100)} %`;
      return { ok: false, why: `serve used ${pct(this.#recentCores)} of a core (budget ${pct(this.budgetCores)})` };
    }
    this.#lastStartUs = nowUs;
    return { ok: true };
  }
}
