import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SpecError } from '../src/errors.ts';
import { Records } from '../src/metadata/records.ts';
import { appendVersion, reserveVersion, type ModelRecord } from '../src/metadata/model-record.ts';
import { keys, type EvaluateParams, type FitParams, type JobPayload, type JobRecord } from '../src/jobs/contract.ts';
import { appendEvent } from '../src/jobs/events.ts';
import { EarlyStopping, validateCallbacks } from '../src/jobs/callbacks.ts';
import { buildModel } from '../src/model-spec/build-model.ts';
import { loadModelFiles, saveModelFiles } from '../src/model-spec/model-io.ts';
import type { CompiledConfig } from '../src/model-spec/types.ts';
import { withTrainingBackend } from '../src/engine/backend.ts';
import { withSeededRandom } from '../src/engine/seeded-random.ts';
import { paths } from '../src/storage/paths.ts';
import { removeModelFiles } from '../src/storage/model-files.ts';
import { evaluate, fit } from './train-loop.ts';
import { loadDataset } from './load-data.ts';

export interface WorkerContext {
  redis: Redis;
  records: Records;
  prefix: string;
  dataDir: string;
  workerId: string;
  log: Logger;
  /** The job this worker runs now, for its heartbeat. */
  current: { jobId: string | null };
}

/** Batch events go out at most this often (epoch, status and done events always go). */
const BATCH_EVENT_INTERVAL_MS = 100;
const CANCEL_POLL_MS = 300;

class Cancelled extends Error {}

type FinalStatus = 'completed' | 'failed' | 'cancelled';

/** Records a job's end on its record and its event stream (status, then done). */
async function finishJob(ctx: WorkerContext, tenant: string, jobId: string, status: FinalStatus, fields: Partial<JobRecord>, history: Record<string, number[]> | null): Promise<void> {
  await ctx.records.patch('job', tenant, jobId, { status, finished_at: new Date().toISOString(), ...fields });
  await appendEvent(ctx.redis, ctx.prefix, jobId, { type: 'status', status });
  await appendEvent(ctx.redis, ctx.prefix, jobId, {
    type: 'done', status, history: history ?? {},
    ...(fields.result ? { result: fields.result } : {}), ...(fields.error ? { error: fields.error } : {}),
  });
}

/**
 * BullMQ fails a job on its own when its worker died too often (the stalled check),
 * without calling the processor: the record still says "running". Record the failure.
 */
export async function recordLostJob(ctx: WorkerContext, job: Job<JobPayload>, reason: string): Promise<void> {
  const { jobId, tenant } = job.data;
  const rec = await ctx.records.get<JobRecord>('job', tenant, jobId);
  if (rec?.status !== 'running') return; // the processor recorded its own outcome
  await finishJob(ctx, tenant, jobId, 'failed', { error: { code: 'WORKER_LOST', message: `the job's worker stopped responding and it was given up: ${reason}` } }, rec.history);
}

