import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Ajv, type AnySchema } from 'ajv';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Config } from './config.ts';
import { ApiError, ERROR_CODES, errorBody, SpecError } from './errors.ts';
import { ErrorResponse } from './schemas/common.ts';
import redisPlugin from './plugins/redis.ts';
import authPlugin from './plugins/auth.ts';
import camelCasePlugin from './plugins/camel-case.ts';
import tensorPlugin from './plugins/tensor.ts';
import eventsPlugin from './plugins/events.ts';
import healthRoutes from './routes/health.ts';
import datasetRoutes from './routes/datasets.ts';
import modelRoutes from './routes/models.ts';
import modelExportRoutes from './routes/model-export.ts';
import jobRoutes from './routes/jobs.ts';
import eventRoutes from './routes/events.ts';
import predictRoutes from './routes/predict.ts';
import workerRoutes from './routes/workers.ts';

export interface AppOptions {
  /** A pino logger config, or false to log nothing (tests). */
  logger?: boolean | Record<string, unknown>;
}

/** "/spec/layers/1/units" -> "spec.layers[1].units" */
function jsonPointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function isRedisDown(err: Error): boolean {
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|MaxRetriesPerRequest|enableOfflineQueue/i.test(err.message ?? '');
}

/**
 * Bodies are JSON and validated strictly (no "32" for 32, unknown fields refused, not
 * dropped); query strings and params are text, so their numbers and booleans are coerced.
 */
function buildValidatorCompiler(externalSchemas: unknown) {
  const strict = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: false, strict: false });
  const coercing = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: true, strict: false });
  for (const schema of Object.values((externalSchemas ?? {}) as Record<string, AnySchema>)) {
    strict.addSchema(schema);
    coercing.addSchema(schema);
  }
  return ({ schema, httpPart }: { schema: AnySchema; httpPart?: string }) => (httpPart === 'body' ? strict : coercing).compile(schema);
}

/** The Fastify app, not listening: server.ts listens, tests inject or listen on port 0. */
export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel, redact: ['req.headers.authorization'] },
    bodyLimit: config.limits.bodyBytes,
    forceCloseConnections: true,
    // Through the schema controller, so contexts that add shared schemas keep this compiler.
    schemaController: { compilersFactory: { buildValidator: buildValidatorCompiler } },
    // Errors the router raises before any route runs, in our error format too.
    frameworkErrors: (err, _req, reply) => {
      const r = reply as unknown as { code: (status: number) => { send: (body: unknown) => void } };
      if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        return r.code(404).send(errorBody('NOT_FOUND', 'no such resource: the id in the URL is longer than any id'));
      }
      return r.code(400).send(errorBody('VALIDATION_FAILED', `the URL is not valid: ${err.message}`));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((err: FastifyError | ApiError | SpecError, req, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send(errorBody(err.code, err.message, err.path, err.details));
    }
    if (err instanceof SpecError) {
      return reply.code(ERROR_CODES[err.code].status).send(errorBody(err.code, err.message, err.path, err.details));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const first = fe.validation[0];
      const context = fe.validationContext === 'querystring' ? 'query' : fe.validationContext ?? 'body';
      let path = jsonPointerToPath(first?.instancePath ?? '');
      const params = (first?.params ?? {}) as Record<string, unknown>;
      if (params.additionalProperty) path = path ? `${path}.${params.additionalProperty}` : String(params.additionalProperty);
      if (params.missingProperty) path = path ? `${path}.${params.missingProperty}` : String(params.missingProperty);
      const where = context === 'body' ? path || 'body' : path ? `${context}.${path}` : context;
      const what = params.additionalProperty ? 'is not a known field' : first?.message ?? 'is invalid';
      return reply.code(400).send(errorBody('VALIDATION_FAILED', `${where} ${what}`, where));
    }
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE', `the body is over the limit of ${config.limits.bodyBytes} bytes (MAX_BODY_BYTES)`));
    }
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send(errorBody('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${req.headers['content-type']} is not accepted here; send application/json`));
    }
    if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (fe.statusCode === 400 && fe instanceof SyntaxError)) {
      return reply.code(400).send(errorBody('INVALID_JSON', `the body is not valid JSON: ${fe.message}`));
    }
    if (isRedisDown(fe)) {
      req.log.warn({ err: fe.message }, 'redis unavailable');
      return reply.code(503).header('Retry-After', '2').send(errorBody('REDIS_UNAVAILABLE', 'the metadata store is unreachable; retry shortly'));
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send(errorBody('VALIDATION_FAILED', fe.message));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(errorBody('INTERNAL', 'an unexpected error occurred; it has been logged'));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  await app.register(swagger, {
    // Name shared schemas by their $id in components (ErrorResponse, Model, ...).
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Keras training service',
        version: '1.0.0',
        description: 'Keras-style models over REST: datasets, models, fit / evaluate jobs on GPU workers, live events, predictions. See API.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addSchema(ErrorResponse);

  // Before auth: its hooks mark upgrade requests, so a refused upgrade (401, 404) closes its socket.
  await app.register(websocket, {
    options: { maxPayload: 64 * 1024 },
    // Shutting down: "going away" (1001) to every client, and each close handshake a second to finish.
    preClose: async function closeSockets(this: FastifyInstance) {
      const server = this.websocketServer;
      await Promise.all([...server.clients].map((client) => new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        client.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        client.close(1001, 'server shutting down');
      })));
      server.close();
    },
  });
  await app.register(redisPlugin, { config });
  await app.register(authPlugin, { config, publicPaths: ['/health', '/docs'] });
  await app.register(camelCasePlugin);
  await app.register(tensorPlugin, { config });
  await app.register(eventsPlugin, { config });

  await app.register(healthRoutes, { config });
  await app.register(async (v1) => {
    await v1.register(datasetRoutes, { config });
    await v1.register(modelRoutes, { config });
    await v1.register(modelExportRoutes, { config });
    await v1.register(jobRoutes, { config });
    await v1.register(eventRoutes, { config });
    await v1.register(predictRoutes, { config });
    await v1.register(workerRoutes, { config });
  }, { prefix: '/v1' });

  return app as unknown as FastifyInstance;
}
