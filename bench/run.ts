/**
 * `npm run bench`: speed figures as ratios against a baseline measured in the same run,
 * appended to bench/results.jsonl (one JSON line per run) to compare over time.
 *
 * 1. train-loop: samples/s of our training loop vs tfjs's own model.fit (the baseline),
 *    same MLP 784-64-10, same random data, batch 32, on the backend the workers pick.
 * 2. service: a fit job end to end (HTTP -> queue -> worker process -> events) vs the same
 *    fit in-process: the overhead the service adds.
 * 3. predict: HTTP predict requests/s (tensor thread, model cache) vs in-process predict.
 * 4. engine: training samples/s (our fit loop, batch 32) of the MLP and of a small CNN on 28x28x1
 *    with our wasm kernels vs stock: the MLP on stock wasm, the CNN on the cpu backend (stock
 *    wasm cannot train it). Runs first, on wasm only.
 */
import fs from 'node:fs';
import { execSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import request from 'supertest';
import { initBackend } from '../src/engine/backend.ts';
import { registerWasmTrainingKernels, unregisterWasmTrainingKernels } from '../src/engine/wasm-training-kernels.ts';
import { withSeededRandom } from '../src/engine/seeded-random.ts';
import { buildModel } from '../src/model-spec/build-model.ts';
import { resolveCompile } from '../src/model-spec/compile.ts';
import { fit, predict } from '../workers/train-loop.ts';
import { startStack, waitForJob, waitForWorkers } from '../test/helpers/stack.ts';

const backend = await initBackend(process.env.TF_BACKEND);
const N = Number(process.env.BENCH_SAMPLES ?? 4096);
const EPOCHS = 2;
const spec = { type: 'sequential', layers: [
  { type: 'Dense', units: 64, activation: 'relu', input_shape: [784] },
  { type: 'Dense', units: 10, activation: 'softmax' }] };
const compileArgs = { optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] };
const xData = Float32Array.from({ length: N * 784 }, () => Math.random());
const yData = Float32Array.from({ length: N }, () => Math.floor(Math.random() * 10));

async function ourFit(): Promise<number> {
  const model = buildModel(spec);
  const compiled = resolveCompile(compileArgs, [{ name: 'out', shape: [10] }]);
  const t0 = performance.now();
  await fit(model, compiled, ['out'], [{ shape: [784], data: xData }], [{ shape: [], data: yData }], { epochs: EPOCHS, batchSize: 32 });
  const seconds = (performance.now() - t0) / 1000;
  model.dispose();
  return (N * EPOCHS) / seconds;
}

