// Our summary against one Keras printed next to its model code in a public repository:
// geasyheart/algo@3d8c6cb4201d73953b84cbb68bdffe420289caa0, python/ml/cnn.py (Keras 2,
// the Conv2D/MaxPooling2D MNIST network of "Deep Learning with Python"). The printed rows
// are kept here as data: layer type, output shape and parameter count, and the totals.
// (Keras 2.0 numbered names from 1: conv2d_1; current Keras, and we, start at conv2d.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backend.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { summarize, summaryText } from '../../src/model-spec/summary.ts';

await initBackend('cpu');

const PRINTED = {
  rows: [
    ['Conv2D', [null, 26, 26, 32], 320],
    ['MaxPooling2D', [null, 13, 13, 32], 0],
    ['Conv2D', [null, 11, 11, 64], 18496],
    ['MaxPooling2D', [null, 5, 5, 64], 0],
    ['Conv2D', [null, 3, 3, 64], 36928],
    ['Flatten', [null, 576], 0],
    ['Dense', [null, 64], 36928],
    ['Dense', [null, 10], 650],
  ],
  total: 93322,
  trainable: 93322,
  nonTrainable: 0,
};

test('a Keras-printed summary: same layer types, output shapes, parameters and totals', () => {
  const model = buildModel({ type: 'sequential', layers: [
    { type: 'Conv2D', filters: 32, kernel_size: [3, 3], activation: 'relu', input_shape: [28, 28, 1] },
    { type: 'MaxPooling2D', pool_size: [2, 2] },
    { type: 'Conv2D', filters: 64, kernel_size: [3, 3], activation: 'relu' },
    { type: 'MaxPooling2D', pool_size: [2, 2] },
    { type: 'Conv2D', filters: 64, kernel_size: [3, 3], activation: 'relu' },
    { type: 'Flatten' },
    { type: 'Dense', units: 64, activation: 'relu' },
    { type: 'Dense', units: 10, activation: 'softmax' },
  ] });
  const s = summarize(model);
  assert.deepEqual(s.layers.map((l) => [l.type, l.output_shape, l.params]), PRINTED.rows);
  assert.deepEqual([s.total_params, s.trainable_params, s.non_trainable_params], [PRINTED.total, PRINTED.trainable, PRINTED.nonTrainable]);
  const text = summaryText(model);
  // The printed form, line for line where Keras 2 and we agree (names aside).
  assert.match(text, /Layer \(type\) +Output Shape +Param #/);
  assert.match(text, /conv2d_1 \(Conv2D\) +\(None, 11, 11, 64\) +18,?496/);
  assert.match(text, /flatten \(Flatten\) +\(None, 576\) +0/);
  assert.match(text, /Total params: 93,?322/);
  assert.match(text, /Trainable params: 93,?322/);
  assert.match(text, /Non-trainable params: 0/);
  model.dispose();
});
