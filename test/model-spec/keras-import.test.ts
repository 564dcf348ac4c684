// Keras JSON import: real public configs (test/fixtures/keras) build with Keras's parameter counts,
// and the gaps stock tfjs has (Keras 3 nodes, batch_shape, GRU reset_after, Flatten on 2-D,
// Normalization, MultiHeadAttention, shared layers, nested models) work; Lambda / unknown classes
// are refused with a path, the layer, its class and what to use instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { normalizeKerasJson } from '../../src/model-spec/keras-format/normalize.ts';
import { summarize } from '../../src/model-spec/summary.ts';
import { saveModelFiles, loadModelFiles } from '../../src/model-spec/model-io.ts';

await initBackend('cpu');

const dir = new URL('../fixtures/keras/', import.meta.url);
const fixtures = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

interface Fixture {
  source: { repo: string | null; path: string | null; commit: string | null; corpus_id?: string; kind: string };
  expected: { total_params: number; from: string };
  spec: Record<string, unknown>;
}
const load = (f: string) => JSON.parse(fs.readFileSync(new URL(f, dir), 'utf8')) as Fixture;

test('fixtures: each records its source and what its parameter count comes from, and is listed in the README', () => {
  assert.ok(fixtures.length >= 20, `${fixtures.length} fixtures`);
  const readme = fs.readFileSync(new URL('README.md', dir), 'utf8');
  for (const f of fixtures) assert.ok(readme.includes(`| ${f} |`), `README lists ${f}`);
  const kinds = new Set<string>();
  for (const f of fixtures) {
    const fx = load(f);
    assert.ok(fx.source.repo || fx.source.corpus_id, `${f}: source`);
    if (fx.source.repo) assert.match(fx.source.commit ?? '', /^[0-9a-f]{40}$/, `${f}: commit`);
    assert.ok(Number.isInteger(fx.expected.total_params), f);
    kinds.add(normalizeKerasJson(fx.spec).flavour);
    // Where a weightsManifest is given, the expected count is the sum of its shapes.
    const manifest = (fx.spec as { weightsManifest?: Array<{ weights: Array<{ shape: number[] }> }> }).weightsManifest;
    if (manifest) {
      const n = manifest.flatMap((g) => g.weights).reduce((s, w) => s + w.shape.reduce((p, d) => p * d, 1), 0);
      assert.equal(n, fx.expected.total_params, `${f}: weightsManifest`);
      assert.equal(fx.expected.from, 'weightsManifest', f);
    }
  }
  assert.deepEqual([...kinds].sort(), ['keras2', 'keras3', 'tfjs']);
});

for (const f of fixtures) {
  test(`fixture ${f} builds with Keras's parameter count`, () => {
    const fx = load(f);
    const started = Date.now();
    const model = buildModel(fx.spec);
    assert.equal(model.countParams(), fx.expected.total_params);
    assert.ok(Date.now() - started < 5000, 'builds in seconds');
    model.dispose();
  });
}

// ---------------------------------------------------------------------------------------------
// Keras 3 forms (written as Keras 3.x model.to_json() writes them)

const policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
const kt = (layer: string, node = 0, tensor = 0, shape: Array<number | null> = [null]) => ({
  class_name: '__keras_tensor__',
  config: { shape, dtype: 'float32', keras_history: [layer, node, tensor] },
});
const k3layer = (cls: string, name: string, config: Record<string, unknown>, inbound: unknown[]) => ({
  module: 'keras.layers',
  class_name: cls,
  config: { name, trainable: true, dtype: policy, ...config },
  registered_name: null,
  build_config: { input_shape: [null, 4] },
  name,
  inbound_nodes: inbound,
});
const input3 = (name: string, shape: Array<number | null>) => ({
  module: 'keras.layers',
  class_name: 'InputLayer',
  config: { batch_shape: shape, dtype: 'float32', sparse: false, name },
  registered_name: null,
  name,
  inbound_nodes: [],
});
const functional3 = (layers: unknown[], inputs: unknown, outputs: unknown, name = 'functional') => ({
  module: 'keras.src.models.functional',
  class_name: 'Functional',
  config: { name, trainable: true, layers, input_layers: inputs, output_layers: outputs },
  registered_name: 'Functional',
  build_config: { input_shape: null },
  compile_config: null,
});

