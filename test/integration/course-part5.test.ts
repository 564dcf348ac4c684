// Part 5 of the Keras course (../shared/seed): a Dense network on iris, compiled, fit with
// validation while a WebSocket watches, evaluated on held-out data, then predict + argmax.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob, iris } from '../helpers/stack.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack();
const { X, Y } = iris();

const mlp = {
  name: 'iris-mlp',
  spec: { type: 'sequential', layers: [
    { type: 'Dense', units: 16, activation: 'relu', input_shape: [4] },
    { type: 'Dense', units: 3, activation: 'softmax' }] },
  compile: { optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
};

test('Part 5 end to end: fit with validation, live epochs, evaluate >= 0.9, predict with classes', async () => {
  const api = request(stack.app.server);
  const train = (await api.post('/v1/datasets').send({ name: 'iris-train', x: X.slice(0, 120), y: Y.slice(0, 120) }).expect(201)).body;
  assert.deepEqual(train.x, { shape: [4], dtype: 'float32' });
  assert.equal(train.samples, 120);
  const testDs = (await api.post('/v1/datasets').send({ name: 'iris-test', x: X.slice(120), y: Y.slice(120) }).expect(201)).body;

  const model = (await api.post('/v1/models').send(mlp).expect(201)).body;
  // Keras: Dense(16) on 4 inputs = 4*16+16 = 80 params, Dense(3) = 16*3+3 = 51.
  assert.equal(model.summary.total_params, 131);
  assert.deepEqual(model.inputs, [{ name: 'dense_input', shape: [4] }]);
  assert.deepEqual(model.summary.layers.map((l: any) => [l.name, l.type, l.params]), [['dense', 'Dense', 80], ['dense_1', 'Dense', 51]]);
  const text = (await api.get(`/v1/models/${model.id}/summary`).set('accept', 'text/plain').expect(200)).text;
  assert.match(text, /Total params: 131/);
  assert.match(text, / dense_1 \(Dense\) +\(None, 3\) +51/);

  const fit = await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: train.id, epochs: 60, batch_size: 8, validation_split: 0.2, seed: 1 }).expect(202);
  assert.equal(fit.headers.location, `/v1/jobs/${fit.body.id}`);
  assert.equal(fit.body.status, 'queued');
  const live = watchJob(stack.url, fit.body.id);
  const { events, code } = await live.closed;
  assert.equal(code, 1000);
  const job = await waitForJob(stack.app, fit.body.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  // The course's MLP trains on the dense fast path (on the wasm backend, the default here).
  if ((await api.get('/health')).body.backend === 'wasm') assert.deepEqual(job.engine, { path: 'dense' });
  for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy']) assert.equal(job.history[key].length, 60, key);
  assert.ok(job.history.loss[59] < job.history.loss[0], 'training loss falls');
  const epochs = events.filter((e) => e.type === 'epoch');
  assert.deepEqual(epochs.map((e) => e.epoch), Array.from({ length: 60 }, (_, i) => i));
  assert.equal(epochs[59].logs.val_accuracy, job.history.val_accuracy[59]);
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), 'seq is 1, 2, 3, ...');
  assert.equal(events.at(-1).type, 'done');
  assert.deepEqual(events.at(-1).history, job.history);
  assert.equal(job.model_version, 1);

  const evalJob = (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: testDs.id }).expect(202)).body;
  const evaluated = await waitForJob(stack.app, evalJob.id);
  assert.equal(evaluated.status, 'completed', JSON.stringify(evaluated.error));
  assert.deepEqual(Object.keys(evaluated.result).sort(), ['accuracy', 'loss']);
  assert.ok(evaluated.result.accuracy >= 0.9, `held-out accuracy ${evaluated.result.accuracy}`);

  const pred = (await api.post(`/v1/models/${model.id}/predict?classes=true`).send({ instances: X.slice(120, 130) }).expect(200)).body;
  assert.equal(pred.model_version, 1);
  assert.equal(pred.predictions.length, 10);
  pred.predictions.forEach((p: number[], i: number) => {
    assert.equal(p.length, 3);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4, 'softmax rows sum to 1');
    assert.equal(pred.classes[i], p.indexOf(Math.max(...p)));
  });
  const correct = pred.classes.filter((c: number, i: number) => c === Y[120 + i]).length;
  assert.ok(correct >= 8, `${correct}/10 predicted classes right`);

  // The same seed on a new model gives the same initial weights and shuffles: the same history.
  const twin = (await api.post('/v1/models').send(mlp).expect(201)).body;
  const twinJob = (await api.post(`/v1/models/${twin.id}/fit`).send({ dataset_id: train.id, epochs: 60, batch_size: 8, validation_split: 0.2, seed: 1 }).expect(202)).body;
  assert.deepEqual((await waitForJob(stack.app, twinJob.id)).history, job.history);

  // Columnar form gives the same numbers under "outputs".
  const columnar = (await api.post(`/v1/models/${model.id}/predict`).send({ inputs: X.slice(120, 130) }).expect(200)).body;
  assert.deepEqual(columnar.outputs, pred.predictions);

  // A second fit continues from version 1 and makes version 2; version 1 still serves.
  const again = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: train.id, epochs: 2, batch_size: 16 }).expect(202)).body;
  assert.equal(again.base_version, 1);
  assert.equal((await waitForJob(stack.app, again.id)).model_version, 2);
  const versions = (await api.get(`/v1/models/${model.id}`).expect(200)).body.versions;
  assert.deepEqual(versions.map((v: any) => v.version), [1, 2]);
  const v1 = (await api.post(`/v1/models/${model.id}/predict`).send({ instances: X.slice(120, 130), version: 1 }).expect(200)).body;
  assert.deepEqual(v1.predictions, pred.predictions);
  await api.post(`/v1/models/${model.id}/predict`).send({ instances: X.slice(0, 1), version: 7 }).expect(404);
});

