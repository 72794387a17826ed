/**
 * `lanstream devices`: which cameras and microphones exist, each with the exact value to pass as
 * --video-device / --audio-device. Device names are where capture most often goes wrong (dshow and
 * avfoundation names with spaces, UVC metadata nodes next to the real /dev/video node), so the list
 * says what the builders in ffmpeg-args.ts will accept.
 *
 * Parsers are pure and exported so fixtures of real tool output can test them. A missing tool
 * (pactl, arecord) is not an error: that section is just shorter.
 */
import { readdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { Platform } from './capture-types.js';

export interface DeviceInfo {
  name: string;
  /** Exact --video-device / --audio-device value. */
  value: string;
  details?: string;
}

export interface DeviceList {
  cameras: DeviceInfo[];
  microphones: DeviceInfo[];
}

const TOOL_TIMEOUT_MS = 5_000;

export async function listDevices(opts: { platform: Platform; ffmpegPath: string }): Promise<DeviceList> {
  switch (opts.platform) {
    case Platform.LINUX:
      return listLinux(opts.ffmpegPath);
    case Platform.MACOS:
      return parseAvfoundationList(await ffmpegStderr(opts.ffmpegPath, ['-f', 'avfoundation', '-list_devices', 'true', '-i', '']));
    case Platform.WINDOWS:
      return parseDshowList(await ffmpegStderr(opts.ffmpegPath, ['-f', 'dshow', '-list_devices', 'true', '-i', 'dummy']));
  }
}

async function listLinux(ffmpegPath: string): Promise<DeviceList> {
  const [cameras, microphones] = await Promise.all([listV4l2Cameras(ffmpegPath), listLinuxMicrophones()]);
  return { cameras, microphones };
}

async function listV4l2Cameras(ffmpegPath: string, devDir = '/dev', sysDir = '/sys/class/video4linux'): Promise<DeviceInfo[]> {
  let entries: string[];
  try {
    entries = await readdir(devDir);
  } catch {
    return [];
  }
  const nodes = entries.filter((e) => /^video\d+$/.test(e)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  const cameras = await Promise.all(
    nodes.map(async (node): Promise<DeviceInfo | null> => {
      const path = `${devDir}/${node}`;
      const formats = parseV4l2Formats(await ffmpegStderr(ffmpegPath, ['-f', 'v4l2', '-list_formats', 'all', '-i', path]));
      // UVC cameras expose a second node for metadata; it cannot capture, so it is not a choice.
      if (!formats.capture) return null;
      const name = (await readFile(`${sysDir}/${node}/name`, 'utf8').catch(() => '')).trim() || path;
      return { name, value: path, details: describeV4l2(formats) };
    }),
  );
  return cameras.filter((c): c is DeviceInfo => c !== null);
}

function describeV4l2(f: V4l2Formats): string {
  if (f.formats.length === 0) return 'formats unknown';
  const mjpeg = f.mjpegSizes.length > 0 ? `MJPEG ${f.mjpegSizes.join(' ')} (--copy-mjpeg possible)` : 'no MJPEG (re-encoded)';
  return `${mjpeg}; formats: ${f.formats.join(', ')}`;
}

async function listLinuxMicrophones(): Promise<DeviceInfo[]> {
  const pactl = await run('pactl', ['list', 'short', 'sources']);
  if (pactl !== null && pactl.trim() !== '') {
    const info = await run('pactl', ['info']);
    return parsePactlSources(pactl, info === null ? undefined : parsePactlDefaultSource(info));
  }
  const arecord = await run('arecord', ['-l']);
  return arecord === null ? [] : parseArecordList(arecord);
}

/** stdout of a helper tool, or null when it is missing or fails. */
async function run(file: string, args: string[]): Promise<string | null> {
  const result = await execa(file, args, { reject: false, timeout: TOOL_TIMEOUT_MS, stdin: 'ignore' });
  return result.failed ? null : String(result.stdout);
}

/** ffmpeg prints device lists at info level on stderr and then exits with an error: that is expected. */
async function ffmpegStderr(ffmpegPath: string, args: string[]): Promise<string> {
  const result = await execa(ffmpegPath, ['-hide_banner', '-nostdin', ...args], { reject: false, timeout: TOOL_TIMEOUT_MS, stdin: 'ignore' });
  return String(result.stderr ?? '');
}

/** Strips ffmpeg's "[dshow @ 0x…] " / "[AVFoundation indev @ 0x…] " prefix. */
function withoutLogPrefix(line: string): string {
  return line.replace(/^\[[^\]]*@ [0-9a-fA-Fx]+\]\s?/, '');
}

/** A device as avfoundation lists it: `[index] name`. */
interface ListedDevice {
  index: string;
  name: string;
}

export function parseAvfoundationList(text: string): DeviceList {
  const found: { cameras: ListedDevice[]; microphones: ListedDevice[] } = { cameras: [], microphones: [] };
  let section: ListedDevice[] | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = withoutLogPrefix(raw);
    if (/AVFoundation video devices/i.test(line)) section = found.cameras;
    else if (/AVFoundation audio devices/i.test(line)) section = found.microphones;
    else {
      const m = /^\[(\d+)\] (.+?)\s*$/.exec(line);
      if (m && section) section.push({ index: m[1]!, name: m[2]! });
    }
  }
  const infos = (list: ListedDevice[]): DeviceInfo[] =>
    list.map(({ index, name }) => {
      const screen = /^Capture screen \d+$/.test(name) ? ', screen capture, not a camera' : '';
      const why = nameCannotPick(name, list);
      // The name survives replugging; the index does not. Both are accepted by the builder.
      return why === null
        ? { name, value: name, details: `index ${index}${screen}` }
        : { name, value: index, details: `index ${index}${screen}; ${why}: the value is its index (it can change when devices are plugged in)` };
    });
  return { cameras: infos(found.cameras), microphones: infos(found.microphones) };
}

