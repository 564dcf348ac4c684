// API keys and tenants; malformed requests (each a 4xx with a stable code and a path,
// nothing half-written).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { watchJob } from '../helpers/ws.ts';

const stack = useStack({ env: {
  API_KEYS: 'alice:key-a,bob:key-b', MAX_DATASET_SAMPLES: '1000', MAX_BODY_BYTES: '300000',
  MAX_MODEL_PARAMS: '100000', MAX_EPOCHS: '500', MAX_PREDICT_INSTANCES: '50',
} });
const A = { authorization: 'Bearer key-a' };
const B = { authorization: 'Bearer key-b' };

const dense = {
  spec: { type: 'sequential', layers: [{ type: 'Dense', units: 2, activation: 'softmax', input_shape: [3] }] },
  compile: { optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
};

test('keys map to tenants; another tenant\'s ids are 404; no key is 401', async () => {
  const api = request(stack.app.server);
  const health = await api.get('/health').expect(200);
  assert.equal(health.body.redis, 'ok');
  const noKey = await api.get('/v1/models').expect(401);
  assert.equal(noKey.body.error.code, 'UNAUTHORIZED');
  await api.get('/v1/models').set({ authorization: 'Bearer nope' }).expect(401);

  const ds = (await api.post('/v1/datasets').set(A).send({ name: 'a', x: [[1, 2, 3], [4, 5, 6]], y: [0, 1] }).expect(201)).body;
  const model = (await api.post('/v1/models').set(A).send(dense).expect(201)).body;
  const job = (await api.post(`/v1/models/${model.id}/fit`).set(A).send({ dataset_id: ds.id, epochs: 1 }).expect(202)).body;
  await waitForJob(stack.app, job.id, A);

  for (const path of [`/v1/datasets/${ds.id}`, `/v1/models/${model.id}`, `/v1/jobs/${job.id}`, `/v1/models/${model.id}/summary`]) {
    const res = await api.get(path).set(B).expect(404);
    assert.equal(res.body.error.code, 'NOT_FOUND');
    await api.get(path).set(A).expect(200);
  }
  await api.post(`/v1/models/${model.id}/predict`).set(B).send({ instances: [[1, 2, 3]] }).expect(404);
  await api.post(`/v1/models/${model.id}/fit`).set(B).send({ dataset_id: ds.id }).expect(404);
  await api.post(`/v1/jobs/${job.id}/cancel`).set(B).expect(404);
  await api.delete(`/v1/datasets/${ds.id}`).set(B).expect(404);
  // Bob's model cannot train on Alice's dataset.
  const bobModel = (await api.post('/v1/models').set(B).send(dense).expect(201)).body;
  const cross = await api.post(`/v1/models/${bobModel.id}/fit`).set(B).send({ dataset_id: ds.id }).expect(404);
  assert.equal(cross.body.error.path, 'dataset_id');
  assert.equal((await api.get('/v1/models').set(B).expect(200)).body.items.length, 1);
  assert.equal((await api.get('/v1/datasets').set(B).expect(200)).body.items.length, 0);
  // WebSocket: header or ?access_token=, and the tenant check applies.
  const ok = await watchJob(stack.url, job.id, { access_token: 'key-a' }).closed;
  assert.equal(ok.events.at(-1).type, 'done');
  const viaHeader = await watchJob(stack.url, job.id, {}, A).closed;
  assert.equal(viaHeader.events.length, ok.events.length);
  await assert.rejects(watchJob(stack.url, job.id, { access_token: 'key-b' }).closed, /404/);
  await assert.rejects(watchJob(stack.url, job.id).closed, /401/);
  await api.post(`/v1/models/${model.id}/predict`).set(A).send({ instances: [[1, 2, 3]] }).expect(200);
});

test('lists page newest first with limit and cursor', async () => {
  const api = request(stack.app.server);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await api.post('/v1/datasets').set(B).send({ name: `p${i}`, x: [[i]], y: [i] }).expect(201)).body.id);
  const first = (await api.get('/v1/datasets?limit=2').set(B).expect(200)).body;
  assert.deepEqual(first.items.map((d: any) => d.id), [ids[4], ids[3]]);
  const second = (await api.get(`/v1/datasets?limit=2&cursor=${first.next_cursor}`).set(B).expect(200)).body;
  assert.deepEqual(second.items.map((d: any) => d.id), [ids[2], ids[1]]);
  const third = (await api.get(`/v1/datasets?limit=2&cursor=${second.next_cursor}`).set(B).expect(200)).body;
  assert.deepEqual(third.items.map((d: any) => d.id), [ids[0]]);
  assert.equal(third.next_cursor, null);
  for (const id of ids) await api.delete(`/v1/datasets/${id}`).set(B).expect(204);
  await api.get(`/v1/datasets/${ids[0]}`).set(B).expect(404);
});

