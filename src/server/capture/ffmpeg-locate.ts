/**
 * Finding ffmpeg (and its companions ffplay/ffprobe) before anything is spawned, so a missing binary
 * is one clear line with the install command instead of an ENOENT from deep inside capture.
 *
 * Order: --ffmpeg, LANSTREAM_FFMPEG, `ffmpeg` on PATH, then the optional ffmpeg-static package. A path
 * the user named explicitly (flag or env) that does not run is an error, not a reason to silently use
 * another ffmpeg. Every candidate is proven by running `<path> -version`.
 */
import { access, constants, stat } from 'node:fs/promises';
import path from 'node:path';
import { LanstreamError } from '../../shared/errors.js';

const VERSION_TIMEOUT_MS = 5_000;

export interface LocateFfmpegOptions {
  /** --ffmpeg */
  override?: string;
  env?: NodeJS.ProcessEnv;
  /** For the install hint and PATHEXT handling; default process.platform. */
  platform?: NodeJS.Platform;
}

export async function locateFfmpeg(opts: LocateFfmpegOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const tried: string[] = [];

  const explicit: Array<[string | undefined, string]> = [
    [opts.override, '--ffmpeg'],
    [env.LANSTREAM_FFMPEG, 'LANSTREAM_FFMPEG'],
  ];
  for (const [candidate, source] of explicit) {
    if (candidate === undefined || candidate === '') continue;
    const resolved = (await resolveExecutable(candidate, env, platform)) ?? candidate;
    const problem = await versionProblem(resolved, 'ffmpeg');
    if (problem === null) return resolved;
    throw new LanstreamError('LS_ERR_FFMPEG_NOT_FOUND', `${source} ${candidate} is not a runnable ffmpeg (${problem}): fix the path or leave ${source} unset`, {
      details: { source, path: candidate, problem },
    });
  }

  const onPath = await resolveExecutable('ffmpeg', env, platform);
  if (onPath !== null) {
    const problem = await versionProblem(onPath, 'ffmpeg');
    if (problem === null) return onPath;
    tried.push(`${onPath}: ${problem}`);
  } else {
    tried.push('ffmpeg: not on PATH');
  }

  const bundled = await ffmpegStaticPath();
  if (bundled !== null) {
    const problem = await versionProblem(bundled, 'ffmpeg');
    if (problem === null) return bundled;
    tried.push(`${bundled} (ffmpeg-static): ${problem}`);
  }

  throw new LanstreamError('LS_ERR_FFMPEG_NOT_FOUND', `ffmpeg not found: install it (${installHint(platform)}) or pass --ffmpeg /path/to/ffmpeg`, {
    details: { tried },
  });
}

/**
 * ffplay/ffprobe: the one next to ffmpeg first (same build, same version), then PATH.
 */
export async function locateCompanion(
  name: 'ffplay' | 'ffprobe',
  ffmpegPath: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  const code = name === 'ffplay' ? 'LS_ERR_FFPLAY_NOT_FOUND' : 'LS_ERR_FFMPEG_NOT_FOUND';
  const tried: string[] = [];
  const exe = platform === 'win32' ? `${name}.exe` : name;
  const candidates: string[] = [];
  if (path.isAbsolute(ffmpegPath)) candidates.push(path.join(path.dirname(ffmpegPath), exe));
  const onPath = await resolveExecutable(name, env, platform);
  if (onPath !== null && !candidates.includes(onPath)) candidates.push(onPath);
  for (const candidate of candidates) {
    if (!(await isExecutable(candidate, platform))) {
      tried.push(`${candidate}: missing`);
      continue;
    }
    const problem = await versionProblem(candidate, name);
    if (problem === null) return candidate;
    tried.push(`${candidate}: ${problem}`);
  }
  // ffmpegPath is '' when watch found no ffmpeg: then only PATH was searched.
  const where = ffmpegPath ? `next to ${ffmpegPath} or on PATH` : 'on PATH';
  throw new LanstreamError(code, `${name} not found ${where}: install it (${installHint(platform)})`, {
    details: { tried },
  });
}

