import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { ErrorResponse, IdParams, ListOf, ListQuery, errorResponses } from '../schemas/common.ts';
import { Model, ModelBody, Summary } from '../schemas/models.ts';
import { newId } from '../metadata/ids.ts';
import { publicModel, type ModelRecord } from '../metadata/model-record.ts';
import { removeModelFiles } from '../storage/model-files.ts';
import { findOr404 } from './lookup.ts';
import multipart from '@fastify/multipart';
import { importModelUpload } from './model-import.ts';

const modelRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.addSchema(Model);
  // A TensorFlow.js model (model.json + weight files) may be uploaded instead of a spec.
  await app.register(multipart, {
    throwFileSizeLimit: true,
    limits: { fileSize: config.limits.modelParams * 4 + 16 * 1024 * 1024, files: 256, fields: 4, fieldSize: 1024 * 1024, parts: 260 },
  });

  app.post('/models', {
    schema: {
      tags: ['models'],
      summary: 'Define and compile a model (Sequential or Functional), or upload a TensorFlow.js model',
      body: {
        content: {
          'application/json': { schema: ModelBody },
          'multipart/form-data': {
            schema: Type.Unsafe<unknown>({
              description: 'A TensorFlow.js model.json and the weight files its weightsManifest names (optional fields: name, compile as JSON). The model starts at version 1 with those weights.',
              properties: { 'model.json': { type: 'string', contentMediaType: 'application/json' }, name: { type: 'string' }, compile: { type: 'string' } },
            }),
          },
        },
      } as unknown as typeof ModelBody,
      response: { 201: Type.Ref(Model), 422: Type.Ref(ErrorResponse), ...errorResponses },
    },
  }, async (req, reply) => {
    if (req.isMultipart()) {
      const imported = await importModelUpload(app, req, config);
      return reply.code(201).header('Location', `/v1/models/${imported.id}`).send(publicModel(imported));
    }
    // Other media types have no body schema: only a JSON object with a spec gets further.
    if (!req.body || typeof req.body !== 'object' || !('spec' in req.body)) {
      throw new ApiError('VALIDATION_FAILED', 'the body must be a JSON object like {"spec": {...}, "compile": {...}}, or a multipart TensorFlow.js model upload', 'body');
    }
    const inspected = await app.tensors.inspect(req.body.spec, req.body.compile ?? null, {
      maxLayers: config.limits.modelLayers,
      maxParams: config.limits.modelParams,
    });
    const spec = req.body.spec as { name?: unknown };
    const rec: ModelRecord = {
      id: newId('mdl'),
      name: req.body.name ?? (typeof spec.name === 'string' ? spec.name : 'model'),
      spec: req.body.spec,
      compile: req.body.compile ?? null,
      compiled: inspected.compile,
      summary: inspected.summary,
      summary_text: inspected.summary_text,
      inputs: inspected.inputs,
      outputs: inspected.outputs,
      versions: [],
      version_counter: 0,
      created_at: new Date().toISOString(),
    };
    await app.records.create('model', req.tenant, rec.id, rec as unknown as Record<string, unknown>);
    return reply.code(201).header('Location', `/v1/models/${rec.id}`).send(publicModel(rec));
  });

  app.get('/models', {
    schema: { tags: ['models'], querystring: ListQuery, response: { 200: ListOf(Type.Ref(Model)), ...errorResponses } },
  }, async (req) => {
    const page = await app.records.list<ModelRecord>('model', req.tenant, req.query.limit, req.query.cursor);
    return { items: page.items.map(publicModel), next_cursor: page.next_cursor };
  });

  app.get('/models/:id', {
    schema: { tags: ['models'], params: IdParams, response: { 200: Type.Ref(Model), ...errorResponses } },
  }, async (req) => publicModel(await findOr404<ModelRecord>(app, 'model', req.tenant, req.params.id)));

  app.get('/models/:id/summary', {
    schema: {
      tags: ['models'],
      summary: 'The model summary: JSON, or the Keras model.summary() table with Accept: text/plain',
      params: IdParams,
      response: { 200: Type.Union([Summary, Type.String()]), ...errorResponses },
    },
  }, async (req, reply) => {
    const rec = await findOr404<ModelRecord>(app, 'model', req.tenant, req.params.id);
    const accept = req.headers.accept ?? '';
    if (accept.includes('text/plain') && !accept.includes('application/json')) {
      return reply.type('text/plain; charset=utf-8').send(rec.summary_text);
    }
    return rec.summary;
  });

  app.delete('/models/:id', {
    schema: { tags: ['models'], params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
  }, async (req, reply) => {
    await findOr404<ModelRecord>(app, 'model', req.tenant, req.params.id);
    if (await app.records.delete('model', req.tenant, req.params.id)) {
      await removeModelFiles(config.dataDir, req.tenant, req.params.id);
    }
    return reply.code(204).send(null);
  });
};
export default modelRoutes;
