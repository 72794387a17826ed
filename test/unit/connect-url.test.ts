import t from 'tap';
import net from 'node:net';
import {
  checkAccessKey,
  connectHosts,
  formatConnectUrl,
  formatHostPort,
  isIPAddress,
  isIPv6Address,
  lanAddresses,
  parseWatchTarget,
  plainAddress,
} from '../../src/shared/connect-url.js';
import type { LanstreamError } from '../../src/shared/errors.js';

const KEY = 'Xy3_-abcdefghijklmnopq'; // 22 base64url characters, like a generated key
const FP = 'sha256:' + 'ab'.repeat(32);
const D = { port: 8443 };

t.test('formatConnectUrl round-trips through parseWatchTarget', async (t) => {
  for (const host of ['192.168.1.20', 'cam.local', 'fd00::2', '::1']) {
    const url = formatConnectUrl({ host, port: 9443, key: KEY, fingerprint: FP });
    t.same(parseWatchTarget(url, D), { host, port: 9443, key: KEY, fingerprint: FP }, url);
  }
  t.equal(
    formatConnectUrl({ host: 'fd00::2', port: 443, key: KEY, fingerprint: FP }),
    `lanstream://[fd00::2]:443/?key=${KEY}&fp=${FP}`,
    'IPv6 in brackets, port always present',
  );
  t.equal(formatConnectUrl({ host: '10.0.0.1', port: 8443, key: KEY, fingerprint: FP }), `lanstream://10.0.0.1:8443/?key=${KEY}&fp=${FP}`);
});

t.test('parseWatchTarget: plain forms', async (t) => {
  const cases: Array<[string, { host: string; port: number }]> = [
    ['cam', { host: 'cam', port: 8443 }],
    ['Cam.Local', { host: 'cam.local', port: 8443 }],
    ['cam.local.', { host: 'cam.local.', port: 8443 }],
    ['cam:9000', { host: 'cam', port: 9000 }],
    ['192.168.1.5', { host: '192.168.1.5', port: 8443 }],
    ['192.168.1.5:443', { host: '192.168.1.5', port: 443 }],
    ['[::1]:9443', { host: '::1', port: 9443 }],
    ['[fd00::2]', { host: 'fd00::2', port: 8443 }],
    ['fd00::2', { host: 'fd00::2', port: 8443 }],
    ['FE80::1', { host: 'fe80::1', port: 8443 }],
    ['::ffff:192.168.1.5', { host: '::ffff:192.168.1.5', port: 8443 }],
    ['  cam:1  ', { host: 'cam', port: 1 }],
    ['cam:65535', { host: 'cam', port: 65535 }],
    ['my_host-2', { host: 'my_host-2', port: 8443 }],
  ];
  for (const [input, want] of cases) t.same(parseWatchTarget(input, D), want, input);
});

t.test('parseWatchTarget: URL forms', async (t) => {
  t.same(parseWatchTarget(`lanstream://cam:9000/?key=${KEY}&fp=${FP}`, D), { host: 'cam', port: 9000, key: KEY, fingerprint: FP });
  t.same(
    parseWatchTarget(`LANSTREAM://cam:9000?fp=${FP}&key=${KEY}`, D),
    { host: 'cam', port: 9000, key: KEY, fingerprint: FP },
    'no slash, any order, scheme case',
  );
  t.same(parseWatchTarget('lanstream://cam', D), { host: 'cam', port: 8443 }, 'no query: default port, no key');
  t.same(parseWatchTarget('lanstream://cam/', D), { host: 'cam', port: 8443 });
  t.same(parseWatchTarget(`lanstream://[fd00::2]:1/?key=${KEY}`, D), { host: 'fd00::2', port: 1, key: KEY });
  const upperColon = 'AB:'.repeat(31) + 'AB';
  t.same(parseWatchTarget(`lanstream://cam:1/?fp=SHA256:${upperColon}`, D), { host: 'cam', port: 1, fingerprint: FP }, 'fingerprint normalized');
  t.same(parseWatchTarget(`lanstream://cam:1/?key=${KEY}&future=1`, D), { host: 'cam', port: 1, key: KEY }, 'unknown params ignored');
});