test('malformed requests: a 4xx with a code and a path, and nothing half-written', async () => {
  const api = request(stack.app.server);
  const H = { authorization: 'Bearer key-a' };
  const before = {
    datasets: (await api.get('/v1/datasets').set(H)).body.items.length,
    models: (await api.get('/v1/models').set(H)).body.items.length,
    jobs: (await api.get('/v1/jobs').set(H)).body.items.length,
  };
  const ds = (await api.post('/v1/datasets').set(H).send({ name: 'ok', x: [[1, 2, 3], [4, 5, 6]], y: [0, 1] }).expect(201)).body;
  const model = (await api.post('/v1/models').set(H).send(dense).expect(201)).body;
  const cases: Array<[string, string, unknown, number, string, string]> = [
    // [method, url, body, status, code, path]
    ['POST', '/v1/datasets', { x: [[1]], y: [1] }, 400, 'VALIDATION_FAILED', 'name'],
    ['POST', '/v1/datasets', { name: 'a', x: [[1, 2], [3]], y: [0, 1] }, 422, 'DATASET_INVALID', 'x[1]'],
    ['POST', '/v1/datasets', { name: 'a', x: [[1, 'two']], y: [0] }, 422, 'DATASET_INVALID', 'x[0][1]'],
    ['POST', '/v1/datasets', { name: 'a', x: [[1], [2]], y: [0] }, 422, 'DATASET_INVALID', 'y'],
    ['POST', '/v1/datasets', { name: 'a', x: [[1]], y: [0], z: 1 }, 400, 'VALIDATION_FAILED', 'z'],
    ['POST', '/v1/datasets', { name: 'a', x: 'abc', y: [0] }, 400, 'VALIDATION_FAILED', 'x'],
    ['POST', '/v1/datasets', { name: 'a', x: [[null]], y: [0] }, 422, 'DATASET_INVALID', 'x[0][0]'],
    ['POST', '/v1/datasets', { name: 'a', x: [], y: [] }, 422, 'DATASET_INVALID', 'x'],
    ['POST', '/v1/datasets', { name: 'a', x: Array.from({ length: 1001 }, () => [1]), y: Array.from({ length: 1001 }, () => 0) }, 422, 'LIMIT_EXCEEDED', 'x'],
    ['POST', '/v1/models', { spec: { type: 'sequential', layers: [{ type: 'Dense', units: -3, input_shape: [3] }] } }, 422, 'MODEL_SPEC_INVALID', 'spec.layers[0].units'],
    ['POST', '/v1/models', { spec: { type: 'sequential', layers: [{ type: 'Danse', units: 3, input_shape: [3] }] } }, 422, 'MODEL_SPEC_INVALID', 'spec.layers[0].type'],
    ['POST', '/v1/models', { spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3 }] } }, 422, 'MODEL_SPEC_INVALID', 'spec.layers[0].input_shape'],
    ['POST', '/v1/models', { spec: { type: 'functional', inputs: [{ name: 'a', shape: [2] }], layers: [{ name: 'd', type: 'Dense', units: 2, inputs: ['nope'] }], outputs: ['d'] } }, 422, 'MODEL_SPEC_INVALID', 'spec.layers[0].inputs[0]'],
    ['POST', '/v1/models', { ...dense, compile: { optimizer: 'adamm', loss: 'mse' } }, 422, 'COMPILE_INVALID', 'compile.optimizer'],
    ['POST', '/v1/models', { ...dense, compile: { optimizer: 'adam', loss: 'msee' } }, 422, 'COMPILE_INVALID', 'compile.loss'],
    ['POST', '/v1/models', { ...dense, compile: { optimizer: 'adam', loss: ['mse', 'mse'] } }, 422, 'COMPILE_INVALID', 'compile.loss'],
    ['POST', '/v1/models', { spec: [] }, 400, 'VALIDATION_FAILED', 'spec'],
    ['POST', '/v1/models', { spec: { class_name: 'Sequential', config: { layers: [] } } }, 422, 'MODEL_SPEC_INVALID', 'spec.config.layers'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, epochs: 0 }, 400, 'VALIDATION_FAILED', 'epochs'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, batch_size: 'big' }, 400, 'VALIDATION_FAILED', 'batch_size'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, validation_split: 1.5 }, 400, 'VALIDATION_FAILED', 'validation_split'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: 'ds_doesnotexist0' }, 404, 'NOT_FOUND', 'dataset_id'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, epochs: 2, initial_epoch: 5 }, 422, 'FIT_OPTIONS_INVALID', 'initial_epoch'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, callbacks: [{ type: 'csv_logger' }] }, 422, 'FIT_OPTIONS_INVALID', 'callbacks[0].type'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, callbacks: [{ type: 'reduce_lr_on_plateau', factor: 2 }] }, 422, 'FIT_OPTIONS_INVALID', 'callbacks[0].factor'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, max_seconds: 0 }, 400, 'VALIDATION_FAILED', 'max_seconds'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, callbacks: [{ type: 'early_stopping', patience: 'x' }] }, 422, 'FIT_OPTIONS_INVALID', 'callbacks[0].patience'],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, compile: { optimizer: 'adam', loss: 'mse' } }, 422, 'DATASET_MISMATCH', 'dataset_id'],
    ['POST', `/v1/models/${model.id}/evaluate`, { dataset_id: ds.id }, 409, 'MODEL_HAS_NO_VERSION', ''],
    ['POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, shuffle: 'yes please' }, 400, 'VALIDATION_FAILED', 'shuffle'],
    ['GET', '/v1/models?limit=0', undefined, 400, 'VALIDATION_FAILED', 'query.limit'],
  ];
  // A dataset whose labels do not fit the model: class 5 of a 2-unit softmax, and a wrong feature width.
  const badLabels = (await api.post('/v1/datasets').set(H).send({ name: 'bad-labels', x: [[1, 2, 3]], y: [5] }).expect(201)).body;
  const badWidth = (await api.post('/v1/datasets').set(H).send({ name: 'bad-width', x: [[1, 2]], y: [0] }).expect(201)).body;
  cases.push(['POST', `/v1/models/${model.id}/fit`, { dataset_id: badLabels.id }, 422, 'DATASET_MISMATCH', 'dataset_id']);
  cases.push(['POST', `/v1/models/${model.id}/fit`, { dataset_id: badWidth.id }, 422, 'DATASET_MISMATCH', 'dataset_id']);
  for (const [method, url, body, status, code, path] of cases) {
    const req = method === 'GET' ? api.get(url).set(H) : api.post(url).set(H).send(body as object);
    const res = await req;
    const label = `${method} ${url} ${JSON.stringify(body)?.slice(0, 80)}`;
    assert.equal(res.status, status, `${label}: ${res.text}`);
    assert.equal(res.body.error.code, code, label);
    if (path) assert.equal(res.body.error.path, path, label);
    assert.ok(res.body.error.message.length > 10, label);
  }
  assert.ok(cases.length >= 20);
  // Not JSON at all; a wrong content type; a body over the size limit is covered by fastify's bodyLimit.
  const notJson = await api.post('/v1/datasets').set(H).set('content-type', 'application/json').send('{"name": ');
  assert.equal(notJson.status, 400);
  assert.equal(notJson.body.error.code, 'INVALID_JSON');
  const wrongType = await api.post('/v1/models').set(H).set('content-type', 'application/xml').send('<model/>');
  assert.equal(wrongType.status, 415);
  assert.equal(wrongType.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  const unknownRoute = await api.get('/v1/nothing').set(H).expect(404);
  assert.equal(unknownRoute.body.error.code, 'ROUTE_NOT_FOUND');

  // Nothing half-written: just the datasets and model made on purpose above, no jobs.
  assert.equal((await api.get('/v1/datasets').set(H)).body.items.length, before.datasets + 3);
  assert.equal((await api.get('/v1/models').set(H)).body.items.length, before.models + 1);
  assert.equal((await api.get('/v1/jobs').set(H)).body.items.length, before.jobs);
});

