/**
 * Test helper for the video window tests (ffplay and GStreamer): solid-colour JPEG frames, a
 * colour comparison with a tolerance, and a 30 fps "camera" that keeps pushing into a sink.
 */
import sharp from 'sharp';
import type { VideoSink } from '../../src/client/sinks/sink.js';

export type Rgb = { r: number; g: number; b: number };

/** A width×height JPEG of one colour. */
export function solidJpeg(width: number, height: number, c: Rgb): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: c } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Every channel within `tolerance` (JPEG and scaling move colours a little). */
export function nearColor(a: Rgb, b: Rgb, tolerance = 40): boolean {
  return Math.abs(a.r - b.r) < tolerance && Math.abs(a.g - b.g) < tolerance && Math.abs(a.b - b.b) < tolerance;
}

/** Pushes `frame()` at 30 fps until `stop()` (a live camera keeps sending; the window must show the newest). */
export function feedFrames(sink: VideoSink, frame: () => Buffer): { stop(): void } {
  const timer = setInterval(() => sink.pushFrame(frame(), 0), 33);
  return { stop: () => clearInterval(timer) };
}
