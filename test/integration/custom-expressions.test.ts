// Parts 7 and 8 of the Keras course (../shared/seed) over HTTP: the BiasLayer as a Custom
// layer and the MSE loss as an expression train in a worker and serve predictions from the
// tensor thread (both load the saved model in another thread or process); a custom metric
// shows up in history; hostile expressions are refused and the service stays healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob, iris } from '../helpers/stack.ts';

const stack = useStack();
const { X, Y } = iris();
const oneHot = Y.map((c) => [0, 1, 2].map((k) => (k === c ? 1 : 0)));

const biasLayer = {
  type: 'Custom', name: 'bias', config: { units: 16 },
  weights: { bias: { shape: ['units'], initializer: 'zeros', trainable: true } },
  call: 'inputs + bias',
};
const courseModel = {
  name: 'course-part7-8',
  spec: { type: 'sequential', layers: [
    { type: 'Dense', units: 16, activation: 'relu', input_shape: [4] },
    biasLayer,
    { type: 'Dense', units: 3, activation: 'softmax' }] },
  compile: {
    optimizer: { type: 'adam', learning_rate: 0.01 },
    loss: { expression: 'mean(square(y_true - y_pred))' },
    metrics: ['accuracy', { name: 'rmse', expression: 'sqrt(mean(square(y_true - y_pred), axis=-1))' }],
  },
};

test('the course BiasLayer and MSE loss train, report a custom metric and serve predictions', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets').send({ name: 'iris-onehot', x: X, y: oneHot }).expect(201)).body;
  const model = (await api.post('/v1/models').send(courseModel).expect(201)).body;
  // Dense(16) 80, bias 16, Dense(3) 51, as Keras counts the BiasLayer's weight.
  assert.deepEqual(model.summary.layers.map((l: any) => [l.name, l.type, l.output_shape, l.params]), [
    ['dense', 'Dense', [null, 16], 80], ['bias', 'Custom', [null, 16], 16], ['dense_1', 'Dense', [null, 3], 51]]);
  assert.equal(model.summary.total_params, 147);

  const fit = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 15, batch_size: 16, validation_split: 0.2, seed: 2 }).expect(202)).body;
  const job = await waitForJob(stack.app, fit.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.deepEqual(Object.keys(job.history).sort(), ['accuracy', 'loss', 'rmse', 'val_accuracy', 'val_loss', 'val_rmse']);
  assert.ok(job.history.loss[14] < job.history.loss[0] * 0.8, `loss falls: ${job.history.loss}`);
  assert.ok(job.history.val_rmse[14] < job.history.val_rmse[0], 'val_rmse falls');
  assert.ok(job.history.accuracy[14] > 0.7, `accuracy ${job.history.accuracy[14]}`);

  // The tensor thread loads the version the worker saved: the Custom layer comes back with its bias.
  const pred = (await api.post(`/v1/models/${model.id}/predict?classes=true`).send({ instances: X.slice(0, 20) }).expect(200)).body;
  assert.equal(pred.predictions.length, 20);
  const right = pred.classes.filter((c: number, i: number) => c === Y[i]).length;
  assert.ok(right >= 14, `${right}/20 right`);

  // evaluate in a worker recomputes the same metrics by name.
  const ev = (await api.post(`/v1/models/${model.id}/evaluate`).send({ dataset_id: ds.id }).expect(202)).body;
  const evaluated = await waitForJob(stack.app, ev.id);
  assert.equal(evaluated.status, 'completed', JSON.stringify(evaluated.error));
  assert.deepEqual(Object.keys(evaluated.result).sort(), ['accuracy', 'loss', 'rmse']);
});

