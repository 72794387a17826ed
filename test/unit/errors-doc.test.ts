import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, LanstreamError, type ErrorCode } from '../../src/shared/errors.js';
import { ExitCode, exitCodeFor } from '../../src/cli/exit-codes.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map([...doc.matchAll(/^\| `(LS_ERR_[A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1]!, Number(m[2])]));

t.test('docs/errors.md lists every registered code with its exit code, and nothing else', async (t) => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    t.equal(rows.get(code), exitCodeFor(new LanstreamError(code, 'x')), `${code} documented with the exit code the CLI uses`);
  }
  for (const code of rows.keys()) t.ok(code in ERROR_CODES, `${code} in the doc exists in the registry`);
});

t.test('exit code table', async (t) => {
  const cases: [ErrorCode, number][] = [
    ['LS_ERR_USAGE', 2],
    ['LS_ERR_FFMPEG_NOT_FOUND', 5],
    ['LS_ERR_FFPLAY_NOT_FOUND', 5],
    ['LS_ERR_GSTREAMER_NOT_FOUND', 5],
    ['LS_ERR_PORT_BUSY', 1],
    ['LS_ERR_PORT_PRIVILEGED', 1],
    ['LS_ERR_DEVICE_NOT_FOUND', 1],
    ['LS_ERR_CONNECT_REFUSED', 3],
    ['LS_ERR_HOST_UNKNOWN', 3],
    ['LS_ERR_TLS_FAILED', 3],
    ['LS_ERR_CONNECTION_LOST', 3],
    ['LS_ERR_AUTH_REFUSED', 4],
    ['LS_ERR_FINGERPRINT_MISMATCH', 4],
  ];
  for (const [code, exit] of cases) t.equal(exitCodeFor(new LanstreamError(code, 'x')), exit, `${code} → ${exit}`);
  t.equal(exitCodeFor(new Error('plain')), ExitCode.FAILURE, 'an unexpected error is a runtime failure');
  const distinct = new Set(Object.values(ExitCode));
  t.equal(distinct.size, Object.keys(ExitCode).length, 'exit codes are distinct');
});
