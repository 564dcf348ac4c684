// Layer types beyond Dense train end to end through a worker: a small CNN on the digits
// dataset (8x8x1 images), Embedding + LSTM on a toy sequence task, and early_stopping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob, csvRows, shuffled } from '../helpers/stack.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack();

test('Conv2D + MaxPooling2D + BatchNormalization on digits: held-out accuracy >= 0.9', async () => {
  const api = request(stack.app.server);
  const rows = shuffled(csvRows('digits')).slice(0, 1300);
  const images = rows.map((r) => Array.from({ length: 8 }, (_, i) => Array.from({ length: 8 }, (_, j) => [r[i * 8 + j] / 16])));
  const labels = rows.map((r) => r[64]);
  const train = (await api.post('/v1/datasets').send({ name: 'digits-train', x: images.slice(0, 1000), y: labels.slice(0, 1000) }).expect(201)).body;
  const held = (await api.post('/v1/datasets').send({ name: 'digits-test', x: images.slice(1000), y: labels.slice(1000) }).expect(201)).body;
  assert.deepEqual(train.x.shape, [8, 8, 1]);
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [
      { type: 'Conv2D', filters: 8, kernel_size: 3, activation: 'relu', padding: 'same', input_shape: [8, 8, 1] },
      { type: 'BatchNormalization' },
      { type: 'MaxPooling2D', pool_size: 2 },
      { type: 'Flatten' },
      { type: 'Dense', units: 10, activation: 'softmax' }] },
    compile: { optimizer: { type: 'adam', learning_rate: 0.01 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
  }).expect(201)).body;
  // Keras: Conv2D 3*3*1*8+8 = 80, BatchNormalization 4*8 = 32 (16 non-trainable), Dense 128*10+10 = 1290.
  assert.equal(model.summary.total_params, 1402);
  assert.equal(model.summary.non_trainable_params, 16);
  const fit = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: train.id, epochs: 10, batch_size: 32, seed: 1 }).expect(202)).body.id, {}, 300);
  assert.equal(fit.status, 'completed', JSON.stringify(fit.error));
  assert.equal(fit.engine.path, 'tfjs');
  assert.match(fit.engine.reason, /the input is not a flat feature vector/);
  const ev = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: held.id }).expect(202)).body.id);
  assert.ok(ev.result.accuracy >= 0.9, `digits CNN held-out accuracy ${ev.result.accuracy}`);
});

test('Embedding + LSTM learns which of two tokens a sequence holds more of', async () => {
  const api = request(stack.app.server);
  const seqs: number[][] = [];
  const ys: number[] = [];
  let s = 7;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  for (let i = 0; i < 300; i++) {
    const seq = Array.from({ length: 6 }, () => (rnd() < 0.5 ? 1 : 2));
    seqs.push(seq);
    ys.push(seq.filter((t) => t === 1).length > 3 ? 1 : 0);
  }
  const ds = (await api.post('/v1/datasets').send({ name: 'tokens', x: seqs, y: ys }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [
      { type: 'Embedding', input_dim: 3, output_dim: 4, input_length: 6, input_shape: [6] },
      { type: 'LSTM', units: 8 },
      { type: 'Dense', units: 1, activation: 'sigmoid' }] },
    compile: { optimizer: { type: 'adam', learning_rate: 0.02 }, loss: 'binary_crossentropy', metrics: ['accuracy'] },
  }).expect(201)).body;
  // Keras: Embedding 3*4 = 12, LSTM 4*(8*(4+8)+8) = 416, Dense 9.
  assert.equal(model.summary.total_params, 437);
  const fit = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 15, batch_size: 16, seed: 1 }).expect(202)).body.id, {}, 300);
  assert.equal(fit.status, 'completed', JSON.stringify(fit.error));
  assert.ok(fit.history.accuracy.at(-1) >= 0.8, `accuracy ${fit.history.accuracy.at(-1)}`);
  assert.ok(fit.history.loss.at(-1) < fit.history.loss[0]);
});

test('early_stopping stops as Keras would and says so in an event', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets').send({ name: 'line', x: [[0], [1], [2], [3], [4], [5], [6], [7]], y: [0, 2, 4, 6, 8, 10, 12, 14] }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 1, input_shape: [1] }] },
    compile: { optimizer: 'sgd', loss: 'mse' },
  }).expect(201)).body;
  // min_delta 1e6: only the first epoch counts as an improvement, so with patience 2
  // Keras stops at the end of epoch 2 (epochs 0, 1, 2 run).
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({
    dataset_id: ds.id, epochs: 50, batch_size: 4,
    callbacks: [{ type: 'early_stopping', monitor: 'loss', min_delta: 1e6, patience: 2, restore_best_weights: true }],
  }).expect(202)).body;
  const { events } = await watchJob(stack.url, job.id).closed;
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.history.loss.length, 3);
  const cb = events.find((e) => e.type === 'callback');
  assert.deepEqual([cb.callback, cb.epoch, cb.best_epoch, cb.restored_best_weights], ['early_stopping', 2, 0, true]);
});