/**
 * Why avfoundation cannot find this device by its name, or null: it reads a value that starts with
 * a number as an index (`sscanf("%d")`: "4K USB Camera" is device 4), matches names by their start
 * (the first of "USB Camera" and "USB Camera #2" wins) and splits the input at ':' (FFmpeg 7.1
 * avfoundation.m).
 */
function nameCannotPick(name: string, list: readonly { name: string }[]): string | null {
  if (/^\s*[+-]?\d/.test(name)) return 'the name starts with a number, which ffmpeg reads as an index';
  if (name.includes(':')) return "the name has a ':', where ffmpeg splits camera from microphone";
  if (list.filter((o) => o.name.startsWith(name)).length > 1) return 'ffmpeg matches names by their start, and another device starts with this one';
  return null;
}

/**
 * dshow output, both formats: ffmpeg ≥ 5.0 prints `"Name" (video)` / `(audio)` / `(audio, video)` /
 * `(none)`; older ones print section headers. Each device is followed by its "Alternative name",
 * which we offer as the value when two devices share a name (two identical webcams).
 */
export function parseDshowList(text: string): DeviceList {
  interface Entry {
    name: string;
    kinds: Set<string>;
    alternative?: string;
  }
  const entries: Entry[] = [];
  let legacySection: 'video' | 'audio' | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = withoutLogPrefix(raw);
    if (/DirectShow video devices/i.test(line)) legacySection = 'video';
    else if (/DirectShow audio devices/i.test(line)) legacySection = 'audio';
    const alt = /^\s*Alternative name "(.+)"\s*$/.exec(line);
    if (alt) {
      const last = entries.at(-1);
      if (last) last.alternative = alt[1]!;
      continue;
    }
    const dev = /^\s*"(.+)"(?:\s+\(([^)]*)\))?\s*$/.exec(line);
    if (!dev) continue;
    const kinds = dev[2] !== undefined ? dev[2].split(',').map((k) => k.trim()) : legacySection ? [legacySection] : [];
    entries.push({ name: dev[1]!, kinds: new Set(kinds) });
  }
  const out: DeviceList = { cameras: [], microphones: [] };
  for (const kind of ['video', 'audio'] as const) {
    const list = entries.filter((e) => e.kinds.has(kind));
    for (const e of list) {
      const duplicate = list.filter((o) => o.name === e.name).length > 1;
      // ffmpeg splits `video=<name>:audio=<name>` at ':' (dshow.c parse_device_name), so a name with
      // one ("Elgato Wave:3") is a malformed input; its alternative name has '_' there instead.
      const colon = e.name.includes(':');
      const value = (duplicate || colon) && e.alternative ? e.alternative : e.name;
      const info: DeviceInfo = { name: e.name, value };
      if (duplicate) info.details = 'two devices have this name: the value picks this one';
      else if (colon && e.alternative) info.details = "the name has a ':', which ffmpeg cannot take: the value is its alternative name";
      (kind === 'video' ? out.cameras : out.microphones).push(info);
    }
  }
  return out;
}

