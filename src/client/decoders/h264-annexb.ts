/**
 * Viewer-side helpers for H.264 access units as they come off the wire (Annex-B, no AUD, IDR units
 * flagged KEYFRAME and carrying SPS/PPS; docs/protocol.md). Pure.
 */

/**
 * An access unit delimiter written after each unit fed to ffplay's raw H.264 demuxer: its parser only
 * ends an access unit when it sees the start of the next one, and an AUD is such a start. Without it,
 * each frame would wait in the parser for the next frame (one frame interval).
 */
export const AUD_TRAILER: Buffer = Buffer.from([0, 0, 0, 1, 0x09, 0xf0]);

/** True when the access unit holds an IDR slice (NAL type 5): decoding may start here. */
export function isIdrAccessUnit(au: Buffer): boolean {
  let i = 0;
  for (;;) {
    const j = au.indexOf(START3, i);
    if (j === -1 || j + 3 >= au.length) return false;
    const type = au[j + 3]! & 0x1f;
    if (type === 5) return true;
    if (type === 1) return false; // a non-IDR slice: the unit is inter-coded
    i = j + 3;
  }
}
const START3 = Buffer.from([0, 0, 1]);
