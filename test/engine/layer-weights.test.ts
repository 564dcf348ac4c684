// How layers create their weights (src/engine/layer-weights.ts): for shapes only (the API's
// validation and summary, an import) withZeroWeights runs no initializer, and the model, its
// summary and its parameter counts are those of the normal build; a normal build of an LSTM
// (tfjs's unit_forget_bias initializer) no longer leaves tensors behind.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { withZeroWeights } from '../../src/engine/layer-weights.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { summarize, summaryText } from '../../src/model-spec/summary.ts';

before(async () => {
  await initBackend('wasm');
});

const SPEC = { type: 'sequential', layers: [
  { type: 'Embedding', input_dim: 500, output_dim: 16, input_length: 12 },
  { type: 'LSTM', units: 32, return_sequences: true },
  { type: 'Bidirectional', layer: { type: 'GRU', units: 8 } },
  { type: 'Dense', units: 24, activation: 'relu', kernel_initializer: 'random_normal', bias_initializer: 'ones', kernel_regularizer: { type: 'l2', l2: 0.01 } },
  { type: 'BatchNormalization' },
  { type: 'Dense', units: 3, activation: 'softmax' }] };

test('no initializer runs: every weight is zero, and the shapes, names and summary are the normal build\'s', () => {
  const tensors = tf.memory().numTensors;
  const normal = buildModel(SPEC);
  const shapesOnly = withZeroWeights(() => buildModel(SPEC));
  try {
    assert.deepEqual(summarize(shapesOnly), summarize(normal));
    assert.equal(summaryText(shapesOnly).replace(/_\d+/g, ''), summaryText(normal).replace(/_\d+/g, ''));
    assert.deepEqual(shapesOnly.weights.map((w) => w.shape), normal.weights.map((w) => w.shape));
    for (const w of shapesOnly.weights.map((v) => v.read())) assert.ok((w.dataSync() as Float32Array).every((v) => v === 0), 'a weight is not zero');
    assert.ok(normal.weights.map((v) => v.read()).some((w) => (w.dataSync() as Float32Array).some((v) => v !== 0 && v !== 1)));
    // The patch is gone afterwards: the next build initializes as usual.
    const again = buildModel(SPEC);
    assert.ok(again.weights[0]!.read().dataSync().some((v) => v !== 0));
    again.dispose();
  } finally {
    normal.dispose();
    shapesOnly.dispose();
  }
  assert.equal(tf.memory().numTensors, tensors);
});

test('an error while building leaves the normal build in place', () => {
  assert.throws(() => withZeroWeights(() => buildModel({ type: 'sequential', layers: [{ type: 'Dense', units: -1, input_shape: [2] }] })));
  const m = buildModel({ type: 'sequential', layers: [{ type: 'Dense', units: 4, input_shape: [2] }] });
  assert.ok(m.weights[0]!.read().dataSync().some((v) => v !== 0));
  m.dispose();
});

test('building and disposing an LSTM leaves no tensor behind (tfjs\'s bias initializer left four)', () => {
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) buildModel({ type: 'sequential', layers: [{ type: 'LSTM', units: 8, input_shape: [5, 3] }] }).dispose();
  assert.equal(tf.memory().numTensors, tensors);
});
