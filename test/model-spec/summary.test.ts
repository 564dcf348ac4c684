import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../src/engine/backend.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { readableMemorySize, summarize, summaryText } from '../../src/model-spec/summary.ts';

await initBackend('cpu');

const seq = (...layers: unknown[]) => ({ type: 'sequential', layers });

test('summaryText of Dense(64, relu, input_shape=784) + Dense(10) equals tf.keras 2.13-2.15 model.summary()', () => {
  const model = buildModel(seq({ type: 'Dense', units: 64, activation: 'relu', input_shape: [784] }, { type: 'Dense', units: 10 }));
  // Printed by tf.keras 2.15 for the same model (line length 65, columns at 29/55/65).
  const keras = [
    'Model: "sequential"',
    '_________________________________________________________________',
    ' Layer (type)                Output Shape              Param #   ',
    '=================================================================',
    ' dense (Dense)               (None, 64)                50240     ',
    '                                                                 ',
    ' dense_1 (Dense)             (None, 10)                650       ',
    '                                                                 ',
    '=================================================================',
    'Total params: 50890 (198.79 KB)',
    'Trainable params: 50890 (198.79 KB)',
    'Non-trainable params: 0 (0.00 Byte)',
    '_________________________________________________________________',
    '',
  ].join('\n');
  assert.equal(summaryText(model), keras);
  model.dispose();
});

test('summaryText wraps long names as Keras does and counts BatchNormalization moving stats as non-trainable', () => {
  const model = buildModel(seq(
    { type: 'Conv2D', filters: 4, kernel_size: 3, input_shape: [8, 8, 1] },
    { type: 'MaxPooling2D' },
    { type: 'BatchNormalization' },
  ));
  // Keras 2.13+: column 0 holds 26 characters, so "max_pooling2d (MaxPooling2D)" breaks after "MaxPooling2".
  const keras = [
    'Model: "sequential"',
    '_________________________________________________________________',
    ' Layer (type)                Output Shape              Param #   ',
    '=================================================================',
    ' conv2d (Conv2D)             (None, 6, 6, 4)           40        ',
    '                                                                 ',
    ' max_pooling2d (MaxPooling2  (None, 3, 3, 4)           0         ',
    ' D)                                                              ',
    '                                                                 ',
    ' batch_normalization (Batch  (None, 3, 3, 4)           16        ',
    ' Normalization)                                                  ',
    '                                                                 ',
    '=================================================================',
    'Total params: 56 (224.00 Byte)',
    'Trainable params: 48 (192.00 Byte)',
    'Non-trainable params: 8 (32.00 Byte)',
    '_________________________________________________________________',
    '',
  ].join('\n');
  assert.equal(summaryText(model), keras);
  model.dispose();
});

const twoInTwoOut = {
  type: 'functional',
  inputs: [{ name: 'in1', shape: [784] }, { name: 'in2', shape: [784] }],
  layers: [
    { name: 'cat', type: 'Concatenate', inputs: ['in1', 'in2'] },
    { name: 'h', type: 'Dense', units: 64, activation: 'relu', inputs: ['cat'] },
    { name: 'out1', type: 'Dense', units: 10, activation: 'softmax', inputs: ['h'] },
    { name: 'out2', type: 'Dense', units: 784, activation: 'sigmoid', inputs: ['h'] },
  ],
  outputs: ['out1', 'out2'],
};

test('summaryText of a functional model has the Keras "Connected to" column (line length 98)', () => {
  const model = buildModel(twoInTwoOut);
  // tf.keras 2.13+ print_summary: positions [.3, .6, .7, 1] of 98 -> 29/58/68/98; InputLayer shapes
  // print as a list of one tuple; connections as a Python list, one per line.
  const keras = [
    'Model: "model"',
    '_'.repeat(98),
    ' Layer (type)                Output Shape                 Param #   Connected to                  ',
    '='.repeat(98),
    ' in1 (InputLayer)            [(None, 784)]                0         []                            ',
    ' '.repeat(98),
    ' in2 (InputLayer)            [(None, 784)]                0         []                            ',
    ' '.repeat(98),
    " cat (Concatenate)           (None, 1568)                 0         ['in1[0][0]',                 ",
    "                                                                     'in2[0][0]']                 ",
    ' '.repeat(98),
    " h (Dense)                   (None, 64)                   100416    ['cat[0][0]']                 ",
    ' '.repeat(98),
    " out1 (Dense)                (None, 10)                   650       ['h[0][0]']                   ",
    ' '.repeat(98),
    " out2 (Dense)                (None, 784)                  50960     ['h[0][0]']                   ",
    ' '.repeat(98),
    '='.repeat(98),
    'Total params: 152026 (593.85 KB)',
    'Trainable params: 152026 (593.85 KB)',
    'Non-trainable params: 0 (0.00 Byte)',
    '_'.repeat(98),
    '',
  ].join('\n');
  assert.equal(summaryText(model), keras);
  model.dispose();
});

