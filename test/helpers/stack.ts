import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import pino from 'pino';
import type { FastifyInstance, FastifyBaseLogger } from 'fastify';
import { loadConfig, type Config } from '../../src/config.ts';
import { buildApp } from '../../src/app.ts';
import { startEmbeddedRedis } from '../../src/embedded-redis.ts';
import { Supervised } from '../../src/supervisor.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Stack {
  app: FastifyInstance;
  config: Config;
  /** http://127.0.0.1:<port> of the listening API. */
  url: string;
  redis: Supervised;
  workers: Supervised[];
  close: () => Promise<void>;
}

/**
 * The real thing for one test file: its own redis-server (temp dir, free port),
 * real worker processes, and the API listening on a free port.
 */
export async function startStack(opts: { workers?: number; env?: Record<string, string> } = {}): Promise<Stack> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-test-'));
  const log = pino({ level: process.env.TEST_LOG ?? 'warn' }) as unknown as FastifyBaseLogger;
  const redis = await startEmbeddedRedis(path.join(dataDir, 'redis'), log);
  const env = {
    ...process.env,
    REDIS_URL: redis.url,
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG ?? 'warn',
    TF_BACKEND: process.env.TF_BACKEND ?? '',
    ...opts.env,
  };
  const config = loadConfig(env);
  const workers = Array.from({ length: opts.workers ?? 1 }, (_, i) => new Supervised(
    `worker-${i + 1}`, process.execPath, ['--import', 'tsx', path.join(root, 'workers/worker.ts')],
    { env: { ...env, WORKER_ID: `wkr_test${String(i + 1).padStart(6, '0')}` }, cwd: root }, log,
  ));
  for (const w of workers) await w.start();
  const app = await buildApp(config, { logger: process.env.TEST_LOG ? { level: process.env.TEST_LOG } : false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  return {
    app,
    config,
    url: `http://127.0.0.1:${address.port}`,
    redis: redis.process,
    workers,
    close: async () => {
      await app.close();
      await Promise.all(workers.map((w) => w.stop(5000)));
      await redis.process.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls a job until it finishes. */
export async function waitForJob(app: FastifyInstance, id: string, headers: Record<string, string> = {}, seconds = 120): Promise<any> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const res = await app.inject({ method: 'GET', url: `/v1/jobs/${id}`, headers });
    const job = res.json();
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${job.status} after ${seconds} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the stack's workers have sent a heartbeat. */
export async function waitForWorkers(app: FastifyInstance, count = 1, seconds = 60): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while ((await app.inject({ method: 'GET', url: '/health' })).json().workers < count) {
    if (Date.now() > end) throw new Error(`fewer than ${count} workers after ${seconds} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Rows of one of the course's CSV datasets (header dropped), as numbers. */
export function csvRows(name: string): number[][] {
  const text = fs.readFileSync(path.join(root, 'test/fixtures/datasets', `${name}.csv`), 'utf8');
  return text.trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
}

/** A deterministic shuffle (same LCG as the contract checks), so a test is the same every run. */
export function shuffled<T>(rows: T[], seed = 42): T[] {
  const out = rows.slice();
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  for (let i = out.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [out[i], out[j]] = [out[j], out[i]]; }
  return out;
}

export function standardize(X: number[][]): number[][] {
  const d = X[0].length;
  const mean = Array.from({ length: d }, (_, j) => X.reduce((a, r) => a + r[j], 0) / X.length);
  const std = Array.from({ length: d }, (_, j) => Math.sqrt(X.reduce((a, r) => a + (r[j] - mean[j]) ** 2, 0) / X.length) || 1);
  return X.map((r) => r.map((v, j) => (v - mean[j]) / std[j]));
}

/** Iris, shuffled with the contract checks' seed and standardised: X rows and integer labels Y. */
export function iris(): { X: number[][]; Y: number[] } {
  const rows = shuffled(csvRows('iris'));
  return { X: standardize(rows.map((r) => r.slice(0, 4))), Y: rows.map((r) => r[4]) };
}

/**
 * A stack for the whole test file: started (with its workers ready) before the first
 * test, closed after the last. The returned object reads through to the live stack.
 */
export function useStack(opts: Parameters<typeof startStack>[0] = {}): Stack {
  let current: Stack | undefined;
  before(async () => {
    current = await startStack(opts);
    await waitForWorkers(current.app, opts.workers ?? 1);
  });
  after(() => current?.close());
  return new Proxy({} as Stack, {
    get: (_target, key) => {
      if (!current) throw new Error('the stack is not started yet: use it inside a test');
      return current[key as keyof Stack];
    },
  });
}
