/**
 * The API's tensor thread: every piece of tensor work the API does (building a
 * model to validate it and summarise it, predictions) runs here, off the event
 * loop. Loaded model versions stay in a small LRU cache.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/backend.ts';
import { buildModel } from '../model-spec/build-model.ts';
import { describeModel } from '../model-spec/describe.ts';
import { summarize, summaryText } from '../model-spec/summary.ts';
import { resolveCompile } from '../model-spec/compile.ts';
import { loadModelFiles } from '../model-spec/model-io.ts';
import { predict } from '../../workers/train-loop.ts';
import { SpecError } from '../errors.ts';
import type { ThreadRequest, ThreadResponse, InspectResult, PredictResult } from './messages.ts';

const { tfBackend, cacheSize } = workerData as { tfBackend?: string; cacheSize: number };
const cache = new Map<string, tf.LayersModel>();

async function cachedModel(key: string, dir: string): Promise<tf.LayersModel> {
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit); // most recently used goes last
    return hit;
  }
  const model = await loadModelFiles(dir);
  cache.set(key, model);
  while (cache.size > cacheSize) {
    const [oldest, evicted] = cache.entries().next().value as [string, tf.LayersModel];
    cache.delete(oldest);
    evicted.dispose();
  }
  return model;
}

function inspect(req: Extract<ThreadRequest, { op: 'inspect' }>): InspectResult {
  const model = buildModel(req.spec, 'spec', req.limits);
  try {
    const io = describeModel(model);
    // Like Keras, a model may be defined without compile; fit then needs one.
    const compile = req.compile == null ? null : resolveCompile(req.compile, io.outputs, 'compile');
    return { summary: summarize(model), summary_text: summaryText(model), ...io, compile };
  } finally {
    model.dispose();
  }
}

async function handle(req: ThreadRequest): Promise<InspectResult | PredictResult> {
  if (req.op === 'inspect') return inspect(req);
  const model = await cachedModel(req.modelKey, req.dir);
  return { outputs: await predict(model, req.inputs, req.batchSize) };
}

const ready = initBackend(tfBackend);
parentPort!.on('message', async ({ id, req }: { id: number; req: ThreadRequest }) => {
  let response: ThreadResponse;
  try {
    await ready;
    response = { id, ok: true, value: await handle(req) };
  } catch (err) {
    const e = err as Error;
    response = err instanceof SpecError
      ? { id, ok: false, error: { code: err.code, message: err.message, path: err.path, details: err.details } }
      : { id, ok: false, error: { code: 'INTERNAL', message: e?.message ?? String(err) } };
  }
  parentPort!.postMessage(response);
});