test('an expression activation and a functional Custom layer over two inputs train and predict', async () => {
  const api = request(stack.app.server);
  const ds = (await api.post('/v1/datasets').send({ name: 'iris-two', x: { a: X.map((r) => r.slice(0, 2)), b: X.map((r) => r.slice(2)) }, y: Y }).expect(201)).body;
  const model = (await api.post('/v1/models').send({
    spec: { type: 'functional', inputs: [{ name: 'a', shape: [2] }, { name: 'b', shape: [2] }], layers: [
      { type: 'Concatenate', name: 'ab', inputs: ['a', 'b'] },
      { type: 'Custom', name: 'mix', inputs: ['ab', 'a'], config: { units: 8 },
        weights: { kernel: { shape: ['input_dim', 'units'] }, bias: { shape: ['units'], initializer: 'zeros' } },
        call: 'inputs[0] @ kernel + bias + sum(inputs[1], axis=-1, keepdims=true)' },
      { type: 'Dense', name: 'h', units: 8, activation: { expression: 'x * sigmoid(x)' }, inputs: ['mix'] },
      { type: 'Dense', name: 'out', units: 3, activation: 'softmax', inputs: ['h'] }], outputs: ['out'] },
    compile: { optimizer: { type: 'adam', learning_rate: 0.02 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
  }).expect(201)).body;
  assert.equal(model.summary.layers.find((l: any) => l.name === 'mix').params, 4 * 8 + 8);
  const fit = (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 20, batch_size: 16, seed: 3 }).expect(202)).body;
  const job = await waitForJob(stack.app, fit.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.ok(job.history.loss[19] < job.history.loss[0], 'loss falls');
  const pred = (await api.post(`/v1/models/${model.id}/predict`).send({ inputs: { a: X.slice(0, 3).map((r) => r.slice(0, 2)), b: X.slice(0, 3).map((r) => r.slice(2)) } }).expect(200)).body;
  assert.equal(pred.outputs.length, 3);
});

test('a loss expression that does not fit the dataset targets is refused at fit, before queueing', async () => {
  const api = request(stack.app.server);
  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, input_shape: [4] }] },
    // [batch, 3] @ [3, batch] fits targets shaped like the output, not 5-wide ones.
    compile: { optimizer: 'sgd', loss: { expression: 'mean(y_true @ transpose(y_pred), axis=-1)' } },
  }).expect(201)).body;
  const ds = (await api.post('/v1/datasets').send({ name: 'wide-y', x: X.slice(0, 10), y: X.slice(0, 10).map((r) => [...r, 0]) }).expect(201)).body;
  const res = await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 1 }).expect(422);
  assert.equal(res.body.error.code, 'DATASET_MISMATCH');
  assert.match(res.body.error.message, /loss expression/);
  assert.match(res.body.error.message, /"@" at position 12: .*shapes \[2, 5\] and \[3, 2\]/);
});

/** [where the expression goes, the expression]: each must be refused. */
const HOSTILE = [
  'constructor', '__proto__', 'x.constructor', 'inputs.constructor.constructor("return process")()', 'require("child_process")',
  'process.exit(1)', 'globalThis', 'this', 'eval("1")', 'Function("return 1")()', 'import("fs")', '`${inputs}`',
  "'a'", 'inputs = 1', 'inputs; 1', 'x => x', '{}', 'inputs ? 1 : 2', 'new Array(10)', 'inputs[99]', 'bias[0]',
  '1e999', '2 ** 1e308', '('.repeat(10_000) + 'inputs' + ')'.repeat(10_000), Array.from({ length: 100_000 }, () => 'inputs').join(' + '),
  'unknown_fn(inputs)', 'sum(inputs, bogus=1)', 'inputs +', '', 'one_hot(inputs, 1000000000)', 'reshape(inputs, [1000000, 1000000])',
  'inputs @ inputs', 'sum(inputs, axis=0)', 'cast(inputs, string)', 'inputs < 1 < 2', 42, null, ['inputs'], { expression: 'inputs' },
];

