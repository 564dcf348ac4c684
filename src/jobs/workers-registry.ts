import type { Redis } from 'ioredis';
import { keys } from './contract.ts';

/** A worker's heartbeat, as GET /v1/workers lists it. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  backend: string;
  /** Why this backend: TF_BACKEND, or why each faster one was passed over. */
  backend_reason?: string;
  device: string;
  job_id: string | null;
  last_seen: string;
  /** tf.memory() after the last job, to spot leaks. */
  memory: { num_tensors: number; num_bytes: number; rss_bytes: number };
}

export const HEARTBEAT_MS = 2000;
const HEARTBEAT_TTL_S = 10;

/** Writes a worker's heartbeat; it expires unless renewed. */
export async function beat(redis: Redis, prefix: string, info: WorkerInfo): Promise<void> {
  await redis
    .multi()
    .set(keys.worker(prefix, info.id), JSON.stringify(info), 'EX', HEARTBEAT_TTL_S)
    .sadd(keys.workers(prefix), info.id)
    .exec();
}

export async function removeWorker(redis: Redis, prefix: string, id: string): Promise<void> {
  await redis.multi().del(keys.worker(prefix, id)).srem(keys.workers(prefix), id).exec();
}

/** Workers whose heartbeat has not expired; expired ones are pruned from the set. */
export async function liveWorkers(redis: Redis, prefix: string): Promise<WorkerInfo[]> {
  const ids = await redis.smembers(keys.workers(prefix));
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => keys.worker(prefix, id)));
  const dead = ids.filter((_, i) => values[i] === null);
  if (dead.length) await redis.srem(keys.workers(prefix), ...dead);
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as WorkerInfo)
    .sort((a, b) => a.id.localeCompare(b.id));
}
