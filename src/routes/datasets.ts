import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { ErrorResponse, ListOf, errorResponses } from '../schemas/common.ts';
import { Dataset, DatasetBody, DatasetIdParams, DatasetListQuery, DatasetUploadQuery, SplitBody } from '../schemas/datasets.ts';
import { columnsFromJson } from '../datasets/json-ingest.ts';
import { removeDatasetFiles } from '../datasets/dataset-files.ts';
import { publicDataset, type DatasetRecord } from '../datasets/dataset-record.ts';
import { createDataset } from '../datasets/stage.ts';
import { checkUploadQuery, uploadCsv, uploadMultipart, uploadNpz, type UploadQuery } from '../datasets/upload.ts';
import { Builtins, isBuiltinId } from '../datasets/builtin.ts';
import { splitDataset } from '../datasets/split.ts';
import { OPEN_TENANT } from '../plugins/auth.ts';
import { findOr404 } from './lookup.ts';

const CSV_TYPES = ['text/csv', 'application/csv', 'text/tab-separated-values'];
const NPZ_TYPES = ['application/octet-stream', 'application/zip', 'application/x-npz', 'application/x-zip-compressed'];

const uploadDocs = {
  csv: Type.Unsafe<unknown>({ description: 'CSV with a header row; ?name= (required), ?label=col[,col], ?features=col,..., ?delimiter=. Content-Encoding: gzip accepted. Streamed to storage.' }),
  npz: Type.Unsafe<unknown>({ description: 'A .npz archive (np.savez / np.savez_compressed) with arrays x and y, or x_<input> / y_<output>; ?name= required. C order; float32, float64 (stored as float32), float16, int8..int64 (as int32), uint8, bool.' }),
  multipart: Type.Unsafe<unknown>({
    description: 'Parts x and y (or x_<input> / y_<output>), each a .npy or a CSV with a header row; the name as ?name= or a "name" field.',
    properties: { name: { type: 'string' }, x: { type: 'string', contentMediaType: 'application/octet-stream' }, y: { type: 'string', contentMediaType: 'application/octet-stream' } },
  }),
};

const datasetRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.addSchema(Dataset);
  const builtins = new Builtins(config, app.redis, app.records);
  // Streamed bodies: the parsers leave the request stream unread for the route to consume.
  const passThrough = (_req: FastifyRequest, _payload: unknown, done: (err: Error | null, body?: unknown) => void) => done(null);
  app.addContentTypeParser([...CSV_TYPES, ...NPZ_TYPES], passThrough);
  await app.register(multipart, {
    throwFileSizeLimit: true,
    limits: { fileSize: config.limits.uploadBytes, files: 64, fields: 8, fieldSize: 4096, parts: 80, headerPairs: 200 },
  });

  // Every tenant has the built-ins: seed the configured tenants once the server listens (in the
  // background, retried while Redis is away); others on their first datasets request.
  let closing = false;
  app.addHook('onListen', async () => {
    const tenants = config.apiKeys.size ? [...new Set(config.apiKeys.values())] : [OPEN_TENANT];
    const attempt = async (): Promise<void> => {
      if (closing) return;
      try {
        for (const t of tenants) await builtins.ensure(t);
      } catch (err) {
        app.log.warn({ err: (err as Error).message }, 'built-in datasets not seeded yet; retrying');
        setTimeout(() => void attempt(), 2000).unref();
      }
    };
    void attempt();
  });
  app.addHook('onClose', async () => {
    closing = true;
  });

  /** The tenant's dataset (built-ins included) or a 404. */
  const findDataset = async (tenant: string, id: string, path?: string): Promise<DatasetRecord> => {
    if (isBuiltinId(id)) {
      await builtins.ensure(tenant).catch((err) => app.log.warn({ err: (err as Error).message }, 'built-in datasets not seeded'));
      const rec = await builtins.get(id);
      if (rec) return rec;
    }
    return findOr404<DatasetRecord>(app, 'dataset', tenant, id, path);
  };

  /** Records a dataset written to storage; removes its files when that fails. */
  const record = async (tenant: string, rec: DatasetRecord): Promise<void> => {
    try {
      await app.records.create('dataset', tenant, rec.id, rec as unknown as Record<string, unknown>);
    } catch (err) {
      await removeDatasetFiles(config.dataDir, tenant, rec.id);
      throw err;
    }
  };

  /** Runs a streamed upload; a refused one closes the connection rather than read the rest of the body. */
  const streamed = async (req: FastifyRequest, reply: FastifyReply, run: () => Promise<DatasetRecord>): Promise<DatasetRecord> => {
    try {
      return await run();
    } catch (err) {
      if (!req.raw.complete) reply.header('connection', 'close');
      throw err;
    }
  };

  app.post('/datasets', {
    schema: {
      tags: ['datasets'],
      summary: 'Create a dataset: a JSON body, or a streamed CSV, .npz or multipart (.npy / .csv parts) upload',
      querystring: DatasetUploadQuery,
      body: {
        content: {
          'application/json': { schema: DatasetBody },
          'text/csv': { schema: uploadDocs.csv },
          'application/octet-stream': { schema: uploadDocs.npz },
          'multipart/form-data': { schema: uploadDocs.multipart },
        },
      } as never,
      response: { 201: Type.Ref(Dataset), 413: Type.Ref(ErrorResponse), 415: Type.Ref(ErrorResponse), 422: Type.Ref(ErrorResponse), ...errorResponses },
    },
  }, async (req, reply) => {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const query = req.query as UploadQuery;
    const streaming = CSV_TYPES.includes(type) || NPZ_TYPES.includes(type) || type === 'multipart/form-data';
    if (streaming) {
      try {
        checkUploadQuery(query as Record<string, unknown>);
      } catch (err) {
        reply.header('connection', 'close');
        throw err;
      }
    }
    let rec: DatasetRecord;
    if (CSV_TYPES.includes(type)) {
      rec = await streamed(req, reply, () => uploadCsv(req, config, req.tenant, type === 'text/tab-separated-values' && !query.delimiter ? { ...query, delimiter: 'tab' } : query));
    } else if (NPZ_TYPES.includes(type)) {
      rec = await streamed(req, reply, () => uploadNpz(req, config, req.tenant, query));
    } else if (type === 'multipart/form-data') {
      rec = await streamed(req, reply, () => uploadMultipart(req, config, req.tenant, query));
    } else {
      const body = req.body as Static<typeof DatasetBody>;
      const columns = columnsFromJson(body, config.limits);
      if (columns.samples === 0) throw new ApiError('DATASET_INVALID', 'the dataset has no samples', 'x');
      rec = await createDataset(config.dataDir, req.tenant, { name: body.name, source: 'json' }, { rows: config.limits.datasetSamples, columns: Infinity }, async (stage) => {
        for (const [side, cols] of [['x', columns.x], ['y', columns.y], ['w', columns.w ? [columns.w] : []]] as const) {
          for (const c of cols) {
            const w = await stage.column(side, c.info.name, 'float32', c.info.shape);
            await w.append(c.data);
          }
        }
      });
    }
    // Files first, record last: a failure in between leaves no record pointing at nothing.
    await record(req.tenant, rec);
    return reply.code(201).header('Location', `/v1/datasets/${rec.id}`).send(publicDataset(rec));
  });

  app.get('/datasets', {
    schema: { tags: ['datasets'], querystring: DatasetListQuery, response: { 200: ListOf(Type.Ref(Dataset)), ...errorResponses } },
  }, async (req) => {
    if (req.query.builtin) {
      await builtins.ensure(req.tenant).catch(() => {});
      return { items: (await builtins.list()).map(publicDataset), next_cursor: null };
    }
    const page = await app.records.list<DatasetRecord>('dataset', req.tenant, req.query.limit, req.query.cursor);
    return { items: page.items.map(publicDataset), next_cursor: page.next_cursor };
  });

  app.get('/datasets/:id', {
    schema: { tags: ['datasets'], params: DatasetIdParams, response: { 200: Type.Ref(Dataset), ...errorResponses } },
  }, async (req) => publicDataset(await findDataset(req.tenant, req.params.id)));

  app.delete('/datasets/:id', {
    schema: { tags: ['datasets'], params: DatasetIdParams, response: { 204: Type.Null(), 409: Type.Ref(ErrorResponse), ...errorResponses } },
  }, async (req, reply) => {
    if (isBuiltinId(req.params.id)) {
      throw new ApiError('DATASET_READ_ONLY', `${req.params.id} is a built-in dataset, shared by every tenant: it cannot be deleted (split it to make your own copies)`);
    }
    await findOr404<DatasetRecord>(app, 'dataset', req.tenant, req.params.id);
    if (await app.records.delete('dataset', req.tenant, req.params.id)) {
      await removeDatasetFiles(config.dataDir, req.tenant, req.params.id);
    }
    return reply.code(204).send(null);
  });

  app.post('/datasets/:id/split', {
    schema: {
      tags: ['datasets'],
      summary: 'Split a dataset into new datasets (shuffled by a seed, optionally stratified), like train_test_split',
      params: DatasetIdParams,
      body: SplitBody,
      response: { 201: ListOf(Type.Ref(Dataset)), 422: Type.Ref(ErrorResponse), ...errorResponses },
    },
  }, async (req, reply) => {
    const src = await findDataset(req.tenant, req.params.id);
    const parts = await splitDataset(config.dataDir, req.tenant, src, req.body, { rows: Infinity, columns: Infinity }, config.datasets.shuffleWindowBytes);
    const done: DatasetRecord[] = [];
    try {
      for (const rec of parts) {
        await app.records.create('dataset', req.tenant, rec.id, rec as unknown as Record<string, unknown>);
        done.push(rec);
      }
    } catch (err) {
      for (const rec of done) await app.records.delete('dataset', req.tenant, rec.id).catch(() => {});
      for (const rec of parts) await removeDatasetFiles(config.dataDir, req.tenant, rec.id);
      throw err;
    }
    return reply.code(201).send({ items: parts.map(publicDataset), next_cursor: null });
  });
};
export default datasetRoutes;
