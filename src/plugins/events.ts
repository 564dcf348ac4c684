import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { EventsHub } from '../jobs/events-hub.ts';

declare module 'fastify' {
  interface FastifyInstance {
    eventsHub: EventsHub;
  }
}

/** The job events fan-out; its reader holds its own blocking Redis connection. */
export default fp(
  async (app, opts: { config: Config }) => {
    const reader = app.redis.duplicate({ lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null });
    reader.on('error', (err) => app.log.warn({ err: err.message }, 'events reader connection error'));
    const hub = new EventsHub(app.redis, reader, opts.config.keyPrefix, app.log);
    app.decorate('eventsHub', hub);
    app.addHook('onClose', () => hub.close());
  },
  { name: 'events', dependencies: ['redis'] },
);
