import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SpecError } from '../src/errors.ts';
import { Records } from '../src/metadata/records.ts';
import { appendVersion, reserveVersion, type ModelRecord } from '../src/metadata/model-record.ts';
import { keys, type EvaluateParams, type FitParams, type JobError, type JobPayload, type JobRecord } from '../src/jobs/contract.ts';
import { appendEvent, lastEventOfType } from '../src/jobs/events.ts';
import { EarlyStopping, makeCallback, ModelCheckpoint, ReduceLrOnPlateau, TerminateOnNan, validateCallbacks } from '../src/jobs/callbacks.ts';
import { loadCheckpoint, removeCheckpoints, saveCheckpoint, type CheckpointState } from '../src/jobs/checkpoints.ts';
import { buildModel } from '../src/model-spec/build-model.ts';
import { loadModelFiles, saveModelFiles } from '../src/model-spec/model-io.ts';
import { getLearningRate, setLearningRate } from '../src/model-spec/optimizers.ts';
import type { CompiledConfig } from '../src/model-spec/types.ts';
import { withTrainingBackend } from '../src/engine/backend.ts';
import { withSeededRandom } from '../src/engine/seeded-random.ts';
import { paths } from '../src/storage/paths.ts';
import { removeModelFiles } from '../src/storage/model-files.ts';
import { evaluate, fit, type LoopState } from './train-loop.ts';
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
  /** Set on SIGTERM: the running fit stops at its next batch end, checkpoints and goes back to the queue. */
  stopping: { requested: boolean };
  /** A fit also checkpoints inside an epoch once this long has passed since its last checkpoint. */
  checkpointIntervalMs: number;
}

/** Batch events go out at most this often (epoch, status and done events always go). */
const BATCH_EVENT_INTERVAL_MS = 100;
const CANCEL_POLL_MS = 300;

class Cancelled extends Error {}

/** The worker is shutting down: the fit checkpointed and the job goes back to the queue. */
export class ReturnToQueue extends Error {}