test('Keras 3 Functional: args/kwargs nodes, batch_shape, a shared layer called twice, Concatenate of a list', () => {
  const spec = functional3(
    [
      input3('a', [null, 4]),
      input3('b', [null, 4]),
      k3layer('Dense', 'shared', { units: 3, activation: 'relu', use_bias: true }, [
        { args: [kt('a')], kwargs: {} },
        { args: [kt('b')], kwargs: {} },
      ]),
      k3layer('Concatenate', 'cat', { axis: -1 }, [{ args: [[kt('shared', 0), kt('shared', 1)]], kwargs: {} }]),
      k3layer('Dense', 'out', { units: 1 }, [{ args: [kt('cat')], kwargs: { training: false } }]),
    ],
    [['a', 0, 0], ['b', 0, 0]],
    ['out', 0, 0],
  );
  const model = buildModel(spec);
  // Keras: shared Dense 4*3+3 once, out 6*1+1.
  assert.equal(model.countParams(), 15 + 7);
  assert.equal(model.inputs.length, 2);
  const s = summarize(model);
  assert.deepEqual(s.layers.find((l) => l.name === 'cat')?.connected_to, ['shared', 'shared']);
  const y = model.predict([tf.ones([2, 4]), tf.zeros([2, 4])]) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 1]);
  model.dispose();
});

test('Keras 3: a nested Sequential and a nested Functional used as layers', () => {
  const innerSeq = {
    module: 'keras',
    class_name: 'Sequential',
    config: {
      name: 'encoder',
      trainable: true,
      dtype: policy,
      layers: [
        { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 4], dtype: 'float32', sparse: false, name: 'enc_in' }, registered_name: null },
        { module: 'keras.layers', class_name: 'Dense', config: { name: 'enc_dense', units: 2, dtype: policy }, registered_name: null },
      ],
    },
    registered_name: null,
    name: 'encoder',
    inbound_nodes: [{ args: [kt('x')], kwargs: {} }],
  };
  const innerFn = {
    ...functional3([input3('h_in', [null, 2]), k3layer('Dense', 'h_dense', { units: 5 }, [{ args: [kt('h_in')], kwargs: {} }])], [['h_in', 0, 0]], [['h_dense', 0, 0]], 'head'),
    name: 'head',
    inbound_nodes: [{ args: [kt('encoder')], kwargs: {} }],
  };
  const model = buildModel(functional3([input3('x', [null, 4]), innerSeq, innerFn], [['x', 0, 0]], [['head', 0, 0]]));
  assert.equal(model.countParams(), 4 * 2 + 2 + 2 * 5 + 5);
  assert.deepEqual(summarize(model).layers.map((l) => [l.name, l.type]), [['x', 'InputLayer'], ['encoder', 'Sequential'], ['head', 'Functional']]);
  model.dispose();
});

test('Normalization and MultiHeadAttention in a Keras 3 Functional model, with Keras parameter counts', () => {
  const spec = functional3(
    [
      input3('seq', [null, 6, 8]),
      k3layer('Normalization', 'norm', { axis: -1, mean: null, variance: null, invert: false }, [{ args: [kt('seq')], kwargs: {} }]),
      k3layer('MultiHeadAttention', 'mha', {
        num_heads: 2, key_dim: 4, value_dim: 4, dropout: 0.0, use_bias: true, output_shape: null, attention_axes: [1],
        kernel_initializer: { module: 'keras.initializers', class_name: 'GlorotUniform', config: { seed: null }, registered_name: null },
        bias_initializer: { module: 'keras.initializers', class_name: 'Zeros', config: {}, registered_name: null },
        kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null, seed: null,
      }, [{ args: [kt('norm'), kt('norm')], kwargs: { use_causal_mask: true } }]),
      k3layer('GlobalAveragePooling1D', 'pool', { data_format: 'channels_last', keepdims: false }, [{ args: [kt('mha')], kwargs: {} }]),
    ],
    [['seq', 0, 0]],
    [['pool', 0, 0]],
  );
  const model = buildModel(spec);
  const s = summarize(model);
  // Keras: Normalization 2*8+1 (mean, variance, count; non-trainable);
  // MHA: q,k,v 3*(8*2*4 + 2*4) + output 2*4*8 + 8 = 120 + 72 = 192... computed below.
  const mha = 3 * (8 * 2 * 4 + 2 * 4) + (2 * 4 * 8 + 8);
  assert.deepEqual(s.layers.map((l) => [l.name, l.params]), [['seq', 0], ['norm', 17], ['mha', mha], ['pool', 0]]);
  assert.equal(s.non_trainable_params, 17);
  // Causal: the first position attends only to itself, so changing later positions leaves it alone.
  const x1 = tf.randomNormal([1, 6, 8]);
  const x2 = tf.concat([x1.slice([0, 0, 0], [1, 1, 8]), tf.randomNormal([1, 5, 8])], 1);
  const inner = tf.model({ inputs: model.inputs, outputs: model.getLayer('mha').output as tf.SymbolicTensor });
  const a = (inner.predict(x1) as tf.Tensor).slice([0, 0, 0], [1, 1, 8]);
  const b = (inner.predict(x2) as tf.Tensor).slice([0, 0, 0], [1, 1, 8]);
  assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-5);
  model.dispose();
});

