import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { errorResponses } from '../schemas/common.ts';
import { liveWorkers } from '../jobs/workers-registry.ts';

const Worker = Type.Object({
  id: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  backend: Type.String(),
  backend_reason: Type.Optional(Type.String({ description: 'Why this backend: TF_BACKEND, or why each faster one was passed over.' })),
  device: Type.String(),
  job_id: Type.Union([Type.String(), Type.Null()]),
  last_seen: Type.String(),
  memory: Type.Object({ num_tensors: Type.Integer(), num_bytes: Type.Integer(), rss_bytes: Type.Integer({ description: 'Resident memory of the worker process.' }) }),
});

/** GET /v1/workers: the live workers, from heartbeats. Job ids of other tenants are hidden. */
const workerRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.get('/workers', {
    schema: { tags: ['workers'], response: { 200: Type.Object({ items: Type.Array(Worker), next_cursor: Type.Null() }), ...errorResponses } },
  }, async (req) => {
    const workers = await liveWorkers(app.redis, config.keyPrefix);
    const items = await Promise.all(workers.map(async (w) => {
      const own = w.job_id ? await app.redis.exists(app.records.key('job', req.tenant, w.job_id)) : 0;
      return { ...w, job_id: own ? w.job_id : null };
    }));
    return { items, next_cursor: null };
  });
};
export default workerRoutes;
