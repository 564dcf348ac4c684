// A Keras 3 model.to_json() (Functional: InputLayer batch_shape, args/kwargs inbound nodes,
// DTypePolicy dtypes, a GRU with reset_after=true over a reshaped input) posted as `spec`, compiled
// with nadam and a Keras ExponentialDecay schedule, trained by a worker, evaluated and predicted.
// A Lambda layer is refused with a 422 at its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { useStack, waitForJob, iris } from '../helpers/stack.ts';

const stack = useStack();

const policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
const init = (cls: string, config: Record<string, unknown> = {}) => ({ module: 'keras.initializers', class_name: cls, config, registered_name: null });
const kt = (layer: string, shape: Array<number | null>) => ({ class_name: '__keras_tensor__', config: { shape, dtype: 'float32', keras_history: [layer, 0, 0] } });
const layer = (cls: string, name: string, config: Record<string, unknown>, args: unknown[], inputShape: Array<number | null>) => ({
  module: 'keras.layers', class_name: cls, config: { name, trainable: true, dtype: policy, ...config }, registered_name: null,
  build_config: { input_shape: inputShape }, name, inbound_nodes: [{ args, kwargs: {} }],
});

const keras3Iris = {
  module: 'keras.src.models.functional',
  class_name: 'Functional',
  config: {
    name: 'iris_gru',
    trainable: true,
    layers: [
      { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 4], dtype: 'float32', sparse: false, name: 'features' }, registered_name: null, name: 'features', inbound_nodes: [] },
      layer('Reshape', 'as_steps', { target_shape: [4, 1] }, [kt('features', [null, 4])], [null, 4]),
      layer('GRU', 'gru', {
        units: 8, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true,
        kernel_initializer: init('GlorotUniform', { seed: null }), recurrent_initializer: init('OrthogonalInitializer', { gain: 1.0, seed: null }),
        bias_initializer: init('Zeros'), kernel_regularizer: null, recurrent_regularizer: null, bias_regularizer: null, activity_regularizer: null,
        kernel_constraint: null, recurrent_constraint: null, bias_constraint: null, dropout: 0.0, recurrent_dropout: 0.0, reset_after: true, seed: null,
        return_sequences: false, return_state: false, go_backwards: false, stateful: false, unroll: false,
      }, [kt('as_steps', [null, 4, 1])], [null, 4, 1]),
      layer('Dense', 'hidden', { units: 16, activation: 'relu', use_bias: true, kernel_initializer: init('GlorotUniform', { seed: null }), bias_initializer: init('Zeros'), kernel_regularizer: null, bias_regularizer: null, kernel_constraint: null, bias_constraint: null }, [kt('gru', [null, 8])], [null, 8]),
      layer('Dense', 'species', { units: 3, activation: 'softmax', use_bias: true }, [kt('hidden', [null, 16])], [null, 16]),
    ],
    input_layers: ['features', 0, 0],
    output_layers: ['species', 0, 0],
  },
  registered_name: 'Functional',
  build_config: { input_shape: null },
  compile_config: null,
};

test('a Keras 3 Functional JSON model trains through the service (nadam + ExponentialDecay) and predicts', async () => {
  const api = request(stack.app.server);
  const { X, Y } = iris();
  const ds = (await api.post('/v1/datasets').send({ name: 'iris', x: X.slice(0, 120), y: Y.slice(0, 120) }).expect(201)).body;
  const created = await api.post('/v1/models').send({
    spec: keras3Iris,
    compile: {
      optimizer: { module: 'keras.optimizers', class_name: 'Nadam', config: { name: 'nadam', learning_rate: { module: 'keras.optimizers.schedules', class_name: 'ExponentialDecay', config: { initial_learning_rate: 0.02, decay_steps: 100, decay_rate: 0.9, staircase: false, name: 'ExponentialDecay' }, registered_name: null }, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, weight_decay: null, clipnorm: null, global_clipnorm: null, clipvalue: null, use_ema: false }, registered_name: null },
      loss: 'sparse_categorical_crossentropy',
      metrics: ['accuracy'],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const model = created.body;
  // Keras: GRU(8, reset_after) on 1 feature 3*8*(1+8) + 2*3*8 = 264; Dense 8*16+16 = 144; Dense 16*3+3 = 51.
  assert.equal(model.summary.total_params, 264 + 144 + 51);
  assert.deepEqual(model.summary.layers.map((l: { name: string; type: string }) => [l.name, l.type]), [
    ['features', 'InputLayer'], ['as_steps', 'Reshape'], ['gru', 'GRU'], ['hidden', 'Dense'], ['species', 'Dense'],
  ]);
  assert.deepEqual(model.inputs, [{ name: 'features', shape: [4] }]);
  const fit = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 40, batch_size: 16, seed: 1 }).expect(202)).body.id, {}, 300);
  assert.equal(fit.status, 'completed', JSON.stringify(fit.error));
  assert.ok(fit.history.accuracy.at(-1) >= 0.85, `accuracy ${fit.history.accuracy.at(-1)}`);
  const pred = (await api.post(`/v1/models/${model.id}/predict`).send({ instances: X.slice(120, 125) }).expect(200)).body;
  assert.equal(pred.predictions.length, 5);
  for (const p of pred.predictions as number[][]) assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
});

test('a Keras model with a Lambda layer is refused with a 422 naming the layer and what to use', async () => {
  const api = request(stack.app.server);
  const spec = structuredClone(keras3Iris) as typeof keras3Iris;
  spec.config.layers[3] = layer('Lambda', 'hidden', { function: { class_name: '__lambda__', config: { code: '4wEAAAAA', defaults: null, closure: null } }, arguments: {} }, [kt('gru', [null, 8])], [null, 8]) as never;
  const res = await api.post('/v1/models').send({ spec, compile: { optimizer: 'adam', loss: 'mse' } }).expect(422);
  assert.equal(res.body.error.path, 'spec.config.layers[3].class_name');
  assert.match(res.body.error.message, /layer "hidden" is a Lambda.*Custom expression layer/);
});