test('MultiHeadAttention matches its definition: softmax(QK^T/sqrt(d)) V through the output projection', () => {
  const model = buildModel({
    type: 'functional',
    inputs: [{ name: 'q', shape: [2, 3] }, { name: 'v', shape: [4, 3] }],
    layers: [{ name: 'mha', type: 'MultiHeadAttention', num_heads: 1, key_dim: 2, inputs: ['q', 'v'] }],
    outputs: ['mha'],
  });
  const w = model.getLayer('mha').getWeights();
  const q = tf.randomNormal([1, 2, 3]);
  const v = tf.randomNormal([1, 4, 3]);
  const [qk, qb, kk, kb, vk, vb, ok, ob] = w;
  const proj = (x: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => tf.add(tf.matMul(x.reshape([-1, 3]), k.reshape([3, -1])), b.reshape([-1]));
  const Q = proj(q, qk, qb);
  const K = proj(v, kk, kb);
  const V = proj(v, vk, vb);
  const att = tf.softmax(tf.div(tf.matMul(Q, K, false, true), Math.sqrt(2)));
  const expected = tf.add(tf.matMul(tf.matMul(att, V), ok.reshape([2, 3])), ob);
  const got = (model.predict([q, v]) as tf.Tensor).reshape([2, 3]);
  assert.ok(tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0] < 1e-5);
  model.dispose();
});

test('GRU reset_after=true: Keras parameter count and the Keras recurrence, in Bidirectional too; survives save/load', async () => {
  const model = buildModel({
    class_name: 'Sequential',
    config: {
      name: 'gru_model',
      layers: [
        { class_name: 'InputLayer', config: { batch_input_shape: [null, 3, 2], dtype: 'float32', name: 'in' } },
        { class_name: 'GRU', config: { name: 'gru', units: 2, reset_after: true, return_sequences: true, recurrent_activation: 'sigmoid' } },
        { class_name: 'Bidirectional', config: { name: 'bi', layer: { class_name: 'GRU', config: { name: 'gru_b', units: 2, reset_after: true } } } },
      ],
    },
  });
  // Keras: GRU(2, reset_after) on 2 features: 3*2*(2+2) + 2*3*2 = 36; Bidirectional on 2 features: 2*36.
  assert.equal(model.countParams(), 36 + 72);
  // One step of the first GRU by hand.
  const [kernel, rec, bias] = model.getLayer('gru').getWeights();
  assert.deepEqual(bias.shape, [2, 6]);
  tf.tidy(() => {
    const bset = tf.randomNormal([2, 6]);
    model.getLayer('gru').setWeights([kernel, rec, bset]);
    const x = tf.randomNormal([1, 3, 2]);
    const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer('gru').output as tf.SymbolicTensor });
    const got = (sub.predict(x) as tf.Tensor).slice([0, 0, 0], [1, 1, 2]).reshape([1, 2]);
    const x0 = x.slice([0, 0, 0], [1, 1, 2]).reshape([1, 2]);
    const h0 = tf.zeros([1, 2]);
    const [bi, br] = tf.unstack(bset);
    const mx = tf.add(tf.matMul(x0, kernel), bi);
    const mh = tf.add(tf.matMul(h0, rec), br);
    const [xz, xr, xh] = tf.split(mx, 3, -1);
    const [hz, hr, hh] = tf.split(mh, 3, -1);
    const z = tf.sigmoid(tf.add(xz, hz));
    const r = tf.sigmoid(tf.add(xr, hr));
    const c = tf.tanh(tf.add(xh, tf.mul(r, hh)));
    const h = tf.add(tf.mul(z, h0), tf.mul(tf.sub(1, z), c));
    assert.ok(tf.max(tf.abs(tf.sub(got, h))).dataSync()[0] < 1e-5);
  });
  const tmp = fs.mkdtempSync('/tmp/gru-');
  await saveModelFiles(model, tmp, `${tmp}/v1`);
  const back = await loadModelFiles(`${tmp}/v1`);
  const x = tf.randomNormal([2, 3, 2]);
  const d = tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor))).dataSync()[0];
  assert.ok(d < 1e-6, `save/load: ${d}`);
  assert.equal(back.countParams(), model.countParams());
  fs.rmSync(tmp, { recursive: true, force: true });
  model.dispose();
  back.dispose();
});

