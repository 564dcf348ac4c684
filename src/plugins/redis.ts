import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import type { Config } from '../config.ts';
import { Records } from '../metadata/records.ts';
import { QUEUE_NAME, bullPrefix, type JobPayload } from '../jobs/contract.ts';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
    records: Records;
    /** The training queue; created on first use. */
    queue: () => Queue<JobPayload>;
  }
}

/**
 * Redis for metadata and the BullMQ queue. The API's connection does not queue
 * commands while Redis is down (enableOfflineQueue false): a request during an
 * outage fails at once and answers 503, instead of hanging.
 */
export default fp(
  async (app, opts: { config: Config }) => {
    const url = opts.config.redisUrl ?? 'redis://127.0.0.1:6379';
    const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redis.on('error', (err) => app.log.warn({ err: err.message }, 'redis connection error'));
    let queue: Queue<JobPayload> | undefined;
    app.decorate('redis', redis);
    app.decorate('records', new Records(redis, opts.config.keyPrefix));
    app.decorate('queue', () => {
      if (!queue) {
        queue = new Queue<JobPayload>(QUEUE_NAME, { connection: new Redis(url, { maxRetriesPerRequest: null }), prefix: bullPrefix(opts.config.keyPrefix) });
        queue.on('error', (err) => app.log.warn({ err: err.message }, 'queue connection error'));
      }
      return queue;
    });
    // Boot does not wait for Redis: the API starts, answers 503 while Redis is away,
    // and ioredis keeps reconnecting in the background.
    app.addHook('onReady', async () => {
      if (redis.status === 'wait') {
        await redis.connect().catch((err) => app.log.warn({ err: err.message }, 'redis not reachable yet; retrying in the background'));
      }
    });
    app.addHook('onClose', async () => {
      if (queue) {
        const conn = await queue.client;
        await queue.close();
        conn.disconnect();
      }
      if (redis.status !== 'end') redis.disconnect();
    });
  },
  { name: 'redis' },
);