test('summarize: sequential leaves out the InputLayer; functional lists it, with connections', () => {
  const s = buildModel(seq({ type: 'Dense', units: 64, input_shape: [784] }, { type: 'BatchNormalization' }, { type: 'Dense', units: 10 }));
  assert.deepEqual(summarize(s), {
    layers: [
      { name: 'dense', type: 'Dense', output_shape: [null, 64], params: 50240 },
      { name: 'batch_normalization', type: 'BatchNormalization', output_shape: [null, 64], params: 256 },
      { name: 'dense_1', type: 'Dense', output_shape: [null, 10], params: 650 },
    ],
    total_params: 51146,
    trainable_params: 51018,
    non_trainable_params: 128,
  });
  s.dispose();

  const f = buildModel(twoInTwoOut);
  const sum = summarize(f);
  assert.deepEqual(sum.layers.map((l) => [l.name, l.type, l.connected_to]), [
    ['in1', 'InputLayer', []],
    ['in2', 'InputLayer', []],
    ['cat', 'Concatenate', ['in1', 'in2']],
    ['h', 'Dense', ['cat']],
    ['out1', 'Dense', ['h']],
    ['out2', 'Dense', ['h']],
  ]);
  assert.deepEqual(sum.layers[0].output_shape, [null, 784]);
  assert.equal(sum.total_params, 152026);
  f.dispose();
});

test('summarize: nested sequential and multi-output layers, ReLU type', () => {
  const model = buildModel({
    type: 'functional',
    inputs: [{ name: 'seq_in', shape: [5, 3] }],
    layers: [
      { name: 'lstm', type: 'LSTM', units: 4, return_state: true, inputs: 'seq_in' },
      { name: 'hiddens', type: 'sequential', inputs: 'lstm[0]', layers: [{ type: 'Dense', units: 4 }, { type: 'ReLU', max_value: 6 }] },
      { name: 'out', type: 'Add', inputs: ['hiddens', 'lstm[2]'] },
    ],
    outputs: ['out'],
  });
  const sum = summarize(model);
  assert.deepEqual(sum.layers.map((l) => [l.name, l.type, l.output_shape, l.params]), [
    ['seq_in', 'InputLayer', [null, 5, 3], 0],
    ['lstm', 'LSTM', [[null, 4], [null, 4], [null, 4]], 4 * (4 * (3 + 4) + 4)],
    ['hiddens', 'Sequential', [null, 4], 20],
    ['out', 'Add', [null, 4], 0],
  ]);
  assert.match(summaryText(model), / hiddens \(Sequential\)\s+\(None, 4\)\s+20\s+\['lstm\[0\]\[0\]'\]/);
  assert.match(summaryText(model), / out \(Add\)\s+\(None, 4\)\s+0\s+\['hiddens\[1\]\[0\]',/);
  model.dispose();
});

test('readableMemorySize follows Keras (1024 steps, 2 decimals, ties to even as Python formats)', () => {
  assert.equal(readableMemorySize(0), '0.00 Byte');
  assert.equal(readableMemorySize(1023), '1023.00 Byte');
  assert.equal(readableMemorySize(1024), '1.00 KB');
  assert.equal(readableMemorySize(1152), '1.12 KB'); // 1.125: Python "{:.2f}" gives 1.12
  assert.equal(readableMemorySize(1184), '1.16 KB'); // 1.15625
  assert.equal(readableMemorySize(203560), '198.79 KB');
  assert.equal(readableMemorySize(3 * 1024 * 1024), '3.00 MB');
  assert.equal(readableMemorySize(200_000_000), '190.73 MB');
});
