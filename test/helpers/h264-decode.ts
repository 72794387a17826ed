/**
 * Test helper: decode Annex-B H.264 with ffmpeg and count the pictures (and what ffmpeg complained
 * about), so a test can check that what a viewer received really decodes from its first unit on.
 */
import { spawn } from 'node:child_process';

export function decodeAnnexB(annexB: Buffer, timeoutMs = 10_000): Promise<{ frames: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'h264', '-i', 'pipe:0', '-f', 'framemd5', 'pipe:1']);
    let out = '';
    let stderr = '';
    const timer = setTimeout(() => ff.kill('SIGKILL'), timeoutMs);
    ff.stdout.on('data', (b: Buffer) => (out += b.toString()));
    ff.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    ff.stdin.on('error', () => undefined);
    ff.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ff.on('close', () => {
      clearTimeout(timer);
      resolve({ frames: out.split('\n').filter((l) => /^0,/.test(l)).length, stderr });
    });
    ff.stdin.end(annexB);
  });
}