test('Keras arguments in tfjs camelCase are accepted too (batchSize, validationSplit, lossWeights)', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets').set(A).send({ name: 'camel', x: [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 1, 1]], y: [0, 1, 1, 0] }).expect(201)).body;
  const model = (await api.post('/v1/models').set(A).send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 2, activation: 'softmax', inputShape: [3] }] },
    compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', lossWeights: [1] },
  }).expect(201)).body;
  const job = (await api.post(`/v1/models/${model.id}/fit`).set(A).send({ dataset_id: ds.id, batchSize: 2, validationSplit: 0.5, initialEpoch: 1, epochs: 3 }).expect(202)).body;
  assert.deepEqual([job.params.batch_size, job.params.validation_split, job.params.initial_epoch], [2, 0.5, 1]);
  const done = await waitForJob(stack.app, job.id, A);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  assert.equal(done.history.loss.length, 2, 'epochs 1 and 2 run after initial_epoch 1');
  assert.equal(done.history.val_loss.length, 2);
  // Both spellings at once are ambiguous: refused.
  const both = await api.post(`/v1/models/${model.id}/fit`).set(A).send({ dataset_id: ds.id, batchSize: 2, batch_size: 4 }).expect(400);
  assert.equal(both.body.error.path, 'batchSize');
});