test('predict checks shapes: expected and received shape in a 400', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send(mlp).expect(201)).body;
  const untrained = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [[1, 2, 3, 4]] }).expect(409);
  assert.equal(untrained.body.error.code, 'MODEL_HAS_NO_VERSION');
  const ds = (await api.post('/v1/datasets').send({ name: 'tiny', x: X.slice(0, 16), y: Y.slice(0, 16) }).expect(201)).body;
  await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 1 }).expect(202)).body.id);

  const wrongWidth = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [[1, 2, 3]] }).expect(400);
  assert.equal(wrongWidth.body.error.code, 'PREDICT_INPUT_INVALID');
  assert.deepEqual(wrongWidth.body.error.details, { expected: [null, 4], received: [1, 3] });
  assert.match(wrongWidth.body.error.message, /expects shape \[None, 4\], received \[1, 3\]/);
  const ragged = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [[1, 2, 3, 4], [1, 2]] }).expect(400);
  assert.equal(ragged.body.error.path, 'instances[1]');
  const notNumber = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [[1, 2, 'x', 4]] }).expect(400);
  assert.equal(notNumber.body.error.path, 'instances[0][2]');
  const both = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [[1, 2, 3, 4]], inputs: [[1, 2, 3, 4]] }).expect(400);
  assert.equal(both.body.error.code, 'PREDICT_INPUT_INVALID');
  const rank = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [[[1, 2, 3, 4]]] }).expect(400);
  assert.deepEqual(rank.body.error.details.received, [1, 1, 4]);
});

test('Swagger UI at /docs; health needs no key; a plain GET on the events socket is a 426', async () => {
  const api = request(stack.app.server);
  const docs = await api.get('/docs/').expect(200);
  assert.match(docs.text, /swagger/i);
  const health = (await api.get('/health').expect(200)).body;
  assert.deepEqual(health, { status: 'ok', redis: 'ok', workers: 1, backend: health.backend, backend_reason: health.backend_reason });
  assert.match(health.backend_reason, /loaded|TF_BACKEND/);
  assert.ok(['wasm', 'cpu', 'tensorflow'].includes(health.backend));
  const ds = (await api.post('/v1/datasets').send({ name: 'one', x: [[1, 2, 3, 4]], y: [0] }).expect(201)).body;
  const model = (await api.post('/v1/models').send(mlp).expect(201)).body;
  const job = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 1 }).expect(202)).body;
  const plain = await api.get(`/v1/jobs/${job.id}/events`).expect(426);
  assert.equal(plain.body.error.code, 'UPGRADE_REQUIRED');
  await waitForJob(stack.app, job.id);
});
