/**
 * Pure parsers for flag values. Each error names the flag, the value and what was expected, e.g.
 * `Invalid --port: 70000 (expected 1–65535)`.
 */
import { usageError } from '../shared/errors.js';

export function parseIntIn(flag: string, raw: string, min: number, max: number): number {
  const trimmed = String(raw).trim();
  if (!/^-?\d+$/.test(trimmed)) throw usageError(flag, raw, `an integer ${min}–${max}`);
  const value = Number(trimmed);
  if (value < min || value > max) throw usageError(flag, raw, `${min}–${max}`);
  return value;
}

/**
 * --fps: whole, or with up to 3 decimals, 1–240. Decimals for cameras that offer only the NTSC rates
 * (29.97, 59.94): avfoundation selects a mode whose rate is within 0.01 of the one asked for, so
 * `30` failed on them with "Selected framerate (30.000000) is not supported by the device".
 */
export function parseFps(raw: string, flag = '--fps'): number {
  const trimmed = String(raw).trim();
  if (!/^\d+(\.\d{1,3})?$/.test(trimmed)) throw usageError(flag, raw, 'frames per second 1–240, e.g. 30 or 29.97');
  const value = Number(trimmed);
  if (value < 1 || value > 240) throw usageError(flag, raw, '1–240');
  return value;
}

export function parsePort(raw: string, flag = '--port'): number {
  return parseIntIn(flag, raw, 1, 65535);
}

/** `even`: the capture size, which 4:2:0 video needs even; a picture (--snapshot-size) does not. */
export function parseSize(raw: string, flag = '--size', { even = true }: { even?: boolean } = {}): { width: number; height: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/i.exec(String(raw).trim());
  if (!m) throw usageError(flag, raw, 'WIDTHxHEIGHT, e.g. 1280x720');
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width < 16 || height < 16 || width > 8192 || height > 8192 || (even && (width % 2 || height % 2))) {
    throw usageError(flag, raw, `${even ? 'even sizes' : 'sizes'} between 16x16 and 8192x8192`);
  }
  return { width, height };
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "1h", "500ms", "2m", "1.5h", "1d"; a bare number is seconds. */
export function parseDurationMs(raw: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)?$/i.exec(String(raw).trim());
  if (!m) throw usageError(flag, raw, 'a duration like 90s, 5m, 1h, 1d or 500ms');
  const ms = Number(m[1]) * UNITS_MS[(m[2] ?? 's').toLowerCase()]!;
  if (ms <= 0 || ms > 366 * 24 * 3_600_000) throw usageError(flag, raw, 'a duration between 1 ms and a year');
  return Math.round(ms);
}

export function parsePosition(raw: string, flag = '--window-position'): { x: number; y: number } {
  const m = /^(-?\d{1,5}),(-?\d{1,5})$/.exec(String(raw).trim());
  if (!m) throw usageError(flag, raw, 'X,Y in pixels, e.g. 0,0');
  return { x: Number(m[1]), y: Number(m[2]) };
}

export function parseChoice<T extends string>(flag: string, raw: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw usageError(flag, raw, `one of ${choices.join(', ')}`);
}
