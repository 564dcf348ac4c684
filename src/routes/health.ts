import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { liveWorkers } from '../jobs/workers-registry.ts';

const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  redis: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
  workers: Type.Integer({ description: 'Live workers (from heartbeats).' }),
  backend: Type.Union([Type.String(), Type.Null()], { description: 'The TensorFlow.js backend the workers run (the first one\'s).' }),
  backend_reason: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'Why the first worker runs that backend.' })),
});

/** GET /health: no key needed, and it says nothing about any tenant. */
const healthRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.get('/health', { schema: { tags: ['health'], security: [], response: { 200: Health, 503: Health } } }, async (_req, reply) => {
    try {
      await app.redis.ping();
    } catch {
      return reply.code(503).header('Retry-After', '2').send({ status: 'degraded' as const, redis: 'down' as const, workers: 0, backend: null });
    }
    const workers = await liveWorkers(app.redis, config.keyPrefix);
    return { status: 'ok' as const, redis: 'ok' as const, workers: workers.length, backend: workers[0]?.backend ?? null, backend_reason: workers[0]?.backend_reason ?? null };
  });
};
export default healthRoutes;
