import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { ApiError, SpecError } from '../errors.ts';
import { ErrorResponse, IdParams, ListOf, errorResponses } from '../schemas/common.ts';
import { EvaluateBody, FitBody, Job, JobListQuery } from '../schemas/jobs.ts';
import { newId } from '../metadata/ids.ts';
import type { ModelRecord } from '../metadata/model-record.ts';
import type { DatasetRecord } from '../datasets/dataset-record.ts';
import { FINISHED, keys, type JobRecord } from '../jobs/contract.ts';
import { enqueueJob } from '../jobs/enqueue.ts';
import { appendEvent } from '../jobs/events.ts';
import { matchColumns } from '../jobs/match-dataset.ts';
import { validateCallbacks } from '../jobs/callbacks.ts';
import { checkTargetShape, resolveCompile } from '../model-spec/compile.ts';
import type { CompiledConfig } from '../model-spec/types.ts';
import { findOr404 } from './lookup.ts';

/** Public view of a job record. */
function publicJob(job: JobRecord) {
  const { worker_id: _w, compile: _c, params, ...rest } = job;
  return { ...rest, params: params as unknown as Record<string, unknown> };
}

/** Checks that a dataset fits the model's inputs and outputs under its losses (422 otherwise). */
function checkDataset(model: ModelRecord, compiled: CompiledConfig, ds: DatasetRecord, path: string): void {
  matchColumns(ds.x_columns, model.inputs, 'x', path);
  const ys = matchColumns(ds.y_columns, model.outputs, 'y', path);
  ys.forEach((col, i) => {
    const problem = checkTargetShape(model.outputs[i], compiled.losses[i], col.shape, { min: col.min, max: col.max }, compiled.metrics[i]);
    if (problem) throw new SpecError(path, `output "${model.outputs[i].name}": ${problem}`, 'DATASET_MISMATCH');
  });
}

function checkBatchSize(batchSize: number, limit: number): void {
  if (batchSize > limit) throw new ApiError('LIMIT_EXCEEDED', `batch_size ${batchSize} is over the limit of ${limit} (MAX_BATCH_SIZE)`, 'batch_size');
}

/** The model's compile; a model defined without one cannot train or evaluate yet (422). */
function requireCompiled(model: ModelRecord): CompiledConfig {
  if (!model.compiled) throw new ApiError('COMPILE_INVALID', 'the model was created without compile: give "compile" with this fit (optimizer, loss, metrics)', 'compile');
  return model.compiled;
}

function newJob(kind: JobRecord['kind'], model: ModelRecord, datasetId: string, params: JobRecord['params'], compile: unknown): JobRecord {
  const newest = model.versions.at(-1)?.version ?? null;
  return {
    id: newId('job'),
    kind,
    model_id: model.id,
    dataset_id: datasetId,
    status: 'queued',
    params,
    compile,
    progress: null,
    history: null,
    result: null,
    error: null,
    base_version: newest,
    model_version: null,
    attempts: 0,
    worker_id: null,
    created_at: new Date().toISOString(),
    started_at: null,
    finished_at: null,
  };
}

const jobRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.addSchema(Job);
  const accepted = { 202: Type.Ref(Job), 409: Type.Ref(ErrorResponse), 422: Type.Ref(ErrorResponse), ...errorResponses };

  app.post('/models/:id/fit', {
    schema: { tags: ['jobs'], summary: 'Train the model (model.fit) as a job', params: IdParams, body: FitBody, response: accepted },
  }, async (req, reply) => {
    const body = req.body;
    const model = await findOr404<ModelRecord>(app, 'model', req.tenant, req.params.id);
    if (body.epochs > config.limits.epochs) throw new ApiError('LIMIT_EXCEEDED', `epochs ${body.epochs} is over the limit of ${config.limits.epochs} (MAX_EPOCHS)`, 'epochs');
    checkBatchSize(body.batch_size, config.limits.batchSize);
    if (body.initial_epoch >= body.epochs) throw new ApiError('FIT_OPTIONS_INVALID', `initial_epoch (${body.initial_epoch}) must be less than epochs (${body.epochs})`, 'initial_epoch');
    if (body.validation_split !== undefined && body.validation_dataset_id !== undefined) {
      throw new ApiError('FIT_OPTIONS_INVALID', 'give validation_split or validation_dataset_id, not both', 'validation_dataset_id');
    }
    if (body.class_weight && model.outputs.length > 1) throw new ApiError('FIT_OPTIONS_INVALID', 'class_weight applies to single-output models only', 'class_weight');
    validateCallbacks(body.callbacks ?? [], 'callbacks');
    const compiled = body.compile ? resolveCompile(body.compile, model.outputs, 'compile') : requireCompiled(model);
    const ds = await findOr404<DatasetRecord>(app, 'dataset', req.tenant, body.dataset_id, 'dataset_id');
    checkDataset(model, compiled, ds, 'dataset_id');
    if (body.validation_dataset_id) {
      const val = await findOr404<DatasetRecord>(app, 'dataset', req.tenant, body.validation_dataset_id, 'validation_dataset_id');
      checkDataset(model, compiled, val, 'validation_dataset_id');
    }
    const trainSamples = body.validation_split ? ds.samples - Math.floor(ds.samples * body.validation_split) : ds.samples;
    if (trainSamples < 1) throw new ApiError('FIT_OPTIONS_INVALID', `validation_split ${body.validation_split} leaves no training samples out of ${ds.samples}`, 'validation_split');
    const { dataset_id, compile: _c, ...params } = body;
    const job = newJob('fit', model, dataset_id, params, body.compile ? compiled : null);
    // A compile given with a fit recompiles the model, as model.compile() does in Keras:
    // later fits and evaluates use it too.
    if (body.compile) await app.records.patch('model', req.tenant, model.id, { compile: body.compile, compiled });
    await enqueueJob(app, config.keyPrefix, req.tenant, job, config.jobAttempts);
    return reply.code(202).header('Location', `/v1/jobs/${job.id}`).send(publicJob(job));
  });

  app.post('/models/:id/evaluate', {
    schema: { tags: ['jobs'], summary: 'Evaluate the model (model.evaluate) as a job', params: IdParams, body: EvaluateBody, response: accepted },
  }, async (req, reply) => {
    const model = await findOr404<ModelRecord>(app, 'model', req.tenant, req.params.id);
    checkBatchSize(req.body.batch_size, config.limits.batchSize);
    const version = req.body.version ?? model.versions.at(-1)?.version;
    if (version === undefined) throw new ApiError('MODEL_HAS_NO_VERSION', 'the model has not been trained yet: run a fit first');
    if (!model.versions.some((v) => v.version === version)) throw new ApiError('NOT_FOUND', `the model has no version ${version}`, 'version');
    const ds = await findOr404<DatasetRecord>(app, 'dataset', req.tenant, req.body.dataset_id, 'dataset_id');
    checkDataset(model, requireCompiled(model), ds, 'dataset_id');
    const job = newJob('evaluate', model, ds.id, { batch_size: req.body.batch_size, ...(req.body.sample_weight === false ? { sample_weight: false } : {}) }, model.compiled);
    job.base_version = version;
    await enqueueJob(app, config.keyPrefix, req.tenant, job, config.jobAttempts);
    return reply.code(202).header('Location', `/v1/jobs/${job.id}`).send(publicJob(job));
  });

  app.get('/jobs', {
    schema: { tags: ['jobs'], querystring: JobListQuery, response: { 200: ListOf(Type.Ref(Job)), ...errorResponses } },
  }, async (req) => {
    const { limit, cursor, model_id, status } = req.query;
    // Filters read ahead in pages; the index is small per tenant.
    const items: JobRecord[] = [];
    let next: string | null | undefined = cursor;
    do {
      const page: { items: JobRecord[]; next_cursor: string | null } = await app.records.list<JobRecord>('job', req.tenant, limit, next ?? undefined);
      for (const job of page.items) {
        if ((!model_id || job.model_id === model_id) && (!status || job.status === status)) items.push(job);
        if (items.length === limit) return { items: items.map(publicJob), next_cursor: job.id };
      }
      next = page.next_cursor;
    } while (next);
    return { items: items.map(publicJob), next_cursor: null };
  });

  app.get('/jobs/:id', {
    schema: { tags: ['jobs'], params: IdParams, response: { 200: Type.Ref(Job), ...errorResponses } },
  }, async (req) => publicJob(await findOr404<JobRecord>(app, 'job', req.tenant, req.params.id)));

  app.post('/jobs/:id/cancel', {
    schema: { tags: ['jobs'], summary: 'Cancel a queued or running job', params: IdParams, response: { 202: Type.Ref(Job), 409: Type.Ref(ErrorResponse), ...errorResponses } },
  }, async (req, reply) => {
    const job = await findOr404<JobRecord>(app, 'job', req.tenant, req.params.id);
    if (FINISHED.has(job.status)) throw new ApiError('JOB_NOT_CANCELLABLE', `the job already ${job.status}`);
    // The flag reaches a running worker at its next batch end; a waiting job is removed now.
    await app.redis.set(keys.cancel(config.keyPrefix, job.id), '1', 'EX', 7 * 24 * 3600);
    const queued = await app.queue().getJob(job.id);
    const state = queued ? await queued.getState() : 'unknown';
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'unknown') {
      const removed = queued ? await queued.remove().then(() => true, () => false) : true;
      if (removed) {
        const finished_at = new Date().toISOString();
        await app.records.patch('job', req.tenant, job.id, { status: 'cancelled', finished_at });
        await appendEvent(app.redis, config.keyPrefix, job.id, { type: 'status', status: 'cancelled' });
        await appendEvent(app.redis, config.keyPrefix, job.id, { type: 'done', status: 'cancelled', history: job.history ?? {} });
        return reply.code(202).send(publicJob({ ...job, status: 'cancelled', finished_at }));
      }
    }
    return reply.code(202).send(publicJob(job));
  });
};
export default jobRoutes;
