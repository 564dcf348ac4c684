import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { SpecError } from '../../src/errors.ts';
import { buildModel, MODEL_LIMITS } from '../../src/model-spec/build-model.ts';
import { describeModel } from '../../src/model-spec/describe.ts';
import { summaryText } from '../../src/model-spec/summary.ts';
import { kerasRelu } from '../../src/model-spec/relu-layer.ts';
import { SUPPORTED_LAYER_TYPES } from '../../src/model-spec/layer-registry.ts';

await initBackend('cpu');

/** Parameter counts below are what Keras 2 `model.count_params()` gives for the same model. */
function params(spec: unknown): number {
  const model = buildModel(spec);
  const n = model.countParams();
  model.dispose();
  return n;
}

const seq = (...layers: unknown[]) => ({ type: 'sequential', layers });

test('Dense MLP 784-64-10 has 50890 params (Keras: 784*64+64 + 64*10+10)', () => {
  assert.equal(params(seq({ type: 'Dense', units: 64, activation: 'relu', input_shape: [784] }, { type: 'Dense', units: 10, activation: 'softmax' })), 50890);
});

test('Conv2D(32, 3x3) on 28x28x1 has 320 params (3*3*1*32+32)', () => {
  assert.equal(params(seq({ type: 'Conv2D', filters: 32, kernel_size: [3, 3], activation: 'relu', input_shape: [28, 28, 1] })), 320);
  // an int kernel_size, camelCase spelling and a lower-case type work too
  assert.equal(params(seq({ type: 'conv2d', filters: 32, kernelSize: 3, inputShape: [28, 28, 1] })), 320);
});

