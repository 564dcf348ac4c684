/**
 * Export of a trained model version in the TensorFlow.js layers format, exactly as stored:
 * model.json and its weights file, so `tf.loadLayersModel(".../versions/1/model.json")`
 * loads it unchanged (the weights manifest names weights.bin, next to model.json).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { errorResponses } from '../schemas/common.ts';
import type { ModelRecord } from '../metadata/model-record.ts';
import { paths } from '../storage/paths.ts';
import { findOr404 } from './lookup.ts';

const VersionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  version: Type.String({ pattern: '^([1-9][0-9]{0,8}|latest)$', description: 'A version number, or "latest".' }),
});

const modelExportRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  /** The stored directory of a model version ("latest": the newest). */
  const versionDir = async (tenant: string, id: string, version: string): Promise<string> => {
    const model = await findOr404<ModelRecord>(app, 'model', tenant, id);
    const v = version === 'latest' ? model.versions.at(-1)?.version : Number(version);
    if (v === undefined) throw new ApiError('MODEL_HAS_NO_VERSION', 'the model has not been trained yet: run a fit first');
    if (!model.versions.some((x) => x.version === v)) throw new ApiError('NOT_FOUND', `the model has no version ${version}`, 'version');
    return paths.modelVersion(config.dataDir, tenant, id, v);
  };

  app.get('/models/:id/versions/:version/model.json', {
    schema: {
      tags: ['models'],
      summary: 'Export a model version: TensorFlow.js layers-format model.json (weights in weights.bin beside it)',
      params: VersionParams,
      response: { 200: Type.Object({}, { additionalProperties: true }), ...errorResponses },
    },
  }, async (req, reply) => {
    const dir = await versionDir(req.tenant, req.params.id, req.params.version);
    const modelJson = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
    return reply.header('Cache-Control', 'no-store').send(modelJson);
  });

  app.get('/models/:id/versions/:version/weights.bin', {
    schema: {
      tags: ['models'],
      summary: 'Export a model version: its weights (the file model.json\'s weightsManifest names)',
      params: VersionParams,
      response: { 200: Type.Any({ description: 'application/octet-stream' }), ...errorResponses },
    },
  }, async (req, reply) => {
    const dir = await versionDir(req.tenant, req.params.id, req.params.version);
    const data = await fs.readFile(path.join(dir, 'weights.bin'));
    return reply.type('application/octet-stream').header('Cache-Control', 'no-store').send(data);
  });
};
export default modelExportRoutes;
