// Keras callbacks through the service, each announcing itself with a "callback" event:
// terminate_on_nan fails the job at once naming the epoch and batch; model_checkpoint with
// save_best_only makes the best epoch the model version; reduce_lr_on_plateau lowers the
// learning rate; max_seconds stops a fit as TIMED_OUT and the model keeps its last version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack();

const rows = (n: number, seed: number) => Array.from({ length: n }, (_, i) => [Math.sin(i * seed), Math.cos(i * 0.7 + seed)]);

async function setup(compile: object) {
  const api = request(stack.app.server);
  const x = rows(200, 1);
  const ds = (await api.post('/v1/datasets').send({ name: 'train', x, y: x.map((r) => r[0] * r[1]) }).expect(201)).body;
  const vx = rows(60, 2);
  const val = (await api.post('/v1/datasets').send({ name: 'val', x: vx, y: vx.map((r) => r[0] * r[1]) }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 16, activation: 'tanh', input_shape: [2] }, { type: 'Dense', units: 1 }] },
    compile,
  }).expect(201)).body;
  return { api, ds, val, model };
}

test('terminate_on_nan: a diverging fit fails at once as NAN_LOSS, naming the epoch and batch', async () => {
  const { api, ds, model } = await setup({ optimizer: { type: 'sgd', learning_rate: 1e4 }, loss: 'mse' });
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 50, batch_size: 4, callbacks: [{ type: 'terminate_on_nan' }] }).expect(202)).body;
  const { events } = await watchJob(stack.url, job.id).closed;
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error.code, 'NAN_LOSS');
  const acted = events.find((e) => e.type === 'callback' && e.callback === 'terminate_on_nan');
  assert.ok(acted, 'a terminate_on_nan event');
  assert.match(done.error.message, new RegExp(`epoch ${acted.epoch}, batch ${acted.batch}`));
  assert.equal(done.attempts, 1, 'not retried: retrying cannot fix it');
  assert.equal(done.model_version, null);
});

test('model_checkpoint(save_best_only): the best epoch becomes the version, and the job says which', async () => {
  const { api, ds, val, model } = await setup({ optimizer: { type: 'adam', learning_rate: 0.05 }, loss: 'mse' });
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({
    dataset_id: ds.id, validation_dataset_id: val.id, epochs: 12, batch_size: 8, seed: 3,
    callbacks: [{ type: 'model_checkpoint', filepath: 'best.keras', monitor: 'val_loss', save_best_only: true }],
  }).expect(202)).body;
  const { events } = await watchJob(stack.url, job.id).closed;
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  const valLoss: number[] = done.history.val_loss;
  const best = valLoss.indexOf(Math.min(...valLoss));
  assert.equal(done.best_epoch, best);
  const saves = events.filter((e) => e.type === 'callback' && e.callback === 'model_checkpoint').map((e) => e.epoch);
  assert.equal(saves.at(-1), best, 'the last save announced is the best epoch');
  // The version holds the best epoch's weights: evaluating it on the validation set gives that epoch's val_loss.
  const ev = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: val.id }).expect(202)).body.id);
  assert.ok(Math.abs(ev.result.loss - valLoss[best]!) < 1e-5, `${ev.result.loss} vs ${valLoss[best]}`);
});

test('reduce_lr_on_plateau lowers the learning rate as Keras does and says so', async () => {
  const { api, ds, model } = await setup({ optimizer: { type: 'sgd', learning_rate: 0.01 }, loss: 'mse' });
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({
    dataset_id: ds.id, epochs: 5, batch_size: 8,
    // No epoch can improve by 10: the rate drops after every epoch but the first, down to min_lr.
    callbacks: [{ type: 'reduce_lr_on_plateau', monitor: 'loss', patience: 0, min_delta: 10, factor: 0.1, min_lr: 0.0001 }],
  }).expect(202)).body;
  const { events } = await watchJob(stack.url, job.id).closed;
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  const drops = events.filter((e) => e.type === 'callback' && e.callback === 'reduce_lr_on_plateau');
  assert.deepEqual(drops.map((e) => e.epoch), [1, 2]);
  assert.deepEqual(drops.map((e) => Number(e.learning_rate.toPrecision(6))), [0.001, 0.0001]);
});

test('max_seconds: a fit past its time fails as TIMED_OUT and the model keeps its last version', async () => {
  const { api, ds, model } = await setup({ optimizer: 'adam', loss: 'mse' });
  const first = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 1 }).expect(202)).body.id);
  assert.equal(first.model_version, 1);
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 10_000, batch_size: 4, max_seconds: 2 }).expect(202)).body;
  const started = Date.now();
  const done = await waitForJob(stack.app, job.id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error.code, 'TIMED_OUT');
  assert.match(done.error.message, /max_seconds=2/);
  assert.ok(Date.now() - started < 30_000);
  const versions = (await api.get(`/v1/models/${model.id}`).expect(200)).body.versions;
  assert.deepEqual(versions.map((v: any) => v.version), [1]);
});
