/**
 * A training worker: takes fit / evaluate jobs from the BullMQ queue and runs
 * them with TensorFlow.js. Run one per GPU (or CPU budget), on any machine that
 * reaches the same Redis (REDIS_URL) and the same blob store (DATA_DIR).
 */
import os from 'node:os';
import { DelayedError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import * as tf from '@tensorflow/tfjs';
import { loadConfig } from '../src/config.ts';
import { initBackend } from '../src/engine/backend.ts';
import { Records } from '../src/metadata/records.ts';
import { newId } from '../src/metadata/ids.ts';
import { QUEUE_NAME, bullPrefix, type JobPayload } from '../src/jobs/contract.ts';
import { beat, removeWorker, HEARTBEAT_MS } from '../src/jobs/workers-registry.ts';
import { processJob, recordLostJob, ReturnToQueue, type WorkerContext } from './process-job.ts';

const config = loadConfig();
const log = pino({ level: config.logLevel, base: { role: 'worker', pid: process.pid } });
if (!config.redisUrl) {
  log.fatal('REDIS_URL is not set: a standalone worker needs the Redis the API uses, e.g. REDIS_URL=redis://10.0.0.5:6379 npm run worker');
  process.exit(2);
}

const backend = await initBackend(config.tfBackend);
log.info(backend, 'tensorflow backend chosen');

const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
const ctx: WorkerContext = {
  redis,
  records: new Records(redis, config.keyPrefix),
  prefix: config.keyPrefix,
  dataDir: config.dataDir,
  workerId: process.env.WORKER_ID || newId('wkr'),
  log,
  current: { jobId: null },
  stopping: { requested: false },
  checkpointIntervalMs: config.checkpointIntervalMs,
};

const heartbeat = () => {
  const memory = tf.memory();
  return beat(redis, config.keyPrefix, {
    id: ctx.workerId,
    host: os.hostname(),
    pid: process.pid,
    backend: backend.backend,
    backend_reason: backend.reason,
    device: backend.device,
    job_id: ctx.current.jobId,
    last_seen: new Date().toISOString(),
    memory: { num_tensors: memory.numTensors, num_bytes: memory.numBytes, rss_bytes: process.memoryUsage().rss },
  }).catch((err) => log.warn({ err: err.message }, 'heartbeat failed'));
};
await heartbeat();
const beating = setInterval(heartbeat, HEARTBEAT_MS);

const worker = new Worker<JobPayload>(QUEUE_NAME, async (job, token) => {
  try {
    await processJob(ctx, job);
  } catch (err) {
    if (!(err instanceof ReturnToQueue)) throw err;
    // Shutting down: the fit checkpointed; hand the job back without using one of its attempts.
    await job.moveToDelayed(Date.now() + 500, token);
    throw new DelayedError();
  } finally {
    await heartbeat();
  }
}, {
  connection: new Redis(config.redisUrl, { maxRetriesPerRequest: null }),
  prefix: bullPrefix(config.keyPrefix),
  concurrency: 1,
  // One job at a time per process: tfjs is single-threaded, and so is a GPU here.
  lockDuration: config.workerLockMs,
  stalledInterval: config.workerLockMs,
  // A job whose worker dies is handed out again until it has had JOB_ATTEMPTS starts.
  maxStalledCount: Math.max(0, config.jobAttempts - 1),
});
worker.on('error', (err) => log.warn({ err: err.message }, 'worker error'));
worker.on('failed', (job, err) => {
  log.warn({ job_id: job?.id, err: err.message }, 'job attempt failed');
  if (job) recordLostJob(ctx, job, err.message).catch((e) => log.error({ err: e }, 'could not record a lost job'));
});
log.info({ worker_id: ctx.workerId, data_dir: config.dataDir }, 'worker ready');

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) {
    log.warn('second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  log.info({ signal, job_id: ctx.current.jobId }, 'worker stopping: the running fit checkpoints at its next batch end and goes back to the queue');
  ctx.stopping.requested = true;
  clearInterval(beating);
  await worker.close();
  await removeWorker(redis, config.keyPrefix, ctx.workerId).catch(() => {});
  redis.disconnect();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
