// Built-in datasets (in every tenant, read-only) and POST /v1/datasets/:id/split (seeded,
// stratified parts that train and evaluate like train_test_split's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { readColumnFile } from '../../src/datasets/dataset-files.ts';
import { paths } from '../../src/storage/paths.ts';

const stack = useStack({ env: { API_KEYS: 'alice:ka,bob:kb' } });
const A = { authorization: 'Bearer ka' };
const B = { authorization: 'Bearer kb' };

async function rows(tenant: string, ds: { id: string }): Promise<string[]> {
  const dir = paths.dataset(stack.config.dataDir, tenant, ds.id);
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const x = (await readColumnFile(dir, rec.x_columns[0], rec.samples)).data;
  const y = (await readColumnFile(dir, rec.y_columns[0], rec.samples)).data;
  const d = rec.x_columns[0].shape[0];
  return Array.from({ length: rec.samples }, (_, i) => `${Array.from(x.subarray(i * d, (i + 1) * d)).join(',')}|${y[i]}`);
}

test('built-in datasets: in every tenant, not in their lists, read-only, with attribution', async () => {
  const api = request(stack.app.server);
  for (const H of [A, B]) {
    const iris = (await api.get('/v1/datasets/builtin-iris').set(H).expect(200)).body;
    assert.equal(iris.builtin, true);
    assert.equal(iris.samples, 150);
    assert.deepEqual(iris.x.shape, [4]);
    assert.deepEqual(iris.stats.y.class_counts, { 0: 50, 1: 50, 2: 50 });
    assert.match(iris.attribution, /UCI Machine Learning Repository/);
    const listed = (await api.get('/v1/datasets?builtin=true').set(H).expect(200)).body.items;
    assert.deepEqual(listed.map((d: any) => [d.id, d.samples]), [['builtin-iris', 150], ['builtin-breast_cancer', 569], ['builtin-digits', 1797]]);
    assert.deepEqual((await api.get('/v1/datasets').set(H).expect(200)).body.items, [], 'the tenant\'s own list stays its own');
    const del = await api.delete('/v1/datasets/builtin-digits').set(H).expect(409);
    assert.equal(del.body.error.code, 'DATASET_READ_ONLY');
  }
  const digits = (await api.get('/v1/datasets/builtin-digits').set(A).expect(200)).body;
  assert.deepEqual([digits.x.shape, digits.stats.x.min, digits.stats.x.max], [[64], 0, 16]);
  await api.get('/v1/datasets/builtin-nope').set(A).expect(404);
});

