/**
 * The entry of `npm start`: config, the embedded Redis when REDIS_URL is unset,
 * the API, WORKERS supervised worker processes, and an orderly shutdown.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import { loadConfig } from './config.ts';
import { buildApp } from './app.ts';
import { startEmbeddedRedis } from './embedded-redis.ts';
import { Supervised } from './supervisor.ts';

const config = loadConfig();
const log = pino({ level: config.logLevel }) as unknown as FastifyBaseLogger;
const children: Supervised[] = [];

if (!config.redisUrl) {
  const redis = await startEmbeddedRedis(path.join(config.dataDir, 'redis'), log);
  config.redisUrl = redis.url;
  children.push(redis.process);
}

const workerEntry = fileURLToPath(new URL('../workers/worker.ts', import.meta.url));
const workers = Array.from({ length: config.workers }, (_, i) => new Supervised(
  `worker-${i + 1}`,
  process.execPath,
  ['--import', 'tsx', workerEntry],
  { env: { ...process.env, REDIS_URL: config.redisUrl, DATA_DIR: config.dataDir, WORKER_ID: `wkr_local${String(i + 1).padStart(5, '0')}` } },
  log,
));
for (const worker of workers) await worker.start();

const app = await buildApp(config);
await app.listen({ host: config.host, port: config.port });
app.tensors.warm();
app.log.info({ workers: config.workers, redis: config.redisUrl, data_dir: config.dataDir, open_mode: config.apiKeys.size === 0 }, 'service ready');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    log.warn('second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  for (const child of [...workers, ...children]) child.preventRestart();
  log.info({ signal }, 'shutting down: API, then workers, then Redis');
  await app.close();
  await Promise.all(workers.map((w) => w.stop(60_000)));
  for (const child of children) await child.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
