/**
 * The connect line: `serve` prints `lanstream watch lanstream://<host>:<port>/?key=<key>&fp=sha256:<hex>`
 * and `watch` parses it (or a plain host, host:port, [v6]:port). Everything a viewer needs to reach
 * and authenticate the server in one pasteable token, so the key and fingerprint never have to be
 * typed. Parsed by hand rather than with WHATWG URL, whose only error is "Invalid URL".
 */
import net from 'node:net';
import os from 'node:os';
import { usageError } from './errors.js';
import { normalizeFingerprint } from './fingerprint.js';

export const URL_SCHEME = 'lanstream://';
const TARGET_FORMS = 'host, host:port, [ipv6]:port or lanstream://host:port/?key=…&fp=sha256:…';

/**
 * Access keys travel in the connect line, so only URL-unreserved characters (RFC 3986) are allowed.
 * 16 is the floor for a hand-chosen --key; generated keys are 22 base64url characters (128 bits).
 */
export const ACCESS_KEY_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/;

export function checkAccessKey(value: string, flag = '--key'): string {
  if (!ACCESS_KEY_PATTERN.test(value)) {
    // A count, not "a 8-character value": no article to get wrong (an 8, an 11, an 18…).
    const shown = value.length === 0 ? 'empty' : `${value.length} character${value.length === 1 ? '' : 's'}`;
    // Never echo the key itself: it may be nearly right, and logs are not a place for secrets.
    throw usageError(flag, shown, '16–256 characters from A–Z a–z 0–9 - _ . ~');
  }
  return value;
}

/**
 * net.isIPv6, asked only of strings that can be one (every IPv6 address has a colon). Node's IPv6
 * pattern is a long regular expression that V8 compiles at its first use: 4–5 ms here, in the middle
 * of `watch`'s start-up, where it was asked about every target, "192.168.1.20" and "pc.local" too
 * (CPU profile of watch's start: 6 ms before the window program could be spawned).
 */
export function isIPv6Address(s: string): boolean {
  return s.includes(':') && net.isIPv6(s);
}

/** net.isIP(s) !== 0, without the IPv6 pattern for strings that cannot be one (isIPv6Address). */
export function isIPAddress(s: string): boolean {
  return net.isIPv4(s) || isIPv6Address(s);
}

/** "host:port" with IPv6 in brackets: the key known hosts are stored under, and the URL authority. */
export function formatHostPort(host: string, port: number): string {
  const h = host.toLowerCase();
  return isIPv6Address(h) ? `[${h}]:${port}` : `${h}:${port}`;
}

export function formatConnectUrl(target: { host: string; port: number; key: string; fingerprint: string }): string {
  // A zone id ("fe80::1%eth0") needs its "%" escaped inside a URL (RFC 6874).
  const authority = formatHostPort(target.host, target.port).replace('%', '%25');
  return `${URL_SCHEME}${authority}/?key=${encodeURIComponent(target.key)}&fp=${target.fingerprint}`;
}

export interface WatchTarget {
  host: string;
  port: number;
  key?: string;
  fingerprint?: string;
}

export function parseWatchTarget(arg: string, defaults: { port: number }): WatchTarget {
  const input = arg.trim();
  if (input.length === 0) throw usageError('host', '""', TARGET_FORMS);
  if (input.slice(0, URL_SCHEME.length).toLowerCase() === URL_SCHEME) return parseUrl(input, defaults);
  // A slash lost in copying ("lanstream:/host…") read as host "lanstream" with port "/host…". A machine
  // named lanstream ("lanstream:8443") is still a host:port.
  if (/^lanstream:(\/(?!\/)|[^\d/])/i.test(input)) throw usageError('URL', input, `lanstream:// with two slashes; ${TARGET_FORMS}`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) throw usageError('host', input, `${TARGET_FORMS} (only lanstream:// URLs)`);
  return parseHostPort(input, input, defaults.port);
}