/** Processes one BullMQ job: a fit or an evaluate, recorded on the job record and its event stream. */
export async function processJob(ctx: WorkerContext, job: Job<JobPayload>): Promise<void> {
  const { jobId, tenant } = job.data;
  const log = ctx.log.child({ job_id: jobId });
  const rec = await ctx.records.get<JobRecord>('job', tenant, jobId);
  if (!rec) return; // deleted meanwhile
  const emit = (event: { type: string; [k: string]: unknown }) => appendEvent(ctx.redis, ctx.prefix, jobId, event);
  const patch = (fields: Partial<JobRecord>) => ctx.records.patch('job', tenant, jobId, fields);
  const finish = (status: FinalStatus, fields: Partial<JobRecord>, history: Record<string, number[]> | null) =>
    finishJob(ctx, tenant, jobId, status, fields, history);

  if (await ctx.redis.exists(keys.cancel(ctx.prefix, jobId))) {
    await finish('cancelled', {}, rec.history);
    return;
  }
  ctx.current.jobId = jobId;
  // Starts, not failures: a start whose worker died counts too (BullMQ's attemptsMade does not).
  const attempt = Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1);
  await patch({ status: 'running', started_at: new Date().toISOString(), attempts: attempt, worker_id: ctx.workerId, error: null });
  await emit({ type: 'status', status: 'running', worker: { id: ctx.workerId, host: os.hostname() }, attempt });
  log.info({ kind: rec.kind, model_id: rec.model_id }, 'job started');

  let cancelled = false;
  const poll = setInterval(() => {
    ctx.redis.exists(keys.cancel(ctx.prefix, jobId)).then((n) => { if (n) cancelled = true; }, () => {});
  }, CANCEL_POLL_MS);
  const history: Record<string, number[]> = {};
  try {
    const model = await ctx.records.get<ModelRecord>('model', tenant, rec.model_id);
    if (!model) throw new UnrecoverableError(`model ${rec.model_id} was deleted before the job ran`);
    const compiled = (rec.compile as CompiledConfig | null) ?? model.compiled;
    if (!compiled) throw new UnrecoverableError('the model has no compile');
    const data = await loadDataset(ctx.records, ctx.dataDir, tenant, rec.dataset_id, model.inputs, model.outputs);
    const outputNames = model.outputs.map((o) => o.name);
    const baseDir = rec.base_version === null ? null : paths.modelVersion(ctx.dataDir, tenant, model.id, rec.base_version);

    await withTrainingBackend(model.spec, async () => {
      // A rerun on another backend starts the history afresh.
      for (const key of Object.keys(history)) delete history[key];
      // A fit's seed also seeds the initial weights of a model's first fit.
      const seed = rec.kind === 'fit' ? (rec.params as FitParams).seed : undefined;
      const net = baseDir ? await loadModelFiles(baseDir)
        : seed === undefined ? buildModel(model.spec) : withSeededRandom(seed, () => buildModel(model.spec));
      try {
        if (rec.kind === 'evaluate') {
          const result = await evaluate(net, compiled, outputNames, data.x, data.y, (rec.params as EvaluateParams).batch_size);
          await finish('completed', { result }, null);
          log.info({ result }, 'evaluate completed');
          return;
        }
        const params = rec.params as FitParams & { callbacks?: Array<Record<string, unknown>> };
        const validation = params.validation_dataset_id
          ? await loadDataset(ctx.records, ctx.dataDir, tenant, params.validation_dataset_id, model.inputs, model.outputs)
          : undefined;
        const early = validateCallbacks(params.callbacks ?? [], 'callbacks').map((c) => new EarlyStopping(c));
        let best: tf.Tensor[] | null = null;
        let stopEarly = false;
        let lastBatchEvent = 0;
        const result = await fit(net, compiled, outputNames, data.x, data.y, {
          epochs: params.epochs,
          batchSize: params.batch_size,
          validationSplit: params.validation_split,
          shuffle: params.shuffle,
          initialEpoch: params.initial_epoch,
          classWeight: params.class_weight,
          seed: params.seed,
        }, {
          onBatchEnd: async (epoch, batch, logs) => {
            const now = Date.now();
            if (now - lastBatchEvent < BATCH_EVENT_INTERVAL_MS) return;
            lastBatchEvent = now;
            await emit({ type: 'batch', epoch, batch, logs: await logs() });
          },
          onEpochEnd: async (epoch, logs) => {
            for (const [k, v] of Object.entries(logs)) (history[k] ??= []).push(v);
            await emit({ type: 'epoch', epoch, logs });
            await patch({ progress: { epoch: epoch + 1, epochs: params.epochs }, history });
            for (const es of early) {
              const { improved, stop } = es.onEpochEnd(epoch, logs);
              if (improved && es.config.restore_best_weights) {
                best?.forEach((t) => t.dispose());
                best = net.getWeights().map((w) => w.clone());
              }
              if (stop) {
                stopEarly = true;
                const restore = es.config.restore_best_weights && best !== null;
                if (restore) net.setWeights(best!);
                await emit({ type: 'callback', callback: 'early_stopping', epoch, best_epoch: es.bestEpoch, restored_best_weights: restore });
              }
            }
          },
          shouldStop: () => cancelled || stopEarly,
        }, validation);
        (best as tf.Tensor[] | null)?.forEach((t) => t.dispose());
        if (cancelled) throw new Cancelled();
        const modelKey = ctx.records.key('model', tenant, model.id);
        const version = await reserveVersion(ctx.redis, modelKey);
        if (version === 0) throw new UnrecoverableError(`model ${model.id} was deleted while it trained`);
        const versionDir = paths.modelVersion(ctx.dataDir, tenant, model.id, version);
        await saveModelFiles(net, ctx.dataDir, versionDir);
        const metrics = Object.fromEntries(Object.entries(result.history).map(([k, v]) => [k, v[v.length - 1]]));
        if (!(await appendVersion(ctx.redis, modelKey, { version, job_id: jobId, created_at: new Date().toISOString(), metrics }))) {
          await removeModelFiles(ctx.dataDir, tenant, model.id); // deleted meanwhile: leave no orphan files
          throw new UnrecoverableError(`model ${model.id} was deleted while it trained`);
        }
        await finish('completed', { history: result.history, model_version: version, progress: { epoch: result.epochsRun + params.initial_epoch, epochs: params.epochs } }, result.history);
        log.info({ version, epochs: result.epochsRun }, 'fit completed');
      } finally {
        net.dispose();
      }
    });
  } catch (err) {
    if (err instanceof Cancelled) {
      await finish('cancelled', { history }, history);
      log.info('job cancelled');
      return;
    }
    const e = err as Error;
    const userError = err instanceof SpecError || err instanceof UnrecoverableError;
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (userError || lastAttempt) {
      const code = err instanceof SpecError ? err.code : userError ? 'JOB_INVALID' : 'TRAINING_FAILED';
      await finish('failed', { error: { code, message: e.message } }, history);
      log.error({ err }, 'job failed');
      throw userError ? err : new UnrecoverableError(e.message);
    }
    log.warn({ err }, 'job attempt failed; it will be retried');
    await patch({ status: 'queued' });
    await emit({ type: 'status', status: 'queued', retry: true, reason: e.message });
    throw err;
  } finally {
    clearInterval(poll);
    ctx.current.jobId = null;
  }
}