t.test('parseWatchTarget: bad values are usage errors naming the value and the expected form', async (t) => {
  const bad = [
    '',
    '   ',
    'cam:0',
    'cam:65536',
    'cam:99999',
    'cam:-1',
    'cam:80a',
    'cam:',
    ':8443',
    'cam:1:2',
    '[::1',
    '[::1]x',
    '[::1]:',
    '[cam]:1',
    '[1.2.3.4]:1',
    'fd00:::2::1',
    '300.1.1.1',
    '10.1',
    'cam local',
    'cam/path',
    'bad..dots',
    '-cam',
    'http://cam:8443/',
    'https://cam',
    'lanstream://',
    'lanstream://:8443/',
    'lanstream://cam:0/',
    'lanstream://cam:8443/path',
    'lanstream://user@cam:8443/',
    'lanstream://cam:8443/#frag',
    'lanstream://cam:8443/?key=short',
    `lanstream://cam:8443/?key=${KEY}%20`,
    'lanstream://cam:8443/?fp=sha256:abc',
    'lanstream://[zz]:1/',
    'lanstream://%E0%A4%A/',
  ];
  for (const input of bad) {
    let err: LanstreamError | undefined;
    try {
      parseWatchTarget(input, D);
    } catch (e) {
      err = e as LanstreamError;
    }
    t.equal(err?.code, 'LS_ERR_USAGE', `${JSON.stringify(input)} → ${err?.message}`);
    t.notMatch(err?.message ?? '', '\n', 'one line');
  }
  t.throws(() => parseWatchTarget('cam:70000', D), { message: /Invalid port: "70000" in cam:70000 \(expected 1–65535\)/ });
  t.throws(() => parseWatchTarget('http://cam', D), { message: /http:\/\/cam.*lanstream:\/\// });
  for (const oneSlash of ['lanstream:/cam:8443/?key=x', 'lanstream:cam', 'LANSTREAM:/cam']) {
    t.throws(
      () => parseWatchTarget(oneSlash, D),
      { message: /^Invalid URL: .* \(expected lanstream:\/\/ with two slashes;/ },
      `${oneSlash}: the slash is what is missing`,
    );
  }
  t.same(parseWatchTarget('lanstream:8443', D), { host: 'lanstream', port: 8443 }, 'a machine named lanstream is still host:port');
});

t.test('a bad key in a URL is reported without echoing the key', async (t) => {
  const secretish = 'almost-right-key!!';
  let msg = '';
  try {
    parseWatchTarget(`lanstream://cam:1/?key=${secretish}`, D);
  } catch (e) {
    msg = (e as Error).message;
  }
  t.match(msg, /key in URL/);
  t.notMatch(msg, secretish);
});

t.test('checkAccessKey: ≥16 URL-safe characters', async (t) => {
  t.equal(checkAccessKey(KEY), KEY);
  t.equal(checkAccessKey('a'.repeat(16)), 'a'.repeat(16));
  t.equal(checkAccessKey('abc.DEF~ghi-jkl_'), 'abc.DEF~ghi-jkl_');
  for (const bad of [
    '',
    'a'.repeat(15),
    'a'.repeat(257),
    'abcdefghijklmnop+',
    'abcdefghijklmnop/',
    'abcdefghijklmnop=',
    'abcdefghijklmnop&x',
    'abcdefghijklmnopé',
    'abcdefgh ijklmnop',
  ]) {
    t.throws(() => checkAccessKey(bad), { code: 'LS_ERR_USAGE', message: /--key/ }, JSON.stringify(bad));
  }
});

t.test('checkAccessKey says how long the refused key was, in words that read right for any length', async (t) => {
  const message = (value: string) => {
    try {
      checkAccessKey(value);
    } catch (err) {
      return (err as LanstreamError).message;
    }
    return '';
  };
  // "a 8-character value" was the old wording: wrong for 8, 11, 18, 80…
  // Too short, or long enough with one character that is not allowed.
  for (const n of [1, 8, 11, 15, 18]) {
    const msg = message(n < 16 ? 'k'.repeat(n) : `${'k'.repeat(n - 1)}+`);
    t.match(msg, new RegExp(`^Invalid --key: ${n} characters? \\(expected 16–256 characters`), `${n}: ${msg}`);
    t.notMatch(msg, /\ba \d/, `${n}: no "a <number>"`);
  }
  t.match(message(`${'k'.repeat(79)}+`), /^Invalid --key: 80 characters \(/);
  t.match(message(''), /^Invalid --key: empty \(/);
});

t.test('isIPv6Address and isIPAddress answer as net.isIPv6 and net.isIP, on addresses, names and garbage', async (t) => {
  const samples = [
    '::1',
    '::',
    'fe80::1%eth0',
    '2001:db8::8a2e:370:7334',
    '::ffff:192.0.2.1',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9',
    ':::',
    '127.0.0.1',
    '192.168.1.20',
    '300.1.1.1',
    '10.1',
    'pc.local',
    'localhost',
    'a:b',
    '',
    '[::1]',
    'fe80::1%',
  ];
  for (const s of samples) {
    t.equal(isIPv6Address(s), net.isIPv6(s), `isIPv6Address(${JSON.stringify(s)})`);
    t.equal(isIPAddress(s), net.isIP(s) !== 0, `isIPAddress(${JSON.stringify(s)})`);
  }
});

t.test("watch's targets without a colon never reach net.isIPv6 (its pattern costs 4–5 ms to compile at first use)", async (t) => {
  const real = net.isIPv6;
  const asked: string[] = [];
  net.isIPv6 = (s: string) => {
    asked.push(s);
    return real(s);
  };
  t.teardown(() => {
    net.isIPv6 = real;
  });
  for (const target of ['192.168.1.20', 'pc.local', 'localhost:8443', 'lanstream://10.0.0.2:443/?key=abcdefghijklmnop']) {
    const parsed = parseWatchTarget(target, { port: 443 });
    formatHostPort(parsed.host, parsed.port);
    isIPAddress(parsed.host);
  }
  t.same(asked, [], 'not asked');
  parseWatchTarget('[::1]:443', { port: 443 });
  t.ok(asked.length > 0, 'an IPv6 target still is (the spy works)');
});

t.test('formatHostPort brackets IPv6 and lowercases', async (t) => {
  t.equal(formatHostPort('Cam.Local', 8443), 'cam.local:8443');
  t.equal(formatHostPort('FD00::2', 1), '[fd00::2]:1');
  t.equal(formatHostPort('10.0.0.1', 2), '10.0.0.1:2');
});

t.test('lanAddresses: non-internal IPv4 first, then IPv6 without link-local', async (t) => {
  const v4 = (address: string, internal = false) => ({ address, family: 'IPv4' as const, internal, netmask: '', mac: '', cidr: null });
  const v6 = (address: string, internal = false) => ({ address, family: 'IPv6' as const, internal, netmask: '', mac: '', cidr: null, scopeid: 0 });
  const got = lanAddresses({
    lo: [v4('127.0.0.1', true), v6('::1', true)],
    eth0: [v6('fe80::1'), v6('FD00::2'), v4('192.168.1.20')],
    wlan0: [v4('10.0.0.5'), v6('2001:db8::5'), v6('febf::9')],
    docker0: undefined,
    dup: [v4('10.0.0.5')],
  });
  t.same(got, ['192.168.1.20', '10.0.0.5', 'fd00::2', '2001:db8::5']);
  const real = lanAddresses();
  t.ok(Array.isArray(real));
  t.notOk(real.includes('127.0.0.1'), 'loopback never in the connect line');
});

t.test('connectHosts: the lines serve prints follow what it listens on', async (t) => {
  const v4 = (address: string, internal = false) => ({ address, family: 'IPv4' as const, internal, netmask: '', mac: '', cidr: null });
  const v6 = (address: string, internal = false) => ({ address, family: 'IPv6' as const, internal, netmask: '', mac: '', cidr: null, scopeid: 0 });
  const both = { lo: [v4('127.0.0.1', true), v6('::1', true)], eth0: [v4('192.168.1.20'), v6('fd00::2'), v6('fe80::1')] };
  t.same(connectHosts(undefined, both), ['192.168.1.20', 'fd00::2'], 'no --host: all of them');
  t.same(connectHosts('::', both), ['192.168.1.20', 'fd00::2'], ':: (dual-stack): all of them');
  t.same(connectHosts('0.0.0.0', both), ['192.168.1.20'], '0.0.0.0: IPv4 only');
  t.same(connectHosts('fd00::2', both), ['fd00::2'], 'one address: that one');
  t.same(connectHosts('cam.local', both), ['cam.local'], 'a name: that name');
  const v6only = { lo: [v4('127.0.0.1', true)], eth0: [v6('fd00::2')] };
  t.same(connectHosts('0.0.0.0', v6only), ['127.0.0.1'], '0.0.0.0 without a LAN IPv4 address: 127.0.0.1');
  t.same(connectHosts(undefined, { lo: [v4('127.0.0.1', true)] }), ['127.0.0.1'], 'no LAN address at all: 127.0.0.1');
});

t.test('plainAddress: IPv4-mapped IPv6 reads as the IPv4 address', async (t) => {
  t.equal(plainAddress('::ffff:127.0.0.1'), '127.0.0.1');
  t.equal(plainAddress('::FFFF:192.168.1.5'), '192.168.1.5');
  t.equal(plainAddress('192.168.1.5'), '192.168.1.5');
  t.equal(plainAddress('fd00::2'), 'fd00::2');
  t.equal(plainAddress('::ffff:999.1.1.1'), '::ffff:999.1.1.1', 'not an IPv4 address: left as it is');
  t.equal(plainAddress('::ffff:7f00:1'), '::ffff:7f00:1', 'hex form: left as it is');
  t.equal(plainAddress(undefined), 'unknown');
});