test('BatchNormalization(64) has 256 params, 128 of them non-trainable (moving mean/variance)', () => {
  const model = buildModel(seq({ type: 'BatchNormalization', input_shape: [64] }));
  assert.equal(model.countParams(), 256);
  const count = (ws: tf.LayerVariable[]) => ws.reduce((n, w) => n + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
  assert.equal(count(model.trainableWeights), 128);
  assert.equal(count(model.nonTrainableWeights), 128);
  model.dispose();
});

test('Embedding(1000, 64) has 64000 params; it needs no input_shape as the first layer', () => {
  assert.equal(params(seq({ type: 'Embedding', input_dim: 1000, output_dim: 64 })), 64000);
});

test('LSTM(32) on input dim 8 has 5248 params (4*(32*(8+32)+32)), with Keras defaults', () => {
  const model = buildModel(seq({ type: 'LSTM', units: 32, input_shape: [5, 8] }));
  assert.equal(model.countParams(), 5248);
  const cfg = model.layers[0].getConfig();
  assert.equal(cfg.recurrentActivation, 'sigmoid'); // tfjs's own default is hard_sigmoid
  assert.equal(cfg.unitForgetBias, true); // tfjs's own default is false
  model.dispose();
});

test('GRU: reset_after=false 3*(units*(d+units)+units); reset_after=true (Keras default) adds a recurrent bias', () => {
  assert.equal(params(seq({ type: 'GRU', units: 4, input_shape: [3, 2], reset_after: false })), 3 * (4 * (2 + 4) + 4));
  assert.equal(params(seq({ type: 'GRU', units: 4, input_shape: [3, 2], reset_after: true })), 3 * (4 * (2 + 4) + 4) + 3 * 4);
  assert.equal(params(seq({ type: 'GRU', units: 4, input_shape: [3, 2] })), 3 * (4 * (2 + 4) + 2 * 4));
});

test('functional model with two inputs and two outputs', () => {
  const model = buildModel({
    type: 'functional',
    inputs: [{ name: 'in1', shape: [784] }, { name: 'in2', shape: [784] }],
    layers: [
      { name: 'cat', type: 'Concatenate', inputs: ['in1', 'in2'] },
      { name: 'h', type: 'Dense', units: 64, activation: 'relu', inputs: ['cat'] },
      { name: 'out1', type: 'Dense', units: 10, activation: 'softmax', inputs: ['h'] },
      { name: 'out2', type: 'Dense', units: 784, activation: 'sigmoid', inputs: 'h' },
    ],
    outputs: ['out1', 'out2'],
  });
  // Keras: 1568*64+64 + 64*10+10 + 64*784+784
  assert.equal(model.countParams(), 100416 + 650 + 50960);
  assert.deepEqual(describeModel(model), {
    inputs: [{ name: 'in1', shape: [784] }, { name: 'in2', shape: [784] }],
    outputs: [{ name: 'out1', shape: [10] }, { name: 'out2', shape: [784] }],
  });
  assert.deepEqual(model.outputNames, ['out1', 'out2']);
  const [y1, y2] = model.predict([tf.ones([2, 784]), tf.ones([2, 784])]) as tf.Tensor[];
  assert.deepEqual(y1.shape, [2, 10]);
  assert.deepEqual(y2.shape, [2, 784]);
  model.dispose();
});

test('layers may be listed in any order; they are wired by name', () => {
  const model = buildModel({
    type: 'functional',
    inputs: [{ name: 'x', shape: [4] }],
    layers: [
      { name: 'out', type: 'Dense', units: 1, inputs: ['sum'] },
      { name: 'sum', type: 'Add', inputs: ['a', 'b'] },
      { name: 'a', type: 'Dense', units: 3, inputs: 'x' },
      { name: 'b', type: 'Dense', units: 3, inputs: 'x' },
    ],
    outputs: 'out',
  });
  assert.equal(model.countParams(), 15 + 15 + 4);
  model.dispose();
});

test('a nested sequential model inside a functional one takes its input shape from its input', () => {
  const model = buildModel({
    type: 'functional',
    inputs: [{ name: 'in1', shape: [16] }],
    layers: [
      { type: 'sequential', name: 'hiddens', inputs: ['in1'], layers: [{ type: 'Dense', units: 8, activation: 'relu' }, { type: 'Dense', units: 4 }] },
      { name: 'out', type: 'Dense', units: 2, inputs: ['hiddens'] },
    ],
    outputs: ['out'],
  });
  // Keras: (16*8+8) + (8*4+4) + (4*2+2)
  assert.equal(model.countParams(), 136 + 36 + 10);
  assert.deepEqual(model.layers.map((l) => l.name), ['in1', 'hiddens', 'out']);
  assert.equal(model.layers[1].getClassName(), 'Sequential');
  assert.deepEqual(describeModel(model).outputs, [{ name: 'out', shape: [2] }]);
  model.dispose();
});

test('a nested sequential starting with Embedding takes the length and dtype of its int32 input', () => {
  const model = buildModel({
    type: 'functional',
    inputs: [{ name: 'ids', shape: [10], dtype: 'int32' }],
    layers: [
      { name: 'enc', type: 'sequential', inputs: 'ids', layers: [{ type: 'Embedding', input_dim: 50, output_dim: 4 }, { type: 'Flatten' }] },
      { name: 'out', type: 'Dense', units: 1, inputs: 'enc' },
    ],
    outputs: 'out',
  });
  assert.equal(model.countParams(), 50 * 4 + (40 + 1));
  model.dispose();
});

test('Keras-style automatic layer names, counted per class; sequential input is "<first>_input"', () => {
  const model = buildModel(seq(
    { type: 'Conv2D', filters: 2, kernel_size: 3, input_shape: [8, 8, 1] },
    { type: 'MaxPooling2D' },
    { type: 'BatchNormalization' },
    { type: 'ReLU' },
    { type: 'LeakyReLU' },
    { type: 'Flatten' },
    { type: 'Dropout', rate: 0.1 },
    { type: 'Dense', units: 4 },
    { type: 'Activation', activation: 'relu' },
    { type: 'Dense', units: 3 },
    { type: 'Softmax' },
  ));
  assert.equal(model.name, 'sequential');
  assert.deepEqual(model.layers.map((l) => l.name), [
    'conv2d', 'max_pooling2d', 'batch_normalization', 're_lu', 'leaky_re_lu', 'flatten', 'dropout', 'dense', 'activation', 'dense_1', 'softmax',
  ]);
  assert.deepEqual(model.inputNames, ['conv2d_input']);
  model.dispose();
  const named = buildModel({ type: 'sequential', name: 'mlp', layers: [{ type: 'Dense', units: 2, input_dim: 3, name: 'dense_1' }, { type: 'Dense', units: 2 }] });
  assert.equal(named.name, 'mlp');
  assert.deepEqual(named.layers.map((l) => l.name), ['dense_1', 'dense']); // auto names skip user-given ones
  named.dispose();
});

test('an InputLayer first gives the sequential model its input', () => {
  const model = buildModel(seq({ type: 'InputLayer', shape: [5], name: 'features' }, { type: 'Dense', units: 2 }));
  assert.deepEqual(describeModel(model).inputs, [{ name: 'features', shape: [5] }]);
  assert.equal(model.layers.length, 1);
  model.dispose();
});

test('the other mapped layers build', () => {
  const build = (spec: unknown) => {
    const m = buildModel(spec);
    const n = m.countParams();
    m.dispose();
    return n;
  };
  assert.equal(build(seq(
    { type: 'Conv1D', filters: 4, kernel_size: 3, padding: 'causal', input_shape: [10, 2] },
    { type: 'AveragePooling1D', pool_size: 2 },
    { type: 'SpatialDropout1D', rate: 0.1 },
    { type: 'SimpleRNN', units: 3, return_sequences: true },
    { type: 'TimeDistributed', layer: { type: 'Dense', units: 2 } },
    { type: 'Bidirectional', layer: { type: 'GRU', units: 2, reset_after: false }, merge_mode: 'sum' },
    { type: 'RepeatVector', n: 3 },
    { type: 'Permute', dims: [2, 1] },
    { type: 'GlobalMaxPooling1D' },
    { type: 'LayerNormalization' },
    { type: 'GaussianNoise', stddev: 0.1 },
    { type: 'GaussianDropout', rate: 0.1 },
    { type: 'ELU' },
    { type: 'ThresholdedReLU', theta: 0.5 },
    { type: 'PReLU' },
    { type: 'Dense', units: 2, activation: 'gelu', kernel_initializer: 'he_normal', kernel_regularizer: { class_name: 'L2', config: { l2: 0.001 } } },
  )),
  // Keras: Conv1D 3*2*4+4, SimpleRNN 3*(4+3)+3, TimeDistributed(Dense) 3*2+2, Bidirectional(GRU) 2*3*(2*(2+2)+2),
  // LayerNormalization 2*3, PReLU 3, Dense 3*2+2
  28 + 24 + 8 + 60 + 6 + 3 + 8);
  assert.ok(build(seq(
    { type: 'ZeroPadding2D', padding: 1, input_shape: [6, 6, 2] },
    { type: 'SeparableConv2D', filters: 4, kernel_size: 3 },
    { type: 'DepthwiseConv2D', kernel_size: 3, depth_multiplier: 2 },
    { type: 'UpSampling2D', size: 2 },
    { type: 'Conv2DTranspose', filters: 2, kernel_size: 2, strides: 2 },
    { type: 'Cropping2D', cropping: [[1, 1], [1, 1]] },
    { type: 'AveragePooling2D' },
    { type: 'GlobalAveragePooling2D' },
    { type: 'Reshape', target_shape: [2, -1] },
    { type: 'Masking', mask_value: 0 },
    { type: 'GlobalAveragePooling1D' },
    { type: 'Dense', units: 1, activation: 'exponential' },
  )) > 0);
  const merged = buildModel({
    type: 'functional',
    inputs: [{ name: 'a', shape: [3] }, { name: 'b', shape: [3] }],
    layers: [
      { name: 'sub', type: 'Subtract', inputs: ['a', 'b'] },
      { name: 'mul', type: 'Multiply', inputs: ['a', 'b'] },
      { name: 'avg', type: 'Average', inputs: ['a', 'b'] },
      { name: 'max', type: 'Maximum', inputs: ['sub', 'mul'] },
      { name: 'min', type: 'Minimum', inputs: ['avg', 'max'] },
    ],
    outputs: ['min', 'sub'],
  });
  const [, d] = merged.predict([tf.tensor2d([[5, 2, 1]]), tf.tensor2d([[1, 2, 3]])]) as tf.Tensor[];
  assert.deepEqual(Array.from(d.dataSync()), [4, 0, -2]);
  merged.dispose();
  assert.ok(SUPPORTED_LAYER_TYPES.includes('Dense') && SUPPORTED_LAYER_TYPES.includes('ReLU') && SUPPORTED_LAYER_TYPES.length > 40);
});

// --- ReLU ---------------------------------------------------------------------------------------

/** Keras 2 backend.relu(x, alpha, max_value, threshold), on one number. */
function kerasReluRef(x: number, alpha: number, maxValue: number | null, threshold: number): number {
  if (alpha !== 0 && maxValue === null && threshold === 0) return x > 0 ? x : alpha * x;
  const negativePart = threshold !== 0 ? Math.max(0, -x + threshold) : Math.max(0, -x);
  let y: number;
  let clip = maxValue !== null;
  if (threshold !== 0) y = x > threshold ? x : 0;
  else if (maxValue === 6) {
    y = Math.min(Math.max(x, 0), 6);
    clip = false;
  } else y = Math.max(x, 0);
  if (clip) y = Math.min(Math.max(y, 0), maxValue as number);
  return alpha !== 0 ? y - alpha * negativePart : y;
}

const XS = [-3, -1, -0.5, 0, 0.25, 0.5, 1, 2, 5.5, 6, 7];

test('ReLU with negative_slope / max_value / threshold equals Keras relu()', () => {
  const configs: Array<[number, number | null, number]> = [
    [0, null, 0], [0.01, null, 0], [0, 6, 0], [0.1, 6, 0], [0, null, 0.5], [0.1, 4, 1], [0.2, null, 1], [0, 3, 2],
  ];
  for (const [alpha, maxValue, threshold] of configs) {
    const layerSpec: Record<string, unknown> = { type: 'ReLU', input_shape: [XS.length], negative_slope: alpha, threshold };
    if (maxValue !== null) layerSpec.max_value = maxValue;
    const model = buildModel(seq(layerSpec));
    const got = Array.from((model.predict(tf.tensor2d([XS])) as tf.Tensor).dataSync());
    const want = XS.map((x) => kerasReluRef(x, alpha, maxValue, threshold));
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-6, `relu(${XS[i]}; ${alpha}, ${maxValue}, ${threshold}) = ${g}, Keras ${want[i]}`));
    model.dispose();
  }
  // hand-checked: negative_slope 0.1, max_value 4, threshold 1
  const y = kerasRelu(tf.tensor1d([-1, 0.5, 1, 3, 5]), 0.1, 4, 1);
  assert.deepEqual(Array.from(y.dataSync()).map((v) => Math.round(v * 1e6) / 1e6), [-0.2, -0.05, 0, 3, 4]);
});

