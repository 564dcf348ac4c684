// The worker runs 100 fit jobs in a row (with callbacks and checkpoints, and evaluates) and
// its tf.memory().numTensors comes back to its baseline and its RSS stays flat: nothing leaks
// per job. The worker reports both in its heartbeat (GET /v1/workers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';

const stack = useStack();

async function workerMemory(): Promise<{ num_tensors: number; rss_bytes: number }> {
  // The heartbeat after each job carries the counts; wait for the worker to be idle.
  for (;;) {
    const [w] = (await request(stack.app.server).get('/v1/workers').expect(200)).body.items;
    if (w.job_id === null) return w.memory;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('100 fit jobs in a row leave numTensors at its baseline and RSS flat', async () => {
  const api = request(stack.app.server);
  const [worker] = (await api.get('/v1/workers').expect(200)).body.items;
  assert.equal(worker.job_id, null);
  assert.ok(['wasm', 'cpu', 'tensorflow'].includes(worker.backend));
  const baseline = worker.memory.num_tensors;

  const ds = (await api.post('/v1/datasets').send({ name: 'xor', x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0] }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [
      { type: 'Dense', units: 8, activation: 'tanh', input_shape: [2] },
      { type: 'Dropout', rate: 0.1 },
      { type: 'BatchNormalization' },
      { type: 'Dense', units: 1, activation: 'sigmoid' }] },
    compile: { optimizer: { type: 'sgd', learning_rate: 0.1, momentum: 0.9 }, loss: 'binary_crossentropy', metrics: ['accuracy'] },
  }).expect(201)).body;
  const callbacks = [
    [],
    [{ type: 'early_stopping', monitor: 'loss', patience: 0, restore_best_weights: true }],
    [{ type: 'reduce_lr_on_plateau', monitor: 'loss', patience: 0, min_delta: 10 }],
    [{ type: 'model_checkpoint', monitor: 'val_loss', save_best_only: true }, { type: 'terminate_on_nan' }],
  ];
  const runFits = async (count: number) => {
    const jobs = [];
    for (let i = 0; i < count; i++) {
      const body = { dataset_id: ds.id, epochs: 2, batch_size: 2, validation_split: 0.25, callbacks: callbacks[i % callbacks.length] };
      jobs.push((await api.post(`/v1/models/${model.id}/fit`).send(body).expect(202)).body.id);
    }
    for (const id of jobs) assert.equal((await waitForJob(stack.app, id)).status, 'completed');
  };
  await runFits(20);
  await new Promise((r) => setTimeout(r, 300));
  const warm = await workerMemory();
  assert.equal(warm.num_tensors, baseline, 'numTensors after 20 fits');
  await runFits(80);
  const evaluated = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: ds.id }).expect(202)).body.id);
  assert.equal(evaluated.status, 'completed');
  const versions = (await api.get(`/v1/models/${model.id}`).expect(200)).body.versions;
  assert.equal(versions.length, 100, 'each fit continued from the last and made a version');
  await new Promise((r) => setTimeout(r, 300));
  const after = await workerMemory();
  assert.equal(after.num_tensors, baseline, 'numTensors after 100 fits and an evaluate');
  // RSS after 80 more fits: flat within allocator noise (a leak of a model per job would be far more).
  const growth = (after.rss_bytes - warm.rss_bytes) / 2 ** 20;
  assert.ok(growth < 48, `worker RSS grew ${growth.toFixed(1)} MiB over 80 fits`);
});
