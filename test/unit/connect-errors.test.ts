import t from 'tap';
import { connectError } from '../../src/client/connection.js';

const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
const unreachable = Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' });

t.test('connection errors write an IPv6 address in brackets before the port, as the lanstream:// line does', async (t) => {
  t.match(connectError(refused, 'fd00::2', 20453, false).message, /^Nothing listens on \[fd00::2\]:20453: /);
  t.match(connectError(unreachable, 'fe80::1%eth0', 443, false).message, /^Cannot reach \[fe80::1%eth0\]:443 /);
  t.match(connectError(refused, '192.168.1.20', 443, false).message, /^Nothing listens on 192\.168\.1\.20:443: /, 'IPv4 as it is');
});