/** A failure no retry can fix, with the code the job records. */
export class JobFailure extends UnrecoverableError {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

type FinalStatus = 'completed' | 'failed' | 'cancelled';

/** Records a job's end on its record and its event stream (status, then done). */
async function finishJob(ctx: WorkerContext, tenant: string, jobId: string, status: FinalStatus, fields: Partial<JobRecord>, history: Record<string, number[]> | null): Promise<void> {
  await ctx.records.patch('job', tenant, jobId, { status, finished_at: new Date().toISOString(), ...fields });
  await appendEvent(ctx.redis, ctx.prefix, jobId, { type: 'status', status });
  await appendEvent(ctx.redis, ctx.prefix, jobId, {
    type: 'done', status, history: history ?? {},
    ...(fields.result ? { result: fields.result } : {}), ...(fields.error ? { error: fields.error } : {}),
  });
  await removeCheckpoints(ctx.dataDir, tenant, jobId).catch(() => {});
}

/**
 * BullMQ fails a job on its own when its worker died too often (the stalled check),
 * without calling the processor: the record still says "running". Record the failure.
 */
export async function recordLostJob(ctx: WorkerContext, job: Job<JobPayload>, reason: string): Promise<void> {
  const { jobId, tenant } = job.data;
  const rec = await ctx.records.get<JobRecord>('job', tenant, jobId);
  if (rec?.status !== 'running') return; // the processor recorded its own outcome
  await finishJob(ctx, tenant, jobId, 'failed', { error: { code: 'WORKER_LOST', message: `the job's worker stopped responding and it was given up after ${rec.attempts} attempts: ${reason}` } }, rec.history);
}

/** Out-of-memory errors from tfjs backends (CUDA, libtensorflow, wasm) and V8. */
const OUT_OF_MEMORY = /out of memory|OOM when allocating|failed to allocate|allocation failed|Invalid typed array length|Array buffer allocation/i;

/** An out-of-memory error as a failure no retry can fix, naming the batch size to lower; null for other errors. */
export function outOfMemory(err: unknown, batchSize: number): UnrecoverableError | null {
  if (err instanceof SpecError || err instanceof UnrecoverableError) return null;
  const message = err instanceof Error ? err.message : String(err);
  if (!OUT_OF_MEMORY.test(message)) return null;
  return new JobFailure('OUT_OF_MEMORY', `ran out of memory with batch_size ${batchSize} (${message.split('\n')[0]}); try a smaller batch_size`);
}

/** Processes one BullMQ job: a fit or an evaluate, recorded on the job record and its event stream. */
export async function processJob(ctx: WorkerContext, job: Job<JobPayload>): Promise<void> {
  const { jobId, tenant } = job.data;
  const log = ctx.log.child({ job_id: jobId });
  const rec = await ctx.records.get<JobRecord>('job', tenant, jobId);
  if (!rec) return; // deleted meanwhile
  // Events go out one after another, in order. Batch events are not waited for (training goes
  // on while Redis writes them); every other event is, and so comes after them.
  let lastEvent: Promise<unknown> = Promise.resolve();
  const emit = (event: { type: string; [k: string]: unknown }): Promise<number> => {
    const sent = lastEvent.catch(() => undefined).then(() => appendEvent(ctx.redis, ctx.prefix, jobId, event));
    lastEvent = sent;
    sent.catch(() => undefined); // a batch event nobody waits for: progress only, never an unhandled rejection
    return sent;
  };
  const patch = (fields: Partial<JobRecord>) => ctx.records.patch('job', tenant, jobId, fields);
  const finish = async (status: FinalStatus, fields: Partial<JobRecord>, history: Record<string, number[]> | null) => {
    await lastEvent.catch(() => undefined); // the final event after every batch event
    return finishJob(ctx, tenant, jobId, status, fields, history);
  };

  if (await ctx.redis.exists(keys.cancel(ctx.prefix, jobId))) {
    await finish('cancelled', {}, rec.history);
    return;
  }
  ctx.current.jobId = jobId;
  // Starts, not failures: a start whose worker died counts too (BullMQ's attemptsMade does not).
  const attempt = Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1);
  await patch({ status: 'running', started_at: rec.started_at ?? new Date().toISOString(), attempts: attempt, worker_id: ctx.workerId, error: null });
  await emit({ type: 'status', status: 'running', worker: { id: ctx.workerId, host: os.hostname() }, attempt });
  log.info({ kind: rec.kind, model_id: rec.model_id, attempt }, 'job started');

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
      // A rerun on another backend starts afresh (from the checkpoint, when there is one).
      for (const key of Object.keys(history)) delete history[key];
      if (rec.kind === 'evaluate') {
        const net = await loadModelFiles(baseDir!);
        try {
          const ep = rec.params as EvaluateParams;
          const result = await evaluate(net, compiled, outputNames, data.x, data.y, ep.batch_size, ep.sample_weight === false ? null : data.w);
          await finish('completed', { result }, null);
          log.info({ result }, 'evaluate completed');
        } finally {
          net.dispose();
        }
        return;
      }
      const params = rec.params as FitParams;
      // A fit resumes from its newest checkpoint, left by an attempt whose worker died or shut down.
      const ckpt = await loadCheckpoint(ctx.dataDir, tenant, jobId);
      // A fit's seed also seeds the initial weights of a model's first fit.
      const net = ckpt ? ckpt.model
        : baseDir ? await loadModelFiles(baseDir)
        : params.seed === undefined ? buildModel(model.spec) : withSeededRandom(params.seed, () => buildModel(model.spec));
      const bests = new Map<string, tf.Tensor[]>();
      try {
        await runFit({ ctx, rec, jobId, tenant, model, compiled, outputNames, data, net, ckpt, bests, history, attempt, emit, patch, finish, log, isCancelled: () => cancelled });
      } finally {
        ckpt?.optimizerWeights.forEach((w) => w.tensor.dispose());
        for (const ws of bests.values()) tf.dispose(ws);
        net.dispose();
      }
    });
  } catch (err) {
    if (err instanceof Cancelled) {
      await finish('cancelled', { history }, history);
      log.info('job cancelled');
      return;
    }
    if (err instanceof ReturnToQueue) {
      await patch({ status: 'queued' });
      await emit({ type: 'status', status: 'queued', reason: 'the worker is shutting down; the job resumes from its checkpoint' });
      log.info('job checkpointed and returned to the queue');
      throw err;
    }
    const e = err as Error;
    const batch = rec.kind === 'fit' ? (rec.params as FitParams).batch_size : (rec.params as EvaluateParams).batch_size;
    const failure = outOfMemory(err, batch) ?? err;
    const userError = failure instanceof SpecError || failure instanceof UnrecoverableError;
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (userError || lastAttempt) {
      const code = failure instanceof JobFailure ? failure.code : failure instanceof SpecError ? failure.code : userError ? 'JOB_INVALID' : 'TRAINING_FAILED';
      await finish('failed', { error: { code, message: (failure as Error).message } }, history);
      log.error({ err }, 'job failed');
      throw userError ? failure : new UnrecoverableError(e.message);
    }
    log.warn({ err }, 'job attempt failed; it will be retried (from its checkpoint, if it has one)');
    await patch({ status: 'queued' });
    await emit({ type: 'status', status: 'queued', retry: true, reason: e.message });
    throw err;
  } finally {
    clearInterval(poll);
    ctx.current.jobId = null;
  }
}