test('split: seeded, stratified, a partition of the rows; the parts train and evaluate', async () => {
  const api = request(stack.app.server);
  const res = await api.post('/v1/datasets/builtin-iris/split').set(A).send({ fractions: [0.8, 0.2], seed: 1, stratify: true }).expect(201);
  const [train, testPart] = res.body.items;
  assert.deepEqual([train.samples, testPart.samples], [120, 30]);
  assert.deepEqual(train.stats.y.class_counts, { 0: 40, 1: 40, 2: 40 });
  assert.deepEqual(testPart.stats.y.class_counts, { 0: 10, 1: 10, 2: 10 });
  assert.deepEqual([train.name, train.source, train.split_of], ['iris-part0', 'split', { dataset_id: 'builtin-iris', part: 0, fractions: [0.8, 0.2], seed: 1, stratify: true }]);
  // A partition of the original rows, in a shuffled order.
  const a = await rows('alice', train);
  const b = await rows('alice', testPart);
  const dir = paths.builtin(stack.config.dataDir, fs.readdirSync(path.join(stack.config.dataDir, 'builtin')).find((d) => d.startsWith('iris-'))!);
  const rec = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const x = (await readColumnFile(dir, rec.x_columns[0], 150)).data;
  const y = (await readColumnFile(dir, rec.y_columns[0], 150)).data;
  const all = Array.from({ length: 150 }, (_, i) => `${Array.from(x.subarray(i * 4, i * 4 + 4)).join(',')}|${y[i]}`);
  assert.deepEqual([...a, ...b].sort(), all.slice().sort());
  assert.notDeepEqual(a, all.slice(0, 120), 'rows are shuffled');
  // The same seed gives the same parts; another seed others.
  const again = (await api.post('/v1/datasets/builtin-iris/split').set(A).send({ fractions: [0.8, 0.2], seed: 1, stratify: true, names: ['tr', 'te'] }).expect(201)).body.items;
  assert.deepEqual(again.map((d: any) => [d.name, d.checksum]), [['tr', train.checksum], ['te', testPart.checksum]]);
  const other = (await api.post('/v1/datasets/builtin-iris/split').set(A).send({ fractions: [0.8, 0.2], seed: 2 }).expect(201)).body.items;
  assert.notEqual(other[0].checksum, train.checksum);
  assert.deepEqual(other.map((d: any) => d.samples), [120, 30]);
  // Three parts of a split part; sizes by largest remainders.
  const three = (await api.post(`/v1/datasets/${train.id}/split`).set(A).send({ fractions: [0.5, 0.25, 0.25] }).expect(201)).body.items;
  assert.deepEqual(three.map((d: any) => d.samples), [60, 30, 30]);
  // Another tenant cannot split alice's dataset.
  await api.post(`/v1/datasets/${train.id}/split`).set(B).send({ fractions: [0.5, 0.5] }).expect(404);

  const model = (await api.post('/v1/models').set(A).send({
    spec: { type: 'sequential', layers: [
      { type: 'Normalization', adapt: true, input_shape: [4] },
      { type: 'Dense', units: 16, activation: 'relu' }, { type: 'Dense', units: 3, activation: 'softmax' }] },
    compile: { optimizer: { type: 'adam', learning_rate: 0.02 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
  }));
  if (model.status !== 201) {
    // The layer registry does not know Normalization yet: train without it.
    assert.equal(model.body.error.code, 'MODEL_SPEC_INVALID', model.text);
  }
  const m = model.status === 201 ? model.body : (await api.post('/v1/models').set(A).send({
    spec: { type: 'sequential', layers: [{ type: 'Rescaling', scale: 0.2, input_shape: [4] }, { type: 'Dense', units: 16, activation: 'relu' }, { type: 'Dense', units: 3, activation: 'softmax' }] },
    compile: { optimizer: { type: 'adam', learning_rate: 0.02 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
  }).expect(201)).body;
  const fit = await waitForJob(stack.app, (await api.post(`/v1/models/${m.id}/fit`).set(A).send({ dataset_id: train.id, epochs: 60, batch_size: 16, seed: 3 }).expect(202)).body.id, A);
  assert.equal(fit.status, 'completed', JSON.stringify(fit.error));
  const ev = await waitForJob(stack.app, (await api.post(`/v1/models/${m.id}/evaluate`).set(A).send({ dataset_id: testPart.id }).expect(202)).body.id, A);
  assert.equal(ev.status, 'completed', JSON.stringify(ev.error));
  assert.ok(ev.result.accuracy >= 0.9, `held-out accuracy ${ev.result.accuracy}`);
  if (model.status === 201) {
    // The adapted statistics are the layer's weights in the saved version: the train part's per-feature mean and variance.
    const json = (await api.get(`/v1/models/${m.id}/versions/1/model.json`).set(A).expect(200)).body;
    const bin = (await api.get(`/v1/models/${m.id}/versions/1/weights.bin`).set(A).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200)).body as Buffer;
    let offset = 0;
    const weights: Record<string, number[]> = {};
    for (const w of json.weightsManifest[0].weights) {
      const n = w.shape.reduce((a: number, b: number) => a * b, 1);
      weights[w.name] = Array.from(new Float32Array(bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + n * 4)));
      offset += n * 4;
    }
    const key = (suffix: string) => Object.keys(weights).find((k) => k.endsWith(`/${suffix}`))!;
    const f = train.stats.x.features;
    weights[key('mean')]!.forEach((v, i) => assert.ok(Math.abs(v - f.mean[i]) < 1e-5, `mean[${i}] ${v} vs ${f.mean[i]}`));
    weights[key('variance')]!.forEach((v, i) => assert.ok(Math.abs(v - f.std[i] ** 2) < 1e-4, `variance[${i}]`));
    assert.equal(weights[key('count')]![0], 120);
  }

  // Fit straight on a built-in.
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${m.id}/fit`).set(A).send({ dataset_id: 'builtin-iris', epochs: 2, validation_split: 0.2 }).expect(202)).body.id, A);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
});

test('split errors: fractions, empty parts, stratify without class labels', async () => {
  const api = request(stack.app.server);
  const reg = (await api.post('/v1/datasets').set(A).send({ name: 'reg', x: [[1], [2], [3], [4]], y: [0.5, 1.5, 2.5, 3.5] }).expect(201)).body;
  const cases: Array<[unknown, number, string, RegExp]> = [
    [{ fractions: [0.5, 0.6] }, 400, 'VALIDATION_FAILED', /sum to 1/],
    [{ fractions: [1] }, 400, 'VALIDATION_FAILED', /fractions/],
    [{ fractions: [0.9, 0.1, 0] }, 400, 'VALIDATION_FAILED', /fractions/],
    [{ fractions: [0.95, 0.05] }, 422, 'DATASET_INVALID', /part 1 would have no samples/],
    [{ fractions: [0.5, 0.5], stratify: true }, 422, 'DATASET_INVALID', /integer class labels/],
    [{ fractions: [0.5, 0.5], names: ['one'] }, 400, 'VALIDATION_FAILED', /one name per part/],
  ];
  for (const [body, status, code, message] of cases) {
    const res = await api.post(`/v1/datasets/${reg.id}/split`).set(A).send(body as object);
    assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
    assert.equal(res.body.error.code, code);
    assert.match(res.body.error.message, message);
  }
  assert.equal((await api.get('/v1/datasets').set(A).expect(200)).body.items.filter((d: any) => d.name.startsWith('reg-')).length, 0, 'no part left behind');
});
