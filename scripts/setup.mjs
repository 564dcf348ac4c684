// Sets up what a fresh clone lacks before `npm start` / `npm test` / `npm run worker`:
// node modules, and redis-server (through apt-get where it can) unless REDIS_URL is set.
// Plain JavaScript on purpose: it runs before tsx is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const say = (msg) => console.error(`[setup] ${msg}`);

function modulesMissing() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const deps = { ...pkg.dependencies, ...pkg.devDependencies };
  return Object.keys(deps).some((name) => !fs.existsSync(path.join(root, 'node_modules', name, 'package.json')));
}

if (modulesMissing()) {
  say('installing node modules (npm install)...');
  const lock = fs.existsSync(path.join(root, 'package-lock.json'));
  const r = spawnSync('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    say('npm install failed; fix the error above and run the command again');
    process.exit(1);
  }
}

function haveRedis() {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  return dirs.some((d) => fs.existsSync(path.join(d, 'redis-server')));
}

if (!process.env.REDIS_URL && !haveRedis()) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = !isRoot && spawnSync('sudo', ['-n', 'true']).status === 0;
  if (isRoot || sudo) {
    say('installing redis-server (apt-get install redis-server)...');
    const prefix = sudo ? ['sudo', '-n'] : [];
    const run = (args) => spawnSync(prefix[0] ?? args[0], prefix.length ? [...prefix.slice(1), ...args] : args.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', 'redis-server']);
    // Debian starts a system redis on 6379 after install; we run our own, so stop it where we can.
    try { execFileSync('sh', ['-c', `${sudo ? 'sudo -n ' : ''}service redis-server stop`], { stdio: 'ignore' }); } catch { /* not running */ }
  }
  if (!haveRedis()) {
    say('redis-server is missing: install it (`sudo apt-get install redis-server`, `brew install redis`) or set REDIS_URL=redis://host:6379 to use an existing Redis');
    process.exit(1);
  }
}