/**
 * A companion the user named (--ffplay, LANSTREAM_FFPLAY): it must run, or that is the error — never
 * silently another binary, and never found out only after the connection is up.
 */
export async function verifyCompanion(
  name: 'ffplay' | 'ffprobe',
  candidate: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  const resolved = (await resolveExecutable(candidate, env, platform)) ?? candidate;
  const problem = await versionProblem(resolved, name);
  if (problem === null) return resolved;
  throw new LanstreamError(
    name === 'ffplay' ? 'LS_ERR_FFPLAY_NOT_FOUND' : 'LS_ERR_FFMPEG_NOT_FOUND',
    `${source} ${candidate} is not a runnable ${name} (${problem}): fix the path or leave ${source} unset`,
    {
      details: { source, path: candidate, problem },
    },
  );
}

/** Debian/Ubuntu, Homebrew and winget all ship ffplay and ffprobe inside the ffmpeg package. */
export function installHint(platform: NodeJS.Platform): string {
  switch (platform) {
    case 'darwin':
      return 'brew install ffmpeg';
    case 'win32':
      return 'winget install ffmpeg';
    default:
      return 'sudo apt-get install ffmpeg';
  }
}

/** null when `<file> -version` runs and names the expected program, else a short reason. */
async function versionProblem(file: string, program: string): Promise<string | null> {
  // Loaded here, not at the top: `watch` finds ffplay while it connects, and execa's ~100 ms of
  // module loading would otherwise sit on every start-up.
  const { execa } = await import('execa');
  const result = await execa(file, ['-version'], {
    stdin: 'ignore',
    reject: false,
    timeout: VERSION_TIMEOUT_MS,
    maxBuffer: 1024 * 1024,
  });
  if (result.failed) {
    if (result.code === 'ENOENT') return 'no such file';
    if (result.code === 'EACCES') return 'not executable';
    if (result.timedOut) return `no answer to -version within ${VERSION_TIMEOUT_MS} ms`;
    return `-version failed${result.exitCode === undefined ? '' : ` with exit code ${result.exitCode}`}`;
  }
  const firstLine = String(result.stdout).split('\n', 1)[0] ?? '';
  if (!firstLine.startsWith(`${program} version`)) return `-version printed "${firstLine.slice(0, 60)}", not ${program}`;
  return null;
}

/** Like `which`: a bare name is looked up on PATH (with PATHEXT on Windows); a path is made absolute. */
export async function resolveExecutable(name: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): Promise<string | null> {
  if (name.includes('/') || (platform === 'win32' && name.includes('\\'))) {
    const absolute = path.resolve(name);
    return (await isExecutable(absolute, platform)) ? absolute : null;
  }
  const delimiter = platform === 'win32' ? ';' : ':';
  const pathVar = env.PATH ?? env.Path ?? '';
  // Windows: what spawn() can start without a shell, .exe first. Not the bare name (a file `ffplay`
  // with no extension is no program there), nor .cmd/.bat from PATHEXT: Node ≥ 20.12.2 refuses to
  // spawn those without a shell (EINVAL), so a found `ffplay.cmd` would only fail later.
  const extensions = platform === 'win32' ? ['.exe', '.com'] : [''];
  for (const dir of pathVar.split(delimiter)) {
    if (dir === '') continue;
    for (const ext of extensions) {
      const candidate = path.join(dir, name + ext);
      if (await isExecutable(candidate, platform)) return candidate;
    }
  }
  return null;
}

/** A regular file we may run: a directory named `ffplay` on PATH passes access(X_OK) too. */
async function isExecutable(file: string, platform: NodeJS.Platform): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, platform === 'win32' ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The optional ffmpeg-static package exports the path of its downloaded binary (or null). */
async function ffmpegStaticPath(): Promise<string | null> {
  const specifier = 'ffmpeg-static';
  try {
    const mod = (await import(specifier)) as { default?: unknown };
    return typeof mod.default === 'string' ? mod.default : null;
  } catch {
    return null;
  }
}