async function tfjsFit(): Promise<number> {
  const model = buildModel(spec);
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const x = tf.tensor2d(xData, [N, 784]);
  const y = tf.tensor1d(yData);
  const t0 = performance.now();
  await model.fit(x, y, { epochs: EPOCHS, batchSize: 32, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  tf.dispose([x, y]);
  model.dispose();
  return (N * EPOCHS) / seconds;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

// 4. The engine: our wasm kernels vs stock, through the same fit loop.
const cnnSpec = { type: 'sequential', layers: [
  { type: 'Conv2D', filters: 8, kernel_size: 3, activation: 'relu', input_shape: [28, 28, 1] },
  { type: 'MaxPooling2D', pool_size: 2 },
  { type: 'Conv2D', filters: 16, kernel_size: 3, activation: 'relu' },
  { type: 'MaxPooling2D', pool_size: 2 },
  { type: 'Flatten' },
  { type: 'Dense', units: 10, activation: 'softmax' }] };

/** Samples/s of fit on `n` random samples (after a one-batch warm-up), on the current backend and kernels. */
async function trainRate(modelSpec: unknown, sampleShape: number[], n: number): Promise<number> {
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const x = [{ shape: sampleShape, data: Float32Array.from({ length: n * size }, () => Math.random()) }];
  const y = [{ shape: [] as number[], data: Float32Array.from({ length: n }, () => Math.floor(Math.random() * 10)) }];
  const model = withSeededRandom(1, () => buildModel(modelSpec));
  const compiled = resolveCompile(compileArgs, [{ name: 'out', shape: [10] }]);
  const head = (c: typeof x) => c.map((col) => ({ shape: col.shape, data: col.data.subarray(0, 32 * col.data.length / n) }));
  await fit(model, compiled, ['out'], head(x), head(y), { epochs: 1, batchSize: 32 });
  const t0 = performance.now();
  await fit(model, compiled, ['out'], x, y, { epochs: 1, batchSize: 32 });
  const seconds = (performance.now() - t0) / 1000;
  model.dispose();
  return n / seconds;
}

let engine: Record<string, unknown> = { skipped: `backend is ${backend.backend}, not wasm` };
if (backend.backend === 'wasm') {
  unregisterWasmTrainingKernels();
  const mlpStock = await trainRate(spec, [784], 2048);
  await tf.setBackend('cpu');
  const cnnStock = await trainRate(cnnSpec, [28, 28, 1], 96);
  await tf.setBackend('wasm');
  registerWasmTrainingKernels();
  const mlpOurs = await trainRate(spec, [784], 2048);
  const cnnOurs = await trainRate(cnnSpec, [28, 28, 1], 2048);
  engine = {
    mlp_samples_per_s: round(mlpOurs, 0), mlp_stock_wasm_samples_per_s: round(mlpStock, 0), mlp_ratio: round(mlpOurs / mlpStock, 2),
    cnn_samples_per_s: round(cnnOurs, 0), cnn_stock_cpu_samples_per_s: round(cnnStock, 1), cnn_ratio: round(cnnOurs / cnnStock, 1),
  };
}
console.log('engine', engine);

// 1. Training loop vs tfjs model.fit, alternating, median of 3 each.
await ourFit(); // warm-up: kernels compiled, memory pools sized
const ours: number[] = [];
const theirs: number[] = [];
for (let i = 0; i < 3; i++) {
  ours.push(await ourFit());
  theirs.push(await tfjsFit());
}
const trainLoop = { samples_per_s: round(median(ours), 0), baseline_tfjs_fit_samples_per_s: round(median(theirs), 0), ratio: round(median(ours) / median(theirs)) };
console.log('train-loop', trainLoop);

// 2 and 3. The service end to end, against in-process baselines.
const stack = await startStack();
await waitForWorkers(stack.app);
const api = request(stack.app.server);
const rows = Array.from({ length: 1024 }, (_, i) => Array.from({ length: 784 }, (_, j) => xData[i * 784 + j]));
const ds = (await api.post('/v1/datasets').send({ name: 'bench', x: rows, y: Array.from(yData.slice(0, 1024)) }).expect(201)).body;
const created = (await api.post('/v1/models').send({ spec, compile: compileArgs }).expect(201)).body;
const t0 = performance.now();
const job = await waitForJob(stack.app, (await api.post(`/v1/models/${created.id}/fit`).send({ dataset_id: ds.id, epochs: 3, batch_size: 32 }).expect(202)).body.id);
const serviceSeconds = (performance.now() - t0) / 1000;
if (job.status !== 'completed') throw new Error(`bench fit ${job.status}`);
const local = buildModel(spec);
const t1 = performance.now();
await fit(local, resolveCompile(compileArgs, [{ name: 'out', shape: [10] }]), ['out'],
  [{ shape: [784], data: xData.slice(0, 1024 * 784) }], [{ shape: [], data: yData.slice(0, 1024) }], { epochs: 3, batchSize: 32 });
const localSeconds = (performance.now() - t1) / 1000;
const service = { fit_job_seconds: round(serviceSeconds), baseline_in_process_seconds: round(localSeconds), ratio: round(serviceSeconds / localSeconds) };
console.log('service', service);

const instances = rows.slice(0, 16);
const requests = 50;
await api.post(`/v1/models/${created.id}/predict`).send({ instances }).expect(200); // loads the model into the cache
const t2 = performance.now();
for (let i = 0; i < requests; i++) await api.post(`/v1/models/${created.id}/predict`).send({ instances }).expect(200);
const httpPerS = requests / ((performance.now() - t2) / 1000);
const t3 = performance.now();
for (let i = 0; i < requests; i++) await predict(local, [{ shape: [784], data: xData.slice(0, 16 * 784) }], 256);
const localPerS = requests / ((performance.now() - t3) / 1000);
local.dispose();
const predictFig = { http_requests_per_s: round(httpPerS, 1), baseline_in_process_per_s: round(localPerS, 1), ratio: round(httpPerS / localPerS) };
console.log('predict', predictFig);
await stack.close();

let commit = 'unknown';
try { commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
const line = { date: new Date().toISOString(), commit, backend: backend.backend, cores: (await import('node:os')).cpus().length, samples: N, train_loop: trainLoop, service, predict: predictFig, engine };
fs.appendFileSync(new URL('./results.jsonl', import.meta.url), `${JSON.stringify(line)}\n`);
console.log('appended to bench/results.jsonl');
process.exit(0);