test('Keras 3 forms of the remaining issue layers: DepthwiseConv2D, BatchNormalization, ZeroPadding2D, ReLU(6), Masking, SimpleRNN, GRU, Concatenate', () => {
  const L = (cls: string, config: Record<string, unknown>) => ({ module: 'keras.layers', class_name: cls, config: { trainable: true, dtype: policy, ...config }, registered_name: null, build_config: { input_shape: null } });
  const mobile = buildModel({
    module: 'keras', class_name: 'Sequential', registered_name: null,
    config: { name: 'mobile_block', trainable: true, dtype: policy, layers: [
      { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 8, 8, 3], dtype: 'float32', sparse: false, name: 'input_layer' }, registered_name: null },
      L('ZeroPadding2D', { name: 'pad', padding: [[0, 1], [0, 1]], data_format: 'channels_last' }),
      L('Conv2D', { name: 'conv1', filters: 8, kernel_size: [3, 3], strides: [2, 2], padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: false }),
      L('BatchNormalization', { name: 'bn1', axis: -1, momentum: 0.999, epsilon: 0.001, center: true, scale: true, synchronized: false }),
      L('ReLU', { name: 'relu6', max_value: 6.0, negative_slope: 0.0, threshold: 0.0 }),
      L('DepthwiseConv2D', { name: 'dw', kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], depth_multiplier: 1, activation: 'linear', use_bias: false }),
      L('BatchNormalization', { name: 'bn2', axis: -1, momentum: 0.999, epsilon: 0.001 }),
      L('GlobalAveragePooling2D', { name: 'gap', data_format: 'channels_last', keepdims: false }),
      L('Dense', { name: 'out', units: 2, activation: 'softmax' }),
    ] },
  });
  // Keras: conv 3*3*3*8, bn 4*8, dw 3*3*8, bn 4*8, dense 8*2+2 (moving statistics 2*8 per bn non-trainable).
  assert.equal(mobile.countParams(), 216 + 32 + 72 + 32 + 18);
  assert.deepEqual(summarize(mobile).layers.map((l) => l.output_shape), [
    [null, 9, 9, 3], [null, 4, 4, 8], [null, 4, 4, 8], [null, 4, 4, 8], [null, 4, 4, 8], [null, 4, 4, 8], [null, 8], [null, 2],
  ]);
  mobile.dispose();

  const rnn = buildModel(functional3(
    [
      input3('tokens', [null, 5, 3]),
      k3layer('Masking', 'mask', { mask_value: 0.0 }, [{ args: [kt('tokens')], kwargs: {} }]),
      k3layer('SimpleRNN', 'srnn', { units: 4, activation: 'tanh', use_bias: true, return_sequences: false, seed: null }, [{ args: [kt('mask')], kwargs: {} }]),
      k3layer('GRU', 'gru', { units: 3, reset_after: true, return_sequences: false }, [{ args: [kt('mask')], kwargs: {} }]),
      k3layer('Concatenate', 'cat', { axis: -1 }, [{ args: [[kt('srnn'), kt('gru')]], kwargs: {} }]),
    ],
    [['tokens', 0, 0]], [['cat', 0, 0]],
  ));
  // Keras: SimpleRNN 4*(3+4)+4 = 32; GRU(reset_after) 3*3*(3+3) + 2*3*3 = 72.
  assert.equal(rnn.countParams(), 32 + 72);
  const y = rnn.predict(tf.ones([2, 5, 3])) as tf.Tensor;
  assert.deepEqual(y.shape, [2, 7]);
  rnn.dispose();
});

test('Flatten directly after a 2-D output is accepted as in Keras (a no-op)', () => {
  const model = buildModel({
    class_name: 'Sequential',
    config: { name: 's', layers: [
      { class_name: 'Dense', config: { name: 'd', units: 5, batch_input_shape: [null, 3] } },
      { class_name: 'Flatten', config: { name: 'f', data_format: 'channels_last' } },
      { class_name: 'Dense', config: { name: 'o', units: 1 } },
    ] },
  });
  assert.deepEqual(summarize(model).layers.map((l) => l.output_shape), [[null, 5], [null, 5], [null, 1]]);
  assert.equal(model.countParams(), 20 + 6);
  model.dispose();
});