test('ReLU(alpha=0.01) is accepted as negative_slope', () => {
  const model = buildModel(seq({ type: 'ReLU', alpha: 0.01, input_shape: [2] }));
  assert.deepEqual(Array.from((model.predict(tf.tensor2d([[-2, 3]])) as tf.Tensor).dataSync()).map((v) => Math.round(v * 1e6) / 1e6), [-0.02, 3]);
  model.dispose();
});

test('a model with ReLU survives save -> load with the same predictions', async () => {
  const model = buildModel(seq(
    { type: 'Dense', units: 6, input_shape: [4] },
    { type: 'ReLU', negative_slope: 0.1, max_value: 1.5, threshold: 0.2 },
    { type: 'Dense', units: 2 },
  ));
  const x = tf.tensor2d([[1, -2, 3, 0.5], [-1, 0.25, 2, -3]]);
  const before = Array.from((model.predict(x) as tf.Tensor).dataSync());
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    saved = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  assert.ok(saved);
  const text = JSON.stringify(saved.modelTopology);
  assert.match(text, /"class_name":"ReLU"/);
  assert.match(text, /"negative_slope":0.1/);
  assert.match(text, /"max_value":1.5/);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved));
  const after = Array.from((loaded.predict(x) as tf.Tensor).dataSync());
  assert.deepEqual(after, before);
  assert.equal(loaded.layers[1].getClassName(), 'ReLU');
  assert.equal(summaryText(loaded), summaryText(model));
  assert.deepEqual(describeModel(loaded), describeModel(model));
  model.dispose();
  loaded.dispose();
});

