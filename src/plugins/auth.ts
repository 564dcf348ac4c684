import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request's key belongs to ("default" in open mode). */
    tenant: string;
  }
}

export const OPEN_TENANT = 'default';

function bearer(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  // Browsers cannot set headers on a WebSocket: they pass ?access_token=.
  const query = req.query as Record<string, unknown> | undefined;
  return typeof query?.access_token === 'string' ? query.access_token : undefined;
}

/** Maps the request's API key to its tenant; 401 without a valid key (when keys are configured). */
export default fp(
  async (app, opts: { config: Config; publicPaths: string[] }) => {
    const keys = opts.config.apiKeys;
    app.decorateRequest('tenant', '');
    app.addHook('onRequest', async (req) => {
      if (keys.size === 0) {
        req.tenant = OPEN_TENANT;
        return;
      }
      const path = req.url.split('?')[0];
      if (opts.publicPaths.some((p) => path === p || path.startsWith(`${p}/`))) return;
      const key = bearer(req);
      const tenant = key ? keys.get(key) : undefined;
      if (!tenant) throw new ApiError('UNAUTHORIZED', key ? 'the API key is not valid' : 'send an API key as "Authorization: Bearer <key>"');
      req.tenant = tenant;
    });
  },
  { name: 'auth' },
);
