/**
 * The API's tensor thread: every piece of tensor work the API does (building a
 * model to validate it and summarise it, predictions) runs here, off the event
 * loop. Loaded model versions stay in a small LRU cache.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/backend.ts';
import { buildModel } from '../model-spec/build-model.ts';
import { withZeroWeights } from '../engine/layer-weights.ts';
import { describeModel } from '../model-spec/describe.ts';
import { summarize, summaryText } from '../model-spec/summary.ts';
import { resolveCompile } from '../model-spec/compile.ts';
import { loadModelFiles, saveModelFiles } from '../model-spec/model-io.ts';
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
  // Only shapes are needed here: no initializer runs.
  const model = withZeroWeights(() => buildModel(req.spec, 'spec', req.limits));
  try {
    const io = describeModel(model);
    // Like Keras, a model may be defined without compile; fit then needs one.
    const compile = req.compile == null ? null : resolveCompile(req.compile, io.outputs, 'compile');
    return { summary: summarize(model), summary_text: summaryText(model), ...io, compile };
  } finally {
    model.dispose();
  }
}

/**
 * An uploaded TensorFlow.js model: built through the same validation as any spec, given the
 * uploaded weights (matched by their original names, every one required), saved as version 1.
 */
async function importModel(req: Extract<ThreadRequest, { op: 'import' }>): Promise<InspectResult> {
  // The uploaded weights replace every initial one: no initializer runs.
  const model = withZeroWeights(() => buildModel(req.spec, 'model.json', req.limits));
  try {
    const io = describeModel(model);
    const compile = req.compile == null ? null : resolveCompile(req.compile, io.outputs, 'compile');
    let weights: tf.NamedTensorMap;
    try {
      weights = tf.io.decodeWeights(req.weightData, req.weightSpecs as tf.io.WeightsManifestEntry[]);
    } catch (err) {
      throw new SpecError('weights', `the weight files do not match model.json's weightsManifest: ${(err as Error).message}`);
    }
    try {
      model.loadWeights(weights, true);
    } catch (err) {
      throw new SpecError('weights', `the weights do not fit the model: ${(err as Error).message.replace(/\s+/g, ' ')}`);
    } finally {
      tf.dispose(Object.values(weights));
    }
    await saveModelFiles(model, req.dataDir, req.versionDir);
    return { summary: summarize(model), summary_text: summaryText(model), ...io, compile };
  } finally {
    model.dispose();
  }
}

async function handle(req: ThreadRequest): Promise<InspectResult | PredictResult> {
  if (req.op === 'inspect') return inspect(req);
  if (req.op === 'import') return importModel(req);
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
