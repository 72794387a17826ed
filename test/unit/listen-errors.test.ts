import t from 'tap';
import { listenError } from '../../src/server/listener.js';

const errno = (code: string, message = code): NodeJS.ErrnoException => Object.assign(new Error(message), { code });

t.test('each way listen() fails becomes one line that says what to do', async (t) => {
  const cases: Array<[NodeJS.ErrnoException, string | undefined, number, string, RegExp]> = [
    [errno('EADDRINUSE'), undefined, 8443, 'LS_ERR_PORT_BUSY', /Port 8443 is already in use.*--port <another>/],
    [errno('EACCES'), undefined, 443, 'LS_ERR_PORT_PRIVILEGED', /Port 443 needs privilege: run sudo setcap .*or use --port 8443/],
    [errno('EADDRNOTAVAIL'), '192.0.2.99', 8443, 'LS_ERR_BIND_FAILED', /Address 192\.0\.2\.99 is not on this machine: use --host with one of its addresses/],
    [
      errno('ENOTFOUND', 'getaddrinfo ENOTFOUND nosuchhost.invalid'),
      'nosuchhost.invalid',
      8443,
      'LS_ERR_BIND_FAILED',
      /^--host nosuchhost\.invalid is not a name this machine can resolve: give one of its IP addresses, or omit --host$/,
    ],
  ];
  for (const [err, host, port, code, message] of cases) {
    const e = listenError(err, host, port);
    t.equal(e.code, code, `${err.code}: ${code}`);
    t.match(e.message, message, `${err.code}: ${e.message}`);
    t.notMatch(e.message, /\n/, `${err.code}: one line`);
  }
});