function parseUrl(input: string, defaults: { port: number }): WatchTarget {
  const rest = input.slice(URL_SCHEME.length);
  if (rest.includes('#')) throw usageError('URL', input, `no "#" part; ${TARGET_FORMS}`);
  const q = rest.indexOf('?');
  const beforeQuery = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  const slash = beforeQuery.indexOf('/');
  const authority = slash === -1 ? beforeQuery : beforeQuery.slice(0, slash);
  const pathPart = slash === -1 ? '' : beforeQuery.slice(slash);
  if (pathPart !== '' && pathPart !== '/') throw usageError('URL', input, `no path after host:port; ${TARGET_FORMS}`);
  if (authority.includes('@')) throw usageError('URL', input, `no user@ part; put the key in ?key=…`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(authority);
  } catch {
    throw usageError('URL', input, TARGET_FORMS);
  }
  const target: WatchTarget = parseHostPort(decoded, input, defaults.port);
  const params = new URLSearchParams(query);
  const key = params.get('key');
  if (key !== null) target.key = checkAccessKey(key, 'key in URL');
  const fp = params.get('fp');
  if (fp !== null) target.fingerprint = normalizeFingerprint(fp, 'fp in URL');
  return target;
}

/** host | host:port | [v6] | [v6]:port | bare v6 (no port possible: its colons are the address). */
function parseHostPort(s: string, original: string, defaultPort: number): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close === -1) throw usageError('host', original, `a closing "]"; ${TARGET_FORMS}`);
    host = s.slice(1, close);
    const after = s.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw usageError('host', original, TARGET_FORMS);
      portText = after.slice(1);
    }
    if (!net.isIPv6(host)) throw usageError('host', original, `an IPv6 address inside [ ]; ${TARGET_FORMS}`);
  } else {
    const colons = s.split(':').length - 1;
    if (colons > 1) {
      if (!net.isIPv6(s)) throw usageError('host', original, TARGET_FORMS);
      host = s;
    } else if (colons === 1) {
      [host, portText] = s.split(':') as [string, string];
    } else {
      host = s;
    }
    if (!isHostName(host)) throw usageError('host', original, `a host name or IP address; ${TARGET_FORMS}`);
  }
  const port = portText === undefined ? defaultPort : parsePort(portText, original);
  return { host: host.toLowerCase(), port };
}

function isHostName(host: string): boolean {
  if (isIPv6Address(host)) return true;
  if (host.length === 0 || host.length > 253) return false;
  // All digits and dots but not a valid IPv4 ("300.1.1.1", "10.1") is a typo, not a name.
  if (/^[0-9.]+$/.test(host)) return net.isIPv4(host);
  return /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/i.test(host);
}

function parsePort(text: string, original: string): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw usageError('port', `${JSON.stringify(text)} in ${original}`, '1–65535');
  return port;
}

/** A bind address meaning "every interface" (serve without --host binds all of them). */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/**
 * Addresses to print in the connect line, most likely to work first: non-internal IPv4, then IPv6
 * that is not link-local (a link-local address needs a zone id that differs on the viewer).
 */
export function lanAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const infos of Object.values(interfaces)) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv4') v4.push(info.address);
      else if (!/^fe[89ab][0-9a-f]:/i.test(info.address)) v6.push(info.address.toLowerCase());
    }
  }
  return [...new Set([...v4, ...v6])];
}

/**
 * The hosts `serve` prints a connect line for, given its bind address (--host): without one, or
 * with `::` (dual-stack on Linux, macOS and Windows: Node clears IPV6_V6ONLY), every LAN address;
 * with 0.0.0.0 only the IPv4 ones (a viewer given an IPv6 line from it was refused); a specific
 * address or name, that one. 127.0.0.1 when the machine has no LAN address.
 */
export function connectHosts(bindHost: string | undefined, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  if (bindHost && !isWildcardHost(bindHost)) return [bindHost];
  const all = lanAddresses(interfaces);
  const hosts = bindHost === '0.0.0.0' ? all.filter((h) => net.isIPv4(h)) : all;
  return hosts.length ? hosts : ['127.0.0.1'];
}

/**
 * A peer's address as people write it: a dual-stack listener sees IPv4 viewers as IPv4-mapped IPv6
 * (`::ffff:192.168.1.5`), which is the same machine as `192.168.1.5`, and looks like another one in
 * logs and --json.
 */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped && net.isIPv4(mapped[1]!) ? mapped[1]! : address;
}
