// Part 6 of the Keras course: the Functional API. Two inputs, two outputs, two losses,
// loss_weights [1.0, 0.5]; and a nested Sequential used as a layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob, iris } from '../helpers/stack.ts';

const stack = useStack();
const { X, Y } = iris();

test('two inputs, two outputs, loss_weights [1.0, 0.5]: loss is the weighted sum of the output losses', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send({
    name: 'two-heads',
    spec: {
      type: 'functional',
      inputs: [{ name: 'in1', shape: [2] }, { name: 'in2', shape: [2] }],
      layers: [
        { name: 'cat', type: 'Concatenate', inputs: ['in1', 'in2'] },
        { name: 'h', type: 'Dense', units: 16, activation: 'relu', inputs: ['cat'] },
        { name: 'out1', type: 'Dense', units: 3, activation: 'softmax', inputs: ['h'] },
        { name: 'out2', type: 'Dense', units: 4, activation: 'sigmoid', inputs: ['h'] },
      ],
      outputs: ['out1', 'out2'],
    },
    compile: { optimizer: { type: 'adam', learning_rate: 0.01 }, loss: ['sparse_categorical_crossentropy', 'mse'], loss_weights: [1.0, 0.5], metrics: ['accuracy'] },
  }).expect(201)).body;
  assert.deepEqual(model.inputs.map((i: any) => i.name), ['in1', 'in2']);
  assert.deepEqual(model.outputs, [{ name: 'out1', shape: [3] }, { name: 'out2', shape: [4] }]);
  // Keras: Dense(16) on 4 = 80, Dense(3) on 16 = 51, Dense(4) on 16 = 68.
  assert.equal(model.summary.total_params, 199);

  const target = X.map((r) => r.map((v) => 1 / (1 + Math.exp(-v))));
  const ds = (await api.post('/v1/datasets').send({
    name: 'iris-two',
    x: { in1: X.map((r) => r.slice(0, 2)), in2: X.map((r) => r.slice(2)) },
    y: { out1: Y, out2: target },
  }).expect(201)).body;
  assert.deepEqual(ds.x, { in1: { shape: [2], dtype: 'float32' }, in2: { shape: [2], dtype: 'float32' } });

  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 5, batch_size: 16, validation_split: 0.2 }).expect(202)).body.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.deepEqual(Object.keys(job.history).sort(), [
    'loss', 'out1_accuracy', 'out1_loss', 'out2_accuracy', 'out2_loss',
    'val_loss', 'val_out1_accuracy', 'val_out1_loss', 'val_out2_accuracy', 'val_out2_loss'].sort());
  for (const prefix of ['', 'val_']) {
    for (let e = 0; e < 5; e++) {
      const total = job.history[`${prefix}loss`][e];
      const weighted = job.history[`${prefix}out1_loss`][e] + 0.5 * job.history[`${prefix}out2_loss`][e];
      assert.ok(Math.abs(total - weighted) < 1e-4 * Math.max(1, total), `${prefix}loss ${total} = out1 + 0.5 * out2 = ${weighted}`);
    }
  }

  const pred = (await api.post(`/v1/models/${model.id}/predict?classes=true`).send({
    instances: [{ in1: X[0].slice(0, 2), in2: X[0].slice(2) }, { in1: X[1].slice(0, 2), in2: X[1].slice(2) }],
  }).expect(200)).body;
  assert.deepEqual(Object.keys(pred.predictions), ['out1', 'out2']);
  assert.equal(pred.predictions.out1.length, 2);
  assert.equal(pred.predictions.out2[0].length, 4);
  assert.equal(pred.classes.out1.length, 2);

  const missing = await api.post(`/v1/models/${model.id}/predict`).send({ instances: [{ in1: [1, 2] }] }).expect(400);
  assert.equal(missing.body.error.path, 'instances[0].in2');

  // Losses keyed by output name and a dataset whose y misses an output.
  const bad = await api.post('/v1/datasets').send({ name: 'one-head', x: { in1: [[1, 2]], in2: [[3, 4]] }, y: { out1: [0] } }).expect(201);
  const mismatch = await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: bad.body.id, epochs: 1 }).expect(422);
  assert.equal(mismatch.body.error.code, 'DATASET_MISMATCH');
  assert.match(mismatch.body.error.message, /out2/);
});

test('a nested Sequential used as a layer, losses keyed by output name, loss_weights as an object', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send({
    spec: {
      type: 'functional',
      inputs: [{ name: 'features', shape: [4] }],
      layers: [
        { name: 'hiddens', type: 'sequential', inputs: ['features'], layers: [
          { type: 'Dense', units: 8, activation: 'relu' },
          { type: 'Dense', units: 8, activation: 'relu' }] },
        { name: 'species', type: 'Dense', units: 3, activation: 'softmax', inputs: ['hiddens'] },
        { name: 'size', type: 'Dense', units: 1, inputs: ['hiddens'] },
      ],
      outputs: ['species', 'size'],
    },
    compile: { optimizer: 'rmsprop', loss: { species: 'sparse_categorical_crossentropy', size: 'mae' }, loss_weights: { species: 2, size: 1 }, metrics: { species: ['accuracy'] } },
  }).expect(201)).body;
  // hiddens: 4*8+8 + 8*8+8 = 112; species 8*3+3 = 27; size 8+1 = 9.
  assert.equal(model.summary.total_params, 148);
  assert.ok(model.summary.layers.some((l: any) => l.name === 'hiddens' && l.type === 'Sequential' && l.params === 112));
  const ds = (await api.post('/v1/datasets').send({ name: 'nested', x: X, y: { species: Y, size: X.map((r) => [r[2]]) } }).expect(201)).body;
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 3, batch_size: 32 }).expect(202)).body.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.deepEqual(Object.keys(job.history).sort(), ['loss', 'size_loss', 'species_accuracy', 'species_loss']);
  const e = 2;
  assert.ok(Math.abs(job.history.loss[e] - (2 * job.history.species_loss[e] + job.history.size_loss[e])) < 1e-4 * job.history.loss[e]);
});

test('a model defined without compile (as in Keras) summarises; fit needs a compile, which then sticks', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, activation: 'softmax', input_shape: [4] }] },
  }).expect(201)).body;
  assert.equal(model.compile, null);
  assert.equal(model.summary.total_params, 15);
  const ds = (await api.post('/v1/datasets').send({ name: 'nc', x: X.slice(0, 30), y: Y.slice(0, 30) }).expect(201)).body;
  const refused = await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id }).expect(422);
  assert.deepEqual([refused.body.error.code, refused.body.error.path], ['COMPILE_INVALID', 'compile']);
  const compile = { optimizer: 'sgd', loss: 'sparse_categorical_crossentropy', metrics: ['sparse_categorical_accuracy'] };
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 2, compile }).expect(202)).body.id);
  assert.deepEqual(Object.keys(job.history).sort(), ['loss', 'sparse_categorical_accuracy']);
  assert.deepEqual((await api.get(`/v1/models/${model.id}`).expect(200)).body.compile, compile);
  const ev = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: ds.id }).expect(202)).body.id);
  assert.deepEqual(Object.keys(ev.result).sort(), ['loss', 'sparse_categorical_accuracy']);
});
