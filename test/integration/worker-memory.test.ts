// The worker runs 20 fit jobs in a row (and evaluates) and its tf.memory().numTensors
// comes back to its baseline: nothing leaks per job. The worker reports tf.memory() in
// its heartbeat (GET /v1/workers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';

const stack = useStack();

async function workerMemory(): Promise<number> {
  // The heartbeat after each job carries the count; wait for the worker to be idle.
  for (;;) {
    const [w] = (await request(stack.app.server).get('/v1/workers').expect(200)).body.items;
    if (w.job_id === null) return w.memory.num_tensors;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('20 fit jobs in a row leave tf.memory().numTensors at its baseline', async () => {
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
  const jobs = [];
  for (let i = 0; i < 20; i++) jobs.push((await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 2, batch_size: 2, validation_split: 0.25 }).expect(202)).body.id);
  for (const id of jobs) assert.equal((await waitForJob(stack.app, id)).status, 'completed');
  const evaluated = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: ds.id }).expect(202)).body.id);
  assert.equal(evaluated.status, 'completed');
  const versions = (await api.get(`/v1/models/${model.id}`).expect(200)).body.versions;
  assert.equal(versions.length, 20, 'each fit continued from the last and made a version');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await workerMemory(), baseline, 'numTensors after 20 fits and an evaluate');
});
