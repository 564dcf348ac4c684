// Export: a trained version's model.json and weights.bin, served as stored, load with
// tf.loadLayersModel over HTTP unchanged and predict what the service predicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import request from 'supertest';
import { useStack, waitForJob, iris } from '../helpers/stack.ts';

const stack = useStack();
const { X, Y } = iris();

test('GET .../versions/:v/model.json loads with tf.loadLayersModel and predicts as the service does', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [
      { type: 'Dense', units: 8, activation: 'relu', input_shape: [4] },
      { type: 'BatchNormalization' },
      { type: 'Dense', units: 3, activation: 'softmax' }] },
    compile: { optimizer: 'adam', loss: 'sparse_categorical_crossentropy' },
  }).expect(201)).body;
  await api.get(`/v1/models/${model.id}/versions/latest/model.json`).expect(409);
  const ds = (await api.post('/v1/datasets').send({ name: 'iris', x: X, y: Y }).expect(201)).body;
  for (let i = 0; i < 2; i++) {
    const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 2 }).expect(202)).body.id);
    assert.equal(job.status, 'completed');
  }
  const manifest = (await api.get(`/v1/models/${model.id}/versions/1/model.json`).expect(200)).body;
  assert.equal(manifest.format, 'layers-model');
  assert.deepEqual(manifest.weightsManifest[0].paths, ['weights.bin']);
  const bin = await api.get(`/v1/models/${model.id}/versions/1/weights.bin`).buffer(true).parse((res, cb) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => cb(null, Buffer.concat(chunks)));
  }).expect(200);
  assert.equal(bin.headers['content-type'], 'application/octet-stream');
  const bytes = manifest.weightsManifest[0].weights.reduce((n: number, w: any) => n + w.shape.reduce((a: number, b: number) => a * b, 1) * 4, 0);
  assert.equal((bin.body as Buffer).length, bytes);

  for (const version of ['1', 'latest']) {
    const loaded = await tf.loadLayersModel(`${stack.url}/v1/models/${model.id}/versions/${version}/model.json`);
    const ours = tf.tidy(() => (loaded.predict(tf.tensor2d(X.slice(0, 6))) as tf.Tensor).arraySync() as number[][]);
    const served = (await api.post(`/v1/models/${model.id}/predict`).send({ instances: X.slice(0, 6), version: version === 'latest' ? 2 : 1 }).expect(200)).body.predictions;
    ours.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - served[i][j]) < 1e-5, `v${version} [${i}][${j}] ${v} vs ${served[i][j]}`)));
    loaded.dispose();
  }
  await api.get(`/v1/models/${model.id}/versions/3/model.json`).expect(404);
  await api.get(`/v1/models/${model.id}/versions/0/weights.bin`).expect(400);
  await api.get('/v1/models/mdl_0mx9x0000000000/versions/1/model.json').expect(404);
});

/** A tfjs model saved in memory: its model.json (weights in one file) and that file's bytes. */
async function savedInMemory(model: tf.LayersModel, file = 'group1-shard1of1.bin') {
  let json: Record<string, unknown> = {};
  let bin = Buffer.alloc(0);
  await model.save(tf.io.withSaveHandler(async (a) => {
    bin = Buffer.from(tf.io.concatenateArrayBuffers([a.weightData!].flat()));
    json = { format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: [file], weights: a.weightSpecs }] };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return { json: Buffer.from(JSON.stringify(json)), bin };
}

test('POST /v1/models with a multipart tfjs model.json + weights: version 1 predicts as tfjs does, and fine-tunes', async () => {
  const api = request(stack.app.server);
  const local = tf.sequential({ layers: [tf.layers.dense({ units: 5, activation: 'tanh', inputShape: [4] }), tf.layers.dense({ units: 3, activation: 'softmax' })] });
  const { json, bin } = await savedInMemory(local);
  const created = (await api.post('/v1/models')
    .field('name', 'uploaded')
    .field('compile', JSON.stringify({ optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] }))
    .attach('model.json', json, 'model.json')
    .attach('weights', bin, 'group1-shard1of1.bin')
    .expect(201)).body;
  assert.equal(created.name, 'uploaded');
  assert.equal(created.summary.total_params, 4 * 5 + 5 + 5 * 3 + 3);
  assert.deepEqual(created.versions.map((v: any) => [v.version, v.job_id]), [[1, 'import']]);
  const want = tf.tidy(() => (local.predict(tf.tensor2d(X.slice(0, 4))) as tf.Tensor).arraySync() as number[][]);
  const got = (await api.post(`/v1/models/${created.id}/predict`).send({ instances: X.slice(0, 4) }).expect(200)).body.predictions;
  want.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs(v - got[i][j]) < 1e-6)));
  // Fine-tuning starts from the uploaded weights and makes version 2.
  const ds = (await api.post('/v1/datasets').send({ name: 'iris', x: X, y: Y }).expect(201)).body;
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${created.id}/fit`).send({ dataset_id: ds.id, epochs: 1 }).expect(202)).body.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.equal(job.base_version, 1);
  assert.equal(job.model_version, 2);

  // Refusals leave nothing behind.
  const before = (await api.get('/v1/models?limit=100').expect(200)).body.items.length;
  const missing = await api.post('/v1/models').attach('model.json', json, 'model.json').expect(422);
  assert.match(missing.body.error.message, /group1-shard1of1\.bin/);
  const short = await api.post('/v1/models').attach('model.json', json, 'model.json').attach('w', bin.subarray(0, 8), 'group1-shard1of1.bin').expect(422);
  assert.equal(short.body.error.code, 'MODEL_SPEC_INVALID');
  await api.post('/v1/models').attach('w', bin, 'group1-shard1of1.bin').expect(400);
  await api.post('/v1/models').attach('model.json', Buffer.from('{nope'), 'model.json').expect(400);
  await api.post('/v1/models').attach('model.json', json, 'model.json').attach('w', bin, 'group1-shard1of1.bin').attach('x', bin, 'other.bin').expect(400);
  assert.equal((await api.get('/v1/models?limit=100').expect(200)).body.items.length, before);
  local.dispose();
});
