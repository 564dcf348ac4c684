import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { ErrorResponse, IdParams, ListOf, ListQuery, errorResponses } from '../schemas/common.ts';
import { Dataset, DatasetBody } from '../schemas/datasets.ts';
import { newId } from '../metadata/ids.ts';
import { columnsFromJson } from '../datasets/json-ingest.ts';
import { writeDatasetFiles, removeDatasetFiles } from '../datasets/dataset-files.ts';
import { publicDataset, type DatasetRecord } from '../datasets/dataset-record.ts';
import { findOr404 } from './lookup.ts';

const datasetRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.addSchema(Dataset);

  app.post('/datasets', {
    schema: {
      tags: ['datasets'],
      summary: 'Create a dataset from a JSON body',
      body: DatasetBody,
      response: { 201: Type.Ref(Dataset), 413: Type.Ref(ErrorResponse), 422: Type.Ref(ErrorResponse), ...errorResponses },
    },
  }, async (req, reply) => {
    const columns = columnsFromJson(req.body, config.limits);
    if (columns.samples === 0) throw new ApiError('DATASET_INVALID', 'the dataset has no samples', 'x');
    const rec: DatasetRecord = {
      id: newId('ds'),
      name: req.body.name,
      samples: columns.samples,
      x_columns: columns.x.map((c) => c.info),
      y_columns: columns.y.map((c) => c.info),
      created_at: new Date().toISOString(),
    };
    // Files first, record last: a failure in between leaves no record pointing at nothing.
    await writeDatasetFiles(config.dataDir, req.tenant, rec, [...columns.x, ...columns.y]);
    try {
      await app.records.create('dataset', req.tenant, rec.id, rec as unknown as Record<string, unknown>);
    } catch (err) {
      await removeDatasetFiles(config.dataDir, req.tenant, rec.id);
      throw err;
    }
    return reply.code(201).header('Location', `/v1/datasets/${rec.id}`).send(publicDataset(rec));
  });

  app.get('/datasets', {
    schema: { tags: ['datasets'], querystring: ListQuery, response: { 200: ListOf(Type.Ref(Dataset)), ...errorResponses } },
  }, async (req) => {
    const page = await app.records.list<DatasetRecord>('dataset', req.tenant, req.query.limit, req.query.cursor);
    return { items: page.items.map(publicDataset), next_cursor: page.next_cursor };
  });

  app.get('/datasets/:id', {
    schema: { tags: ['datasets'], params: IdParams, response: { 200: Type.Ref(Dataset), ...errorResponses } },
  }, async (req) => publicDataset(await findOr404<DatasetRecord>(app, 'dataset', req.tenant, req.params.id)));

  app.delete('/datasets/:id', {
    schema: { tags: ['datasets'], params: IdParams, response: { 204: Type.Null(), ...errorResponses } },
  }, async (req, reply) => {
    await findOr404<DatasetRecord>(app, 'dataset', req.tenant, req.params.id);
    if (await app.records.delete('dataset', req.tenant, req.params.id)) {
      await removeDatasetFiles(config.dataDir, req.tenant, req.params.id);
    }
    return reply.code(204).send(null);
  });
};
export default datasetRoutes;
