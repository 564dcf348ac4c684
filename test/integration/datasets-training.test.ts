// Training from disk through the service: with DATASET_MEMORY_BYTES below the dataset's size
// the worker reads batches from the column files (windowed shuffle, validation split from the
// tail, evaluate too) and reaches the same history as the dataset loaded whole in-process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { initBackend } from '../../src/engine/backend.ts';
import { withSeededRandom } from '../../src/engine/seeded-random.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { readColumnFile } from '../../src/datasets/dataset-files.ts';
import { paths } from '../../src/storage/paths.ts';
import { evaluate, fit } from '../../workers/train-loop.ts';

const WINDOW = 16_384;
const stack = useStack({ env: { DATASET_MEMORY_BYTES: '1', SHUFFLE_WINDOW_BYTES: String(WINDOW) } });
const digits = fs.readFileSync(new URL('../fixtures/datasets/digits.csv', import.meta.url));

const spec = { type: 'sequential', layers: [
  { type: 'Rescaling', scale: 0.0625, input_shape: [64] },
  { type: 'Dense', units: 32, activation: 'relu' },
  { type: 'Dense', units: 10, activation: 'softmax' }] };
const compile = { optimizer: { type: 'adam', learning_rate: 0.01 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] };

function near(a: number[], b: number[], what: string) {
  assert.equal(a.length, b.length, what);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-4 * Math.max(1, Math.abs(b[i]!)), `${what}[${i}]: ${v} vs ${b[i]}`));
}

test('a dataset over DATASET_MEMORY_BYTES trains from disk to the history of the same data loaded whole', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets?name=digits&label=digit').set('content-type', 'text/csv').send(digits)).body;
  if (!ds.id) throw new Error(JSON.stringify(ds));
  assert.equal(ds.samples, 1797);
  const model = (await api.post('/v1/models').send({ name: 'mlp', spec, compile }).expect(201)).body;
  const params = { epochs: 3, batch_size: 32, validation_split: 0.2, seed: 4 };
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, ...params }).expect(202)).body.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.ok(job.history.val_accuracy[2] > 0.85, `val accuracy ${job.history.val_accuracy}`);

  // The same fit in this process, the dataset loaded whole.
  await initBackend(process.env.TF_BACKEND || undefined);
  const dir = paths.dataset(stack.config.dataDir, 'default', ds.id);
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const x = await readColumnFile(dir, rec.x_columns[0], rec.samples);
  const y = await readColumnFile(dir, rec.y_columns[0], rec.samples);
  const net = withSeededRandom(params.seed, () => buildModel(spec));
  const compiled = resolveCompile(compile, model.outputs);
  const local = await fit(net, compiled, model.outputs.map((o: any) => o.name), [x], [y], {
    epochs: params.epochs, batchSize: params.batch_size, validationSplit: params.validation_split, seed: params.seed, shuffleWindowBytes: WINDOW,
  });
  // Same seed, same order (a function of seed and epoch), same values: the same history.
  assert.deepEqual(job.history, local.history);

  // evaluate reads the dataset from disk too.
  const ev = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: ds.id, batch_size: 64 }).expect(202)).body.id);
  assert.equal(ev.status, 'completed', JSON.stringify(ev.error));
  const mine = await evaluate(net, compiled, model.outputs.map((o: any) => o.name), [x], [y], 64);
  near([ev.result.loss, ev.result.accuracy], [mine.loss!, mine.accuracy!], 'evaluate');
  net.dispose();
});