// --- bad specs ----------------------------------------------------------------------------------

function specErr(path: string, message?: RegExp, code = 'MODEL_SPEC_INVALID') {
  return (err: unknown) => {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    assert.equal(err.path, path, `path (message: ${err.message})`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  };
}

const fn = (layers: unknown[], outputs: unknown = ['out'], inputs: unknown = [{ name: 'in1', shape: [4] }, { name: 'in2', shape: [4] }]) =>
  ({ type: 'functional', inputs, layers, outputs });

test('bad specs give a SpecError with the path of the problem', () => {
  const cases: Array<[string, unknown, string, RegExp?]> = [
    ['units -3', seq({ type: 'Dense', units: -3, input_shape: [4] }), 'spec.layers[0].units', /units must be a positive integer/],
    ['units missing', seq({ type: 'Dense', input_shape: [4] }), 'spec.layers[0].units', /required/],
    ['no input shape', seq({ type: 'Dense', units: 3 }), 'spec.layers[0].input_shape', /input_shape/],
    ['unknown type', seq({ type: 'Dense', units: 3, input_shape: [4] }, { type: 'Danse', units: 2 }), 'spec.layers[1].type', /unknown layer type "Danse".*Dense/],
    ['unknown arg', seq({ type: 'Dense', units: 3, input_shape: [4], unitz: 3 }), 'spec.layers[0].unitz', /unknown argument "unitz" for Dense; accepted: .*kernel_initializer/],
    ['bad activation', seq({ type: 'Dense', units: 3, input_shape: [4], activation: 'relu7' }), 'spec.layers[0].activation', /unknown activation "relu7".*sigmoid/],
    ['kernel_size wrong type', seq({ type: 'Conv2D', filters: 2, kernel_size: '3', input_shape: [8, 8, 1] }), 'spec.layers[0].kernel_size', /kernel_size must be/],
    ['reshape', seq({ type: 'Dense', units: 6, input_shape: [4] }, { type: 'Reshape', target_shape: [4, 2] }), 'spec.layers[1].target_shape', /6 values/],
    ['snake and camel twice', seq({ type: 'Dense', units: 3, input_shape: [4], inputShape: [4] }), 'spec.layers[0].inputShape', /repeats/],
    ['bad initializer', seq({ type: 'Dense', units: 3, input_shape: [4], kernel_initializer: 'glorot' }), 'spec.layers[0].kernel_initializer', /glorot_uniform/],
    ['dropout rate', seq({ type: 'Dense', units: 3, input_shape: [4] }, { type: 'Dropout', rate: 1.5 }), 'spec.layers[1].rate'],
    ['bad name chars', seq({ type: 'Dense', units: 3, input_shape: [4], name: 'my layer' }), 'spec.layers[0].name'],
    ['wrong rank for tfjs', seq({ type: 'Dense', units: 3, input_shape: [4] }, { type: 'Conv2D', filters: 2, kernel_size: 2 }), 'spec.layers[1]', /conv2d|ndim/i],
    ['Bidirectional of Dense', seq({ type: 'Bidirectional', layer: { type: 'Dense', units: 2 }, input_shape: [3, 2] }), 'spec.layers[0].layer.type'],
    ['not sequential/functional', { type: 'graph', layers: [] }, 'spec.type'],
    ['no layers', { type: 'sequential', layers: [] }, 'spec.layers'],
    ['layer not an object', seq('Dense'), 'spec.layers[0]'],
    ['unknown input name', fn([{ name: 'cat', type: 'Concatenate', inputs: ['in1', 'in3'] }, { name: 'out', type: 'Dense', units: 1, inputs: 'cat' }]), 'spec.layers[0].inputs[1]', /unknown name "in3"/],
    ['duplicate layer name', fn([{ name: 'h', type: 'Add', inputs: ['in1', 'in2'] }, { name: 'h', type: 'Dense', units: 1, inputs: 'h' }, { name: 'out', type: 'Dense', units: 1, inputs: 'h' }]), 'spec.layers[1].name', /duplicate name "h"/],
    ['layer named like an input', fn([{ name: 'in1', type: 'Add', inputs: ['in1', 'in2'] }]), 'spec.layers[0].name', /duplicate/],
    ['cycle', fn([{ name: 'a', type: 'Dense', units: 4, inputs: ['c'] }, { name: 'b', type: 'Dense', units: 4, inputs: ['a'] }, { name: 'c', type: 'Dense', units: 4, inputs: ['b'] }, { name: 'out', type: 'Add', inputs: ['c', 'in1'] }], ['out'], [{ name: 'in1', shape: [4] }]), 'spec.layers[1].inputs[0]', /cycle: a -> c -> b -> a/],
    ['output missing', fn([{ name: 'out', type: 'Add', inputs: ['in1', 'in2'] }], ['out', 'out2']), 'spec.outputs[1]', /"out2"/],
    ['no inputs key', fn([{ name: 'out', type: 'Dense', units: 1 }]), 'spec.layers[0].inputs'],
    ['unused layer', fn([{ name: 'out', type: 'Add', inputs: ['in1', 'in2'] }, { name: 'x', type: 'Dense', units: 1, inputs: 'in1' }]), 'spec.layers[1]', /does not lead to any output/],
    ['unused input', fn([{ name: 'out', type: 'Dense', units: 1, inputs: 'in1' }]), 'spec.inputs[1]', /not used/],
    ['functional input without shape', fn([{ name: 'out', type: 'Dense', units: 1, inputs: 'in1' }], ['out'], [{ name: 'in1' }]), 'spec.inputs[0].shape'],
    ['output index out of range', fn([{ name: 'out', type: 'Add', inputs: ['in1', 'in2'] }], ['out[1]']), 'spec.outputs[0]', /out of range/],
  ];
  for (const [what, spec, path, message] of cases) {
    assert.throws(() => buildModel(spec), specErr(path, message), what);
  }
});

test('limits: too many layers and too many params are LIMIT_EXCEEDED', () => {
  const many = seq({ type: 'Dense', units: 1, input_shape: [1] }, ...Array.from({ length: MODEL_LIMITS.maxLayers }, () => ({ type: 'Dense', units: 1 })));
  assert.throws(() => buildModel(many), specErr('spec.layers', /1001 layers.*1000/, 'LIMIT_EXCEEDED'));
  const before = tf.memory().numTensors;
  // 1000 * 100000 weights would be 400 MB; refused before tfjs allocates them.
  assert.throws(
    () => buildModel(seq({ type: 'Dense', units: 1000, input_shape: [8] }, { type: 'Dense', units: 100000 })),
    specErr('spec.layers[1]', /50000000/, 'LIMIT_EXCEEDED'),
  );
  assert.equal(tf.memory().numTensors, before, 'the weights of the first layer were freed');
  assert.throws(
    () => buildModel(seq({ type: 'Dense', units: 8, input_shape: [4] }, { type: 'Dense', units: 4 }), 'spec', { maxLayers: 10, maxParams: 50 }),
    specErr('spec.layers[1]', /maxParams/, 'LIMIT_EXCEEDED'),
  );
});

test('a failed build frees what it made, and paths take the given prefix', () => {
  const before = tf.memory().numTensors;
  assert.throws(
    () => buildModel(seq({ type: 'Dense', units: 6, input_shape: [4] }, { type: 'LSTM', units: 2 }), 'body.spec'),
    specErr('body.spec.layers[1]', /lstm|ndim/i),
  );
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => buildModel(null, 'body.spec'), specErr('body.spec'));
});
