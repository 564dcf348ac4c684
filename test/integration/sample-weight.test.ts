// sample_weight and steps_per_epoch through the service: a CSV upload with ?sample_weight=, a
// JSON body and a multipart part carry the weight column (GET shows it); fit and evaluate jobs
// weight their losses with it unless told "sample_weight": false; steps_per_epoch running out
// of data stops the fit with an OUT_OF_DATA warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';

const stack = useStack();
const spec = { type: 'sequential', layers: [{ type: 'Dense', units: 1, input_shape: [2] }] };
const compile = { optimizer: 'sgd', loss: 'mse', metrics: ['mae'] };

function near(a: number, b: number, what: string) {
  assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('uploads carry a sample-weight column: CSV ?sample_weight=, JSON, multipart', async () => {
  const api = request(stack.app.server);
  const csv = 'a,b,w,y\n1,2,0.5,3\n0,1,2,1\n3,0,0,2\n';
  const ds = (await api.post('/v1/datasets?name=w&label=y&sample_weight=w').set('content-type', 'text/csv').send(csv).expect(201)).body;
  assert.equal(ds.samples, 3);
  assert.deepEqual(ds.x, { shape: [2], dtype: 'float32' });
  assert.deepEqual(ds.columns.x, ['a', 'b']);
  const { mean, ...sw } = ds.sample_weight;
  assert.deepEqual(sw, { shape: [], dtype: 'float32', min: 0, max: 2 });
  near(mean, 2.5 / 3, 'mean weight');
  const got = (await api.get(`/v1/datasets/${ds.id}`).expect(200)).body;
  assert.deepEqual(got.sample_weight, ds.sample_weight);
  const bad = await api.post('/v1/datasets?name=w&label=y&sample_weight=w').set('content-type', 'text/csv').send('a,b,w,y\n1,2,-1,3\n');
  assert.equal(bad.status, 422, JSON.stringify(bad.body));
  const missing = await api.post('/v1/datasets?name=w&label=y&sample_weight=nope').set('content-type', 'text/csv').send(csv);
  assert.equal(missing.status, 422);

  const json = (await api.post('/v1/datasets').send({ name: 'j', x: [[1, 2], [0, 1]], y: [1, 2], sample_weight: [1, 3] }).expect(201)).body;
  assert.equal(json.sample_weight.max, 3);
  const noW = (await api.post('/v1/datasets').send({ name: 'j', x: [[1, 2]], y: [1] }).expect(201)).body;
  assert.equal(noW.sample_weight, undefined);
  const short = await api.post('/v1/datasets').send({ name: 'j', x: [[1, 2], [0, 1]], y: [1, 2], sample_weight: [1] });
  assert.equal(short.status, 422);

  const mp = (await api.post('/v1/datasets?name=m')
    .attach('x', Buffer.from('a,b\n1,2\n0,1\n'), 'x.csv')
    .attach('y', Buffer.from('t\n1\n2\n'), 'y.csv')
    .attach('sample_weight', Buffer.from('w\n0.25\n4\n'), 'w.csv')
    .expect(201)).body;
  assert.equal(mp.sample_weight.min, 0.25);
  assert.equal(mp.sample_weight.max, 4);
});

test('fit and evaluate jobs weight the loss by the dataset\'s sample weights; steps_per_epoch runs out with a warning', async () => {
  const api = request(stack.app.server);
  const x = [[1, 2], [0, 1], [3, 0], [1, 1]];
  const y = [0, 1, 3, 2];
  const ds = (await api.post('/v1/datasets').send({ name: 'w2', x, y, sample_weight: [2, 2, 2, 2] }).expect(201)).body;
  const ds0 = (await api.post('/v1/datasets').send({ name: 'w0', x, y, sample_weight: [0, 1, 0, 1] }).expect(201)).body;
  const newModel = async () => (await api.post('/v1/models').send({ name: 'lin', spec, compile }).expect(201)).body;
  const model = await newModel();
  // One batch of every sample: the epoch loss is the loss before the update; a model's first fit
  // with the same seed starts from the same initial weights.
  const run = async (body: Record<string, unknown>, on = model) => {
    const job = await waitForJob(stack.app, (await api.post(`/v1/models/${on.id}/fit`).send({ epochs: 1, batch_size: 4, seed: 1, ...body }).expect(202)).body.id);
    assert.equal(job.status, 'completed', JSON.stringify(job.error));
    return job;
  };
  const weighted = await run({ dataset_id: ds.id });
  const plain = await run({ dataset_id: ds.id, sample_weight: false }, await newModel());
  near(weighted.history.loss[0], 2 * plain.history.loss[0], 'weights 2 double the loss');
  near(weighted.history.mae[0], plain.history.mae[0], 'metrics are not weighted');
  assert.equal(plain.params.sample_weight, false);

  const version = weighted.model_version;
  const ev = async (id: string, extra: Record<string, unknown> = {}) => {
    const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: id, batch_size: 4, version, ...extra }).expect(202)).body.id);
    assert.equal(job.status, 'completed', JSON.stringify(job.error));
    return job.result;
  };
  const evPlain = await ev(ds.id, { sample_weight: false });
  near((await ev(ds.id)).loss, 2 * evPlain.loss, 'evaluate: weights 2 double the loss');
  // Weights [0, 1, 0, 1]: samples 0 and 2 do not count, the sum is still divided by 4.
  const ds13 = (await api.post('/v1/datasets').send({ name: 'odd', x: [x[1], x[3]], y: [y[1], y[3]] }).expect(201)).body;
  near((await ev(ds0.id)).loss, (await ev(ds13.id)).loss / 2, 'evaluate with weights [0, 1, 0, 1]');

  // 4 samples, batch 2: 2 batches per pass, 2 epochs -> 4 batches; steps_per_epoch 3 runs out in epoch 1.
  const out = await run({ dataset_id: ds.id, epochs: 2, batch_size: 2, steps_per_epoch: 3 });
  assert.equal(out.history.loss.length, 2);
  assert.equal(out.warnings?.[0]?.code, 'OUT_OF_DATA', JSON.stringify(out));
  const full = await run({ dataset_id: ds.id, epochs: 2, batch_size: 2, steps_per_epoch: 1 });
  assert.equal(full.history.loss.length, 2);
  assert.equal(full.warnings, undefined);
});