export interface V4l2Formats {
  /** False for nodes that cannot capture video (UVC metadata nodes, missing devices). */
  capture: boolean;
  /** ffmpeg pixel format / codec names, e.g. ["yuyv422", "mjpeg"]. */
  formats: string[];
  mjpegSizes: string[];
}

export function parseV4l2Formats(text: string): V4l2Formats {
  const formats: string[] = [];
  let mjpegSizes: string[] = [];
  let capture = true;
  for (const raw of text.split(/\r?\n/)) {
    const line = withoutLogPrefix(raw);
    if (/Not a video capture device|No such (file or directory|device)|Cannot open video device/i.test(line)) capture = false;
    const m = /^(Raw|Compressed|Emulated)\s*:\s*(\S+)\s*:\s*(.*?)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const name = m[2]!;
    if (!formats.includes(name)) formats.push(name);
    if (name === 'mjpeg') mjpegSizes = m[4]!.split(/\s+/).filter((s) => /^\d+x\d+$/.test(s));
  }
  return { capture: capture || formats.length > 0, formats, mjpegSizes };
}

/** `pactl list short sources`: id, name, driver, sample spec, state (tab-separated). */
export function parsePactlSources(text: string, defaultSource?: string): DeviceInfo[] {
  const devices: DeviceInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    const cols = line.split('\t');
    if (cols.length < 2 || cols[1]!.trim() === '') continue;
    const name = cols[1]!.trim();
    const notes: string[] = [];
    if (name === defaultSource) notes.push('default');
    if (name.endsWith('.monitor')) notes.push('monitor of an output (what the speakers play), not a microphone');
    if (cols[3]) notes.push(cols[3].trim());
    if (cols[4]) notes.push(cols[4].trim().toLowerCase());
    devices.push({ name, value: name, details: notes.join(', ') });
  }
  // Microphones first, the default one on top; monitors last.
  const rank = (d: DeviceInfo) => (d.value === defaultSource ? 0 : d.value.endsWith('.monitor') ? 2 : 1);
  return devices.sort((a, b) => rank(a) - rank(b));
}

export function parsePactlDefaultSource(pactlInfo: string): string | undefined {
  return /^Default Source:\s*(\S+)/m.exec(pactlInfo)?.[1];
}

/**
 * `arecord -l`: ALSA capture cards, offered as plughw:CARD,DEVICE for --audio-backend alsa (plughw
 * converts rate and channels; raw hw: refuses the 48 kHz mono we ask for on many cards).
 */
export function parseArecordList(text: string): DeviceInfo[] {
  const devices: DeviceInfo[] = [];
  const re = /^card (\d+): (\S+) \[([^\]]*)\], device (\d+): ([^[]*?)\s*\[([^\]]*)\]/gm;
  for (const m of text.matchAll(re)) {
    const [, card, , cardName, device, , deviceName] = m as unknown as [string, string, string, string, string, string, string];
    devices.push({ name: `${cardName}: ${deviceName}`, value: `plughw:${card},${device}`, details: 'ALSA; use with --audio-backend alsa' });
  }
  return devices;
}
