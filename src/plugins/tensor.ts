import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { TensorClient } from '../inference/tensor-client.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The API's tensor thread: model inspection and predictions, off the event loop. */
    tensors: TensorClient;
  }
}

export default fp(
  async (app, opts: { config: Config }) => {
    const client = new TensorClient({ tfBackend: opts.config.tfBackend, cacheSize: opts.config.modelCacheSize, log: app.log });
    app.decorate('tensors', client);
    app.addHook('onClose', () => client.close());
  },
  { name: 'tensor' },
);
