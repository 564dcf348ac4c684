import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { Type } from '@sinclair/typebox';
import { ErrorResponse, IdParams, errorResponses } from '../schemas/common.ts';
import { EventsQuery } from '../schemas/jobs.ts';
import type { JobRecord } from '../jobs/contract.ts';
import { findOr404 } from './lookup.ts';

const PING_INTERVAL_MS = 30_000;

/**
 * GET /v1/jobs/:id/events (WebSocket): every event after `since`, then live
 * ones, one JSON object per message; the server closes with 1000 after `done`.
 */
const eventRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.route({
    method: 'GET',
    url: '/jobs/:id/events',
    schema: {
      tags: ['jobs'],
      summary: 'Live job events over a WebSocket (status, batch, epoch, done)',
      params: IdParams,
      querystring: EventsQuery,
      response: { 426: Type.Ref(ErrorResponse), ...errorResponses },
    },
    // Runs before the upgrade: an unknown job answers a plain 404, not a socket.
    preValidation: async (req) => {
      const { id } = req.params as { id: string };
      await findOr404<JobRecord>(app, 'job', req.tenant, id);
      if (app.eventsHub.clientCount(id) >= config.limits.wsClientsPerJob) {
        throw new ApiError('LIMIT_EXCEEDED', `job ${id} already has ${config.limits.wsClientsPerJob} watchers (MAX_WS_CLIENTS_PER_JOB)`);
      }
    },
    // A plain GET (no Upgrade header) gets a 426 that says what to do.
    handler: async () => {
      throw new ApiError('UPGRADE_REQUIRED', 'this is a WebSocket endpoint: connect with ws:// (e.g. npx wscat -c ws://host/v1/jobs/<id>/events)');
    },
    wsHandler: async (socket, req) => {
      const { id } = req.params;
      let unsubscribe: (() => void) | undefined;
      let closed = false;
      // Pings keep idle proxies from dropping a quiet socket (a long epoch with no batch
      // events) and find clients that vanished without a close.
      let alive = true;
      socket.on('pong', () => { alive = true; });
      const keepalive = setInterval(() => {
        if (!alive) return socket.terminate();
        alive = false;
        socket.ping();
      }, PING_INTERVAL_MS);
      socket.on('close', () => {
        closed = true;
        clearInterval(keepalive);
        unsubscribe?.();
      });
      socket.on('error', (err) => req.log.debug({ err }, 'websocket error'));
      try {
        const off = await app.eventsHub.subscribe(id, req.query.since, (event) => {
          if (socket.readyState !== socket.OPEN) return;
          socket.send(JSON.stringify(event));
          if (event.type === 'done') socket.close(1000, 'job finished');
        });
        if (closed) off();
        else unsubscribe = off;
      } catch (err) {
        req.log.warn({ err }, 'could not subscribe to job events');
        socket.close(1011, 'events unavailable, reconnect with ?since=');
      }
    },
  });
};
export default eventRoutes;
