// Runs every test/**/*.test.ts with node's built-in test runner (through tsx).
// Node 20 does not expand globs itself, so this lists the files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const only = process.argv.slice(2);

function find(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? find(p) : e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = find(path.join(root, 'test'))
  .map((f) => path.relative(root, f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
// Integration files each start their own Redis and worker: run files one at a time on 2 cores.
const args = ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', '--test-force-exit', '--test-reporter=spec', ...files];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