test(`${HOSTILE.length} hostile expressions in layers, losses, metrics and activations get a 4xx with a code`, async () => {
  const api = request(stack.app.server);
  assert.ok(HOSTILE.length >= 30);
  const place = [
    (e: unknown) => ({ spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, input_shape: [4] }, { ...biasLayer, config: { units: 3 }, call: e }] } }),
    (e: unknown) => ({ spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, input_shape: [4] }] }, compile: { loss: { expression: typeof e === 'string' ? e.replaceAll('inputs', 'y_pred') : e } } }),
    (e: unknown) => ({ spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, input_shape: [4] }] }, compile: { loss: 'mse', metrics: [{ name: 'm', expression: typeof e === 'string' ? e.replaceAll('inputs', 'y_true') : e }] } }),
    (e: unknown) => ({ spec: { type: 'sequential', layers: [{ type: 'Dense', units: 3, input_shape: [4], activation: { expression: typeof e === 'string' ? e.replaceAll('inputs', 'x') : e } }] } }),
  ];
  for (const [i, e] of HOSTILE.entries()) {
    const body = place[i % place.length]!(e);
    const res = await api.post('/v1/models').send(body);
    const label = `${JSON.stringify(e)?.slice(0, 50)} (placement ${i % place.length})`;
    assert.ok(res.status >= 400 && res.status < 500, `${label}: status ${res.status} ${JSON.stringify(res.body)}`);
    assert.match(res.body.error.code, /^(EXPRESSION_INVALID|MODEL_SPEC_INVALID|COMPILE_INVALID|PAYLOAD_TOO_LARGE|VALIDATION_FAILED)$/, label);
    assert.ok(res.body.error.message.length > 0, label);
    if (res.body.error.code === 'EXPRESSION_INVALID') assert.equal(typeof res.body.error.details.position, 'number', label);
  }
  // Every placement refuses at least one with EXPRESSION_INVALID and a path to the expression.
  const res = await api.post('/v1/models').send(place[0]!('inputs + process')).expect(422);
  assert.equal(res.body.error.code, 'EXPRESSION_INVALID');
  assert.equal(res.body.error.path, 'spec.layers[1].call');
  assert.deepEqual(res.body.error.details, { position: 9, expected: 'one of "inputs", "input_dim", "units", "bias"' });
  const loss = await api.post('/v1/models').send(place[1]!('mean(y_pred * this)')).expect(422);
  assert.equal(loss.body.error.path, 'compile.loss.expression');
  const act = await api.post('/v1/models').send(place[3]!('x * sigmoid(')).expect(422);
  assert.equal(act.body.error.path, 'spec.layers[0].activation.expression');

  // Nothing was half-created, and the service is healthy and still builds models.
  const health = await api.get('/health').expect(200);
  assert.equal(health.body.status, 'ok');
  await api.post('/v1/models').send(courseModel).expect(201);
});

/** A deterministic stream of random expressions made of the language's tokens (and a few foreign ones). */
function randomExpressions(count: number, seed: number): string[] {
  let s = seed;
  const next = (n: number) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
  const tokens = ['inputs', 'bias', 'units', 'input_dim', 'x', 'y_pred', 'y_true', 'sum(', 'mean(', 'one_hot(', 'reshape(', 'matmul(',
    'softmax(', 'where(', 'cast(', 'clip(', 'concat(', 'axis=', 'keepdims=', 'true', 'None', 'float32', '1', '-1', '0.5', '1e9', '3',
    '+', '-', '*', '/', '**', '@', '<', '==', '(', ')', '[', ']', ',', '=', '.', '"', '$', 'inputs[0]', 'epsilon()'];
  return Array.from({ length: count }, () => Array.from({ length: 1 + next(12) }, () => tokens[next(tokens.length)]).join(' '));
}

test('300 random expressions in every place: never a 5xx, and the service stays healthy', async () => {
  const api = request(stack.app.server);
  const statuses = new Map<number, number>();
  for (const [i, e] of randomExpressions(300, 7).entries()) {
    const layer = { type: 'Dense', units: 3, input_shape: [4] };
    const bodies = [
      { spec: { type: 'sequential', layers: [layer, { ...biasLayer, config: { units: 3 }, call: e }] } },
      { spec: { type: 'sequential', layers: [layer] }, compile: { loss: { expression: e } } },
      { spec: { type: 'sequential', layers: [layer] }, compile: { loss: 'mse', metrics: [{ name: 'm', expression: e }] } },
      { spec: { type: 'sequential', layers: [{ ...layer, activation: { expression: e } }] } },
    ];
    const res = await api.post('/v1/models').send(bodies[i % bodies.length]!);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status === 201 || (res.status >= 400 && res.status < 500), `${e}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.status !== 201) assert.ok(res.body.error?.code, e);
  }
  assert.ok((statuses.get(422) ?? 0) > 100, `mostly refused: ${JSON.stringify([...statuses])}`);
  await api.get('/health').expect(200);
});
