/**
 * e2e: what a user installs. `npm pack` the package (dist/ as built; scripts skipped so packing does
 * not rebuild the tree other tests run from), install the tarball into an empty project (from the npm
 * cache where it can, `--prefer-offline`: `npm ci` fills the cache with tarballs but not the package
 * metadata a plain install resolves ranges with, so `--offline` failed on every fresh machine and this
 * test never got past the install), and run the installed `lanstream` bin.
 * Also the help output into a pipe that closes early (`| head`), which must not crash.
 */
import t from 'tap';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { assertBuilt, CliProcess, envWithoutNpm, REPO_ROOT, runCommand } from '../helpers/cli.js';
import { killAll, run } from '../helpers/process.js';

t.teardown(() => killAll());

t.test('the packed tarball installs and its lanstream bin prints the usage', async (t) => {
  assertBuilt();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ls-pack-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

  // A nested npm inherits npm_* variables from `npm test` and would treat this checkout as its
  // project (it once added the tarball to our package.json): clean env, explicit cwd and --prefix,
  // and a check that the checkout's manifest is untouched.
  const env = { ...envWithoutNpm(), npm_config_loglevel: 'error' };
  const manifestBefore = await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8');
  const pack = await runCommand('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: REPO_ROOT, env, timeoutMs: 60_000 });
  t.equal(pack.code, 0, 'npm pack succeeds', { stderr: pack.stderr.slice(-1000) });
  const tarball = path.join(dir, `lanstream-${version}.tgz`);
  t.ok((await readdir(dir)).includes(path.basename(tarball)), `made ${path.basename(tarball)}`);

  const project = path.join(dir, 'project');
  await mkdir(project);
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'ls-pack-test', version: '1.0.0', private: true }));
  const install = await runCommand('npm', ['install', '--prefix', project, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: project,
    env,
    timeoutMs: 90_000,
  });
  t.equal(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8'), manifestBefore, "the checkout's package.json is untouched");
  const noRegistry = install.code !== 0 && /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(install.stderr);
  t.equal(install.code, 0, 'npm install <tarball> succeeds', {
    stderr: install.stderr.slice(-1500),
    todo: noRegistry ? 'a dependency is neither in the npm cache nor reachable in a registry' : false,
  });
  if (install.code !== 0) return;

  // The bin npm linked, run by path as a shell would (its #! line picks node).
  const bin = path.join(project, 'node_modules', '.bin', 'lanstream');
  const help = await run(bin, ['--help'], { timeoutMs: 15_000 });
  const text = help.stdout.toString();
  t.equal(help.code, 0, 'lanstream --help exits 0', { stderr: help.stderr });
  t.notOk(text.includes(REPO_ROOT) || help.stderr.includes(REPO_ROOT), 'nothing refers back to this checkout');
  t.match(text, /^Usage: lanstream /m, 'prints the usage');
  for (const cmd of ['serve', 'watch', 'devices']) t.match(text, new RegExp(`^\\s+${cmd}\\b`, 'm'), `lists the ${cmd} command`);
  t.match(text, /Exit codes:[\s\S]*130\s+interrupted/, 'lists the exit codes');
  const ver = await run(bin, ['--version'], { timeoutMs: 15_000 });
  t.equal(ver.stdout.toString().trim(), version, `--version prints ${version}`);
});

t.test('--help into a pipe that closes early exits 0 without a stack trace', async (t) => {
  const proc = new CliProcess(['serve', '--help']);
  proc.child.stdout?.destroy(); // like `| head -0`: the reader is gone before the first write
  const { code } = await proc.exited;
  t.equal(code, 0, 'exit 0');
  t.notMatch(proc.stderr, /EPIPE|Unhandled|at /, 'no crash on stderr', { stderr: proc.stderr });
});
