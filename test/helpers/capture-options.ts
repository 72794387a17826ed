/** Test helper: capture options for the ffmpeg argument builders: a 720p30 camera on Linux, MJPEG q5, unless overridden. */
import { Platform, type VideoCaptureOptions } from '../../src/server/capture/capture-types.js';

export const videoOptions = (o: Partial<VideoCaptureOptions> = {}): VideoCaptureOptions => ({
  platform: Platform.LINUX,
  source: 'device',
  width: 1280,
  height: 720,
  fps: 30,
  quality: 5,
  ...o,
});