interface FitRun {
  ctx: WorkerContext;
  rec: JobRecord;
  jobId: string;
  tenant: string;
  model: ModelRecord;
  compiled: CompiledConfig;
  outputNames: string[];
  data: Awaited<ReturnType<typeof loadDataset>>;
  net: tf.LayersModel;
  ckpt: Awaited<ReturnType<typeof loadCheckpoint>>;
  /** Weights kept by early_stopping / model_checkpoint, by callback type (disposed by the caller). */
  bests: Map<string, tf.Tensor[]>;
  history: Record<string, number[]>;
  attempt: number;
  emit: (event: { type: string; [k: string]: unknown }) => Promise<number>;
  patch: (fields: Partial<JobRecord>) => Promise<unknown>;
  finish: (status: FinalStatus, fields: Partial<JobRecord>, history: Record<string, number[]> | null) => Promise<void>;
  log: Logger;
  isCancelled: () => boolean;
}

/** A fit from its first epoch or its newest checkpoint, with callbacks, checkpoints, timeouts and a new version at the end. */
async function runFit(r: FitRun): Promise<void> {
  const { ctx, rec, jobId, tenant, model, compiled, outputNames, data, net, ckpt, bests, history, emit, patch, finish, log } = r;
  const params = rec.params as FitParams;
  const callbacks = validateCallbacks(params.callbacks ?? [], 'callbacks').map(makeCallback);
  const state = ckpt?.state;
  if (state) {
    Object.assign(history, structuredClone(state.history));
    callbacks.forEach((cb, i) => cb.setState(state.callbacks[i]));
    for (const [k, ws] of Object.entries(ckpt!.bestWeights ?? {})) bests.set(k, ws);
  }
  // Every fit is shuffled from a seed (the user's, or one drawn now and kept in the checkpoints), so a resumed run sees the same order.
  const shuffleSeed = params.seed ?? state?.shuffle_seed ?? Math.floor(Math.random() * 2 ** 31);
  let learningRate = state?.learning_rate ?? null;
  const compiledNow: CompiledConfig = learningRate === null ? compiled
    : { ...compiled, optimizer: { ...compiled.optimizer, params: { ...compiled.optimizer.params, learning_rate: learningRate } } };
  const validation = params.validation_dataset_id
    ? await loadDataset(ctx.records, ctx.dataDir, tenant, params.validation_dataset_id, model.inputs, model.outputs)
    : undefined;

  if (state) {
    await emit({ type: 'resumed', epoch: state.epoch, batch: state.batch, attempt: r.attempt, saved_at: state.saved_at });
    // An epoch whose checkpoint was saved but whose event was not (the worker died in between) is announced now.
    const last = await lastEventOfType(ctx.redis, ctx.prefix, jobId, 'epoch');
    const announced = last ? Number(last.epoch) : params.initial_epoch - 1;
    const keys = Object.keys(history);
    const count = keys.length ? history[keys[0]!]!.length : 0;
    for (let i = 0; i < count; i++) {
      const epoch = params.initial_epoch + i;
      if (epoch > announced) await emit({ type: 'epoch', epoch, logs: Object.fromEntries(keys.map((k) => [k, history[k]![i]!])) });
    }
    log.info({ epoch: state.epoch, batch: state.batch }, 'job resumed from its checkpoint');
  }

  const elapsedBefore = state?.elapsed_ms ?? 0;
  const startedAt = Date.now();
  const elapsed = () => elapsedBefore + Date.now() - startedAt;
  const timedOut = () => params.max_seconds !== undefined && elapsed() > params.max_seconds * 1000;
  let lastCheckpoint = Date.now();
  // A shutdown stops the loop only once a checkpoint taken after the signal holds every batch run.
  let checkpointedForShutdown = false;
  let stopEarly = false;
  let nanAt: { epoch: number; batch: number } | null = null;
  let lastBatchEvent = 0;
  const terminate = callbacks.find((c): c is TerminateOnNan => c instanceof TerminateOnNan);

  const checkpoint = async (loop: LoopState) => {
    const s: CheckpointState = {
      epoch: loop.epoch, batch: loop.batch, sums: loop.sums, seen: loop.seen, history, shuffle_seed: shuffleSeed,
      callbacks: callbacks.map((c) => c.getState()), learning_rate: getLearningRate(loop.optimizer), elapsed_ms: elapsed(),
      saved_at: new Date().toISOString(),
    };
    const shuttingDown = ctx.stopping.requested;
    await saveCheckpoint(ctx.dataDir, tenant, jobId, { model: net, optimizer: loop.optimizer, state: s, bestWeights: bests.size ? Object.fromEntries(bests) : null });
    lastCheckpoint = Date.now();
    if (shuttingDown) checkpointedForShutdown = true;
  };
  const keepBest = (key: string) => {
    const old = bests.get(key);
    if (old) tf.dispose(old);
    bests.set(key, net.getWeights().map((w) => w.clone()));
  };

  const warnings: JobError[] = [];
  const result = await fit(net, compiledNow, outputNames, data.x, data.y, {
    epochs: params.epochs,
    batchSize: params.batch_size,
    validationSplit: params.validation_split,
    shuffle: params.shuffle,
    initialEpoch: params.initial_epoch,
    classWeight: params.class_weight,
    seed: shuffleSeed,
    ...(params.sample_weight !== false && data.w ? { sampleWeight: data.w } : {}),
    ...(params.steps_per_epoch !== undefined ? { stepsPerEpoch: params.steps_per_epoch } : {}),
    resume: state ? { epoch: state.epoch, batch: state.batch, sums: state.sums, seen: state.seen, optimizerWeights: ckpt!.optimizerWeights } : undefined,
  }, {
    onBatchEnd: async (epoch, batch, logs) => {
      if (terminate) {
        const now = await logs();
        if (terminate.isBad(now)) nanAt = { epoch, batch };
      }
      const now = Date.now();
      if (now - lastBatchEvent < BATCH_EVENT_INTERVAL_MS) return;
      lastBatchEvent = now;
      void emit({ type: 'batch', epoch, batch, logs: await logs() });
    },
    onEpochEnd: async (epoch, logs, { optimizer }) => {
      for (const [k, v] of Object.entries(logs)) (history[k] ??= []).push(v);
      const acted: Array<Record<string, unknown>> = [];
      for (const cb of callbacks) {
        if (cb instanceof EarlyStopping) {
          const { improved, stop } = cb.onEpochEnd(epoch, logs);
          if (improved && cb.config.restore_best_weights) keepBest('early_stopping');
          if (stop) {
            stopEarly = true;
            const best = bests.get('early_stopping');
            if (cb.config.restore_best_weights && best) net.setWeights(best);
            acted.push({ callback: 'early_stopping', epoch, best_epoch: cb.bestEpoch, restored_best_weights: Boolean(cb.config.restore_best_weights && best) });
          }
        } else if (cb instanceof ReduceLrOnPlateau) {
          const lr = getLearningRate(optimizer);
          const next = cb.onEpochEnd(logs, lr);
          if (next !== null) {
            setLearningRate(optimizer, next);
            learningRate = next;
            acted.push({ callback: 'reduce_lr_on_plateau', epoch, learning_rate: next, previous_learning_rate: lr });
          }
        } else if (cb instanceof ModelCheckpoint) {
          if (cb.onEpochEnd(epoch, logs) && cb.config.save_best_only) {
            keepBest('model_checkpoint');
            acted.push({ callback: 'model_checkpoint', epoch, monitor: cb.config.monitor, value: logs[cb.config.monitor] });
          }
        }
      }
      // The checkpoint comes before the epoch event: an announced epoch is never run twice.
      await checkpoint({ epoch: epoch + 1, batch: 0, sums: null, seen: 0, optimizer });
      await emit({ type: 'epoch', epoch, logs });
      for (const a of acted) await emit({ type: 'callback', ...a });
      await patch({ progress: { epoch: epoch + 1, epochs: params.epochs }, history });
    },
    checkpointDue: () => ctx.stopping.requested || Date.now() - lastCheckpoint >= ctx.checkpointIntervalMs,
    onCheckpoint: checkpoint,
    shouldStop: () => r.isCancelled() || stopEarly || nanAt !== null || checkpointedForShutdown || timedOut(),
  }, validation ? { ...validation, w: params.sample_weight === false ? null : validation.w } : undefined);
  if (result.outOfData) {
    // Keras: "Your input ran out of data; interrupting training."
    const o = result.outOfData;
    const message = `the data ran out at epoch ${o.epoch}, batch ${o.batch}: steps_per_epoch=${o.stepsPerEpoch} x epochs=${params.epochs} needs ${o.stepsPerEpoch * params.epochs} batches, `
      + `but ${params.epochs} passes over the data hold ${o.batchesPerPass * params.epochs} (${o.batchesPerPass} per pass); training stopped there, as Keras does`;
    warnings.push({ code: 'OUT_OF_DATA', message });
    await emit({ type: 'warning', code: 'OUT_OF_DATA', epoch: o.epoch, batch: o.batch, message });
    log.warn({ epoch: o.epoch, batch: o.batch }, 'steps_per_epoch ran out of data; training stopped');
  }
  void learningRate;

  if (r.isCancelled()) throw new Cancelled();
  if (nanAt) {
    const at = nanAt as { epoch: number; batch: number };
    await emit({ type: 'callback', callback: 'terminate_on_nan', epoch: at.epoch, batch: at.batch });
    throw new JobFailure('NAN_LOSS', `the loss became NaN or infinite at epoch ${at.epoch}, batch ${at.batch} (terminate_on_nan); try a lower learning rate`);
  }
  if (timedOut()) {
    throw new JobFailure('TIMED_OUT', `the fit ran past max_seconds=${params.max_seconds} after ${history.loss?.length ?? 0} completed epochs; the model keeps its previous version`);
  }
  const epochsDone = history.loss?.length ?? 0;
  if (ctx.stopping.requested && !stopEarly && !result.outOfData && params.initial_epoch + epochsDone < params.epochs) throw new ReturnToQueue();

  const keeper = callbacks.find((c): c is ModelCheckpoint => c instanceof ModelCheckpoint && c.config.save_best_only);
  const keptBest = keeper ? bests.get('model_checkpoint') : undefined;
  if (keptBest) net.setWeights(keptBest);
  const modelKey = ctx.records.key('model', tenant, model.id);
  const version = await reserveVersion(ctx.redis, modelKey);
  if (version === 0) throw new UnrecoverableError(`model ${model.id} was deleted while it trained`);
  const versionDir = paths.modelVersion(ctx.dataDir, tenant, model.id, version);
  await saveModelFiles(net, ctx.dataDir, versionDir);
  const metrics = Object.fromEntries(Object.entries(history).map(([k, v]) => [k, v[v.length - 1]!]));
  if (!(await appendVersion(ctx.redis, modelKey, { version, job_id: jobId, created_at: new Date().toISOString(), metrics }))) {
    await removeModelFiles(ctx.dataDir, tenant, model.id); // deleted meanwhile: leave no orphan files
    throw new UnrecoverableError(`model ${model.id} was deleted while it trained`);
  }
  const bestEpoch = keptBest ? keeper!.bestEpoch : null;
  await finish('completed', {
    history, model_version: version, best_epoch: bestEpoch, engine: result.engine, ...(warnings.length ? { warnings } : {}),
    progress: { epoch: params.initial_epoch + epochsDone, epochs: params.epochs },
  }, history);
  log.info({ version, epochs: epochsDone, best_epoch: bestEpoch, engine: result.engine }, 'fit completed');
}