// The issue asks for under a second; the time is the engine's Orthogonal initializer (src/engine/fast-orthogonal.ts,
// ~0.6 s per 512x2048 QR on a loaded 2-core machine). Bounded here as the engine's own test bounds it.
test('a 2-layer LSTM(512) Keras model builds in seconds, not minutes', () => {
  const started = Date.now();
  const model = buildModel({
    class_name: 'Sequential',
    config: { name: 'big', layers: [
      { class_name: 'LSTM', config: { name: 'l1', units: 512, return_sequences: true, batch_input_shape: [null, 10, 16] } },
      { class_name: 'LSTM', config: { name: 'l2', units: 512 } },
    ] },
  });
  const elapsed = Date.now() - started;
  assert.equal(model.countParams(), 4 * (512 * (16 + 512) + 512) + 4 * (512 * (512 + 512) + 512));
  assert.ok(elapsed < 5000, `${elapsed} ms`);
  model.dispose();
});

function specErr(path: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SpecError, String(err));
    assert.equal(err.path, path);
    assert.match(err.message, message);
    return true;
  };
}

test('Lambda, TF op layers and unknown classes are refused with the layer, its class and what to use', () => {
  const lambda = functional3(
    [input3('x', [null, 4]), k3layer('Lambda', 'double', { function: { class_name: '__lambda__', config: { code: '4wEAAAAAAAAA' } } }, [{ args: [kt('x')], kwargs: {} }])],
    [['x', 0, 0]], [['double', 0, 0]],
  );
  assert.throws(() => buildModel(lambda), specErr('spec.config.layers[1].class_name', /layer "double" is a Lambda.*Custom expression layer.*docs\/expressions\.md/));
  const unknown = { class_name: 'Sequential', config: { name: 's', layers: [
    { class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 3] } },
    { class_name: 'SomebodysOwnLayer', config: { name: 'mystery', rate: 0.25 } },
  ] } };
  assert.throws(() => buildModel(unknown), specErr('spec.config.layers[1].class_name', /layer "mystery" has class "SomebodysOwnLayer".*Custom expression layer/));
  const tfop = { class_name: 'Functional', config: { name: 'm', layers: [
    { class_name: 'InputLayer', name: 'x', config: { batch_input_shape: [null, 2], name: 'x' }, inbound_nodes: [] },
    { class_name: 'TFOpLambda', name: 'tf.math.add', config: { name: 'tf.math.add', function: 'math.add' }, inbound_nodes: [['x', 0, 0, { y: 1 }]] },
  ], input_layers: [['x', 0, 0]], output_layers: [['tf.math.add', 0, 0]] } };
  assert.throws(() => buildModel(tfop), specErr('spec.config.layers[1].class_name', /TFOpLambda: it holds Python code/));
});

test('errors in layer arguments point into the Keras config', () => {
  const bad = { modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [
    { class_name: 'Dense', config: { name: 'd', units: -2, batch_input_shape: [null, 3] } },
  ] } } };
  assert.throws(() => buildModel(bad), specErr('spec.modelTopology.config.layers[0].config.units', /units must be a positive integer/));
  const badRef = functional3([input3('x', [null, 4]), k3layer('Dense', 'd', { units: 1 }, [{ args: [kt('nope')], kwargs: {} }])], [['x', 0, 0]], [['d', 0, 0]]);
  assert.throws(() => buildModel(badRef), specErr('spec.config.layers[1].inbound_nodes[0].args[0]', /unknown layer "nope"/));
});

test('a TensorFlow.js graph model is refused with what to send instead', () => {
  // The start of tfjs_model/model.json in AadiLASA/ULeagueWinner (8f4c10ace8706ace441e9f718c8d97cac05d8771).
  const graph = { format: 'graph-model', generatedBy: '2.19.0', convertedBy: 'TensorFlow.js Converter v4.22.0', modelTopology: { node: [{ name: 'input_layer', op: 'Placeholder' }] } };
  assert.throws(() => buildModel(graph), specErr('spec.format', /graph model.*tfjs_layers_model/));
});

test('flavour is recognised by keys', () => {
  assert.equal(normalizeKerasJson(load('k2-lstm-battery.json').spec).flavour, 'keras2');
  assert.equal(normalizeKerasJson(load('k3-celsius-converter.json').spec).flavour, 'keras3');
  assert.equal(normalizeKerasJson(load('tfjs-alphazero-policy-value.json').spec).flavour, 'tfjs');
});