test('configured limits answer 413 / 422 naming the limit', async () => {
  const api = request(stack.app.server);
  const big = await api.post('/v1/datasets').set(A).send({ name: 'big', x: Array.from({ length: 900 }, () => Array(40).fill(0.123456)), y: Array(900).fill(0) });
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, 'PAYLOAD_TOO_LARGE');
  assert.match(big.body.error.message, /MAX_BODY_BYTES/);
  const huge = await api.post('/v1/models').set(A).send({ spec: { type: 'sequential', layers: [{ type: 'Dense', units: 1000, input_shape: [1000] }] } }).expect(422);
  assert.equal(huge.body.error.code, 'LIMIT_EXCEEDED');
  assert.match(huge.body.error.message, /100000/);
  const model = (await api.post('/v1/models').set(A).send(dense).expect(201)).body;
  const ds = (await api.post('/v1/datasets').set(A).send({ name: 'l', x: [[1, 2, 3]], y: [0] }).expect(201)).body;
  const epochs = await api.post(`/v1/models/${model.id}/fit`).set(A).send({ dataset_id: ds.id, epochs: 501 }).expect(422);
  assert.equal(epochs.body.error.code, 'LIMIT_EXCEEDED');
  assert.equal(epochs.body.error.path, 'epochs');
  await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).set(A).send({ dataset_id: ds.id }).expect(202)).body.id, A);
  const many = await api.post(`/v1/models/${model.id}/predict`).set(A).send({ instances: Array(51).fill([1, 2, 3]) }).expect(413);
  assert.match(many.body.error.message, /MAX_PREDICT_INSTANCES/);
});
